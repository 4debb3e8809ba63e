import type { Caller } from '../auth/authenticator.ts';
import type { DeliveriesReady } from '../dlq/dlq-service.ts';
import { HubError } from '../errors/hub-error.ts';
import type { ParticipantDirectory } from '../participants/directory.ts';
import type { Store } from '../store/store.ts';
import type { DeliveryMode, MessageFilter } from '../store/types.ts';

/** Messages replayed per transaction. */
const REPLAY_CHUNK = 1_000;

export type ReplayFilter = MessageFilter & { receiver?: string };

/**
 * Resend and replay: new deliveries of archived messages to receivers they were routed to,
 * marked as resends (same webhook-id as the original, `meterhub-resend: true` / `resend: true`),
 * each with a fresh retry budget, flowing through push or pull like any other. A resend goes to
 * a receiver in the mode it receives in now, and only to an active receiver (one deleted, or
 * no longer a receiver, gets none).
 */
export class ResendService {
  constructor(private readonly store: Store, private readonly directory: ParticipantDirectory, private readonly ready: DeliveriesReady) {}

  /**
   * `POST /v1/messages/{sequence}/resend`. A participant resends to itself a message that was
   * routed to it (else 404, as if the message did not exist); an admin to the named receivers
   * (each active and routed that message, else 400) or, naming none, to every active receiver
   * the message was routed to.
   */
  async resend(sequence: number, caller: Caller, named: string[] | undefined): Promise<Array<{ receiver: string; delivery: number }>> {
    const notFound = new HubError('not-found', `no message ${sequence}`);
    const message = await this.store.getMessage(sequence);
    if (!message) throw notFound;
    const routed = new Set((await this.store.getDeliveries(sequence)).filter((d) => d.resendOf === null).map((d) => d.receiver));
    await this.directory.refreshIfStale();
    let targets: string[];
    if (caller.kind === 'participant') {
      if (!routed.has(caller.participant)) throw notFound;
      if (named && (named.length !== 1 || named[0] !== caller.participant)) throw new HubError('forbidden', 'only an admin key may name other receivers');
      targets = [caller.participant];
      if (!this.modeOf(caller.participant)) throw new HubError('malformed-request', `participant '${caller.participant}' is no longer a receiver`);
    } else if (named) {
      targets = [...new Set(named)];
      const inactive = targets.filter((r) => !this.modeOf(r));
      if (inactive.length > 0) throw new HubError('malformed-request', `not active receivers: ${inactive.join(', ')}`);
      const notRouted = targets.filter((r) => !routed.has(r));
      if (notRouted.length > 0) throw new HubError('malformed-request', `message ${sequence} was not routed to ${notRouted.join(', ')}`);
    } else {
      targets = [...routed].filter((r) => this.modeOf(r));
      if (targets.length === 0) throw new HubError('malformed-request', `none of the receivers of message ${sequence} is active any more`);
    }
    const made = await this.store.resend(targets.map((receiver) => ({ sequence, receiver, mode: this.modeOf(receiver)! })), Date.now());
    this.ready(made.map((d) => ({ receiver: d.receiver, mode: d.mode })));
    return made.map((d) => ({ receiver: d.receiver, delivery: d.id }));
  }

  /**
   * `POST /v1/admin/replay`: resends every archived message matching the filter (received in
   * [from, to), and not after the replay started) to the active receivers it was originally
   * routed to, or to `filter.receiver` only. Chunk by chunk, each its own transaction.
   */
  async replay(filter: ReplayFilter, onProgress?: (done: { messages: number; deliveries: number }) => void): Promise<{ messages: number; deliveries: number }> {
    await this.directory.refreshIfStale();
    const targets = this.activeReceivers();
    if (filter.receiver !== undefined && !targets.some((t) => t.receiver === filter.receiver)) {
      throw new HubError('malformed-request', `'${filter.receiver}' is not an active receiver`);
    }
    const startedAt = Date.now();
    const bounded: ReplayFilter = { ...filter, to: Math.min(filter.to ?? Infinity, startedAt + 1) };
    const total = { messages: 0, deliveries: 0 };
    for (let after = 0; ;) {
      const chunk = await this.store.replayChunk({ filter: bounded, targets, afterSequence: after, limit: REPLAY_CHUNK, now: Date.now() });
      total.messages += chunk.messages;
      total.deliveries += chunk.deliveries;
      this.ready(chunk.receivers);
      onProgress?.(total);
      if (chunk.lastSequence === null || chunk.matched < REPLAY_CHUNK) return total;
      after = chunk.lastSequence;
    }
  }

  private modeOf(receiver: string): DeliveryMode | null {
    return this.directory.active(receiver)?.receiver?.mode ?? null;
  }

  private activeReceivers(): Array<{ receiver: string; mode: DeliveryMode }> {
    return this.directory.all().flatMap((p) => (p.deletedAt === null && p.receiver ? [{ receiver: p.id, mode: p.receiver.mode }] : []));
  }
}
