import type {
  AckResult, AttemptRecord, AttemptResult, ClaimedDelivery, DeliveryRecord, IngestResult, KeyRecord,
  MessageRecord, MeterEntry, NewMessage, ParticipantRecord, RouteRule, StoredReceiver,
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

  // ingest
  /**
   * Commits messages and their deliveries atomically (all of the call or none of it);
   * idempotent on (source, id). One result per message, in order; each message is judged
   * against everything committed before it, earlier messages of the same call included: the
   * same fingerprint is a `duplicate` (the first receipt and its original receivers; the new
   * receivedAt and receivers are ignored, nothing new is delivered), another fingerprint a
   * `conflict`. Accepted messages get sequences that increase in commit order (in array order
   * within a call) and one pending delivery per distinct receiver, due at receivedAt, with
   * webhookId = webhookIdFor(sequence, receiver) (src/store/webhook-id.ts).
   */
  commitMessages(messages: NewMessage[]): Promise<IngestResult[]>;
  getMessage(sequence: number): Promise<MessageRecord | null>;
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
   * now); its record and settings stay readable with includeDeleted; deliveries already
   * accepted go on. False when unknown or already deleted.
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
   * shares it. Returned in sequence order. Does not apply `ordering: subject`.
   */
  claimPush(receiver: string, limit: number, now: number, leaseUntil: number, token: string): Promise<ClaimedDelivery[]>;
  /**
   * Records attempts and their results, one per item, reported true when recorded. A result
   * counts only while the delivery is still leased under that claim's token (even past
   * leaseUntil, until the lease is rescued or released); otherwise the lease was lost and the
   * result is ignored: nothing is written (that claim's attempt row is the 'lease-lost' one
   * written when the lease was taken back) and it is reported false. Delivered/dead times are
   * `at + latencyMs`; a retry goes back to pending, due at its nextAttemptAt.
   */
  recordPushResults(results: Array<{ delivery: ClaimedDelivery; result: AttemptResult }>): Promise<boolean[]>;
  /** Earliest next-attempt time of any pending push delivery, or null. */
  nextPushDueAt(): Promise<number | null>;

  // pull inbox
  /**
   * Leases up to `max` due pending pull deliveries of the receiver, oldest due first,
   * returned in sequence order: state delivering, leaseUntil, receives and attempts + 1, a
   * 'leased' attempt row, and a random lease token per delivery (128 bits, not derivable from
   * another). A delivery already leased `maxReceives` times (then nacked) is not leased again:
   * it goes dead here (a 'dead' attempt row) and is not returned.
   */
  leasePull(receiver: string, max: number, now: number, leaseUntil: number, maxReceives: number): Promise<ClaimedDelivery[]>;
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
   * (those already in that mode included). Deliveries in flight keep their mode.
   */
  setPendingMode(receiver: string, mode: 'push' | 'pull'): Promise<number>;
  /** Non-zero counts per receiver and state, in no promised order. */
  countDeliveriesByState(): Promise<Array<{ receiver: string; state: string; count: number }>>;
}
