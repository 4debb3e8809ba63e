import { encodeCursor } from '../archive/search-params.ts';
import type { Store } from '../store/store.ts';
import type { DeadFilter, DeadLetter, DeliveryMode } from '../store/types.ts';

export const DLQ_CURSOR = 'd1';
/** Deliveries redriven per transaction: a big redrive never holds the store's writer for long. */
const REDRIVE_CHUNK = 5_000;

/** Told which receivers got deliveries to send (again), so that push wakes and long polls answer. */
export type DeliveriesReady = (receivers: Array<{ receiver: string; mode: DeliveryMode }>) => void;

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

export function deadLetterView(d: DeadLetter) {
  return {
    delivery: d.id, sequence: d.sequence, receiver: d.receiver, mode: d.mode, subject: d.subject, type: d.type, source: d.source,
    deadAt: iso(d.deadAt), attempts: d.attempts, receives: d.receives, lastAttemptAt: iso(d.lastAttemptAt), lastStatus: d.lastStatus,
    lastError: d.lastError, resend: d.resendOf !== null, webhookId: d.webhookId,
  };
}

/**
 * The dead-letter queue: list it oldest dead first, redrive from it. Nothing leaves it except
 * by a redrive (invariant 2); a redrive gives each delivery a fresh retry budget.
 */
export class DeadLetterQueue {
  constructor(private readonly store: Store, private readonly ready: DeliveriesReady) {}

  async list(filter: DeadFilter, after: { deadAt: number; id: number } | null, limit: number) {
    const page = await this.store.listDead(filter, after, limit);
    const last = page.at(-1);
    return { deliveries: page.map(deadLetterView), next: last ? encodeCursor(DLQ_CURSOR, [last.deadAt!, last.id]) : null };
  }

  /**
   * Redrives the dead deliveries a filter selects (in chunks, each its own transaction) or those
   * of the given ids. Only deliveries already dead when the redrive starts are taken, so one that
   * is redriven and dies again at once is not taken twice; redriving the same set again takes none.
   */
  async redrive(selector: { filter: DeadFilter } | { ids: number[] }): Promise<number> {
    if ('ids' in selector) {
      const rows = await this.store.redriveDead({ ids: [...new Set(selector.ids)] }, Date.now(), selector.ids.length);
      this.wake(rows);
      return rows.length;
    }
    const startedAt = Date.now();
    const filter: DeadFilter = { ...selector.filter, to: Math.min(selector.filter.to ?? Infinity, startedAt + 1) };
    let total = 0;
    for (;;) {
      const rows = await this.store.redriveDead({ filter }, Math.max(Date.now(), startedAt), REDRIVE_CHUNK);
      total += rows.length;
      this.wake(rows);
      if (rows.length < REDRIVE_CHUNK) return total;
    }
  }

  private wake(rows: Array<{ receiver: string; mode: DeliveryMode }>): void {
    if (rows.length === 0) return;
    const seen = new Map<string, DeliveryMode>();
    for (const r of rows) seen.set(`${r.mode}:${r.receiver}`, r.mode);
    this.ready([...seen].map(([key, mode]) => ({ receiver: key.slice(mode.length + 1), mode })));
  }
}
