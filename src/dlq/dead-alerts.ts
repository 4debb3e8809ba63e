import type { Logger } from 'pino';
import { request } from 'undici';
import type { DeliveryRecord } from '../store/types.ts';

export interface DeadAlertOptions {
  /** Operator webhook to POST `delivery.dead` events to; null: log line and metric only. */
  webhookUrl: string | null;
  /** Each POST, all of it (connect, send, answer). */
  timeoutMs: number;
  /** Alerts waiting to be sent; when full, new ones are dropped (and counted in the log). */
  queueSize: number;
}

export interface DeadAlert {
  event: 'delivery.dead';
  sequence: number;
  receiver: string;
  delivery: number;
  reason: string;
  at: string;
}

const CONCURRENCY = 2;
const LOG_EVERY_MS = 10_000;

/**
 * Best-effort operator alerts for deliveries going dead: `raise` only queues (it never waits
 * and never throws), a couple of workers POST the queue in order, a full queue drops new alerts,
 * and failures are logged, at most one line per 10 s with a count of the others. Delivery never
 * waits for any of it. The URL is the operator's own, so it is not held to allowPrivateTargets.
 */
export class DeadLetterAlerts {
  private readonly queue: DeadAlert[] = [];
  private readonly workers = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private stopped = false;
  private failed = 0;
  private dropped = 0;
  private lastLogAt = 0;

  constructor(private readonly opts: DeadAlertOptions, private readonly logger: Logger) {}

  get enabled(): boolean { return this.opts.webhookUrl !== null; }

  raise(d: DeliveryRecord, reason: string, at = d.deadAt ?? Date.now()): void {
    if (!this.opts.webhookUrl || this.stopped) return;
    if (this.queue.length >= this.opts.queueSize) {
      this.dropped++;
      this.logSometimes();
      return;
    }
    this.queue.push({ event: 'delivery.dead', sequence: d.sequence, receiver: d.receiver, delivery: d.id, reason, at: new Date(at).toISOString() });
    if (this.workers.size < CONCURRENCY) this.startWorker();
  }

  /** Waits up to `graceMs` for the queue to drain, then abandons what is left (logged). */
  async stop(graceMs = 2_000): Promise<void> {
    this.stopped = true;
    if (this.workers.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...this.workers]), new Promise((r) => { timer = setTimeout(r, graceMs); })]);
      clearTimeout(timer);
    }
    this.abort.abort();
    if (this.queue.length > 0) this.logger.warn({ event: 'alerts.abandoned', count: this.queue.length }, 'dead-letter alerts not sent before stop');
    this.queue.length = 0;
    await Promise.allSettled([...this.workers]);
    if (this.failed > 0 || this.dropped > 0) this.logNow(null);
  }

  private startWorker(): void {
    const w = this.drain().finally(() => { this.workers.delete(w); });
    this.workers.add(w);
  }

  private async drain(): Promise<void> {
    for (let alert = this.queue.shift(); alert; alert = this.queue.shift()) {
      if (this.abort.signal.aborted) return;
      try {
        const res = await request(this.opts.webhookUrl!, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'meterhub/0.1' },
          body: JSON.stringify(alert),
          signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.opts.timeoutMs)]),
        });
        await res.body.dump();
        if (res.statusCode < 200 || res.statusCode >= 300) this.fail(`HTTP ${res.statusCode}`);
      } catch (err) {
        this.fail((err as Error)?.message ?? String(err));
      }
    }
  }

  private fail(error: string): void {
    this.failed++;
    this.logSometimes(error);
  }

  private logSometimes(error?: string): void {
    if (Date.now() - this.lastLogAt >= LOG_EVERY_MS) this.logNow(error ?? null);
  }

  /** One line for the failures and drops since the last one. */
  private logNow(error: string | null): void {
    this.lastLogAt = Date.now();
    this.logger.warn({ event: 'alerts.failed', failed: this.failed, dropped: this.dropped, lastError: error, url: this.opts.webhookUrl }, 'dead-letter alert webhook failing (best effort; delivery is not affected)');
    this.failed = 0;
    this.dropped = 0;
  }
}
