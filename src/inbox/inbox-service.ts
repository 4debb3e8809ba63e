import type { Archive } from '../archive/archive.ts';
import type { PullReceiverSettings } from '../config/receiver-schema.ts';
import { HubError } from '../errors/hub-error.ts';
import { isJsonMediaType } from '../ingest/attributes.ts';
import type { ParticipantDirectory } from '../participants/directory.ts';
import type { Store } from '../store/store.ts';
import type { ClaimedDelivery, DeliveryRecord, MessageRecord } from '../store/types.ts';

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
  private closing = false;

  constructor(
    private readonly store: Store,
    private readonly directory: ParticipantDirectory,
    private readonly archive: Archive,
    private readonly hooks: { onDead?: (d: DeliveryRecord, reason: string) => void } = {},
  ) {}

  /** True once shutdown() was called: long polls answer at once. */
  get shuttingDown(): boolean { return this.closing; }

  /** Ends every long poll now (with what it has) and makes new ones answer at once, so that a graceful close is not held up for the wait. */
  shutdown(): void {
    this.closing = true;
    const all = [...this.waiters.values()];
    this.waiters.clear();
    for (const set of all) for (const wake of set) wake();
  }

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
    await this.directory.refreshIfStale(); // changes made through other hub processes (directory.ts)
    const settings = this.settingsOf(receiver);
    const deadline = Date.now() + waitSeconds * 1000;
    for (;;) {
      const now = Date.now();
      const leased = await this.store.leasePull(receiver, max, now, now + settings.visibilityTimeoutSeconds * 1000, settings.maxReceives, (d) => {
        // Leased maxReceives times already (and nacked): dead-lettered instead; raise the alert.
        this.hooks.onDead?.(d, d.lastError ?? 'receive limit reached');
      }, settings.ordering === 'subject');
      if (leased.length > 0 || now >= deadline || signal.aborted || this.closing) return Promise.all(leased.map((d) => this.item(d)));
      // Wake on arrival, or re-check within a second for nacks and leases coming due.
      await this.waitFor(receiver, Math.min(deadline - now, 1000), signal);
    }
  }

  private waitFor(receiver: string, ms: number, signal: AbortSignal): Promise<void> {
    if (this.closing) return Promise.resolve();
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
    await this.directory.refreshIfStale();
    const settings = this.settingsOf(receiver);
    const results = await this.store.ackPull(receiver, leases, Date.now());
    // With ordering: subject an ack lets the meter's next delivery go: wake long polls for it.
    if (settings.ordering === 'subject' && results.some((r) => r.result === 'acked')) this.notify(receiver);
    return results;
  }

  async nack(receiver: string, leases: string[], delaySeconds: number) {
    await this.directory.refreshIfStale();
    this.settingsOf(receiver);
    const now = Date.now();
    const results = await this.store.nackPull(receiver, leases, now, now + delaySeconds * 1000);
    if (delaySeconds === 0) this.notify(receiver);
    return results.map((r) => (r.result === 'acked' ? { lease: r.lease, result: 'nacked' as const } : r));
  }
}

/**
 * A structured CloudEvent: `data` inline (the exact JSON bytes) when JSON, else `data_base64`;
 * neither when the event has no data (an empty body).
 */
export function structuredEvent(message: MessageRecord, body: Buffer, webhookId: string): string {
  const { datacontenttype: _ignored, ...attrs } = message.attributes;
  const envelope = JSON.stringify({ ...attrs, datacontenttype: message.contentType, sequence: String(message.sequence), deliveryid: webhookId });
  if (body.length === 0) return envelope;
  const head = envelope.slice(0, -1);
  const text = isJsonMediaType(message.contentType) ? jsonText(body) : null;
  if (text !== null) return `${head},"data":${text}}`;
  return `${head},"data_base64":"${body.toString('base64')}"}`;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The body as JSON text when splicing it in keeps the bytes exact: valid UTF-8 (a lossy decode
 * would swap bad bytes for U+FFFD), no BOM, and valid JSON. Otherwise null (sent as base64).
 */
function jsonText(body: Buffer): string | null {
  let text: string;
  try {
    text = strictUtf8.decode(body);
  } catch {
    return null;
  }
  if (text.charCodeAt(0) === 0xfeff) return null;
  try {
    JSON.parse(text);
    return text;
  } catch {
    return null;
  }
}
