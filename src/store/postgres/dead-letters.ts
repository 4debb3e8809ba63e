import type pg from 'pg';
import type { DeadFilter, DeadLetter, RedriveSelector, RedrivenDelivery } from '../types.ts';
import { Params } from './message-search.ts';
import { deliveryColumns, toDeadLetter, type DeadLetterRow } from './rows.ts';

/* The dead-letter queue of the PostgreSQL store: listing and redriving, set-based. */

const RESET = `state = 'pending', attempts = 0, receives = 0, created_at = $1, next_attempt_at = $1,
  dead_at = NULL, lease_until = NULL, lease_token = NULL`;

/** The filter's clauses over deliveries `alias`, its parameters added to `p`. */
function deadWhere(alias: string, filter: DeadFilter, p: Params): string {
  const clauses = [`${alias}.state = 'dead'`];
  if (filter.receiver !== undefined) clauses.push(`${alias}.receiver = ${p.add(filter.receiver)}::text`);
  if (filter.from !== undefined) clauses.push(`${alias}.dead_at >= ${p.add(filter.from)}::bigint`);
  if (filter.to !== undefined) clauses.push(`${alias}.dead_at < ${p.add(filter.to)}::bigint`);
  return clauses.join(' AND ');
}

export async function listDead(db: pg.Pool | pg.ClientBase, filter: DeadFilter, after: { deadAt: number; id: number } | null, limit: number): Promise<DeadLetter[]> {
  const p = new Params();
  let where = deadWhere('d', filter, p);
  if (after) where += ` AND (d.dead_at, d.id) > (${p.add(after.deadAt)}::bigint, ${p.add(after.id)}::bigint)`;
  const { rows } = await db.query<DeadLetterRow>(`SELECT ${deliveryColumns('d')}, m.type, m.source
    FROM deliveries d JOIN messages m ON m.sequence = d.sequence
    WHERE ${where} ORDER BY d.dead_at, d.id LIMIT ${p.add(limit)}`, p.values);
  return rows.map(toDeadLetter);
}

/**
 * Back to pending with a fresh budget, and a 'redriven' attempt row each, in one statement: at
 * most `limit` of the selected dead deliveries (a filter takes them oldest dead first). Rows
 * another transaction holds (another process redriving them) are skipped. Returned by id.
 */
export async function redriveDead(client: pg.ClientBase, selector: RedriveSelector, now: number, limit: number): Promise<RedrivenDelivery[]> {
  const p = new Params();
  p.add(now);
  let pick: string;
  if ('ids' in selector) {
    const ids = selector.ids.filter((id) => Number.isSafeInteger(id));
    if (ids.length === 0) return [];
    pick = `SELECT c.id FROM deliveries c WHERE c.state = 'dead' AND c.id = ANY(${p.add(ids)}::bigint[]) ORDER BY c.id`;
  } else {
    pick = `SELECT c.id FROM deliveries c WHERE ${deadWhere('c', selector.filter, p)} ORDER BY c.dead_at, c.id`;
  }
  const { rows } = await client.query<RedrivenDelivery>(`WITH picked AS MATERIALIZED (
      ${pick} LIMIT ${p.add(limit)} FOR UPDATE OF c SKIP LOCKED
    ), u AS (
      UPDATE deliveries d SET ${RESET}
      FROM picked WHERE d.id = picked.id AND d.state = 'dead'
      RETURNING d.id, d.sequence, d.receiver, d.mode
    ), a AS (
      INSERT INTO attempts (delivery_id, sequence, receiver, started_at, outcome, status, latency_ms, error)
      SELECT id, sequence, receiver, $1::bigint, 'redriven', NULL, NULL, 'redriven from the dead-letter queue with a fresh retry budget' FROM u ORDER BY id
    )
    SELECT id, sequence, receiver, mode FROM u ORDER BY id`, p.values);
  return rows;
}
