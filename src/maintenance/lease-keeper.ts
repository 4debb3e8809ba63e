import type { Logger } from 'pino';
import type { ParticipantDirectory } from '../participants/directory.ts';
import type { Store } from '../store/store.ts';
import type { DeliveryRecord } from '../store/types.ts';

/**
 * Ends leases that expired: push leases of a process that died go back to pending; pull leases
 * the receiver never acked go back to pending, or dead once the receive limit is reached.
 * Like river's job rescuer: start()/stop() are idempotent, runOnce() is what tests call.
 */
export class LeaseKeeper {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly store: Store,
    private readonly directory: ParticipantDirectory,
    private readonly logger: Logger,
    private readonly intervalMs: number,
    private readonly hooks: {
      onReleased?: (pull: boolean) => void;
      onDead?: (d: DeliveryRecord, reason: string) => void;
      /** Called just before expired push leases are rescued; writes it issues at once go first (the push dispatcher's results kept through a storage fault). */
      beforeRescue?: () => Promise<void>;
    } = {},
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => { this.runOnce().catch((err) => this.logger.error({ err }, 'lease maintenance failed')); }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async runOnce(now = Date.now()): Promise<{ rescued: number; released: number; dead: number }> {
    const kept = this.hooks.beforeRescue?.();
    const rescued = await this.store.rescueExpiredPush(now);
    await kept;
    const { released, dead } = await this.store.expirePullLeases(now, (receiver) => {
      const r = this.directory.all().find((p) => p.id === receiver)?.receiver;
      return r && r.mode === 'pull' ? r.maxReceives : 10;
    });
    // A pull lease that expired after its receiver switched to push comes back as a pending pull
    // delivery nobody would poll: hand it to the push side (a no-op probe of an index otherwise).
    if (released > 0) {
      for (const p of this.directory.all()) {
        if (p.receiver?.mode === 'push' && (await this.store.setPendingMode(p.id, 'push')) > 0) this.hooks.onReleased?.(false);
      }
    }
    if (rescued > 0) this.hooks.onReleased?.(false);
    // A dead one also lets its meter's next delivery go (ordering: subject): wake long polls too.
    if (released > 0 || dead.length > 0) this.hooks.onReleased?.(true);
    for (const d of dead) this.hooks.onDead?.(d, d.lastError ?? 'receive limit reached');
    return { rescued, released, dead: dead.length };
  }
}
