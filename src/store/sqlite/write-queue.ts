import type Database from 'better-sqlite3';
import { StorageUnavailableError, isStorageFault } from '../storage-error.ts';

interface Op { fn: () => unknown; durable: boolean; resolve: (v: any) => void; reject: (e: unknown) => void }

/**
 * Group commit: every write issued during one turn of the event loop runs in one transaction,
 * so one fsync acknowledges them all. A write that throws fails alone: the group is first run
 * without savepoints (the common case: two statements fewer per write), and only when a write
 * throws is it rolled back and run again with a savepoint per write. Writes are plain database
 * work, so running one again after a rollback is safe. A failed COMMIT fails the whole group
 * (nothing of it is durable).
 *
 * A write queued with `durable: false` needs no fsync of its own: a group made only of such
 * writes commits with synchronous=NORMAL (WAL written, not fsync'd; 10× cheaper here). A power
 * cut may then lose it, but never a later durable commit without it (the WAL is fsync'd whole).
 */
export class WriteQueue {
  private ops: Op[] = [];
  private scheduled = false;
  private closed = false;
  /** The connection's own synchronous level, put back after a group that needed no fsync. */
  private readonly synchronous: number;

  constructor(private readonly db: Database.Database, private readonly maxGroup = 4096) {
    this.synchronous = db.pragma('synchronous', { simple: true }) as number;
    this.level = this.synchronous;
  }

  run<T>(fn: () => T, opts: { durable?: boolean } = {}): Promise<T> {
    if (this.closed) return Promise.reject(new StorageUnavailableError('the store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.ops.push({ fn, durable: opts.durable !== false, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Runs what is queued now (also used at close). */
  flush(): void {
    this.scheduled = false;
    while (this.ops.length > 0) {
      const group = this.ops.splice(0, this.maxGroup);
      this.commitGroup(group);
    }
  }

  close(): void {
    this.flush();
    this.closed = true;
  }

  private commitGroup(group: Op[]): void {
    // The level can only change outside a transaction. Never throws: a pragma that fails fails
    // the group (its promises settle), and a durable group never runs while the level is relaxed.
    const relaxed = this.synchronous > 1 && !group.some((op) => op.durable);
    try {
      this.setLevel(relaxed ? 1 : this.synchronous);
    } catch (error) {
      this.failAll(group, error);
      return;
    }
    if (!this.commitFast(group)) this.commitIsolated(group);
  }

  /** synchronous level the connection is at now (the pragma is only sent when it changes). */
  private level = -1;

  private setLevel(level: number): void {
    if (this.level === level) return;
    this.level = -1; // unknown until the pragma returned
    this.db.pragma(`synchronous = ${level}`);
    this.level = level;
  }

  /** The whole group without savepoints; false (rolled back, nothing settled) when a write threw. */
  private commitFast(group: Op[]): boolean {
    const values: unknown[] = [];
    try {
      this.db.exec('BEGIN IMMEDIATE');
      for (const op of group) values.push(op.fn());
    } catch (error) {
      if (this.db.inTransaction) {
        try { this.db.exec('ROLLBACK'); } catch { /* rolled back already */ }
      }
      if (isStorageFault(error)) {
        this.failAll(group, error);
        return true;
      }
      if (group.length === 1) {
        group[0]!.reject(error);
        return true;
      }
      return false;
    }
    try {
      this.db.exec('COMMIT');
    } catch (error) {
      if (this.db.inTransaction) {
        try { this.db.exec('ROLLBACK'); } catch { /* rolled back already */ }
      }
      this.failAll(group, error);
      return true;
    }
    group.forEach((op, i) => op.resolve(values[i]));
    return true;
  }

  private failAll(group: Op[], error: unknown): void {
    const failure = error instanceof StorageUnavailableError ? error : new StorageUnavailableError(String((error as Error)?.message ?? error), { cause: error });
    for (const op of group) op.reject(failure);
  }

  /** A savepoint per write, so that a write that throws fails alone. */
  private commitIsolated(group: Op[]): void {
    const results: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    try {
      this.db.exec('BEGIN IMMEDIATE');
      for (const op of group) {
        this.db.exec('SAVEPOINT op');
        let failed: { error: unknown } | null = null;
        try {
          results.push({ ok: true, value: op.fn() });
        } catch (error) {
          // A fault of the storage (disk full, I/O error) fails the whole group: SQLite may
          // already have rolled the transaction back, so there is no savepoint to return to.
          if (isStorageFault(error)) throw error;
          failed = { error };
        }
        if (failed) {
          this.db.exec('ROLLBACK TO op');
          results.push({ ok: false, error: failed.error });
        }
        this.db.exec('RELEASE op');
      }
      this.db.exec('COMMIT');
    } catch (error) {
      if (this.db.inTransaction) {
        try { this.db.exec('ROLLBACK'); } catch { /* the connection rolled back already */ }
      }
      // Whatever failed here (BEGIN, a savepoint, COMMIT, or a fault inside a write), nothing of
      // the group is durable: every write of it is refused as a storage outage.
      this.failAll(group, error);
      return;
    }
    group.forEach((op, i) => {
      const r = results[i]!;
      if (r.ok) op.resolve(r.value); else op.reject(r.error);
    });
  }
}
