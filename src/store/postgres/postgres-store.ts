import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { Store } from '../store.ts';
import { StorageUnavailableError } from '../storage-error.ts';
import type {
  AckResult, AttemptRecord, AttemptResult, ClaimedDelivery, DeadFilter, DeadLetter, DeliveryMode, DeliveryRecord,
  IngestResult, KeyRecord, MessageRecord, MeterEntry, MessageSearch, NewMessage, ParticipantRecord,
  RedriveSelector, RedrivenDelivery, ReplayChunk, ReplayChunkResult, RouteRule, StoredReceiver,
} from '../types.ts';
import * as dl from './dead-letters.ts';
import * as dv from './deliveries.ts';
import { isPgStorageFault, mapError } from './errors.ts';
import { ingestBatch } from './ingest.ts';
import { migrate } from './migrate.ts';
import { searchMessages } from './message-search.ts';
import { createClient, createPool, resolveOptions, type PostgresOptions, type ResolvedOptions } from './pool.ts';
import * as rg from './registry.ts';
import { replayResends, replaySequences, resend } from './resends.ts';
import {
  deliveryColumns, messageColumns, toAttempt, toDelivery, toMessage, toParticipant, type AttemptRow, type DeliveryRow, type MessageRow,
} from './rows.ts';
import { WriteQueue } from './write-queue.ts';

export type { PostgresOptions };

/**
 * Plans (EXPLAIN, nothing run) of the hot statements' tables and indexes: a new server session
 * loads its catalog caches on first use, which on a loaded machine takes tens to hundreds of
 * milliseconds. Paid here at start, on every pooled connection, rather than by the first
 * deliveries after a (re)start, which would come that much late.
 */
const WARM_UP_SQL = [
  "EXPLAIN SELECT id FROM deliveries WHERE mode = 'push' AND state = 'pending' AND receiver = '' AND next_attempt_at <= 0 ORDER BY next_attempt_at, id LIMIT 1",
  "EXPLAIN SELECT id FROM deliveries WHERE mode = 'pull' AND state = 'pending' AND receiver = '' AND next_attempt_at <= 0 ORDER BY next_attempt_at, id LIMIT 1",
  "EXPLAIN SELECT 1 FROM deliveries e WHERE e.receiver = '' AND e.subject = '' AND e.state IN ('pending', 'delivering') AND (e.sequence, e.id) < (0, 0)",
  "EXPLAIN UPDATE deliveries SET state = 'pending' WHERE id = 0 AND lease_token = ''",
  "EXPLAIN SELECT m.sequence, b.data FROM messages m JOIN bodies b ON b.sequence = m.sequence WHERE m.sequence = 0 OR (m.source = '' AND m.id = '')",
  "EXPLAIN INSERT INTO attempts (delivery_id, sequence, receiver, started_at, outcome) VALUES (0, 0, '', 0, '')",
  'EXPLAIN SELECT last FROM hub_sequence',
  "EXPLAIN SELECT id FROM api_keys WHERE hash = ''",
].join('; ');

/** Opens `size` connections of the pool (the rest open on demand) and warms each; best effort: a failure here shows again on first use. */
async function warmUp(pool: pg.Pool, size: number): Promise<void> {
  const clients: pg.PoolClient[] = [];
  try {
    const opened = await Promise.allSettled(Array.from({ length: size }, () => pool.connect()));
    for (const o of opened) if (o.status === 'fulfilled') clients.push(o.value);
    await Promise.allSettled(clients.map((c) => c.query(WARM_UP_SQL)));
  } finally {
    for (const c of clients) c.release();
  }
}

/** Most expired pull leases ended per expirePullLeases call (call again while it finds any). */
const EXPIRE_BATCH = 10_000;

/**
 * The scale-out store: state and queue in PostgreSQL, shared by several hub processes.
 *
 * - Writes are group-committed (write-queue.ts): one transaction per group, a savepoint per
 *   write, resolved after COMMIT (synchronous_commit on: durable once it returns).
 * - Sequences come from a one-row counter locked by ingesting groups until they commit, so they
 *   are unique and increase in commit order across processes (sequences.ts).
 * - Claims and leases take rows with FOR UPDATE SKIP LOCKED; ordering per subject holds across
 *   processes (deliveries.ts says why).
 * - Storage faults (connection, disk full, read-only, lock timeout) reject with
 *   StorageUnavailableError (errors.ts); reads as well as writes.
 * - releaseAllPushLeases does what the interface says (every push lease), which is only right
 *   for a store with one process: the hub does not call it on PostgreSQL, where a dead
 *   process's leases expire and the lease keeper rescues them (rescueExpiredPush).
 * - Inline bodies live in `bodies` (bytea); file bodies stay with the archive's body storage.
 */
export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  private readonly writes: WriteQueue;
  private closing: Promise<void> | null = null;

  private constructor(private readonly pool: pg.Pool, readonly options: ResolvedOptions) {
    this.writes = new WriteQueue(pool);
  }

  /**
   * Connects, applies the migrations not yet applied (safe when several hubs start at once) and
   * opens the pool. Fails (rather than start a hub that cannot store) when PostgreSQL is unreachable.
   */
  static async open(opts: PostgresOptions | string): Promise<PostgresStore> {
    const resolved = resolveOptions(typeof opts === 'string' ? { url: opts } : opts);
    const client = createClient(resolved);
    let durable: boolean;
    try {
      await client.connect();
      await migrate(client, resolved.schema);
      // A 202 promises durability: if the server's default is not to wait for the WAL flush,
      // the hub's sessions ask for it (remote_write, remote_apply, local and on all flush locally).
      const { rows } = await client.query<{ synchronous_commit: string }>('SHOW synchronous_commit');
      durable = rows[0]?.synchronous_commit !== 'off';
    } catch (error) {
      throw mapError(error);
    } finally {
      await client.end().catch(() => {});
    }
    const pool = createPool(resolved, durable ? {} : { synchronous_commit: 'on' });
    await warmUp(pool, Math.min(resolved.poolSize, 8));
    return new PostgresStore(pool, resolved);
  }

  /** Group commits so far: transactions, the writes they carried, deadlock retries. */
  get writeStats(): { readonly groups: number; readonly writes: number; readonly retries: number } {
    return this.writes.stats;
  }

  /** Commits the writes already issued, then closes the pool. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.writes.close();
      await this.pool.end().catch(() => {});
    })();
    return this.closing;
  }

  /**
   * Null when the database takes writes, else why not (a standby in recovery, a read-only
   * session, unreachable): for a readiness probe, which a read alone would not answer.
   */
  async writableFault(): Promise<string | null> {
    try {
      const { rows } = await this.read((db) => db.query<{ standby: boolean; read_only: string }>(
        "SELECT pg_is_in_recovery() AS standby, current_setting('transaction_read_only') AS read_only"));
      if (rows[0]?.standby) return 'PostgreSQL is a standby (in recovery)';
      if (rows[0]?.read_only === 'on') return 'PostgreSQL sessions are read-only';
      return null;
    } catch (error) {
      return (error as Error).message;
    }
  }

  /** A read on a pooled connection (autocommit: committed state only). */
  private async read<T>(fn: (db: pg.Pool) => Promise<T>): Promise<T> {
    if (this.closing) throw new StorageUnavailableError('the store is closed');
    try {
      return await fn(this.pool);
    } catch (error) {
      throw mapError(error);
    }
  }

  /**
   * A write in the group commit; a storage fault inside it rejects with StorageUnavailableError,
   * a value PostgreSQL cannot hold (NUL in text) with a 400 HubError (errors.ts).
   */
  private write<T>(fn: (client: pg.ClientBase) => Promise<T>): Promise<T> {
    return this.writes.run((tx) => fn(tx.client)).catch((error: unknown) => { throw mapError(error); });
  }

  // ---- ingest ----

  commitMessages(messages: NewMessage[]): Promise<IngestResult[]> {
    if (messages.length === 0 && !this.closing) return Promise.resolve([]);
    return this.writes.runBatched(ingestBatch, messages, { sequences: true });
  }

  getMessage(sequence: number): Promise<MessageRecord | null> {
    return this.read(async (db) => {
      if (!Number.isSafeInteger(sequence)) return null;
      const { rows } = await db.query<MessageRow>({ name: 'meterhub_message', text: `SELECT ${messageColumns()} FROM messages WHERE sequence = $1`, values: [sequence] });
      return rows[0] ? toMessage(rows[0]) : null;
    });
  }

  findMessage(source: string, id: string): Promise<MessageRecord | null> {
    return this.read(async (db) => {
      const { rows } = await db.query<MessageRow>({ name: 'meterhub_message_by_id', text: `SELECT ${messageColumns()} FROM messages WHERE source = $1 AND id = $2`, values: [source, id] });
      return rows[0] ? toMessage(rows[0]) : null;
    });
  }

  readInlineBody(sequence: number): Promise<Buffer | null> {
    return this.read(async (db) => {
      if (!Number.isSafeInteger(sequence)) return null;
      const { rows } = await db.query<{ data: Buffer }>({ name: 'meterhub_body', text: 'SELECT data FROM bodies WHERE sequence = $1', values: [sequence] });
      return rows[0]?.data ?? null;
    });
  }

  getDeliveries(sequence: number): Promise<DeliveryRecord[]> {
    return this.read(async (db) => {
      if (!Number.isSafeInteger(sequence)) return [];
      const { rows } = await db.query<DeliveryRow>({ name: 'meterhub_deliveries_of', text: `SELECT ${deliveryColumns()} FROM deliveries WHERE sequence = $1 ORDER BY id`, values: [sequence] });
      return rows.map(toDelivery);
    });
  }

  getAttempts(sequence: number): Promise<AttemptRecord[]> {
    return this.read(async (db) => {
      if (!Number.isSafeInteger(sequence)) return [];
      const { rows } = await db.query<AttemptRow>('SELECT * FROM attempts WHERE sequence = $1 ORDER BY id', [sequence]);
      return rows.map(toAttempt);
    });
  }

  getDelivery(id: number): Promise<DeliveryRecord | null> {
    return this.read(async (db) => {
      if (!Number.isSafeInteger(id)) return null;
      const { rows } = await db.query<DeliveryRow>({ name: 'meterhub_delivery', text: `SELECT ${deliveryColumns()} FROM deliveries WHERE id = $1`, values: [id] });
      return rows[0] ? toDelivery(rows[0]) : null;
    });
  }

  // ---- participants and keys ----

  upsertParticipant(id: string, name: string, receiver: StoredReceiver | null, now: number): Promise<{ created: boolean; record: ParticipantRecord }> {
    return this.write((c) => rg.upsertParticipant(c, id, name, receiver, now));
  }

  getParticipant(id: string, includeDeleted = false): Promise<ParticipantRecord | null> {
    return this.read(async (db) => {
      const row = await rg.getParticipant(db, id);
      if (!row || (row.deleted_at !== null && !includeDeleted)) return null;
      return toParticipant(row);
    });
  }

  listParticipants(): Promise<ParticipantRecord[]> {
    return this.read((db) => rg.listParticipants(db));
  }

  deleteParticipant(id: string, now: number): Promise<boolean> {
    return this.write(async (c) => {
      if (!(await rg.markParticipantDeleted(c, id, now))) return false;
      await rg.revokeKeysOf(c, id, now);
      await rg.deadLetterPullOf(c, id, now, 'the receiver was deleted; redrive once it is back');
      return true;
    });
  }

  insertKey(key: KeyRecord): Promise<void> {
    return this.write((c) => rg.insertKey(c, key));
  }

  findKeyByHash(hash: string): Promise<KeyRecord | null> {
    return this.read((db) => rg.findKeyByHash(db, hash));
  }

  listKeys(participant: string): Promise<KeyRecord[]> {
    return this.read((db) => rg.listKeys(db, participant));
  }

  revokeKey(participant: string | null, keyId: string, now: number): Promise<boolean> {
    return this.write((c) => rg.revokeKey(c, participant, keyId, now));
  }

  countAdminKeys(): Promise<number> {
    return this.read((db) => rg.countAdminKeys(db));
  }

  // ---- routing ----

  getRoutes(): Promise<{ rules: RouteRule[]; version: number }> {
    return this.read((db) => rg.latestRoutes(db));
  }

  setRoutes(rules: RouteRule[], now: number): Promise<number> {
    return this.write(async (c) => {
      await rg.lockRoutes(c);
      return rg.insertRoutes(c, rules, now);
    });
  }

  upsertMeters(entries: MeterEntry[]): Promise<number> {
    return this.write(async (c) => {
      await rg.upsertMeters(c, entries);
      return entries.length;
    });
  }

  /** One transaction on a connection of its own (not the group commit's): all or nothing. */
  async importMeters(chunks: AsyncIterable<MeterEntry[]>, onChunk?: (applied: number) => void): Promise<number> {
    if (this.closing) throw new StorageUnavailableError('the store is closed');
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw mapError(error);
    }
    let applied = 0;
    let failure: unknown;
    try {
      await client.query('BEGIN');
      for await (const chunk of chunks) {
        await rg.upsertMeters(client, chunk);
        applied += chunk.length;
        onChunk?.(applied);
      }
      await client.query('COMMIT');
      return applied;
    } catch (error) {
      failure = error;
      await client.query('ROLLBACK').catch(() => {});
      throw mapError(error);
    } finally {
      // A connection that failed mid-transaction is not given back to the pool.
      client.release(failure !== undefined && isPgStorageFault(failure) ? (failure as Error) : undefined);
    }
  }

  getMeterEntries(meter: string, at: number | null): Promise<MeterEntry[]> {
    return this.read((db) => rg.getMeterEntries(db, meter, at));
  }

  // ---- push delivery ----

  receiversWithDuePush(now: number, limit: number): Promise<string[]> {
    if (!(limit >= 1)) return this.read(async () => []);
    return this.read((db) => dv.receiversWithDuePush(db, now, Math.floor(limit)));
  }

  claimPush(receiver: string, limit: number, now: number, leaseUntil: number, token: string, ordered = false): Promise<ClaimedDelivery[]> {
    return this.write(async (c) => {
      if (!(limit >= 1)) return [];
      // The caller's token names the process; the nonce makes every claim's token its own, so a
      // result from an earlier claim of the same delivery by the same process is recognised as stale.
      return dv.claimPush(c, receiver, Math.floor(limit), now, leaseUntil, `${token}.${randomBytes(9).toString('base64url')}`, ordered);
    });
  }

  recordPushResults(results: Array<{ delivery: ClaimedDelivery; result: AttemptResult }>): Promise<boolean[]> {
    // Every push attempt ends here, one call each: the calls of a group share one statement.
    if (results.length === 0 && !this.closing) return Promise.resolve([]);
    return this.writes.runBatched(dv.recordPushBatch, results).catch((error: unknown) => { throw mapError(error); });
  }

  releasePushClaims(claims: ClaimedDelivery[]): Promise<number> {
    return this.write((c) => dv.releasePushClaims(c, claims));
  }

  nextPushDueAt(): Promise<number | null> {
    return this.read((db) => dv.nextPushDueAt(db));
  }

  // ---- pull inbox ----

  async leasePull(receiver: string, max: number, now: number, leaseUntil: number, maxReceives: number, onDead?: (d: DeliveryRecord) => void, ordered = false): Promise<ClaimedDelivery[]> {
    let dead: DeliveryRecord[] = [];
    const leased = await this.write(async (c) => {
      dead = []; // a retried group runs this again
      const out: ClaimedDelivery[] = [];
      if (!(max >= 1)) return out;
      const want = Math.floor(max);
      // Candidates in due order; one leased `maxReceives` times already (then nacked) goes dead
      // here instead of being leased again, and the next one is taken (with ordering, the next
      // of its subject is a candidate of the next round).
      while (out.length < want) {
        const batch = await dv.pullCandidates(c, receiver, now, want - out.length, ordered);
        if (batch.length === 0) break;
        const exhausted = batch.filter((b) => b.receives >= maxReceives);
        const fresh = batch.filter((b) => b.receives < maxReceives);
        dead.push(...await dv.deadAtReceiveLimit(c, exhausted.map((b) => ({
          id: b.id, reason: `leased ${b.receives} times without an ack, receive limit (${maxReceives}) reached`,
        })), now));
        out.push(...await dv.leasePullDeliveries(c, receiver, fresh.map((b) => b.id), now, leaseUntil));
      }
      return out.sort((a, b) => a.sequence - b.sequence || a.id - b.id);
    });
    // Only once committed: the caller raises the dead-letter alert for these.
    for (const d of dead) onDead?.(d);
    return leased;
  }

  ackPull(receiver: string, leases: string[], now: number): Promise<AckResult[]> {
    return this.write((c) => dv.settlePull(c, 'ack', receiver, leases, now, now));
  }

  nackPull(receiver: string, leases: string[], now: number, nextAttemptAt: number): Promise<AckResult[]> {
    return this.write((c) => dv.settlePull(c, 'nack', receiver, leases, now, nextAttemptAt));
  }

  // ---- maintenance ----

  rescueExpiredPush(now: number): Promise<number> {
    return this.write((c) => dv.releasePushLeases(c, now, now, 'lease expired', 'lease expired before the attempt was recorded (the hub stopped mid-attempt)'));
  }

  expirePullLeases(now: number, maxReceivesFor: (receiver: string) => number): Promise<{ released: number; dead: DeliveryRecord[] }> {
    return this.write(async (c) => {
      const expired = await dv.expiredPullLeases(c, now, EXPIRE_BATCH);
      const items = expired.map((r) => {
        const exhausted = r.receives >= maxReceivesFor(r.receiver);
        return { id: r.id, dead: exhausted, reason: exhausted ? `lease expired without an ack, receive limit (${r.receives}) reached` : 'lease expired without an ack' };
      });
      const ended = await dv.endPullLeases(c, items, now);
      const dead = ended.filter((d) => d.state === 'dead');
      return { released: ended.length - dead.length, dead };
    });
  }

  /** Every push lease, live or not: for a store with one process only (the hub skips it on PostgreSQL). */
  releaseAllPushLeases(now: number): Promise<number> {
    return this.write((c) => dv.releasePushLeases(c, now, null, 'lease released at start', 'the hub restarted before the attempt was recorded'));
  }

  setPendingMode(receiver: string, mode: 'push' | 'pull'): Promise<number> {
    return this.write((c) => dv.setPendingMode(c, receiver, mode));
  }

  countDeliveriesByState(): Promise<Array<{ receiver: string; state: string; count: number }>> {
    return this.read((db) => dv.countDeliveriesByState(db));
  }

  // ---- dead-letter queue ----

  listDead(filter: DeadFilter, after: { deadAt: number; id: number } | null, limit: number): Promise<DeadLetter[]> {
    if (!(limit >= 1)) return this.read(async () => []);
    return this.read((db) => dl.listDead(db, filter, after, Math.floor(limit)));
  }

  redriveDead(selector: RedriveSelector, now: number, limit: number): Promise<RedrivenDelivery[]> {
    return this.write(async (c) => (limit >= 1 ? dl.redriveDead(c, selector, now, Math.floor(limit)) : []));
  }

  // ---- resend and replay ----

  resend(items: Array<{ sequence: number; receiver: string; mode: DeliveryMode }>, now: number): Promise<DeliveryRecord[]> {
    return this.write((c) => resend(c, items, now));
  }

  replayChunk(chunk: ReplayChunk): Promise<ReplayChunkResult> {
    return this.write(async (c) => {
      const none = { matched: 0, lastSequence: null, messages: 0, deliveries: 0, receivers: [] };
      if (!(chunk.limit >= 1)) return none;
      const sequences = await replaySequences(c, chunk);
      if (sequences.length === 0) return none;
      const made = chunk.targets.length === 0 ? [] : await replayResends(c, sequences, chunk.targets, chunk.filter.receiver ?? null, chunk.now);
      const receivers = new Map<string, DeliveryMode>();
      for (const r of made) receivers.set(r.receiver, r.mode);
      return {
        matched: sequences.length,
        lastSequence: sequences.at(-1)!,
        messages: new Set(made.map((r) => r.sequence)).size,
        deliveries: made.length,
        receivers: [...receivers].map(([receiver, mode]) => ({ receiver, mode })),
      };
    });
  }

  // ---- archive search ----

  searchMessages(search: MessageSearch): Promise<MessageRecord[]> {
    if (!(search.limit >= 1)) return this.read(async () => []);
    return this.read((db) => searchMessages(db, search));
  }

  getDeliveriesOf(sequences: number[]): Promise<DeliveryRecord[]> {
    if (sequences.length === 0) return this.read(async () => []);
    return this.read(async (db) => {
      const { rows } = await db.query<DeliveryRow>('SELECT * FROM deliveries WHERE sequence = ANY($1::bigint[]) ORDER BY sequence, id', [sequences]);
      return rows.map(toDelivery);
    });
  }
}
