import type {
  AckResult, AttemptRecord, AttemptResult, ClaimedDelivery, DeliveryRecord, IngestResult, KeyRecord,
  MessageRecord, MeterEntry, NewMessage, ParticipantRecord, RouteRule, StoredReceiver,
} from './types.ts';

/**
 * The hub's state behind one interface. Every adapter (SQLite now, PostgreSQL next) passes the
 * conformance suite in test/store/conformance.ts. All times are epoch milliseconds.
 * Writes resolve only once durable.
 */
export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  close(): Promise<void>;

  // ingest
  /** Commits messages and their deliveries atomically; idempotent on (source, id). */
  commitMessages(messages: NewMessage[]): Promise<IngestResult[]>;
  getMessage(sequence: number): Promise<MessageRecord | null>;
  readInlineBody(sequence: number): Promise<Buffer | null>;
  /** Receivers of the message's original (non-resend) deliveries. */
  getDeliveries(sequence: number): Promise<DeliveryRecord[]>;
  getAttempts(sequence: number): Promise<AttemptRecord[]>;
  getDelivery(id: number): Promise<DeliveryRecord | null>;

  // participants and keys
  upsertParticipant(id: string, name: string, receiver: StoredReceiver | null, now: number): Promise<{ created: boolean; record: ParticipantRecord }>;
  getParticipant(id: string, includeDeleted?: boolean): Promise<ParticipantRecord | null>;
  listParticipants(): Promise<ParticipantRecord[]>;
  /** Soft delete: the participant stops being routable and its keys are revoked; deliveries already accepted go on. */
  deleteParticipant(id: string, now: number): Promise<boolean>;
  insertKey(key: KeyRecord): Promise<void>;
  findKeyByHash(hash: string): Promise<KeyRecord | null>;
  listKeys(participant: string): Promise<KeyRecord[]>;
  revokeKey(participant: string | null, keyId: string, now: number): Promise<boolean>;
  countAdminKeys(): Promise<number>;

  // routing
  getRoutes(): Promise<{ rules: RouteRule[]; version: number }>;
  setRoutes(rules: RouteRule[], now: number): Promise<number>;
  upsertMeters(entries: MeterEntry[]): Promise<number>;
  /** Registry entries for a meter valid at `at` (all of them when `at` is null). */
  getMeterEntries(meter: string, at: number | null): Promise<MeterEntry[]>;

  // push delivery
  /** Receivers that have push deliveries due at `now`. */
  receiversWithDuePush(now: number, limit: number): Promise<string[]>;
  /** Leases up to `limit` due push deliveries of one receiver (counts the attempt). */
  claimPush(receiver: string, limit: number, now: number, leaseUntil: number, token: string): Promise<ClaimedDelivery[]>;
  /** Records attempts and their results; a result whose lease was lost is ignored and reported false. */
  recordPushResults(results: Array<{ delivery: ClaimedDelivery; result: AttemptResult }>): Promise<boolean[]>;
  /** Earliest next-attempt time of any pending push delivery, or null. */
  nextPushDueAt(): Promise<number | null>;

  // pull inbox
  leasePull(receiver: string, max: number, now: number, leaseUntil: number, maxReceives: number): Promise<ClaimedDelivery[]>;
  ackPull(receiver: string, leases: string[], now: number): Promise<AckResult[]>;
  nackPull(receiver: string, leases: string[], now: number, nextAttemptAt: number): Promise<AckResult[]>;

  // maintenance
  /** Push leases that expired go back to pending (the process holding them died). Returns how many. */
  rescueExpiredPush(now: number): Promise<number>;
  /** Pull leases that expired: back to pending, or dead once the receive limit is reached. */
  expirePullLeases(now: number, maxReceivesFor: (receiver: string) => number): Promise<{ released: number; dead: DeliveryRecord[] }>;
  /** Releases every push lease (at start of a single-process store). */
  releaseAllPushLeases(now: number): Promise<number>;
  /** Switches a receiver's pending deliveries to its new mode. */
  setPendingMode(receiver: string, mode: 'push' | 'pull'): Promise<number>;
  countDeliveriesByState(): Promise<Array<{ receiver: string; state: string; count: number }>>;
}
