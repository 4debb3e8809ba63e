import type { AttemptRecord, DeadLetter, DeliveryRecord, KeyRecord, MessageRecord, MeterEntry, ParticipantRecord } from '../types.ts';

/* Row shapes of the PostgreSQL tables (int8 read as numbers, see pool.ts) and their records. */

export interface MessageRow {
  sequence: number; source: string; id: string; type: string; subject: string; time: string | null;
  attributes: string; content_type: string; size: number; sha256: string; fingerprint: string;
  received_at: number; body_kind: 'inline' | 'file'; body_key: string | null;
}

/** The columns of a message. Named (prepared) statements list their columns rather than `*`: a
 * later migration adding a column must not change the row type of a statement already prepared. */
export const MESSAGE_COLUMNS = ['sequence', 'source', 'id', 'type', 'subject', 'time', 'attributes', 'content_type', 'size', 'sha256',
  'fingerprint', 'received_at', 'body_kind', 'body_key'] as const;

export function messageColumns(alias?: string): string {
  return MESSAGE_COLUMNS.map((c) => (alias ? `${alias}.${c}` : c)).join(', ');
}

export function toMessage(r: MessageRow): MessageRecord {
  return {
    sequence: r.sequence, source: r.source, id: r.id, type: r.type, subject: r.subject, time: r.time,
    attributes: JSON.parse(r.attributes), contentType: r.content_type, size: r.size, sha256: r.sha256,
    fingerprint: r.fingerprint, receivedAt: r.received_at,
    body: r.body_kind === 'file' ? { kind: 'file', key: r.body_key! } : { kind: 'inline' },
  };
}

export interface DeliveryRow {
  id: number; sequence: number; receiver: string; mode: 'push' | 'pull'; subject: string;
  state: DeliveryRecord['state']; attempts: number; receives: number; created_at: number; first_created_at: number;
  next_attempt_at: number; lease_until: number | null; lease_token: string | null;
  last_attempt_at: number | null; last_status: number | null; last_error: string | null;
  delivered_at: number | null; dead_at: number | null; resend_of: number | null; webhook_id: string;
}

export function toDelivery(r: DeliveryRow): DeliveryRecord {
  return {
    id: r.id, sequence: r.sequence, receiver: r.receiver, mode: r.mode, subject: r.subject, state: r.state,
    attempts: r.attempts, receives: r.receives, createdAt: r.created_at, firstCreatedAt: r.first_created_at, nextAttemptAt: r.next_attempt_at,
    leaseUntil: r.lease_until, leaseToken: r.lease_token, lastAttemptAt: r.last_attempt_at,
    lastStatus: r.last_status, lastError: r.last_error, deliveredAt: r.delivered_at, deadAt: r.dead_at,
    resendOf: r.resend_of, webhookId: r.webhook_id,
  };
}

/** The columns of a delivery, for RETURNING and SELECT lists over an alias. */
export const DELIVERY_COLUMNS = ['id', 'sequence', 'receiver', 'mode', 'subject', 'state', 'attempts', 'receives', 'created_at', 'first_created_at',
  'next_attempt_at', 'lease_until', 'lease_token', 'last_attempt_at', 'last_status', 'last_error', 'delivered_at', 'dead_at', 'resend_of', 'webhook_id'] as const;

export function deliveryColumns(alias?: string): string {
  return DELIVERY_COLUMNS.map((c) => (alias ? `${alias}.${c}` : c)).join(', ');
}

export interface AttemptRow {
  delivery_id: number; receiver: string; started_at: number; outcome: AttemptRecord['outcome'];
  status: number | null; latency_ms: number | null; error: string | null;
}

export function toAttempt(r: AttemptRow): AttemptRecord {
  return { deliveryId: r.delivery_id, receiver: r.receiver, startedAt: r.started_at, outcome: r.outcome, status: r.status, latencyMs: r.latency_ms, error: r.error };
}

export interface ParticipantRow { id: string; name: string; receiver: string | null; created_at: number; updated_at: number; deleted_at: number | null }

export function toParticipant(r: ParticipantRow): ParticipantRecord {
  return { id: r.id, name: r.name, receiver: r.receiver ? JSON.parse(r.receiver) : null, createdAt: r.created_at, updatedAt: r.updated_at, deletedAt: r.deleted_at };
}

export interface KeyRow { id: string; participant: string | null; role: 'participant' | 'admin'; hash: string; created_at: number; revoked_at: number | null }

export function toKey(r: KeyRow): KeyRecord {
  return { id: r.id, participant: r.participant, role: r.role, hash: r.hash, createdAt: r.created_at, revokedAt: r.revoked_at };
}

export interface MeterRow { meter: string; role: string; participant: string; valid_from: number; valid_to: number | null }

export function toMeter(r: MeterRow): MeterEntry {
  return { meter: r.meter, role: r.role, participant: r.participant, validFrom: r.valid_from === 0 ? null : r.valid_from, validTo: r.valid_to };
}

export interface DeadLetterRow extends DeliveryRow { type: string; source: string }

export function toDeadLetter(r: DeadLetterRow): DeadLetter {
  return { ...toDelivery(r), type: r.type, source: r.source };
}
