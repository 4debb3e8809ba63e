import type pg from 'pg';
import type { DeliveryState, MessageFilter, MessageRecord, MessageSearch } from '../types.ts';
import { toMessage, type MessageRow } from './rows.ts';

/*
 * Archive queries whose WHERE depends on which filters are given. Each clause is a fixed
 * fragment with bound parameters (never a value in the SQL text); leaving absent filters out
 * lets PostgreSQL drive from the index of the filter given (subject, source, type: each with
 * sequence) or walk the primary key in sequence order up to the LIMIT.
 *
 * An ascending cursor misses nothing committed later: sequences become visible in commit order
 * (sequences.ts), so no visibility horizon is needed.
 */

/** Numbered parameters for one statement. */
export class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

export interface MessageWhere extends MessageFilter {
  after?: number;
  order: 'asc' | 'desc';
  /** Participant that may see only its own messages, or null for all. */
  viewer: string | null;
  /** Has any delivery (resends too) to this receiver, visible to the viewer. */
  receiver?: string;
  /** Has a delivery in this state, visible to the viewer (and to `receiver` when given). */
  state?: DeliveryState;
  /** Was originally routed to this receiver (replay). */
  originalReceiver?: string;
}

/** The WHERE clause over `messages m`, its parameters added to `p`. */
export function messageWhere(w: MessageWhere, p: Params): string {
  const clauses: string[] = [];
  if (w.after !== undefined) clauses.push(`m.sequence ${w.order === 'asc' ? '>' : '<'} ${p.add(w.after)}::bigint`);
  if (w.subject !== undefined) clauses.push(`m.subject = ${p.add(w.subject)}::text`);
  if (w.type !== undefined) clauses.push(`m.type = ${p.add(w.type)}::text`);
  if (w.source !== undefined) clauses.push(`m.source = ${p.add(w.source)}::text`);
  if (w.from !== undefined) clauses.push(`m.received_at >= ${p.add(w.from)}::bigint`);
  if (w.to !== undefined) clauses.push(`m.received_at < ${p.add(w.to)}::bigint`);
  const viewer = w.viewer !== null ? `${p.add(w.viewer)}::text` : null;
  if (viewer !== null) {
    clauses.push(`(m.source = ${viewer} OR EXISTS (SELECT 1 FROM deliveries v WHERE v.sequence = m.sequence AND v.receiver = ${viewer}))`);
  }
  if (w.receiver !== undefined || w.state !== undefined) {
    let sub = 'EXISTS (SELECT 1 FROM deliveries x WHERE x.sequence = m.sequence';
    if (w.receiver !== undefined) sub += ` AND x.receiver = ${p.add(w.receiver)}::text`;
    if (w.state !== undefined) sub += ` AND x.state = ${p.add(w.state)}::text`;
    if (viewer !== null) sub += ` AND (x.receiver = ${viewer} OR m.source = ${viewer})`;
    clauses.push(`${sub})`);
  }
  if (w.originalReceiver !== undefined) {
    clauses.push(`EXISTS (SELECT 1 FROM deliveries o WHERE o.sequence = m.sequence AND o.receiver = ${p.add(w.originalReceiver)}::text AND o.resend_of IS NULL)`);
  }
  return clauses.length > 0 ? clauses.join(' AND ') : 'true';
}

export async function searchMessages(db: pg.Pool | pg.ClientBase, s: MessageSearch): Promise<MessageRecord[]> {
  const p = new Params();
  const where = messageWhere(s, p);
  const { rows } = await db.query<MessageRow>(
    `SELECT m.* FROM messages m WHERE ${where} ORDER BY m.sequence ${s.order === 'asc' ? 'ASC' : 'DESC'} LIMIT ${p.add(Math.floor(s.limit))}`, p.values);
  return rows.map(toMessage);
}
