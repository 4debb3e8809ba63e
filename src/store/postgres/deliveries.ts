import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { AckResult, AttemptResult, ClaimedDelivery, DeliveryRecord } from '../types.ts';
import { deliveryColumns, toDelivery, type DeliveryRow } from './rows.ts';
import type { Batchable } from './write-queue.ts';

/*
 * Push claims, push results, pull leases and lease maintenance of the PostgreSQL store.
 * Set-based: each function is one statement; a state change and its attempt rows are written by
 * the same statement (a data-modifying WITH), so they commit together.
 *
 * Several hub processes share these rows. A claim takes candidates with FOR UPDATE SKIP LOCKED:
 * a row another transaction is claiming or changing is passed over, never waited for, and a row
 * changed by a transaction that committed after this statement began is re-checked on its new
 * version (READ COMMITTED re-evaluates the WHERE on the locked row), so it is taken only if it is
 * still pending. Two claims therefore never take one delivery, and maintenance that sweeps many
 * rows (rescue, expiry) skips rows someone else holds instead of deadlocking with them.
 *
 * Ordering per subject (`ordered`) across processes. A candidate must be its subject's head: no
 * delivery of the same receiver and subject before it in (sequence, id) order is open (pending or
 * delivering). The NOT EXISTS reads the statement's snapshot, and that is exact, because a
 * snapshot can be wrong only in the safe direction:
 *  - Concurrent work only closes deliveries (open -> delivered or dead, both final) or moves them
 *    between open states (retry, nack, expiry, rescue, mode switch). A stale snapshot can show an
 *    earlier delivery still open when it has just closed: that holds the candidate back until the
 *    next claim. It cannot show one closed that is open.
 *  - A delivery missing from the snapshot cannot come before a visible one of its subject:
 *    sequences are handed out in commit order (sequences.ts), so whoever sees sequence n sees
 *    every committed sequence below it (with a plain SEQUENCE, 42 could be seen, claimed and
 *    delivered before 41 commits: exactly the ordering bug).
 *  - The head may be being claimed by another transaction right now (locked, not committed):
 *    SKIP LOCKED passes over it, and the NOT EXISTS still sees it pending, so its successor is
 *    not taken either. (The naive form, "skip locked rows, then take the first row per subject",
 *    takes the successor here; the two-store test in postgres.test.ts catches that form.)
 * So two processes never have a subject's head and its successor in flight at once. What no
 * store prevents (SQLite neither): a redrive or resend of an earlier sequence made while a later
 * one of its subject is in flight; that is a new open delivery, asked for by an operator.
 * A per-subject advisory lock would add nothing: the in-flight state outlives the transaction
 * that set it, so the check of that state is what must be (and is) exact.
 */

/*
 * Candidates are locked in a MATERIALIZED WITH and updated by joining it: as `id IN (SELECT ...
 * LIMIT n FOR UPDATE SKIP LOCKED)` the sub-select may be run again per row and, not seeing the
 * rows it just changed as pending any more, take the next ones past the LIMIT.
 */

/** `d` has no earlier (sequence, id) delivery of its receiver and subject still open. Repeats the WHERE of deliveries_open_by_subject. */
const noEarlierOpen = (d: string) => `NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.receiver = ${d}.receiver AND e.subject = ${d}.subject
  AND e.state IN ('pending', 'delivering') AND (e.sequence, e.id) < (${d}.sequence, ${d}.id))`;

const ATTEMPT_COLUMNS = 'INSERT INTO attempts (delivery_id, sequence, receiver, started_at, outcome, status, latency_ms, error)';

// The hot statements are named (prepared once per connection, planned once); they list their
// columns rather than `*`, so that a later migration adding a column does not change the row
// type of a statement already prepared.

function bySequence(a: DeliveryRecord, b: DeliveryRecord): number {
  return a.sequence - b.sequence || a.id - b.id;
}

// ---- push ----

/** Skip-scan over the partial index deliveries_push_due: one probe per receiver, however deep its backlog. */
export async function receiversWithDuePush(db: pg.Pool | pg.ClientBase, now: number, limit: number): Promise<string[]> {
  const { rows } = await db.query<{ receiver: string }>({ name: 'meterhub_receivers_due', text: `WITH RECURSIVE r(receiver) AS (
      (SELECT receiver FROM deliveries WHERE mode = 'push' AND state = 'pending' ORDER BY receiver LIMIT 1)
      UNION ALL
      SELECT (SELECT d.receiver FROM deliveries d WHERE d.mode = 'push' AND d.state = 'pending' AND d.receiver > r.receiver ORDER BY d.receiver LIMIT 1)
      FROM r WHERE r.receiver IS NOT NULL
    )
    SELECT receiver FROM r WHERE receiver IS NOT NULL
      AND EXISTS (SELECT 1 FROM deliveries d WHERE d.mode = 'push' AND d.state = 'pending' AND d.receiver = r.receiver AND d.next_attempt_at <= $1)
    LIMIT $2`, values: [now, limit] });
  return rows.map((r) => r.receiver);
}

export async function claimPush(client: pg.ClientBase, receiver: string, limit: number, now: number, leaseUntil: number, token: string, ordered: boolean): Promise<ClaimedDelivery[]> {
  const { rows } = await client.query<DeliveryRow>({ name: `meterhub_claim_push${ordered ? '_ordered' : ''}`, text: `WITH picked AS MATERIALIZED (
      SELECT c.id FROM deliveries c
      WHERE c.mode = 'push' AND c.state = 'pending' AND c.receiver = $1 AND c.next_attempt_at <= $3 ${ordered ? `AND ${noEarlierOpen('c')}` : ''}
      ORDER BY c.next_attempt_at, c.id LIMIT $2
      FOR UPDATE OF c SKIP LOCKED
    ), claimed AS (
      UPDATE deliveries d SET state = 'delivering', lease_until = $4, lease_token = $5::text || '.' || d.id,
        attempts = d.attempts + 1, last_attempt_at = $3
      FROM picked WHERE d.id = picked.id AND d.state = 'pending'
      RETURNING ${deliveryColumns('d')}
    )
    SELECT * FROM claimed ORDER BY sequence, id`, values: [receiver, limit, now, leaseUntil, token] });
  return rows.map(toDelivery) as ClaimedDelivery[];
}

/**
 * Records the results whose lease is still held under the claim's token; one answer per item.
 * An item repeated in the call (same delivery and token) is recorded once, the repeats are stale.
 */
export async function recordPushResults(client: pg.ClientBase, results: Array<{ delivery: ClaimedDelivery; result: AttemptResult }>): Promise<boolean[]> {
  const seen = new Set<string>();
  const items = results.flatMap(({ delivery: d, result: r }, i) => {
    const key = `${d.id}\n${d.leaseToken}`;
    if (seen.has(key)) return [];
    seen.add(key);
    return [{ i, d, r }];
  });
  if (items.length === 0) return results.map(() => false);
  const { rows } = await client.query<{ ord: number }>({ name: 'meterhub_record_push', text: `WITH x AS (
      SELECT * FROM unnest($1::int[], $2::bigint[], $3::text[], $4::text[], $5::int[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[])
        AS x(ord, id, token, kind, status, error, started_at, latency_ms, next_attempt_at)
    ), u AS (
      UPDATE deliveries d SET
        state = CASE x.kind WHEN 'delivered' THEN 'delivered' WHEN 'dead' THEN 'dead' ELSE 'pending' END,
        delivered_at = CASE WHEN x.kind = 'delivered' THEN x.started_at + x.latency_ms ELSE d.delivered_at END,
        dead_at = CASE WHEN x.kind = 'dead' THEN x.started_at + x.latency_ms ELSE d.dead_at END,
        next_attempt_at = CASE WHEN x.kind = 'retry' THEN x.next_attempt_at ELSE d.next_attempt_at END,
        last_status = x.status, last_error = x.error, lease_until = NULL, lease_token = NULL
      FROM x WHERE d.id = x.id AND d.lease_token = x.token AND d.state = 'delivering'
      RETURNING d.id, d.sequence, d.receiver, x.ord, x.kind, x.status, x.error, x.started_at, x.latency_ms
    ), a AS (
      ${ATTEMPT_COLUMNS}
      SELECT id, sequence, receiver, started_at, CASE kind WHEN 'retry' THEN 'failed' ELSE kind END, status, latency_ms, error FROM u ORDER BY ord
    )
    SELECT ord FROM u`, values: [
    items.map((x) => x.i), items.map((x) => x.d.id), items.map((x) => x.d.leaseToken), items.map((x) => x.r.kind),
    items.map((x) => x.r.status), items.map((x) => (x.r.kind === 'delivered' ? null : x.r.error)), items.map((x) => x.r.at),
    items.map((x) => x.r.latencyMs), items.map((x) => (x.r.kind === 'retry' ? x.r.nextAttemptAt : null)),
  ] });
  const recorded = new Set(rows.map((r) => r.ord));
  return results.map((_, i) => recorded.has(i));
}

/**
 * recordPushResults calls, batched (write-queue.ts): consecutive calls of one group are recorded
 * by one statement, their items in call order, which answers each item as the calls one after
 * the other would: an item is recorded if its claim's lease is still held, and a repeat of a
 * (delivery, token) already recorded, in its own call or an earlier one, is stale.
 */
export const recordPushBatch: Batchable<Array<{ delivery: ClaimedDelivery; result: AttemptResult }>, boolean[]> = {
  async run(tx, calls) {
    const all = await recordPushResults(tx.client, calls.flat());
    let at = 0;
    return calls.map((c) => all.slice(at, (at += c.length)));
  },
};

/** Claims never attempted, back to pending as before the claim (attempts − 1, no attempt row); only those still leased under their token. */
export async function releasePushClaims(client: pg.ClientBase, claims: ClaimedDelivery[]): Promise<number> {
  if (claims.length === 0) return 0;
  const r = await client.query({ name: 'meterhub_unclaim_push', text: `UPDATE deliveries d SET state = 'pending', attempts = d.attempts - 1, lease_until = NULL, lease_token = NULL
    FROM unnest($1::bigint[], $2::text[]) AS x(id, token)
    WHERE d.id = x.id AND d.lease_token = x.token AND d.state = 'delivering' AND d.mode = 'push'`, values: [claims.map((c) => c.id), claims.map((c) => c.leaseToken)] });
  return r.rowCount ?? 0;
}

export async function nextPushDueAt(db: pg.Pool | pg.ClientBase): Promise<number | null> {
  const { rows } = await db.query<{ t: number | null }>({ name: 'meterhub_next_push_due', text: "SELECT min(next_attempt_at) AS t FROM deliveries WHERE mode = 'push' AND state = 'pending'" });
  return rows[0]?.t ?? null;
}

// ---- pull ----

/** Due pending pull deliveries of the receiver, oldest due first, locked for this transaction (others' locked ones skipped). */
export async function pullCandidates(client: pg.ClientBase, receiver: string, now: number, limit: number, ordered: boolean): Promise<Array<{ id: number; receives: number }>> {
  const { rows } = await client.query<{ id: number; receives: number }>({ name: `meterhub_pull_candidates${ordered ? '_ordered' : ''}`, text: `SELECT c.id, c.receives FROM deliveries c
    WHERE c.mode = 'pull' AND c.state = 'pending' AND c.receiver = $1 AND c.next_attempt_at <= $2 ${ordered ? `AND ${noEarlierOpen('c')}` : ''}
    ORDER BY c.next_attempt_at, c.id LIMIT $3
    FOR UPDATE OF c SKIP LOCKED`, values: [receiver, now, limit] });
  return rows;
}

/** Leases the given pending pull deliveries, each with a random 128-bit token, with a 'leased' attempt row each. */
export async function leasePullDeliveries(client: pg.ClientBase, receiver: string, ids: number[], now: number, leaseUntil: number): Promise<ClaimedDelivery[]> {
  if (ids.length === 0) return [];
  const tokens = ids.map(() => `pl_${randomBytes(16).toString('base64url')}`);
  const { rows } = await client.query<DeliveryRow>({ name: 'meterhub_lease_pull', text: `WITH u AS (
      UPDATE deliveries d SET state = 'delivering', lease_until = $4, lease_token = x.token,
        attempts = d.attempts + 1, receives = d.receives + 1, last_attempt_at = $3
      FROM unnest($1::bigint[], $2::text[]) AS x(id, token)
      WHERE d.id = x.id AND d.state = 'pending' AND d.mode = 'pull' AND d.receiver = $5
      RETURNING ${deliveryColumns('d')}
    ), a AS (
      ${ATTEMPT_COLUMNS} SELECT id, sequence, receiver, $3::bigint, 'leased', NULL, NULL, NULL FROM u ORDER BY id
    )
    SELECT * FROM u`, values: [ids, tokens, now, leaseUntil, receiver] });
  return (rows.map(toDelivery) as ClaimedDelivery[]).sort(bySequence);
}

/** Ends pending deliveries that reached their receive limit: dead, with a 'dead' attempt row each. */
export async function deadAtReceiveLimit(client: pg.ClientBase, items: Array<{ id: number; reason: string }>, now: number): Promise<DeliveryRecord[]> {
  if (items.length === 0) return [];
  const { rows } = await client.query<DeliveryRow>(`WITH u AS (
      UPDATE deliveries d SET state = 'dead', dead_at = $3, last_error = x.reason, lease_until = NULL, lease_token = NULL
      FROM unnest($1::bigint[], $2::text[]) AS x(id, reason)
      WHERE d.id = x.id AND d.state = 'pending'
      RETURNING d.*
    ), a AS (
      ${ATTEMPT_COLUMNS} SELECT id, sequence, receiver, $3::bigint, 'dead', NULL, NULL, last_error FROM u ORDER BY id
    )
    SELECT * FROM u ORDER BY id`, [items.map((x) => x.id), items.map((x) => x.reason), now]);
  return rows.map(toDelivery);
}

/**
 * Settles leases of the receiver, per lease in order: 'acked' when it was live (delivered, or
 * back to pending for a nack), 'expired' otherwise (unknown, another receiver's, settled,
 * expired, or a repeat of an earlier lease of the list).
 */
export async function settlePull(client: pg.ClientBase, how: 'ack' | 'nack', receiver: string, leases: string[], now: number, nextAttemptAt: number): Promise<AckResult[]> {
  if (leases.length === 0) return [];
  const firsts = [...new Set(leases)];
  const set = how === 'ack'
    ? `state = 'delivered', delivered_at = $3, last_error = NULL`
    : `state = 'pending', next_attempt_at = $4, last_error = 'nacked by receiver'`;
  const attempt = how === 'ack' ? `'acked', NULL, NULL, NULL` : `'nacked', NULL, NULL, 'nacked by receiver'`;
  const { rows } = await client.query<{ token: string }>({ name: `meterhub_${how}_pull`, text: `WITH u AS (
      UPDATE deliveries d SET ${set}, lease_until = NULL, lease_token = NULL
      FROM unnest($2::text[]) WITH ORDINALITY AS x(token, ord)
      WHERE d.lease_token = x.token AND d.receiver = $1 AND d.state = 'delivering' AND d.mode = 'pull' AND d.lease_until > $3
      RETURNING d.id, d.sequence, d.receiver, x.token, x.ord
    ), a AS (
      ${ATTEMPT_COLUMNS} SELECT id, sequence, receiver, $3::bigint, ${attempt} FROM u ORDER BY ord
    )
    SELECT token FROM u`, values: how === 'ack' ? [receiver, firsts, now] : [receiver, firsts, now, nextAttemptAt] });
  const live = new Set(rows.map((r) => r.token));
  return leases.map((lease) => {
    const result = live.delete(lease) ? 'acked' as const : 'expired' as const;
    return { lease, result };
  });
}

/** Expired pull leases (at most `limit`), locked for this transaction. */
export async function expiredPullLeases(client: pg.ClientBase, now: number, limit: number): Promise<DeliveryRow[]> {
  const { rows } = await client.query<DeliveryRow>(`SELECT * FROM deliveries
    WHERE state = 'delivering' AND mode = 'pull' AND lease_until <= $1 ORDER BY id LIMIT $2
    FOR UPDATE SKIP LOCKED`, [now, limit]);
  return rows;
}

/** Ends expired pull leases: back to pending due now (an 'expired' attempt row), or dead (a 'dead' one). */
export async function endPullLeases(client: pg.ClientBase, items: Array<{ id: number; dead: boolean; reason: string }>, now: number): Promise<DeliveryRecord[]> {
  if (items.length === 0) return [];
  const { rows } = await client.query<DeliveryRow>(`WITH u AS (
      UPDATE deliveries d SET
        state = CASE WHEN x.dead THEN 'dead' ELSE 'pending' END,
        dead_at = CASE WHEN x.dead THEN $4 ELSE d.dead_at END,
        next_attempt_at = CASE WHEN x.dead THEN d.next_attempt_at ELSE $4 END,
        last_error = x.reason, lease_until = NULL, lease_token = NULL
      FROM unnest($1::bigint[], $2::boolean[], $3::text[]) AS x(id, dead, reason)
      WHERE d.id = x.id AND d.state = 'delivering'
      RETURNING d.*
    ), a AS (
      ${ATTEMPT_COLUMNS} SELECT id, sequence, receiver, $4::bigint, CASE WHEN state = 'dead' THEN 'dead' ELSE 'expired' END, NULL, NULL, last_error FROM u ORDER BY id
    )
    SELECT * FROM u ORDER BY id`, [items.map((x) => x.id), items.map((x) => x.dead), items.map((x) => x.reason), now]);
  return rows.map(toDelivery);
}

// ---- maintenance ----

/**
 * Push leases back to pending, due now, with a 'lease-lost' attempt row: the expired ones
 * (`expiredAt` given), or all of them (null). Rows another transaction holds are skipped.
 */
export async function releasePushLeases(client: pg.ClientBase, now: number, expiredAt: number | null, lastError: string, attemptError: string): Promise<number> {
  const { rows } = await client.query<{ n: number }>(`WITH picked AS MATERIALIZED (
      SELECT c.id FROM deliveries c WHERE c.state = 'delivering' AND c.mode = 'push' AND ($2::bigint IS NULL OR c.lease_until <= $2)
      FOR UPDATE SKIP LOCKED
    ), u AS (
      UPDATE deliveries d SET state = 'pending', next_attempt_at = $1, last_error = $3, lease_until = NULL, lease_token = NULL
      FROM picked WHERE d.id = picked.id AND d.state = 'delivering'
      RETURNING d.id, d.sequence, d.receiver
    ), a AS (
      ${ATTEMPT_COLUMNS} SELECT id, sequence, receiver, $1::bigint, 'lease-lost', NULL, NULL, $4::text FROM u ORDER BY id
    )
    SELECT count(*)::int AS n FROM u`, [now, expiredAt, lastError, attemptError]);
  return rows[0]!.n;
}

export async function setPendingMode(client: pg.ClientBase, receiver: string, mode: 'push' | 'pull'): Promise<number> {
  const r = await client.query("UPDATE deliveries SET mode = $1 WHERE receiver = $2 AND state = 'pending' AND mode <> $1", [mode, receiver]);
  return r.rowCount ?? 0;
}

export async function countDeliveriesByState(db: pg.Pool | pg.ClientBase): Promise<Array<{ receiver: string; state: string; count: number }>> {
  const { rows } = await db.query<{ receiver: string; state: string; count: number }>(
    'SELECT receiver, state, count(*) AS count FROM deliveries GROUP BY receiver, state ORDER BY receiver, state');
  return rows;
}
