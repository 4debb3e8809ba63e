import type { Store } from '../store/store.ts';
import type { ParticipantRecord } from '../store/types.ts';

/** How old the cached participants may get before a caller of refreshIfStale reloads them. */
export const DIRECTORY_REFRESH_MS = 2_000;

/**
 * Every participant known to this process, including deleted ones (their accepted deliveries
 * still go out with their last settings). Reloaded after every admin change made through this
 * process, and, so that changes made through other processes sharing the store are seen, by
 * `refreshIfStale()` once the copy is older than `refreshMs`: the push scheduler calls it on
 * every pass, ingest (through the router) and the inbox (poll, ack, nack) before they read a
 * participant. So a participant PUT or DELETE through one hub is used by the others at most
 * `refreshMs` (plus one reload's round trip) after it committed. A fresh copy costs nothing; a
 * stale one costs the one reload every concurrent caller waits for (single-flight).
 */
export class ParticipantDirectory {
  private byId = new Map<string, ParticipantRecord>();
  /** When the load now installed began (it saw every change committed before then). */
  private loadedAt = 0;
  private loadsStarted = 0;
  private installedLoad = 0;
  private refreshing: Promise<void> | null = null;

  constructor(private readonly store: Store, readonly refreshMs = DIRECTORY_REFRESH_MS) {}

  async reload(): Promise<void> {
    const load = ++this.loadsStarted;
    const startedAt = Date.now();
    const all = await this.store.listParticipants();
    const next = new Map<string, ParticipantRecord>();
    for (const p of all) next.set(p.id, p);
    // Deleted participants are kept from the previous load or fetched on demand.
    for (const [id, p] of this.byId) if (!next.has(id) && p.deletedAt === null) {
      const again = await this.store.getParticipant(id, true);
      if (again) next.set(id, again);
    }
    // A load that began earlier and finished later (a refresh overtaken by an admin change's
    // reload) must not put back what the later one replaced.
    if (load < this.installedLoad) return;
    this.installedLoad = load;
    this.byId = next;
    this.loadedAt = startedAt;
  }

  /** Reloads when the copy is older than refreshMs; resolves at once when it is not. */
  refreshIfStale(): Promise<void> {
    if (Date.now() - this.loadedAt <= this.refreshMs) return Promise.resolve();
    this.refreshing ??= this.reload().finally(() => { this.refreshing = null; });
    return this.refreshing;
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
