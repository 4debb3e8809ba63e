import type pg from 'pg';
import type { DeliveryMode, DeliveryRecord, ReplayChunk } from '../types.ts';
import { Params, messageWhere } from './message-search.ts';
import { toDelivery, type DeliveryRow } from './rows.ts';

/* Resends and replays of the PostgreSQL store: new deliveries made from original ones, set-based. */

// A resend is its original again: same message, receiver and webhook id; a fresh budget; marked by resend_of.
const RESEND_COLUMNS = 'INSERT INTO deliveries (sequence, receiver, mode, subject, state, created_at, first_created_at, next_attempt_at, webhook_id, resend_of)';

/** One resend per item whose original delivery exists, in item order (ids increase with it). */
export async function resend(client: pg.ClientBase, items: Array<{ sequence: number; receiver: string; mode: DeliveryMode }>, now: number): Promise<DeliveryRecord[]> {
  if (items.length === 0) return [];
  const { rows } = await client.query<DeliveryRow>(`WITH r AS (
      ${RESEND_COLUMNS}
      SELECT d.sequence, d.receiver, i.mode, d.subject, 'pending', $4::bigint, $4::bigint, $4::bigint, d.webhook_id, d.id
      FROM unnest($1::bigint[], $2::text[], $3::text[]) WITH ORDINALITY AS i(sequence, receiver, mode, ord)
      JOIN deliveries d ON d.sequence = i.sequence AND d.receiver = i.receiver AND d.resend_of IS NULL
      ORDER BY i.ord
      RETURNING *
    )
    SELECT * FROM r ORDER BY id`, [items.map((i) => i.sequence), items.map((i) => i.receiver), items.map((i) => i.mode), now]);
  return rows.map(toDelivery);
}

/** The first `limit` messages after `afterSequence` that match the chunk's filter (and were originally routed to filter.receiver). */
export async function replaySequences(db: pg.Pool | pg.ClientBase, chunk: ReplayChunk): Promise<number[]> {
  const p = new Params();
  const where = messageWhere({ ...chunk.filter, after: chunk.afterSequence, order: 'asc', viewer: null, originalReceiver: chunk.filter.receiver }, p);
  const { rows } = await db.query<{ sequence: number }>(`SELECT m.sequence FROM messages m WHERE ${where} ORDER BY m.sequence LIMIT ${p.add(Math.floor(chunk.limit))}`, p.values);
  return rows.map((r) => r.sequence);
}

/** Resends of the given messages' original deliveries to the targets (in the target's mode), and to `receiver` only when given. */
export async function replayResends(client: pg.ClientBase, sequences: number[], targets: ReplayChunk['targets'], receiver: string | null, now: number): Promise<Array<{ sequence: number; receiver: string; mode: DeliveryMode }>> {
  const { rows } = await client.query<{ sequence: number; receiver: string; mode: DeliveryMode }>(`WITH r AS (
      ${RESEND_COLUMNS}
      SELECT d.sequence, d.receiver, t.mode, d.subject, 'pending', $5::bigint, $5::bigint, $5::bigint, d.webhook_id, d.id
      FROM deliveries d JOIN unnest($2::text[], $3::text[]) AS t(receiver, mode) ON t.receiver = d.receiver
      WHERE d.sequence = ANY($1::bigint[]) AND d.resend_of IS NULL AND ($4::text IS NULL OR d.receiver = $4::text)
      ORDER BY d.sequence, d.id
      RETURNING sequence, receiver, mode
    )
    SELECT * FROM r`, [sequences, targets.map((t) => t.receiver), targets.map((t) => t.mode), receiver, now]);
  return rows;
}
