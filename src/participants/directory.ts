import type { Store } from '../store/store.ts';
import type { ParticipantRecord } from '../store/types.ts';

/**
 * Every participant known to this process, including deleted ones (their accepted deliveries
 * still go out with their last settings). Reloaded after every admin change, and every
 * `refreshMs` so that other processes' changes are seen.
 */
export class ParticipantDirectory {
  private byId = new Map<string, ParticipantRecord>();
  private loadedAt = 0;

  constructor(private readonly store: Store, private readonly refreshMs = 2_000) {}

  async reload(): Promise<void> {
    const all = await this.store.listParticipants();
    const next = new Map<string, ParticipantRecord>();
    for (const p of all) next.set(p.id, p);
    // Deleted participants are kept from the previous load or fetched on demand.
    for (const [id, p] of this.byId) if (!next.has(id) && p.deletedAt === null) {
      const again = await this.store.getParticipant(id, true);
      if (again) next.set(id, again);
    }
    this.byId = next;
    this.loadedAt = Date.now();
  }

  async refreshIfStale(): Promise<void> {
    if (Date.now() - this.loadedAt > this.refreshMs) await this.reload();
  }

  /** An active (not deleted) participant. */
  active(id: string): ParticipantRecord | undefined {
    const p = this.byId.get(id);
    return p && p.deletedAt === null ? p : undefined;
  }

  /** Any participant this process knows, deleted or not, for delivery settings. */
  async any(id: string): Promise<ParticipantRecord | undefined> {
    const p = this.byId.get(id);
    if (p) return p;
    const fetched = await this.store.getParticipant(id, true);
    if (fetched) this.byId.set(id, fetched);
    return fetched ?? undefined;
  }

  all(): ParticipantRecord[] {
    return [...this.byId.values()];
  }
}
