import type Database from 'better-sqlite3';
import type { DeadFilter, DeadLetter, RedriveSelector, RedrivenDelivery } from '../types.ts';
import { toDeadLetter, type DeadLetterRow } from './rows.ts';

/* The dead-letter queue of the SQLite store: listing and redriving, set-based. */

// Open bounds as numbers, so that each statement has one shape (and uses its index).
const MIN_TIME = Number.MIN_SAFE_INTEGER;
const MAX_TIME = Number.MAX_SAFE_INTEGER;

const RESET = `state = 'pending', attempts = 0, receives = 0, created_at = @now, next_attempt_at = @now,
  dead_at = NULL, lease_until = NULL, lease_token = NULL`;

export function prepareDeadLetterStatements(db: Database.Database) {
  const p = (sql: string) => db.prepare(sql);
  const listBy = (receiverClause: string) => p(`SELECT d.*, m.type AS type, m.source AS source
      FROM deliveries d JOIN messages m ON m.sequence = d.sequence
      WHERE d.state = 'dead' ${receiverClause} AND d.dead_at >= @from AND d.dead_at < @to AND (d.dead_at, d.id) > (@after_at, @after_id)
      ORDER BY d.dead_at, d.id LIMIT @limit`);
  const redriveBy = (receiverClause: string) => p(`UPDATE deliveries SET ${RESET}
      WHERE id IN (SELECT id FROM deliveries WHERE state = 'dead' ${receiverClause} AND dead_at >= @from AND dead_at < @to
                   ORDER BY dead_at, id LIMIT @limit)
      RETURNING id, sequence, receiver, mode`);
  return {
    listAll: listBy(''),
    listOfReceiver: listBy('AND d.receiver = @receiver'),
    redriveAll: redriveBy(''),
    redriveOfReceiver: redriveBy('AND receiver = @receiver'),
    redriveIds: p(`UPDATE deliveries SET ${RESET}
      WHERE id IN (SELECT id FROM deliveries WHERE state = 'dead' AND id IN (SELECT value FROM json_each(@ids)) ORDER BY id LIMIT @limit)
      RETURNING id, sequence, receiver, mode`),
    // One attempt row per redriven delivery, from the very set the UPDATE returned.
    redrivenAttempts: p(`INSERT INTO attempts (delivery_id, sequence, receiver, started_at, outcome, status, latency_ms, error)
      SELECT json_extract(value, '$.id'), json_extract(value, '$.sequence'), json_extract(value, '$.receiver'), @now, 'redriven', NULL, NULL,
             'redriven from the dead-letter queue with a fresh retry budget'
      FROM json_each(@rows) ORDER BY json_extract(value, '$.id')`),
  };
}

type Statements = ReturnType<typeof prepareDeadLetterStatements>;

function bounds(filter: DeadFilter) {
  return { from: filter.from ?? MIN_TIME, to: filter.to ?? MAX_TIME };
}

export function listDead(sql: Statements, filter: DeadFilter, after: { deadAt: number; id: number } | null, limit: number): DeadLetter[] {
  if (!(limit >= 1)) return [];
  const params = { ...bounds(filter), after_at: after?.deadAt ?? MIN_TIME, after_id: after?.id ?? 0, limit: Math.floor(limit) };
  const rows = (filter.receiver === undefined ? sql.listAll.all(params) : sql.listOfReceiver.all({ ...params, receiver: filter.receiver })) as DeadLetterRow[];
  return rows.map(toDeadLetter);
}

/** Runs inside one write (one transaction): the UPDATE and the attempt rows commit together. */
export function redriveDead(sql: Statements, selector: RedriveSelector, now: number, limit: number): RedrivenDelivery[] {
  if (!(limit >= 1)) return [];
  const n = Math.floor(limit);
  let rows: RedrivenDelivery[];
  if ('ids' in selector) {
    const ids = selector.ids.filter((id) => Number.isSafeInteger(id));
    if (ids.length === 0) return [];
    rows = sql.redriveIds.all({ now, ids: JSON.stringify(ids), limit: n }) as RedrivenDelivery[];
  } else {
    const params = { now, ...bounds(selector.filter), limit: n };
    rows = (selector.filter.receiver === undefined ? sql.redriveAll.all(params) : sql.redriveOfReceiver.all({ ...params, receiver: selector.filter.receiver })) as RedrivenDelivery[];
  }
  if (rows.length > 0) sql.redrivenAttempts.run({ now, rows: JSON.stringify(rows) });
  return rows.sort((a, b) => a.id - b.id);
}
