import type pg from 'pg';
import { StorageUnavailableError } from '../storage-error.ts';
import { isPgStorageFault, isRetryable, unavailable } from './errors.ts';
import { SequenceBlock } from './sequences.ts';

/** What a write sees: the connection, inside the group's transaction (and its own savepoint). */
export interface WriteTx {
  client: pg.ClientBase;
  /** n new consecutive sequences (the first is returned); only for writes queued with `{ sequences: true }`. */
  sequences(n: number): number;
}

/**
 * Writes of one kind that can run together: consecutive writes of a group with the same
 * Batchable run as one `run` call (one result per item, in order), in one savepoint. When that
 * fails (not a storage fault), the savepoint is rolled back and each write runs alone, so a bad
 * write still fails alone. `run` must give each item what running the items one by one would.
 */
export interface Batchable<I, T> {
  run(tx: WriteTx, items: I[]): Promise<T[]>;
}

interface Op {
  fn: (tx: WriteTx) => Promise<unknown>;
  sequences: boolean;
  batch?: { with: Batchable<unknown, unknown>; item: unknown };
  resolve: (v: any) => void;
  reject: (e: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** How many times a group that lost a deadlock (or a serialization failure) is run again. */
const RETRIES = 3;

/**
 * Group commit for PostgreSQL, like the SQLite WriteQueue: the writes issued while no group is
 * running (one event-loop turn), and those issued while a group commits, run together in one
 * transaction, so one COMMIT (one WAL flush: synchronous_commit on) acknowledges them all. Each
 * write runs in its own savepoint, so a write that fails (a duplicate key, a value PostgreSQL
 * refuses) fails alone and the others commit; a lone write needs no savepoint. Consecutive
 * writes of one Batchable kind (commitMessages calls) share one savepoint and one set of
 * statements, falling back to one savepoint each when that fails. One group runs at a time per
 * store; reads go to the other connections of the pool.
 *
 * A write resolves only after COMMIT returned. A storage fault anywhere (connection lost, disk
 * full, read-only, lock timeout), or a failed COMMIT, rejects every write of the group with
 * StorageUnavailableError. When COMMIT itself is cut off, its outcome is unknown: the writes are
 * refused (503) although they may have committed; every hub write is safe to retry (ingest is
 * idempotent on (source, id)). A deadlock or serialization failure rolls the whole group back
 * and runs it again (writes must be safe to run again: they are functions of the database state).
 */
export class WriteQueue {
  private ops: Op[] = [];
  private scheduled = false;
  private running = false;
  private closed = false;
  private idle: Array<() => void> = [];
  /** Transactions committed, and the writes they carried (for metrics and tests). */
  readonly stats = { groups: 0, writes: 0, retries: 0 };

  constructor(private readonly pool: pg.Pool, private readonly maxGroup = 1000) {}

  run<T>(fn: (tx: WriteTx) => Promise<T>, opts: { sequences?: boolean } = {}): Promise<T> {
    return this.push({ fn, sequences: opts.sequences === true });
  }

  /** A write that may run batched with the consecutive writes of the same Batchable. */
  runBatched<I, T>(batch: Batchable<I, T>, item: I, opts: { sequences?: boolean } = {}): Promise<T> {
    return this.push({
      fn: async (tx) => (await batch.run(tx, [item]))[0],
      sequences: opts.sequences === true,
      batch: { with: batch as Batchable<unknown, unknown>, item },
    });
  }

  private push<T>(op: Omit<Op, 'resolve' | 'reject'>): Promise<T> {
    if (this.closed) return Promise.reject(new StorageUnavailableError('the store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.ops.push({ ...op, resolve, reject });
      this.kick();
    });
  }

  /** Lets the writes already issued commit; later ones are refused. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.ops.length > 0 || this.running || this.scheduled) await new Promise<void>((r) => this.idle.push(r));
  }

  private kick(): void {
    if (this.scheduled || this.running) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.loop();
    });
  }

  private async loop(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.ops.length > 0) await this.commitGroup(this.ops.splice(0, this.maxGroup));
    } finally {
      this.running = false;
      for (const done of this.idle.splice(0)) done();
    }
  }

  /** Never throws: settles every write of the group. */
  private async commitGroup(group: Op[]): Promise<void> {
    // Without savepoints first (each costs a round trip and a subtransaction); when a write of
    // the group fails by itself, the group is rolled back and run again with one per write.
    let savepoints = false;
    for (let attempt = 0; ; attempt++) {
      let client: pg.PoolClient;
      try {
        client = await this.pool.connect();
      } catch (error) {
        return fail(group, error);
      }
      try {
        const outcomes = await runGroup(client, group, savepoints);
        client.release();
        this.stats.groups++;
        this.stats.writes += group.length;
        group.forEach((op, i) => {
          const o = outcomes[i]!;
          if (o.ok) op.resolve(o.value); else op.reject(o.error);
        });
        return;
      } catch (error) {
        const rolledBack = await client.query('ROLLBACK').then(() => true, () => false);
        // A connection that cannot even roll back is broken: destroy it rather than pool it.
        client.release(rolledBack ? undefined : true);
        if (rolledBack && error instanceof NeedsSavepoints) {
          savepoints = true;
          attempt--;
          continue;
        }
        if (rolledBack && isRetryable(error) && attempt < RETRIES) {
          this.stats.retries++;
          continue;
        }
        return fail(group, error);
      }
    }
  }
}

/** A write of a group run without savepoints failed by itself: run the group again with them. */
class NeedsSavepoints extends Error {}

/** Whatever failed (BEGIN, a savepoint, a fault inside a write, COMMIT), nothing of the group is durable. */
function fail(group: Op[], error: unknown): void {
  const failure = unavailable(error);
  for (const op of group) op.reject(failure);
}

/**
 * Runs the group in one transaction; resolves with one outcome per write once COMMIT returned.
 * Throws on a storage fault or a retryable failure (the caller rolls back). With `isolate`, each
 * write (or batch) of a group of several runs in its own savepoint, so that one failing is rolled
 * back alone; without, a write failing throws NeedsSavepoints (the caller rolls back and runs the
 * group again isolated). Every write must be safe to run again (a function of the database state).
 */
async function runGroup(client: pg.ClientBase, group: Op[], isolate: boolean): Promise<Outcome[]> {
  const savepoints = isolate && group.length > 1;
  const outcomes: Outcome[] = [];
  // Transaction control not yet sent, sent with the next round trip.
  let control = 'BEGIN';
  const also = (sql: string) => { control = control ? `${control}; ${sql}` : sql; };
  const send = async (): Promise<pg.QueryResult | null> => {
    const sql = control;
    control = '';
    if (!sql) return null;
    const result = (await client.query(sql)) as pg.QueryResult | pg.QueryResult[];
    return Array.isArray(result) ? result.at(-1)! : result;
  };
  // The sequence row first, before any other lock: a group that ingests never waits for it while
  // holding rows that another process's ingesting group might want.
  let sequences: SequenceBlock | null = null;
  if (group.some((op) => op.sequences)) {
    await send();
    sequences = await SequenceBlock.lock(client);
  }
  const txFor = (op: Op): WriteTx => ({
    client,
    sequences: (n) => {
      if (!op.sequences || !sequences) throw new Error('this write was not queued to take sequences');
      return sequences.take(n);
    },
  });
  /** Runs `run` in a savepoint (when there are several writes); false when it failed and was rolled back. */
  const attempt = async (run: () => Promise<void>): Promise<{ error: unknown } | null> => {
    if (savepoints) also('SAVEPOINT op');
    await send();
    try {
      await run();
      if (savepoints) control = 'RELEASE SAVEPOINT op';
      return null;
    } catch (error) {
      if (isPgStorageFault(error) || isRetryable(error)) throw error;
      if (!savepoints && group.length > 1) throw new NeedsSavepoints('a write of the group failed', { cause: error });
      await client.query(savepoints ? 'ROLLBACK TO SAVEPOINT op' : 'ROLLBACK');
      if (savepoints) control = 'RELEASE SAVEPOINT op';
      return { error };
    }
  };
  const one = async (op: Op): Promise<boolean> => {
    let value: unknown;
    const failed = await attempt(async () => { value = await op.fn(txFor(op)); });
    outcomes.push(failed ? { ok: false, error: failed.error } : { ok: true, value });
    return failed === null;
  };

  for (let i = 0; i < group.length;) {
    const op = group[i]!;
    let j = i + 1;
    while (group.length > 1 && op.batch && j < group.length && group[j]!.batch?.with === op.batch.with && group[j]!.sequences === op.sequences) j++;
    if (j - i > 1) {
      const run = group.slice(i, j);
      let values: unknown[] = [];
      const failed = await attempt(async () => {
        values = await op.batch!.with.run(txFor(op), run.map((o) => o.batch!.item));
        if (values.length !== run.length) throw new Error(`a batch of ${run.length} writes gave ${values.length} results`);
      });
      if (!failed) for (const value of values) outcomes.push({ ok: true, value });
      else for (const o of run) await one(o); // each alone: the bad one fails by itself
    } else if (!(await one(op)) && !savepoints) {
      return outcomes; // a lone write failed: rolled back, nothing to commit
    }
    i = j;
  }
  if (sequences?.changed) {
    await send();
    await sequences.store(client);
  }
  also('COMMIT');
  const commit = await send();
  // COMMIT of a transaction in the aborted state answers ROLLBACK instead of failing.
  if (commit?.command !== 'COMMIT') throw new StorageUnavailableError(`COMMIT did not commit (${commit?.command})`);
  return outcomes;
}
