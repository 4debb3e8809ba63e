import type { Readable } from 'node:stream';
import type { BodyStore } from '../archive/body-store.ts';
import type { Caller } from '../auth/authenticator.ts';
import { HubError } from '../errors/hub-error.ts';
import { limitedBody } from '../http/body.ts';
import type { Router } from '../routing/router.ts';
import { StorageUnavailableError } from '../store/storage-error.ts';
import type { Store } from '../store/store.ts';
import type { EventAttributes, IngestResult, NewMessage } from '../store/types.ts';
import type { ParsedEvent } from './cloudevents.ts';
import { validateAttributes } from './attributes.ts';
import { fingerprintOf, sha256Hex, sha256OfStream } from './fingerprint.ts';
import { receiptOf, type Receipt } from './receipt.ts';

export type IngestOutcome =
  | { kind: 'accepted'; receipt: Receipt }
  | { kind: 'duplicate'; receipt: Receipt }
  | { kind: 'refused'; error: HubError };

export interface IngestServiceOptions {
  inlineBodyMaxBytes: number;
  /** Told after each commit which receivers got new deliveries. */
  onCommitted: (receivers: Array<{ receiver: string; mode: 'push' | 'pull' }>) => void;
}

/**
 * Turns decoded events into committed messages: checks the sender, routes, stores the body,
 * and commits message and deliveries together. Resolves only once all of it is durable.
 */
export class IngestService {
  constructor(
    private readonly store: Store,
    private readonly router: Router,
    private readonly bodies: BodyStore,
    private readonly opts: IngestServiceOptions,
  ) {}

  /** Checks an event's attributes against the caller and routes it; throws the refusal. */
  async prepare(attrs: EventAttributes, caller: Caller, receivedAt: number) {
    if (caller.kind !== 'participant') throw new HubError('forbidden', 'messages are sent with a participant key, not an admin key');
    if (attrs.source !== caller.participant) {
      throw new HubError('source-mismatch', `the event source '${attrs.source.slice(0, 64)}' is not this key's participant '${caller.participant}'`);
    }
    return this.router.route(attrs, receivedAt);
  }

  /** Events already in memory (structured, batch, small binary). Each refused on its own. */
  async ingestEvents(events: Array<ParsedEvent | HubError>, caller: Caller): Promise<IngestOutcome[]> {
    const receivedAt = Date.now();
    const outcomes: Array<IngestOutcome | null> = [];
    const pending: Array<{ index: number; message: NewMessage }> = [];
    for (const [index, ev] of events.entries()) {
      if (ev instanceof HubError) { outcomes.push({ kind: 'refused', error: ev }); continue; }
      try {
        const sha256 = sha256Hex(ev.body);
        let route;
        try {
          route = await this.prepare(ev.attributes, caller, receivedAt);
        } catch (e) {
          const earlier = isRoutingRefusal(e) ? await this.earlier(ev.attributes, ev.contentType, sha256) : null;
          if (!earlier) throw e;
          outcomes.push(earlier);
          continue;
        }
        const message = this.newMessage(ev.attributes, ev.contentType, ev.body.length, sha256, receivedAt, route.receivers);
        if (ev.body.length <= this.opts.inlineBodyMaxBytes) {
          message.inlineBody = ev.body;
        } else {
          message.body = { kind: 'file', key: await this.bodies.putBuffer(ev.body) };
        }
        outcomes.push(null);
        pending.push({ index, message });
      } catch (e) {
        if (!(e instanceof HubError)) {
          // The request fails as a whole (a storage fault): the bodies already stored for its
          // earlier events will never be committed; leave nothing behind taking space.
          await Promise.all(pending.map(({ message: m }) => (m.body.kind === 'file' ? this.bodies.remove(m.body.key).catch(() => {}) : undefined)));
          throw e;
        }
        outcomes.push({ kind: 'refused', error: e });
      }
    }
    if (pending.length > 0) {
      const results = await this.commit(pending.map((p) => p.message));
      results.forEach((r, i) => { outcomes[pending[i]!.index] = toOutcome(r); });
    }
    return outcomes as IngestOutcome[];
  }

  /** A binary-mode body too large to hold: routed from its headers first, then streamed to the body store. */
  async ingestStream(rawAttrs: Record<string, unknown>, contentType: string, body: Readable, limit: number, caller: Caller): Promise<IngestOutcome> {
    const attrs = validateAttributes(rawAttrs);
    const receivedAt = Date.now();
    let route;
    try {
      route = await this.prepare(attrs, caller, receivedAt);
    } catch (e) {
      if (isRoutingRefusal(e) && (await this.store.findMessage(attrs.source, attrs.id))) {
        const earlier = await this.earlier(attrs, contentType, await sha256OfStream(limitedBody(body, limit)));
        if (earlier) return earlier;
      }
      throw e;
    }
    const stored = await this.bodies.putStream(limitedBody(body, limit), limit);
    const message = this.newMessage(attrs, contentType, stored.size, stored.sha256, receivedAt, route.receivers);
    message.body = { kind: 'file', key: stored.key };
    const [result] = await this.commit([message]);
    return toOutcome(result!);
  }

  /**
   * A message the routing refuses now may be the retry of one accepted before (the routes or the
   * receivers changed since): it is answered as the duplicate (200, first receipt) or conflict
   * (409) it is, as the CloudEvents (source, id) rule says, not refused as if it were new.
   */
  private async earlier(attrs: EventAttributes, contentType: string, sha256: string): Promise<IngestOutcome | null> {
    const message = await this.store.findMessage(attrs.source, attrs.id);
    if (!message) return null;
    if (message.fingerprint !== fingerprintOf(attrs, contentType, sha256)) return toOutcome({ kind: 'conflict', message });
    const receivers = (await this.store.getDeliveries(message.sequence)).filter((d) => d.resendOf === null).map((d) => d.receiver);
    return toOutcome({ kind: 'duplicate', message, receivers });
  }

  private newMessage(attrs: EventAttributes, contentType: string, size: number, sha256: string, receivedAt: number, receivers: NewMessage['receivers']): NewMessage {
    return {
      source: attrs.source, id: attrs.id, type: attrs.type, subject: attrs.subject,
      time: typeof attrs.time === 'string' ? attrs.time : null, attributes: attrs, contentType, size, sha256,
      fingerprint: fingerprintOf(attrs, contentType, sha256), receivedAt, body: { kind: 'inline' }, receivers,
    };
  }

  private async commit(messages: NewMessage[]): Promise<IngestResult[]> {
    let results: IngestResult[];
    try {
      results = await this.store.commitMessages(messages);
    } catch (e) {
      // Best effort (a body left behind is only unused space); never hides the commit's own error.
      await Promise.all(messages.map((m) => (m.body.kind === 'file' ? this.bodies.remove(m.body.key).catch(() => {}) : undefined)));
      if (e instanceof StorageUnavailableError) throw new HubError('storage-unavailable', 'the hub cannot store messages right now; nothing was accepted', { retryAfterSeconds: 5 });
      throw e;
    }
    const touched: Array<{ receiver: string; mode: 'push' | 'pull' }> = [];
    results.forEach((r, i) => {
      const m = messages[i]!;
      if (r.kind === 'accepted') touched.push(...m.receivers);
      else if (m.body.kind === 'file') void this.bodies.remove(m.body.key).catch(() => {});
    });
    if (touched.length > 0) this.opts.onCommitted(touched);
    return results;
  }
}

/** Refusals that depend on the current routes and registry, not on the event itself. */
function isRoutingRefusal(e: unknown): boolean {
  return e instanceof HubError && (e.code === 'no-route' || e.code === 'invalid-meter-id');
}

function toOutcome(r: IngestResult): IngestOutcome {
  switch (r.kind) {
    case 'accepted': return { kind: 'accepted', receipt: receiptOf(r.message, r.receivers) };
    case 'duplicate': return { kind: 'duplicate', receipt: receiptOf(r.message, r.receivers) };
    case 'conflict':
      return { kind: 'refused', error: new HubError('duplicate-conflict', `message '${r.message.id.slice(0, 64)}' from '${r.message.source}' was accepted before (sequence ${r.message.sequence}) with different content`, { extra: { sequence: r.message.sequence } }) };
  }
}
