import type { ReceiverSettings } from '../config/receiver-schema.ts';
import type { RouteRule } from '../config/route-schema.ts';

export type DeliveryState = 'pending' | 'delivering' | 'delivered' | 'dead';
export type DeliveryMode = 'push' | 'pull';

/** CloudEvents context attributes of an accepted message (everything but the data). */
export type EventAttributes = Record<string, string | number | boolean> & {
  specversion: string; id: string; source: string; type: string; subject: string; time?: string;
};

/** Where a message's bytes are: in the database, or a file/object under a key. */
export type BodyRef = { kind: 'inline' } | { kind: 'file'; key: string };

export interface MessageRecord {
  sequence: number;
  source: string;
  id: string;
  type: string;
  subject: string;
  /** The event's `time` as given, or null. */
  time: string | null;
  attributes: EventAttributes;
  contentType: string;
  size: number;
  sha256: string;
  /** Hash of attributes and body: equal fingerprints mean the same content (idempotency). */
  fingerprint: string;
  receivedAt: number;
  body: BodyRef;
}

export interface DeliveryRecord {
  id: number;
  sequence: number;
  receiver: string;
  mode: DeliveryMode;
  subject: string;
  state: DeliveryState;
  attempts: number;
  /** Times a pull delivery was leased. */
  receives: number;
  /** Start of the current retry budget (max age): creation, or the last redrive. */
  createdAt: number;
  /** When the delivery was created; a redrive resets createdAt but never this. */
  firstCreatedAt: number;
  nextAttemptAt: number;
  leaseUntil: number | null;
  leaseToken: string | null;
  lastAttemptAt: number | null;
  lastStatus: number | null;
  lastError: string | null;
  deliveredAt: number | null;
  deadAt: number | null;
  /** The delivery this one resends, or null. */
  resendOf: number | null;
  webhookId: string;
}

export type AttemptOutcomeKind = 'delivered' | 'failed' | 'dead' | 'leased' | 'acked' | 'nacked' | 'expired' | 'lease-lost' | 'redriven';

export interface AttemptRecord {
  deliveryId: number;
  receiver: string;
  startedAt: number;
  outcome: AttemptOutcomeKind;
  status: number | null;
  latencyMs: number | null;
  error: string | null;
}

export interface ParticipantRecord {
  id: string;
  name: string;
  receiver: StoredReceiver | null;
  createdAt: number;
  updatedAt: number;
  deletedAt: number | null;
}

/** Receiver settings as stored: a push receiver's secrets are kept (needed to sign). */
export type StoredReceiver = ReceiverSettings & { secrets?: string[] };

export interface KeyRecord {
  id: string;
  participant: string | null;
  role: 'participant' | 'admin';
  hash: string;
  createdAt: number;
  revokedAt: number | null;
}

export interface MeterEntry {
  meter: string;
  role: string;
  participant: string;
  validFrom: number | null;
  validTo: number | null;
}

/** A message ready to commit: its deliveries are created in the same transaction. */
export interface NewMessage {
  source: string;
  id: string;
  type: string;
  subject: string;
  time: string | null;
  attributes: EventAttributes;
  contentType: string;
  size: number;
  sha256: string;
  fingerprint: string;
  receivedAt: number;
  body: BodyRef;
  /** Present when body.kind is inline. */
  inlineBody?: Buffer;
  receivers: Array<{ receiver: string; mode: DeliveryMode }>;
}

export type IngestResult =
  | { kind: 'accepted'; message: MessageRecord; receivers: string[] }
  | { kind: 'duplicate'; message: MessageRecord; receivers: string[] }
  | { kind: 'conflict'; message: MessageRecord };

export interface ClaimedDelivery extends DeliveryRecord {
  leaseToken: string;
}

/** What the push worker records after one attempt. */
export type AttemptResult =
  | { kind: 'delivered'; status: number; latencyMs: number; at: number }
  | { kind: 'retry'; status: number | null; latencyMs: number; at: number; error: string; nextAttemptAt: number }
  | { kind: 'dead'; status: number | null; latencyMs: number; at: number; error: string };

export interface AckResult { lease: string; result: 'acked' | 'expired' }

/** A dead delivery as the dead-letter queue lists it: the delivery and its message's type and source. */
export interface DeadLetter extends DeliveryRecord { type: string; source: string }

/** Which dead deliveries: of one receiver, and dead in [from, to) (epoch ms); absent bounds are open. */
export interface DeadFilter { receiver?: string; from?: number; to?: number }

/** Dead deliveries to redrive: those matching a filter, or those of the given ids that are dead. */
export type RedriveSelector = { filter: DeadFilter } | { ids: number[] };

/** A delivery put back to pending by a redrive. */
export interface RedrivenDelivery { id: number; sequence: number; receiver: string; mode: DeliveryMode }

/** Archived messages by their attributes, and received in [from, to) (epoch ms); absent fields match all. */
export interface MessageFilter { subject?: string; type?: string; source?: string; from?: number; to?: number }

/** An archive search: one page of messages, by sequence, after a cursor. */
export interface MessageSearch extends MessageFilter {
  /** The participant searching (only what it sent or was routed to), or null for an admin (everything). */
  viewer: string | null;
  /** Only messages with a delivery to this receiver. */
  receiver?: string;
  /** Only messages with a delivery in this state (of the viewer's deliveries, and of `receiver` when given). */
  state?: DeliveryState;
  /** Cursor: the last sequence of the previous page (asc: later ones follow, desc: earlier ones). */
  after?: number;
  order: 'asc' | 'desc';
  limit: number;
}

/** One chunk of a replay: resends of the messages matching `filter` with sequence > afterSequence, at most `limit` messages. */
export interface ReplayChunk {
  filter: MessageFilter & { receiver?: string };
  /** The receivers that may get resends, with the mode each receives in now. */
  targets: Array<{ receiver: string; mode: DeliveryMode }>;
  afterSequence: number;
  limit: number;
  now: number;
}

export interface ReplayChunkResult {
  /** Messages matching the filter in this chunk. */
  matched: number;
  /** The highest sequence matched (the next chunk's afterSequence), or null when none matched. */
  lastSequence: number | null;
  /** Messages that got at least one resend. */
  messages: number;
  /** Resend deliveries created. */
  deliveries: number;
  /** The receivers that got any, with their mode (to wake them). */
  receivers: Array<{ receiver: string; mode: DeliveryMode }>;
}

export type { RouteRule };
