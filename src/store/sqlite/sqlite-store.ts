import { randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { Store } from '../store.ts';
import type {
  AckResult, AttemptRecord, AttemptResult, ClaimedDelivery, DeadFilter, DeadLetter, DeliveryMode, DeliveryRecord,
  IngestResult, KeyRecord, MessageRecord, MessageSearch, MeterEntry, NewMessage, ParticipantRecord,
  RedriveSelector, RedrivenDelivery, ReplayChunk, ReplayChunkResult, RouteRule, StoredReceiver,
} from '../types.ts';
import { webhookIdFor } from '../webhook-id.ts';
import { openDatabase, type OpenOptions } from './database.ts';
import { WriteQueue } from './write-queue.ts';
import { listDead, prepareDeadLetterStatements, redriveDead } from './dead-letters.ts';
import { StatementCache, searchMessages } from './message-search.ts';
import { prepareResendStatements, replayChunk, resend } from './resends.ts';
import { getMeterEntries, importInChunks, prepareRegistryStatements, upsertMeters } from './registry.ts';
import {
  toAttempt, toDelivery, toKey, toMessage, toParticipant,
  type AttemptRow, type DeliveryRow, type KeyRow, type MessageRow, type ParticipantRow,
} from './rows.ts';

export { webhookIdFor };

/**
 * Claims (and claims given back) are committed without an fsync of their own. One process holds
 * the file (the data-folder lock) and voids every push lease at start (releaseAllPushLeases), so
 * a claim lost in a power cut changes nothing that start would not: its delivery is pending and
 * sent again, as any in flight then. The result of an attempt stays durable.
 */
const NO_FSYNC = { durable: false } as const;

/** The embedded store: one SQLite file, WAL, synchronous=FULL, writes group-committed. */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly writes: WriteQueue;
  private readonly sql;
  private readonly dead;
  private readonly resends;
  private readonly registry;
  private readonly queries: StatementCache;

  /** `reader`: a connection for the read methods only (see ThreadedSqliteStore); it never migrates. */
  constructor(file: string, opts: OpenOptions = {}) {
    this.db = openDatabase(file, opts);
    this.writes = new WriteQueue(this.db);
    this.sql = prepareStatements(this.db);
    this.dead = prepareDeadLetterStatements(this.db);
    this.resends = prepareResendStatements(this.db);
    this.registry = prepareRegistryStatements(this.db);
    this.queries = new StatementCache(this.db);
  }

  async close(): Promise<void> {
    this.writes.close();
    if (this.db.open) this.db.close();
  }

  /** The raw connection, for tests and benchmarks that inspect the file. */
  get database(): Database.Database { return this.db; }

  // ---- ingest ----

  commitMessages(messages: NewMessage[]): Promise<IngestResult[]> {
    return this.writes.run(() => messages.map((m) => this.commitOne(m)));
  }

  private commitOne(m: NewMessage): IngestResult {
    // The common case first: a new (source, id). Only on a conflict is the first one read.
    const inserted = this.sql.insertMessage.get({
      source: m.source, id: m.id, type: m.type, subject: m.subject, time: m.time,
      attributes: JSON.stringify(m.attributes), content_type: m.contentType, size: m.size, sha256: m.sha256,
      fingerprint: m.fingerprint, received_at: m.receivedAt, body_kind: m.body.kind,
      body_key: m.body.kind === 'file' ? m.body.key : null,
    }) as { sequence: number } | undefined;
    if (!inserted) {
      const existing = toMessage(this.sql.messageBySourceId.get(m.source, m.id) as MessageRow);
      if (existing.fingerprint !== m.fingerprint) return { kind: 'conflict', message: existing };
      const receivers = (this.sql.originalReceivers.all(existing.sequence) as Array<{ receiver: string }>).map((r) => r.receiver);
      return { kind: 'duplicate', message: existing, receivers };
    }
    const sequence = inserted.sequence;
    if (m.body.kind === 'inline') this.sql.insertBody.run(sequence, m.inlineBody ?? Buffer.alloc(0));
    const receivers = uniqueReceivers(m.receivers);
    for (const r of receivers) {
      this.sql.insertDelivery.run({
        sequence, receiver: r.receiver, mode: r.mode, subject: m.subject, created_at: m.receivedAt,
        webhook_id: webhookIdFor(sequence, r.receiver), resend_of: null,
      });
    }
    const message: MessageRecord = {
      sequence, source: m.source, id: m.id, type: m.type, subject: m.subject, time: m.time, attributes: m.attributes,
      contentType: m.contentType, size: m.size, sha256: m.sha256, fingerprint: m.fingerprint, receivedAt: m.receivedAt, body: m.body,
    };
    return { kind: 'accepted', message, receivers: receivers.map((r) => r.receiver) };
  }

  async getMessage(sequence: number): Promise<MessageRecord | null> {
    const row = this.sql.messageBySequence.get(sequence) as MessageRow | undefined;
    return row ? toMessage(row) : null;
  }

  async findMessage(source: string, id: string): Promise<MessageRecord | null> {
    const row = this.sql.messageBySourceId.get(source, id) as MessageRow | undefined;
    return row ? toMessage(row) : null;
  }

  async readInlineBody(sequence: number): Promise<Buffer | null> {
    const row = this.sql.bodyBySequence.get(sequence) as { data: Buffer } | undefined;
    return row ? row.data : null;
  }

  async getDeliveries(sequence: number): Promise<DeliveryRecord[]> {
    return (this.sql.deliveriesOfMessage.all(sequence) as DeliveryRow[]).map(toDelivery);
  }

  async getDelivery(id: number): Promise<DeliveryRecord | null> {
    const row = this.sql.deliveryById.get(id) as DeliveryRow | undefined;
    return row ? toDelivery(row) : null;
  }

  async getAttempts(sequence: number): Promise<AttemptRecord[]> {
    return (this.sql.attemptsOfMessage.all(sequence) as AttemptRow[]).map(toAttempt);
  }

  // ---- participants and keys ----

  upsertParticipant(id: string, name: string, receiver: StoredReceiver | null, now: number): Promise<{ created: boolean; record: ParticipantRecord }> {
    return this.writes.run(() => {
      const before = this.sql.participantById.get(id) as ParticipantRow | undefined;
      const row = this.sql.upsertParticipant.get({ id, name, receiver: receiver ? JSON.stringify(receiver) : null, now }) as ParticipantRow;
      return { created: !before || before.deleted_at !== null, record: toParticipant(row) };
    });
  }

  async getParticipant(id: string, includeDeleted = false): Promise<ParticipantRecord | null> {
    const row = this.sql.participantById.get(id) as ParticipantRow | undefined;
    if (!row || (row.deleted_at !== null && !includeDeleted)) return null;
    return toParticipant(row);
  }

  async listParticipants(): Promise<ParticipantRecord[]> {
    return (this.sql.listParticipants.all() as ParticipantRow[]).map(toParticipant);
  }

  deleteParticipant(id: string, now: number): Promise<boolean> {
    return this.writes.run(() => {
      const changed = this.sql.deleteParticipant.run(now, id).changes > 0;
      if (changed) {
        this.sql.revokeKeysOf.run(now, id);
        const reason = 'the receiver was deleted; redrive once it is back';
        for (const r of this.sql.deadLetterPullOf.all({ receiver: id, now, error: reason }) as DeliveryRow[]) {
          this.sql.insertAttempt.run({ delivery_id: r.id, sequence: r.sequence, receiver: id, started_at: now, outcome: 'dead', status: null, latency_ms: null, error: reason });
        }
      }
      return changed;
    });
  }

  insertKey(key: KeyRecord): Promise<void> {
    return this.writes.run(() => {
      this.sql.insertKey.run({ id: key.id, participant: key.participant, role: key.role, hash: key.hash, created_at: key.createdAt, revoked_at: key.revokedAt });
    });
  }

  async findKeyByHash(hash: string): Promise<KeyRecord | null> {
    const row = this.sql.keyByHash.get(hash) as KeyRow | undefined;
    return row ? toKey(row) : null;
  }

  async listKeys(participant: string): Promise<KeyRecord[]> {
    return (this.sql.keysOf.all(participant) as KeyRow[]).map(toKey);
  }

  revokeKey(participant: string | null, keyId: string, now: number): Promise<boolean> {
    return this.writes.run(() => this.sql.revokeKey.run({ now, id: keyId, participant }).changes > 0);
  }

  async countAdminKeys(): Promise<number> {
    return (this.sql.countAdminKeys.get() as { n: number }).n;
  }

  // ---- routing ----

  async getRoutes(): Promise<{ rules: RouteRule[]; version: number }> {
    const row = this.sql.latestRoutes.get() as { version: number; rules: string } | undefined;
    return row ? { rules: JSON.parse(row.rules), version: row.version } : { rules: [], version: 0 };
  }

  setRoutes(rules: RouteRule[], now: number): Promise<number> {
    return this.writes.run(() => (this.sql.insertRoutes.get(JSON.stringify(rules), now) as { version: number }).version);
  }

  upsertMeters(entries: MeterEntry[]): Promise<number> {
    return this.writes.run(() => upsertMeters(this.registry, entries));
  }

  importMeters(chunks: AsyncIterable<MeterEntry[]>, onChunk?: (applied: number) => void): Promise<number> {
    return importInChunks((chunk) => this.upsertMeters(chunk), chunks, onChunk);
  }

  async getMeterEntries(meter: string, at: number | null): Promise<MeterEntry[]> {
    return getMeterEntries(this.registry, meter, at);
  }

  // ---- push delivery ----

  async receiversWithDuePush(now: number, limit: number): Promise<string[]> {
    if (!(limit >= 1)) return [];
    return (this.sql.pushReceivers.all(now, limit) as Array<{ receiver: string }>).map((r) => r.receiver);
  }

  claimPush(receiver: string, limit: number, now: number, leaseUntil: number, token: string, ordered = false): Promise<ClaimedDelivery[]> {
    return this.writes.run(() => {
      if (!(limit >= 1)) return [];
      // The caller's token names the process; the nonce makes every claim's token its own, so a
      // result from an earlier claim of the same delivery by the same process is recognised as stale.
      const rows = (ordered ? this.sql.claimPushOrdered : this.sql.claimPush).all({ receiver, limit: Math.floor(limit), now, lease_until: leaseUntil, token: `${token}.${randomBytes(9).toString('base64url')}` }) as DeliveryRow[];
      return rows.map(toDelivery).sort(bySequence) as ClaimedDelivery[];
    }, NO_FSYNC);
  }

  recordPushResults(results: Array<{ delivery: ClaimedDelivery; result: AttemptResult }>): Promise<boolean[]> {
    return this.writes.run(() => results.map(({ delivery: d, result: r }) => {
      const outcome = r.kind === 'delivered' ? 'delivered' : r.kind === 'dead' ? 'dead' : 'failed';
      const error = r.kind === 'delivered' ? null : r.error;
      const common = { id: d.id, token: d.leaseToken, status: r.status, error, at: r.at + r.latencyMs };
      let recorded: boolean;
      switch (r.kind) {
        case 'delivered': recorded = this.sql.markDelivered.run(common).changes > 0; break;
        case 'retry': recorded = this.sql.markRetry.run({ ...common, next: r.nextAttemptAt }).changes > 0; break;
        case 'dead': recorded = this.sql.markDead.run(common).changes > 0; break;
      }
      // A stale result writes nothing: its claim was already recorded as 'lease-lost'.
      if (recorded) this.sql.insertAttempt.run({ delivery_id: d.id, sequence: d.sequence, receiver: d.receiver, started_at: r.at, outcome, status: r.status, latency_ms: r.latencyMs, error });
      return recorded;
    }));
  }

  releasePushClaims(claims: ClaimedDelivery[]): Promise<number> {
    return this.writes.run(() => claims.reduce((n, d) => n + this.sql.unclaimPush.run({ id: d.id, token: d.leaseToken }).changes, 0), NO_FSYNC);
  }

  async nextPushDueAt(): Promise<number | null> {
    return (this.sql.nextPushDue.get() as { t: number | null }).t;
  }

  // ---- pull inbox ----

  async leasePull(receiver: string, max: number, now: number, leaseUntil: number, maxReceives: number, onDead?: (d: DeliveryRecord) => void, ordered = false): Promise<ClaimedDelivery[]> {
    const dead: DeliveryRecord[] = [];
    const candidates = ordered ? this.sql.pullCandidatesOrdered : this.sql.pullCandidates;
    const leasedRows = await this.writes.run(() => {
      dead.length = 0; // a retried group runs this again
      const leased: ClaimedDelivery[] = [];
      // Candidates in due order; one that was leased `maxReceives` times already (and nacked)
      // goes dead here instead of being leased once more, and the next one is taken (with
      // ordering, the next of its subject is a candidate of the next round).
      while (leased.length < max) {
        const batch = candidates.all({ receiver, now, limit: Math.floor(max - leased.length) }) as Array<{ id: number; receives: number }>;
        if (batch.length === 0) break;
        for (const c of batch) {
          if (c.receives >= maxReceives) {
            const reason = `leased ${c.receives} times without an ack, receive limit (${maxReceives}) reached`;
            const row = this.sql.pullToDeadPending.get({ id: c.id, now, error: reason }) as DeliveryRow | undefined;
            if (row) {
              this.sql.insertAttempt.run({ delivery_id: row.id, sequence: row.sequence, receiver, started_at: now, outcome: 'dead', status: null, latency_ms: null, error: reason });
              dead.push(toDelivery(row));
            }
            continue;
          }
          // Each lease its own random token (128 bits), not guessable from another one.
          const row = this.sql.leaseOne.get({ id: c.id, now, lease_until: leaseUntil, token: `pl_${randomBytes(16).toString('base64url')}` }) as DeliveryRow | undefined;
          if (!row) continue;
          this.sql.insertAttempt.run({ delivery_id: row.id, sequence: row.sequence, receiver, started_at: now, outcome: 'leased', status: null, latency_ms: null, error: null });
          leased.push(toDelivery(row) as ClaimedDelivery);
        }
      }
      return leased.sort(bySequence);
    });
    // Only once committed: the caller raises the dead-letter alert for these.
    for (const d of dead) onDead?.(d);
    return leasedRows;
  }

  ackPull(receiver: string, leases: string[], now: number): Promise<AckResult[]> {
    return this.writes.run(() => leases.map((lease) => {
      const row = this.sql.ackPull.get({ receiver, token: lease, now }) as DeliveryRow | undefined;
      if (!row) return { lease, result: 'expired' as const };
      this.sql.insertAttempt.run({ delivery_id: row.id, sequence: row.sequence, receiver, started_at: now, outcome: 'acked', status: null, latency_ms: null, error: null });
      return { lease, result: 'acked' as const };
    }));
  }

  nackPull(receiver: string, leases: string[], now: number, nextAttemptAt: number): Promise<AckResult[]> {
    return this.writes.run(() => leases.map((lease) => {
      const row = this.sql.nackPull.get({ receiver, token: lease, now, next: nextAttemptAt }) as DeliveryRow | undefined;
      if (!row) return { lease, result: 'expired' as const };
      this.sql.insertAttempt.run({ delivery_id: row.id, sequence: row.sequence, receiver, started_at: now, outcome: 'nacked', status: null, latency_ms: null, error: 'nacked by receiver' });
      return { lease, result: 'acked' as const };
    }));
  }

  // ---- maintenance ----

  rescueExpiredPush(now: number): Promise<number> {
    return this.writes.run(() => {
      const rows = this.sql.rescuePush.all({ now }) as DeliveryRow[];
      for (const r of rows) {
        this.sql.insertAttempt.run({ delivery_id: r.id, sequence: r.sequence, receiver: r.receiver, started_at: now, outcome: 'lease-lost', status: null, latency_ms: null, error: 'lease expired before the attempt was recorded (the hub stopped mid-attempt)' });
      }
      return rows.length;
    });
  }

  expirePullLeases(now: number, maxReceivesFor: (receiver: string) => number): Promise<{ released: number; dead: DeliveryRecord[] }> {
    return this.writes.run(() => {
      const expired = this.sql.expiredPull.all(now) as DeliveryRow[];
      const dead: DeliveryRecord[] = [];
      let released = 0;
      for (const r of expired) {
        const exhausted = r.receives >= maxReceivesFor(r.receiver);
        const reason = exhausted ? `lease expired without an ack, receive limit (${r.receives}) reached` : 'lease expired without an ack';
        this.sql.insertAttempt.run({ delivery_id: r.id, sequence: r.sequence, receiver: r.receiver, started_at: now, outcome: exhausted ? 'dead' : 'expired', status: null, latency_ms: null, error: reason });
        if (exhausted) {
          const row = this.sql.pullToDead.get({ id: r.id, now, error: reason }) as DeliveryRow | undefined;
          if (row) dead.push(toDelivery(row));
        } else {
          released += this.sql.pullToPending.run({ id: r.id, now, error: reason }).changes;
        }
      }
      return { released, dead };
    });
  }

  /** Receivers with pull leases expired at `now` (what expirePullLeases will ask maxReceivesFor about). */
  expiredPullReceivers(now: number): string[] {
    return (this.sql.expiredPullReceivers.all(now) as Array<{ receiver: string }>).map((r) => r.receiver);
  }

  releaseAllPushLeases(now: number): Promise<number> {
    return this.writes.run(() => {
      const rows = this.sql.releasePushLeases.all(now) as DeliveryRow[];
      for (const r of rows) {
        this.sql.insertAttempt.run({ delivery_id: r.id, sequence: r.sequence, receiver: r.receiver, started_at: now, outcome: 'lease-lost', status: null, latency_ms: null, error: 'the hub restarted before the attempt was recorded' });
      }
      return rows.length;
    });
  }

  setPendingMode(receiver: string, mode: 'push' | 'pull'): Promise<number> {
    return this.writes.run(() => this.sql.setPendingMode.run({ mode, receiver }).changes);
  }

  async countDeliveriesByState(): Promise<Array<{ receiver: string; state: string; count: number }>> {
    return this.sql.countByState.all() as Array<{ receiver: string; state: string; count: number }>;
  }

  // ---- dead-letter queue ----

  async listDead(filter: DeadFilter, after: { deadAt: number; id: number } | null, limit: number): Promise<DeadLetter[]> {
    return listDead(this.dead, filter, after, limit);
  }

  redriveDead(selector: RedriveSelector, now: number, limit: number): Promise<RedrivenDelivery[]> {
    return this.writes.run(() => redriveDead(this.dead, selector, now, limit));
  }

  // ---- resend and replay ----

  resend(items: Array<{ sequence: number; receiver: string; mode: DeliveryMode }>, now: number): Promise<DeliveryRecord[]> {
    return this.writes.run(() => resend(this.resends, items, now));
  }

  replayChunk(chunk: ReplayChunk): Promise<ReplayChunkResult> {
    return this.writes.run(() => replayChunk(this.resends, this.queries, chunk));
  }

  // ---- archive search ----

  async searchMessages(search: MessageSearch): Promise<MessageRecord[]> {
    return searchMessages(this.queries, search);
  }

  async getDeliveriesOf(sequences: number[]): Promise<DeliveryRecord[]> {
    if (sequences.length === 0) return [];
    return (this.sql.deliveriesOfMessages.all(JSON.stringify(sequences)) as DeliveryRow[]).map(toDelivery);
  }
}

/** One entry per receiver, the first one named. */
function uniqueReceivers(receivers: NewMessage['receivers']): NewMessage['receivers'] {
  const seen = new Set<string>();
  return receivers.filter((r) => !seen.has(r.receiver) && (seen.add(r.receiver), true));
}

function bySequence(a: DeliveryRecord, b: DeliveryRecord): number {
  return a.sequence - b.sequence || a.id - b.id;
}


/**
 * `d` has no earlier (sequence, id) delivery of its receiver and subject still open: it is the
 * subject's head. Answered by the partial index deliveries_open_by_subject (0002), whose WHERE
 * this repeats word for word.
 */
const NO_EARLIER_OPEN = `NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.receiver = d.receiver AND e.subject = d.subject
  AND e.state IN ('pending', 'delivering') AND (e.sequence, e.id) < (d.sequence, d.id))`;

function prepareStatements(db: Database.Database) {
  const p = (sql: string) => db.prepare(sql);
  return {
    messageBySourceId: p('SELECT * FROM messages WHERE source = ? AND id = ?'),
    messageBySequence: p('SELECT * FROM messages WHERE sequence = ?'),
    insertMessage: p(`INSERT INTO messages (source, id, type, subject, time, attributes, content_type, size, sha256, fingerprint, received_at, body_kind, body_key)
      VALUES (@source, @id, @type, @subject, @time, @attributes, @content_type, @size, @sha256, @fingerprint, @received_at, @body_kind, @body_key)
      ON CONFLICT (source, id) DO NOTHING RETURNING sequence`),
    insertBody: p('INSERT INTO bodies (sequence, data) VALUES (?, ?)'),
    bodyBySequence: p('SELECT data FROM bodies WHERE sequence = ?'),
    insertDelivery: p(`INSERT INTO deliveries (sequence, receiver, mode, subject, state, created_at, first_created_at, next_attempt_at, webhook_id, resend_of)
      VALUES (@sequence, @receiver, @mode, @subject, 'pending', @created_at, @created_at, @created_at, @webhook_id, @resend_of)`),
    originalReceivers: p('SELECT receiver FROM deliveries WHERE sequence = ? AND resend_of IS NULL ORDER BY id'),
    deliveriesOfMessage: p('SELECT * FROM deliveries WHERE sequence = ? ORDER BY id'),
    deliveryById: p('SELECT * FROM deliveries WHERE id = ?'),
    deliveriesOfMessages: p('SELECT * FROM deliveries WHERE sequence IN (SELECT value FROM json_each(?)) ORDER BY sequence, id'),
    attemptsOfMessage: p('SELECT * FROM attempts WHERE sequence = ? ORDER BY id'),
    insertAttempt: p(`INSERT INTO attempts (delivery_id, sequence, receiver, started_at, outcome, status, latency_ms, error)
      VALUES (@delivery_id, @sequence, @receiver, @started_at, @outcome, @status, @latency_ms, @error)`),

    participantById: p('SELECT * FROM participants WHERE id = ?'),
    upsertParticipant: p(`INSERT INTO participants (id, name, receiver, created_at, updated_at) VALUES (@id, @name, @receiver, @now, @now)
      ON CONFLICT (id) DO UPDATE SET name = excluded.name, receiver = excluded.receiver, updated_at = excluded.updated_at,
        created_at = CASE WHEN participants.deleted_at IS NULL THEN participants.created_at ELSE excluded.created_at END, deleted_at = NULL
      RETURNING *`),
    listParticipants: p('SELECT * FROM participants WHERE deleted_at IS NULL ORDER BY id'),
    deleteParticipant: p('UPDATE participants SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL'),
    revokeKeysOf: p('UPDATE api_keys SET revoked_at = ? WHERE participant = ? AND revoked_at IS NULL'),
    deadLetterPullOf: p(`UPDATE deliveries SET state = 'dead', dead_at = @now, last_error = @error, lease_until = NULL, lease_token = NULL
      WHERE receiver = @receiver AND mode = 'pull' AND state IN ('pending', 'delivering') RETURNING *`),
    insertKey: p('INSERT INTO api_keys (id, participant, role, hash, created_at, revoked_at) VALUES (@id, @participant, @role, @hash, @created_at, @revoked_at)'),
    keyByHash: p('SELECT * FROM api_keys WHERE hash = ?'),
    keysOf: p('SELECT * FROM api_keys WHERE participant = ? ORDER BY created_at, id'),
    revokeKey: p('UPDATE api_keys SET revoked_at = @now WHERE id = @id AND participant IS @participant AND revoked_at IS NULL'),
    countAdminKeys: p("SELECT count(*) AS n FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL"),

    latestRoutes: p('SELECT version, rules FROM routes ORDER BY version DESC LIMIT 1'),
    insertRoutes: p('INSERT INTO routes (rules, created_at) VALUES (?, ?) RETURNING version'),

    // Skip-scan over the partial index: one probe per receiver, however deep its backlog.
    pushReceivers: p(`WITH RECURSIVE r(receiver) AS (
        SELECT (SELECT min(receiver) FROM deliveries WHERE mode = 'push' AND state = 'pending')
        UNION ALL
        SELECT (SELECT min(receiver) FROM deliveries WHERE mode = 'push' AND state = 'pending' AND receiver > r.receiver) FROM r WHERE r.receiver IS NOT NULL
      )
      SELECT receiver FROM r WHERE receiver IS NOT NULL
        AND EXISTS (SELECT 1 FROM deliveries d WHERE d.mode = 'push' AND d.state = 'pending' AND d.receiver = r.receiver AND d.next_attempt_at <= ?)
      LIMIT ?`),
    claimPush: p(`UPDATE deliveries SET state = 'delivering', lease_until = @lease_until, lease_token = @token || '.' || id,
        attempts = attempts + 1, last_attempt_at = @now
      WHERE id IN (SELECT id FROM deliveries WHERE mode = 'push' AND state = 'pending' AND receiver = @receiver AND next_attempt_at <= @now
                   ORDER BY next_attempt_at, id LIMIT @limit)
      RETURNING *`),
    // ordering: subject. Only a subject's head (no earlier open delivery) is a candidate, so one
    // claim takes at most one delivery per subject.
    claimPushOrdered: p(`UPDATE deliveries SET state = 'delivering', lease_until = @lease_until, lease_token = @token || '.' || id,
        attempts = attempts + 1, last_attempt_at = @now
      WHERE id IN (SELECT d.id FROM deliveries d WHERE d.mode = 'push' AND d.state = 'pending' AND d.receiver = @receiver AND d.next_attempt_at <= @now
                     AND ${NO_EARLIER_OPEN}
                   ORDER BY d.next_attempt_at, d.id LIMIT @limit)
      RETURNING *`),
    markDelivered: p(`UPDATE deliveries SET state = 'delivered', delivered_at = @at, last_status = @status, last_error = @error, lease_until = NULL, lease_token = NULL
      WHERE id = @id AND lease_token = @token AND state = 'delivering'`),
    markRetry: p(`UPDATE deliveries SET state = 'pending', next_attempt_at = @next, last_status = @status, last_error = @error, lease_until = NULL, lease_token = NULL
      WHERE id = @id AND lease_token = @token AND state = 'delivering'`),
    markDead: p(`UPDATE deliveries SET state = 'dead', dead_at = @at, last_status = @status, last_error = @error, lease_until = NULL, lease_token = NULL
      WHERE id = @id AND lease_token = @token AND state = 'delivering'`),
    unclaimPush: p(`UPDATE deliveries SET state = 'pending', attempts = attempts - 1, lease_until = NULL, lease_token = NULL
      WHERE id = @id AND lease_token = @token AND state = 'delivering' AND mode = 'push'`),
    nextPushDue: p("SELECT min(next_attempt_at) AS t FROM deliveries WHERE mode = 'push' AND state = 'pending'"),

    pullCandidates: p(`SELECT id, receives FROM deliveries WHERE mode = 'pull' AND state = 'pending' AND receiver = @receiver AND next_attempt_at <= @now
      ORDER BY next_attempt_at, id LIMIT @limit`),
    pullCandidatesOrdered: p(`SELECT d.id, d.receives FROM deliveries d WHERE d.mode = 'pull' AND d.state = 'pending' AND d.receiver = @receiver AND d.next_attempt_at <= @now
        AND ${NO_EARLIER_OPEN}
      ORDER BY d.next_attempt_at, d.id LIMIT @limit`),
    leaseOne: p(`UPDATE deliveries SET state = 'delivering', lease_until = @lease_until, lease_token = @token,
        attempts = attempts + 1, receives = receives + 1, last_attempt_at = @now
      WHERE id = @id AND state = 'pending' AND mode = 'pull' RETURNING *`),
    pullToDeadPending: p(`UPDATE deliveries SET state = 'dead', dead_at = @now, last_error = @error, lease_until = NULL, lease_token = NULL
      WHERE id = @id AND state = 'pending' RETURNING *`),
    ackPull: p(`UPDATE deliveries SET state = 'delivered', delivered_at = @now, last_error = NULL, lease_until = NULL, lease_token = NULL
      WHERE lease_token = @token AND receiver = @receiver AND state = 'delivering' AND mode = 'pull' AND lease_until > @now RETURNING *`),
    nackPull: p(`UPDATE deliveries SET state = 'pending', next_attempt_at = @next, last_error = 'nacked by receiver', lease_until = NULL, lease_token = NULL
      WHERE lease_token = @token AND receiver = @receiver AND state = 'delivering' AND mode = 'pull' AND lease_until > @now RETURNING *`),
    // Ordered by lease_until so that SQLite reads the small deliveries_leased index: ORDER BY id
    // made it scan the whole table (every delivery ever made) at every maintenance pass.
    expiredPullReceivers: p("SELECT DISTINCT receiver FROM deliveries WHERE state = 'delivering' AND mode = 'pull' AND lease_until <= ?"),
    expiredPull: p("SELECT * FROM deliveries WHERE state = 'delivering' AND mode = 'pull' AND lease_until <= ? ORDER BY lease_until, id LIMIT 10000"),
    pullToDead: p(`UPDATE deliveries SET state = 'dead', dead_at = @now, last_error = @error, lease_until = NULL, lease_token = NULL
      WHERE id = @id AND state = 'delivering' RETURNING *`),
    pullToPending: p(`UPDATE deliveries SET state = 'pending', next_attempt_at = @now, last_error = @error, lease_until = NULL, lease_token = NULL
      WHERE id = @id AND state = 'delivering'`),

    rescuePush: p(`UPDATE deliveries SET state = 'pending', next_attempt_at = @now, last_error = 'lease expired', lease_until = NULL, lease_token = NULL
      WHERE state = 'delivering' AND mode = 'push' AND lease_until <= @now RETURNING *`),
    releasePushLeases: p(`UPDATE deliveries SET state = 'pending', next_attempt_at = ?, last_error = 'lease released at start', lease_until = NULL, lease_token = NULL
      WHERE state = 'delivering' AND mode = 'push' RETURNING *`),
    setPendingMode: p("UPDATE deliveries SET mode = @mode WHERE receiver = @receiver AND state = 'pending' AND mode <> @mode"),
    countByState: p('SELECT receiver, state, count(*) AS count FROM deliveries GROUP BY receiver, state ORDER BY receiver, state'),
  };
}
