import type Database from 'better-sqlite3';
import type { DeliveryMode, DeliveryRecord, ReplayChunk, ReplayChunkResult } from '../types.ts';
import { toDelivery, type DeliveryRow } from './rows.ts';
import { messageWhere, type StatementCache } from './message-search.ts';

/* Resends and replays of the SQLite store: new deliveries made from original ones, set-based. */

// A resend is its original again: same message, receiver and webhook id; a fresh budget; marked by resend_of.
const RESEND_COLUMNS = `INSERT INTO deliveries (sequence, receiver, mode, subject, state, created_at, first_created_at, next_attempt_at, webhook_id, resend_of)`;

export function prepareResendStatements(db: Database.Database) {
  const p = (sql: string) => db.prepare(sql);
  return {
    resend: p(`${RESEND_COLUMNS}
      SELECT d.sequence, d.receiver, json_extract(i.value, '$.mode'), d.subject, 'pending', @now, @now, @now, d.webhook_id, d.id
      FROM json_each(@items) AS i
      JOIN deliveries d ON d.sequence = json_extract(i.value, '$.sequence') AND d.receiver = json_extract(i.value, '$.receiver') AND d.resend_of IS NULL
      ORDER BY i.key
      RETURNING *`),
    replayResends: p(`${RESEND_COLUMNS}
      SELECT d.sequence, d.receiver, json_extract(t.value, '$.mode'), d.subject, 'pending', @now, @now, @now, d.webhook_id, d.id
      FROM deliveries d JOIN json_each(@targets) AS t ON json_extract(t.value, '$.receiver') = d.receiver
      WHERE d.sequence IN (SELECT value FROM json_each(@sequences)) AND d.resend_of IS NULL AND (@receiver IS NULL OR d.receiver = @receiver)
      ORDER BY d.sequence, d.id
      RETURNING sequence, receiver, mode`),
  };
}

type Statements = ReturnType<typeof prepareResendStatements>;

export function resend(sql: Statements, items: Array<{ sequence: number; receiver: string; mode: DeliveryMode }>, now: number): DeliveryRecord[] {
  if (items.length === 0) return [];
  const rows = sql.resend.all({ now, items: JSON.stringify(items.map((i) => ({ sequence: i.sequence, receiver: i.receiver, mode: i.mode }))) }) as DeliveryRow[];
  return rows.map(toDelivery).sort((a, b) => a.id - b.id);
}

/** Runs inside one write: the chunk's messages are chosen and their resends made in one transaction. */
export function replayChunk(sql: Statements, cache: StatementCache, chunk: ReplayChunk): ReplayChunkResult {
  if (!(chunk.limit >= 1)) return { matched: 0, lastSequence: null, messages: 0, deliveries: 0, receivers: [] };
  const { filter } = chunk;
  const where = messageWhere({ ...filter, after: chunk.afterSequence, order: 'asc', viewer: null, originalReceiver: filter.receiver });
  const sequences = (cache.get(`SELECT m.sequence FROM messages m WHERE ${where.sql} ORDER BY m.sequence LIMIT @limit`)
    .all({ ...where.params, limit: Math.floor(chunk.limit) }) as Array<{ sequence: number }>).map((r) => r.sequence);
  if (sequences.length === 0) return { matched: 0, lastSequence: null, messages: 0, deliveries: 0, receivers: [] };
  const made = chunk.targets.length === 0 ? [] : sql.replayResends.all({
    now: chunk.now, sequences: JSON.stringify(sequences), receiver: filter.receiver ?? null,
    targets: JSON.stringify(chunk.targets.map((t) => ({ receiver: t.receiver, mode: t.mode }))),
  }) as Array<{ sequence: number; receiver: string; mode: DeliveryMode }>;
  const receivers = new Map<string, DeliveryMode>();
  for (const r of made) receivers.set(r.receiver, r.mode);
  return {
    matched: sequences.length,
    lastSequence: sequences.at(-1)!,
    messages: new Set(made.map((r) => r.sequence)).size,
    deliveries: made.length,
    receivers: [...receivers].map(([receiver, mode]) => ({ receiver, mode })),
  };
}
