import type pg from 'pg';
import type { IngestResult, MessageRecord, NewMessage } from '../types.ts';
import { webhookIdFor } from '../webhook-id.ts';
import { messageColumns, toMessage, type MessageRow } from './rows.ts';
import type { Batchable, WriteTx } from './write-queue.ts';

/*
 * Ingest of the PostgreSQL store, inside a group's transaction, after the group locked
 * hub_sequence (sequences.ts): "committed" then includes every earlier ingest of every process,
 * and no one else can take a (source, id) before this transaction ends.
 *
 * Consecutive commitMessages calls of one group run as one batch (write-queue.ts): their
 * messages, in call order, are judged and inserted by two statements, which is exactly what the
 * calls one after the other would do (each judged against everything before it, earlier calls
 * included). If the batch fails, the queue runs each call alone, so a bad call fails alone.
 */

interface Known { message: MessageRecord; receivers: string[] }
interface Fresh { m: NewMessage; attributes: string; receivers: NewMessage['receivers'] }

/** commitMessages calls, batched: one result list per call. */
export const ingestBatch: Batchable<NewMessage[], IngestResult[]> = {
  async run(tx, calls) {
    const all = await commitMessages(tx, calls.flat());
    let at = 0;
    return calls.map((c) => all.slice(at, (at += c.length)));
  },
};

/**
 * Judges each message against what is committed and the earlier messages of the list, then
 * inserts the new ones, numbered in list order, with their bodies and deliveries.
 */
export async function commitMessages(tx: WriteTx, messages: NewMessage[]): Promise<IngestResult[]> {
  if (messages.length === 0) return [];
  // Serialised first: a message that cannot be stored (a BigInt attribute) fails before any SQL.
  const attributes = messages.map((m) => JSON.stringify(m.attributes));
  const keyOf = (m: { source: string; id: string }) => JSON.stringify([m.source, m.id]);
  const existing = await findMessages(tx.client, messages);

  const known = new Map<string, Known | { pending: number }>();
  const fingerprints = new Map<string, string>();
  const fresh: Fresh[] = [];
  // Per message: the key it is judged against, and whether it is the one accepted under it.
  const plan: Array<{ key: string; m: NewMessage; isNew: boolean }> = [];
  for (const [i, m] of messages.entries()) {
    const key = keyOf(m);
    let isNew = false;
    if (!known.has(key)) {
      const found = existing.get(key);
      if (found) {
        known.set(key, found);
        fingerprints.set(key, found.message.fingerprint);
      } else {
        known.set(key, { pending: fresh.length });
        fingerprints.set(key, m.fingerprint);
        fresh.push({ m, attributes: attributes[i]!, receivers: uniqueReceivers(m.receivers) });
        isNew = true;
      }
    }
    plan.push({ key, m, isNew });
  }

  const inserted = fresh.length > 0 ? await insertMessages(tx.client, fresh, tx.sequences(fresh.length)) : [];
  const resolve = (key: string): Known => {
    const k = known.get(key)!;
    if (!('pending' in k)) return k;
    return { message: inserted[k.pending]!, receivers: fresh[k.pending]!.receivers.map((r) => r.receiver) };
  };
  return plan.map(({ key, m, isNew }): IngestResult => {
    const k = resolve(key);
    if (isNew) return { kind: 'accepted', message: k.message, receivers: k.receivers };
    if (fingerprints.get(key) !== m.fingerprint) return { kind: 'conflict', message: k.message };
    return { kind: 'duplicate', message: k.message, receivers: k.receivers };
  });
}

/** The committed messages under the list's (source, id) pairs, with their original receivers. */
async function findMessages(client: pg.ClientBase, messages: NewMessage[]): Promise<Map<string, Known>> {
  const { rows } = await client.query<MessageRow & { original_receivers: string[] }>({
    name: 'meterhub_find_messages',
    text: `SELECT ${messageColumns('m')},
        ARRAY(SELECT d.receiver FROM deliveries d WHERE d.sequence = m.sequence AND d.resend_of IS NULL ORDER BY d.id) AS original_receivers
      FROM messages m JOIN (SELECT DISTINCT * FROM unnest($1::text[], $2::text[]) AS k(source, id)) k ON m.source = k.source AND m.id = k.id`,
    values: [messages.map((m) => m.source), messages.map((m) => m.id)],
  });
  return new Map(rows.map((r) => [JSON.stringify([r.source, r.id]), { message: toMessage(r), receivers: r.original_receivers }]));
}

/**
 * Inserts the new messages numbered from `first`, their inline bodies and one pending delivery
 * per receiver (due at receivedAt), in one statement. Returns the records in order.
 */
async function insertMessages(client: pg.ClientBase, fresh: Fresh[], first: number): Promise<MessageRecord[]> {
  const seqs = fresh.map((_, i) => first + i);
  const col = <T>(f: (m: NewMessage) => T) => fresh.map(({ m }) => f(m));
  const bodies = fresh.flatMap(({ m }, i) => (m.body.kind === 'inline' ? [{ sequence: seqs[i]!, data: m.inlineBody ?? Buffer.alloc(0) }] : []));
  const deliveries = fresh.flatMap(({ m, receivers }, i) => receivers.map((r) => ({ sequence: seqs[i]!, m, r })));
  const { rows } = await client.query<MessageRow>({
    name: 'meterhub_insert_messages',
    text: `WITH m AS (
        INSERT INTO messages (${messageColumns()})
        SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[],
                             $10::text[], $11::text[], $12::bigint[], $13::text[], $14::text[])
        RETURNING ${messageColumns()}
      ), b AS (
        INSERT INTO bodies (sequence, data) SELECT * FROM unnest($15::bigint[], $16::bytea[])
      ), d AS (
        INSERT INTO deliveries (sequence, receiver, mode, subject, state, created_at, first_created_at, next_attempt_at, webhook_id)
        SELECT x.sequence, x.receiver, x.mode, x.subject, 'pending', x.at, x.at, x.at, x.webhook_id
        FROM unnest($17::bigint[], $18::text[], $19::text[], $20::text[], $21::bigint[], $22::text[]) WITH ORDINALITY
             AS x(sequence, receiver, mode, subject, at, webhook_id, ord)
        ORDER BY x.ord
      )
      SELECT * FROM m ORDER BY sequence`,
    values: [
      seqs, col((m) => m.source), col((m) => m.id), col((m) => m.type), col((m) => m.subject), col((m) => m.time),
      fresh.map((f) => f.attributes), col((m) => m.contentType), col((m) => m.size), col((m) => m.sha256),
      col((m) => m.fingerprint), col((m) => m.receivedAt), col((m) => m.body.kind), col((m) => (m.body.kind === 'file' ? m.body.key : null)),
      bodies.map((b) => b.sequence), bodies.map((b) => b.data),
      deliveries.map((d) => d.sequence), deliveries.map((d) => d.r.receiver), deliveries.map((d) => d.r.mode), deliveries.map((d) => d.m.subject),
      deliveries.map((d) => d.m.receivedAt), deliveries.map((d) => webhookIdFor(d.sequence, d.r.receiver)),
    ],
  });
  return rows.map(toMessage);
}

/** One entry per receiver, the first one named. */
function uniqueReceivers(receivers: NewMessage['receivers']): NewMessage['receivers'] {
  const seen = new Set<string>();
  return receivers.filter((r) => !seen.has(r.receiver) && (seen.add(r.receiver), true));
}
