import type { Archive } from '../archive/archive.ts';
import type { PullReceiverSettings } from '../config/receiver-schema.ts';
import { HubError } from '../errors/hub-error.ts';
import { isJsonMediaType } from '../ingest/attributes.ts';
import type { ParticipantDirectory } from '../participants/directory.ts';
import type { Store } from '../store/store.ts';
import type { ClaimedDelivery, MessageRecord } from '../store/types.ts';

export interface InboxItem {
  lease: string;
  leaseExpiresAt: string;
  receives: number;
  resend: boolean;
  event: string; // the structured CloudEvent, as JSON text (data spliced in byte-exact)
}

/**
 * The pull inbox: leases a receiver's pending deliveries (invisible to other polls until the
 * lease expires), long-polls until something arrives, and takes acks and nacks.
 */
export class InboxService {
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(private readonly store: Store, private readonly directory: ParticipantDirectory, private readonly archive: Archive) {}

  /** New pull deliveries for `receiver` were committed. */
  notify(receiver: string): void {
    const set = this.waiters.get(receiver);
    if (!set) return;
    this.waiters.delete(receiver);
    for (const wake of set) wake();
  }

  settingsOf(receiver: string): PullReceiverSettings {
    const p = this.directory.active(receiver);
    if (!p?.receiver || p.receiver.mode !== 'pull') throw new HubError('forbidden', `participant '${receiver}' is not a pull receiver`);
    return p.receiver;
  }

  async poll(receiver: string, max: number, waitSeconds: number, signal: AbortSignal): Promise<InboxItem[]> {
    const settings = this.settingsOf(receiver);
    const deadline = Date.now() + waitSeconds * 1000;
    for (;;) {
      const now = Date.now();
      const leased = await this.store.leasePull(receiver, max, now, now + settings.visibilityTimeoutSeconds * 1000, settings.maxReceives);
      if (leased.length > 0 || now >= deadline || signal.aborted) return Promise.all(leased.map((d) => this.item(d)));
      // Wake on arrival, or re-check within a second for nacks and leases coming due.
      await this.waitFor(receiver, Math.min(deadline - now, 1000), signal);
    }
  }

  private waitFor(receiver: string, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiters.get(receiver);
      if (!set) { set = new Set(); this.waiters.set(receiver, set); }
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        set!.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      set.add(done);
    });
  }

  private async item(d: ClaimedDelivery): Promise<InboxItem> {
    const message = await this.store.getMessage(d.sequence);
    if (!message) throw new Error(`message ${d.sequence} is missing`);
    const body = await this.archive.read(message);
    return {
      lease: d.leaseToken,
      leaseExpiresAt: new Date(d.leaseUntil!).toISOString(),
      receives: d.receives,
      resend: d.resendOf !== null,
      event: structuredEvent(message, body, d.webhookId),
    };
  }

  async ack(receiver: string, leases: string[]) {
    this.settingsOf(receiver);
    return this.store.ackPull(receiver, leases, Date.now());
  }

  async nack(receiver: string, leases: string[], delaySeconds: number) {
    this.settingsOf(receiver);
    const now = Date.now();
    const results = await this.store.nackPull(receiver, leases, now, now + delaySeconds * 1000);
    if (delaySeconds === 0) this.notify(receiver);
    return results.map((r) => (r.result === 'acked' ? { lease: r.lease, result: 'nacked' as const } : r));
  }
}

/** A structured CloudEvent: `data` inline (the exact JSON bytes) when JSON, else `data_base64`. */
export function structuredEvent(message: MessageRecord, body: Buffer, webhookId: string): string {
  const { datacontenttype: _ignored, ...attrs } = message.attributes;
  const envelope = JSON.stringify({ ...attrs, datacontenttype: message.contentType, sequence: String(message.sequence), deliveryid: webhookId });
  const head = envelope.slice(0, -1);
  if (isJsonMediaType(message.contentType) && body.length > 0 && isJson(body)) {
    return `${head},"data":${body.toString('utf8')}}`;
  }
  return `${head},"data_base64":"${body.toString('base64')}"}`;
}

function isJson(body: Buffer): boolean {
  try {
    JSON.parse(body.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}
