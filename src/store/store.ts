import type {
  AckResult, AttemptRecord, AttemptResult, ClaimedDelivery, DeadFilter, DeadLetter, DeliveryMode, DeliveryRecord,
  IngestResult, KeyRecord, MessageRecord, MessageSearch, MeterEntry, NewMessage, ParticipantRecord,
  RedriveSelector, RedrivenDelivery, ReplayChunk, ReplayChunkResult, RouteRule, StoredReceiver,
} from './types.ts';

/**
 * The hub's state behind one interface. Every adapter (SQLite now, PostgreSQL next) passes the
 * conformance suite in test/store/conformance.ts. All times are epoch milliseconds.
 *
 * Writes resolve only once durable (committed). A write that the storage cannot take (disk full,
 * I/O error, locked, closed) rejects with StorageUnavailableError and nothing of it is kept;
 * any other rejection is a bad operation (e.g. a duplicate key) that fails alone, without
 * affecting other writes issued at the same time. Reads see committed state only.
 * Limits (`limit`, `max`) below 1 select nothing.
 */
export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Commits the writes already issued, then closes; later writes reject with StorageUnavailableError. Idempotent. */
  close(): Promise<void>;
  /**
   * Why every write would be refused now without being tried (the store's writer has stopped:
   * ThreadedSqliteStore's worker thread), or null. /readyz reports it. Optional: a store whose
   * writes can only fail by trying does not have it.
   */
  writeRefusal?(): string | null;

  // ingest
  /**
   * Commits messages and their deliveries atomically (all of the call or none of it);
   * idempotent on (source, id). One result per message, in order; each message is judged
   * against everything committed before it, earlier messages of the same call included: the
   * same fingerprint is a `duplicate` (the first receipt and its original receivers; the new
   * receivedAt and receivers are ignored, nothing new is delivered), another fingerprint a
   * `conflict`. Accepted messages get sequences that increase in commit order (in array order
   * within a call) and one pending delivery per distinct receiver, due at receivedAt, with
   * webhookId = webhookIdFor(sequence, receiver) (src/store/webhook-id.ts) and
   * createdAt = firstCreatedAt = receivedAt.
   */
  commitMessages(messages: NewMessage[]): Promise<IngestResult[]>;
  getMessage(sequence: number): Promise<MessageRecord | null>;
  /** The message accepted under (source, id), or null: how ingest answers a retry that it can no longer route. */
  findMessage(source: string, id: string): Promise<MessageRecord | null>;
  /** The exact bytes of an inline body (empty, not null, for an empty one); null for a file body or an unknown message. */
  readInlineBody(sequence: number): Promise<Buffer | null>;
  /** Every delivery of the message, resends included (resendOf set), in creation order. */
  getDeliveries(sequence: number): Promise<DeliveryRecord[]>;
  /** Every attempt of the message's deliveries, in the order they were recorded. */
  getAttempts(sequence: number): Promise<AttemptRecord[]>;
  getDelivery(id: number): Promise<DeliveryRecord | null>;

  // participants and keys
  /**
   * Creates or replaces a participant. `created` is true for a new one and for one restored
   * after a delete (its createdAt is then `now`); otherwise createdAt is kept. Keys revoked by
   * the delete stay revoked.
   */
  upsertParticipant(id: string, name: string, receiver: StoredReceiver | null, now: number): Promise<{ created: boolean; record: ParticipantRecord }>;
  /** A deleted participant is null unless `includeDeleted` (default false). */
  getParticipant(id: string, includeDeleted?: boolean): Promise<ParticipantRecord | null>;
  /** The participants not deleted, by id. */
  listParticipants(): Promise<ParticipantRecord[]>;
  /**
   * Soft delete: the participant stops being routable and its keys are revoked (revokedAt =
   * now); its record and settings stay readable with includeDeleted; push deliveries already
   * accepted go on with its last settings. Its pull deliveries not yet acked go dead (a 'dead'
   * attempt row each): nobody can poll them any more, and the dead-letter queue keeps them to
   * redrive once the participant is back. False when unknown or already deleted.
   */
  deleteParticipant(id: string, now: number): Promise<boolean>;
  /** Rejects (not StorageUnavailableError) a key whose id or hash is already stored. */
  insertKey(key: KeyRecord): Promise<void>;
  /** Revoked keys are found too, with revokedAt set: the caller decides. */
  findKeyByHash(hash: string): Promise<KeyRecord | null>;
  /** A participant's keys, revoked ones included, by createdAt then id. */
  listKeys(participant: string): Promise<KeyRecord[]>;
  /**
   * Revokes the key if it is an active key of `participant` (null: an admin key). False when
   * there is no such key, it belongs to someone else, or it is already revoked (the first
   * revocation time stays).
   */
  revokeKey(participant: string | null, keyId: string, now: number): Promise<boolean>;
  /** Admin keys not revoked. */
  countAdminKeys(): Promise<number>;

  // routing
  /** The latest rule list; `{ rules: [], version: 0 }` before any was set. */
  getRoutes(): Promise<{ rules: RouteRule[]; version: number }>;
  /** Stores a new version of the rule list; returns its version, greater than every earlier one. */
  setRoutes(rules: RouteRule[], now: number): Promise<number>;
  /**
   * Inserts or replaces entries keyed by (meter, role, validFrom); returns entries.length.
   * validFrom null means "since ever" and is the same entry as validFrom 0 (it reads back null).
   */
  upsertMeters(entries: MeterEntry[]): Promise<number>;
  /**
   * Applies an import: each chunk upserted like upsertMeters, in order; returns the entries
   * applied, calling `onChunk` with the running total after each chunk. PostgreSQL: one
   * transaction on a connection of its own, so all or nothing (readers see the old registry
   * until it commits). SQLite: one short transaction per chunk through the group commit, so
   * other writes (ingest) go between chunks; a storage fault midway leaves the earlier chunks
   * in (the caller validates everything first, so only a fault or a crash can stop it midway).
   */
  importMeters(chunks: AsyncIterable<MeterEntry[]>, onChunk?: (applied: number) => void): Promise<number>;
  /**
   * Registry entries for a meter valid at `at` (validFrom <= at < validTo, null bounds open),
   * or all of them when `at` is null; by role, then validFrom.
   */
  getMeterEntries(meter: string, at: number | null): Promise<MeterEntry[]>;

  // push delivery
  /** Distinct receivers that have pending push deliveries due at `now` (nextAttemptAt <= now); at most `limit`, in no promised order. */
  receiversWithDuePush(now: number, limit: number): Promise<string[]>;
  /**
   * Leases up to `limit` due pending push deliveries of one receiver, oldest due first
   * (nextAttemptAt, then creation), and counts the attempt: state delivering, leaseUntil,
   * attempts + 1, lastAttemptAt = now. `token` names the claimer; every claim gets a lease
   * token of its own (starting with `token`), so a later claim of the same delivery never
   * shares it. Returned in sequence order.
   *
   * `ordered` (the receiver's `ordering: subject`): a delivery is claimable only when no
   * delivery of the same receiver and subject that comes before it in (sequence, id) order is
   * pending or delivering, whatever its mode or due time; delivered and dead ones do not hold
   * later ones back. So at most one delivery per subject is in flight, and a subject's
   * deliveries are attempted in sequence order; other subjects are not held up.
   *
   * The one exception to "resolves once durable": a single-process store (SQLite) may commit a
   * claim without an fsync, since at start it voids every push lease anyway
   * (releaseAllPushLeases): a claim lost in a power cut leaves its delivery pending, sent again.
   */
  claimPush(receiver: string, limit: number, now: number, leaseUntil: number, token: string, ordered?: boolean): Promise<ClaimedDelivery[]>;
  /**
   * Records attempts and their results, one per item, reported true when recorded. A result
   * counts only while the delivery is still leased under that claim's token (even past
   * leaseUntil, until the lease is rescued or released); otherwise the lease was lost and the
   * result is ignored: nothing is written (that claim's attempt row is the 'lease-lost' one
   * written when the lease was taken back) and it is reported false. Delivered/dead times are
   * `at + latencyMs`; a retry goes back to pending, due at its nextAttemptAt.
   */
  recordPushResults(results: Array<{ delivery: ClaimedDelivery; result: AttemptResult }>): Promise<boolean[]>;
  /**
   * Gives back claims that were never attempted (claimed ahead of a free slot, then not sent:
   * the hub is stopping, or the receiver's breaker opened). Each delivery still leased under
   * that claim's token goes back to pending, due when it was before the claim, with the claim's
   * attempt uncounted (attempts − 1; no attempt row; lastAttemptAt keeps the claim's time).
   * Others (rescued, released, recorded, claimed again) are left alone. Returns how many.
   */
  releasePushClaims(claims: ClaimedDelivery[]): Promise<number>;
  /** Earliest next-attempt time of any pending push delivery, or null. */
  nextPushDueAt(): Promise<number | null>;

  // pull inbox
  /**
   * Leases up to `max` due pending pull deliveries of the receiver, oldest due first,
   * returned in sequence order: state delivering, leaseUntil, receives and attempts + 1, a
   * 'leased' attempt row, and a random lease token per delivery (128 bits, not derivable from
   * another). A delivery already leased `maxReceives` times (then nacked) is not leased again:
   * it goes dead here (a 'dead' attempt row) and is not returned; `onDead` is called for each
   * such delivery once the change is committed (so the caller can raise the dead-letter alert).
   * `ordered` (the receiver's `ordering: subject`) holds a subject's later deliveries back
   * exactly as for claimPush; one that goes dead here lets the next of its subject be leased.
   */
  leasePull(receiver: string, max: number, now: number, leaseUntil: number, maxReceives: number, onDead?: (d: DeliveryRecord) => void, ordered?: boolean): Promise<ClaimedDelivery[]>;
  /**
   * Marks leased deliveries delivered. Per lease, in order: 'acked', or 'expired' when the lease
   * is unknown, another receiver's, already settled, or has expired (leaseUntil <= now).
   */
  ackPull(receiver: string, leases: string[], now: number): Promise<AckResult[]>;
  /** Puts leased deliveries back to pending, due at nextAttemptAt; 'acked' means the nack was taken, 'expired' as for ackPull. */
  nackPull(receiver: string, leases: string[], now: number, nextAttemptAt: number): Promise<AckResult[]>;

  // maintenance
  /**
   * Push leases that expired (leaseUntil <= now) go back to pending, due now, with a
   * 'lease-lost' attempt row (the process holding them died); the attempt still counts.
   * Returns how many.
   */
  rescueExpiredPush(now: number): Promise<number>;
  /**
   * Pull leases that expired (leaseUntil <= now): back to pending (an 'expired' attempt row),
   * or dead once receives >= maxReceivesFor(receiver) (a 'dead' attempt row; returned in
   * `dead`). May handle a bounded batch per call: call again while it finds any.
   */
  expirePullLeases(now: number, maxReceivesFor: (receiver: string) => number): Promise<{ released: number; dead: DeliveryRecord[] }>;
  /** Releases every push lease, expired or not, with a 'lease-lost' attempt row (at start of a single-process store). Returns how many. */
  releaseAllPushLeases(now: number): Promise<number>;
  /**
   * Switches a receiver's pending deliveries to its new mode; returns how many pending ones
   * (those already in that mode are not counted). Deliveries in flight keep their mode.
   */
  setPendingMode(receiver: string, mode: 'push' | 'pull'): Promise<number>;
  /** Non-zero counts per receiver and state, in no promised order. */
  countDeliveriesByState(): Promise<Array<{ receiver: string; state: string; count: number }>>;

  // dead-letter queue
  /**
   * Dead deliveries matching `filter` (deadAt in [from, to)), oldest dead first (deadAt, then
   * id), after the cursor (deadAt, id) of the previous page when given; at most `limit`.
   */
  listDead(filter: DeadFilter, after: { deadAt: number; id: number } | null, limit: number): Promise<DeadLetter[]>;
  /**
   * Puts dead deliveries back to pending with a fresh budget, atomically and set-based: at most
   * `limit` of those selected that are dead (a filter takes them oldest dead first; ids that are
   * unknown or not dead are skipped). Each gets attempts = receives = 0, createdAt =
   * nextAttemptAt = now, deadAt null (lastError, lastStatus and firstCreatedAt kept), and a
   * 'redriven' attempt row at `now`. Returns the redriven deliveries (by id); redriving the same
   * set again returns none, since they are no longer dead.
   */
  redriveDead(selector: RedriveSelector, now: number, limit: number): Promise<RedrivenDelivery[]>;

  // resend and replay
  /**
   * One new pending delivery per item whose original delivery (resendOf null) of (sequence,
   * receiver) exists: due now, createdAt = firstCreatedAt = now, in `mode`, resendOf = the
   * original's id, webhookId = the original's (a resend is the same delivery again, marked as a
   * resend). Items without an original are skipped. Returned by id (item order).
   */
  resend(items: Array<{ sequence: number; receiver: string; mode: DeliveryMode }>, now: number): Promise<DeliveryRecord[]>;
  /**
   * One chunk of a replay, atomically: the first `limit` messages (by sequence) after
   * `afterSequence` that match the filter (and, with filter.receiver, were originally routed to
   * it) get a resend (as `resend` makes) for each of their original deliveries whose receiver is
   * among `targets` (and is filter.receiver, when given). Call again from lastSequence until
   * matched < limit.
   */
  replayChunk(chunk: ReplayChunk): Promise<ReplayChunkResult>;

  // archive search
  /**
   * One page of archived messages matching the search, by sequence (asc or desc), strictly
   * after the cursor sequence. A viewer sees only the messages it sent or that have a delivery
   * to it; `state` matches only deliveries the viewer may see (all of a message it sent, else
   * its own). Sequences commit in increasing order, so an asc cursor misses nothing committed
   * later (an adapter where sequences can commit out of order must hold the page back to its
   * visibility horizon).
   */
  searchMessages(search: MessageSearch): Promise<MessageRecord[]>;
  /** Every delivery of the given messages, resends included, by sequence then creation. */
  getDeliveriesOf(sequences: number[]): Promise<DeliveryRecord[]>;
}
