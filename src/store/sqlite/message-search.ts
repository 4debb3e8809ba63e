import type Database from 'better-sqlite3';
import type { DeliveryState, MessageFilter, MessageRecord, MessageSearch } from '../types.ts';
import { toMessage, type MessageRow } from './rows.ts';

/*
 * Archive queries whose WHERE depends on which filters are given. Each clause is a fixed
 * fragment with bound parameters (never a value in the SQL text), so there are at most a few
 * hundred distinct statements; each is prepared once and cached. Leaving absent filters out
 * (rather than `@x IS NULL OR ...`) lets SQLite drive from the index of the filter given
 * (subject, source, type) or else walk the primary key in sequence order up to the LIMIT.
 */

export class StatementCache {
  private readonly statements = new Map<string, Database.Statement>();
  constructor(private readonly db: Database.Database) {}

  get(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
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

/** The WHERE clause over `messages m` and its parameters. */
export function messageWhere(w: MessageWhere): { sql: string; params: Record<string, string | number> } {
  const clauses: string[] = [];
  const params: Record<string, string | number> = {};
  const add = (clause: string, name?: string, value?: string | number) => {
    clauses.push(clause);
    if (name !== undefined && value !== undefined) params[name] = value;
  };
  if (w.after !== undefined) add(w.order === 'asc' ? 'm.sequence > @after' : 'm.sequence < @after', 'after', w.after);
  if (w.subject !== undefined) add('m.subject = @subject', 'subject', w.subject);
  if (w.type !== undefined) add('m.type = @type', 'type', w.type);
  if (w.source !== undefined) add('m.source = @source', 'source', w.source);
  if (w.from !== undefined) add('m.received_at >= @from', 'from', w.from);
  if (w.to !== undefined) add('m.received_at < @to', 'to', w.to);
  if (w.viewer !== null) {
    add('(m.source = @viewer OR EXISTS (SELECT 1 FROM deliveries v WHERE v.sequence = m.sequence AND v.receiver = @viewer))', 'viewer', w.viewer);
  }
  if (w.receiver !== undefined || w.state !== undefined) {
    let sub = 'EXISTS (SELECT 1 FROM deliveries x WHERE x.sequence = m.sequence';
    if (w.receiver !== undefined) { sub += ' AND x.receiver = @receiver'; params.receiver = w.receiver; }
    if (w.state !== undefined) { sub += ' AND x.state = @state'; params.state = w.state; }
    if (w.viewer !== null) sub += ' AND (x.receiver = @viewer OR m.source = @viewer)';
    add(`${sub})`);
  }
  if (w.originalReceiver !== undefined) {
    add('EXISTS (SELECT 1 FROM deliveries o WHERE o.sequence = m.sequence AND o.receiver = @original_receiver AND o.resend_of IS NULL)', 'original_receiver', w.originalReceiver);
  }
  return { sql: clauses.length > 0 ? clauses.join(' AND ') : '1', params };
}

export function searchMessages(cache: StatementCache, s: MessageSearch): MessageRecord[] {
  if (!(s.limit >= 1)) return [];
  const where = messageWhere(s);
  const order = s.order === 'asc' ? 'ASC' : 'DESC';
  const rows = cache.get(`SELECT m.* FROM messages m WHERE ${where.sql} ORDER BY m.sequence ${order} LIMIT @limit`)
    .all({ ...where.params, limit: Math.floor(s.limit) }) as MessageRow[];
  return rows.map(toMessage);
}
