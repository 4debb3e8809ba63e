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
  createdAt: number;
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

export type AttemptOutcomeKind = 'delivered' | 'failed' | 'dead' | 'leased' | 'acked' | 'nacked' | 'expired' | 'lease-lost';

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

export type { RouteRule };
