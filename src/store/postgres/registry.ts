import type pg from 'pg';
import type { KeyRecord, MeterEntry, ParticipantRecord, RouteRule, StoredReceiver } from '../types.ts';
import { LOCK_CLASS } from './migrate.ts';
import { toKey, toMeter, toParticipant, type KeyRow, type MeterRow, type ParticipantRow } from './rows.ts';

/* Participants, keys, routes and the meter registry of the PostgreSQL store: one statement per function. */

type Db = pg.Pool | pg.ClientBase;

// ---- participants ----

/** Creates or replaces; `created` for a new one or one restored after a delete (its createdAt then `now`). */
export async function upsertParticipant(client: pg.ClientBase, id: string, name: string, receiver: StoredReceiver | null, now: number): Promise<{ created: boolean; record: ParticipantRecord }> {
  // `before` reads the statement's snapshot, i.e. the row as it was (a row lock there would see
  // nothing: the same statement updates it).
  const { rows } = await client.query<ParticipantRow & { created: boolean }>(`WITH before AS (
      SELECT deleted_at FROM participants WHERE id = $1
    ), up AS (
      INSERT INTO participants (id, name, receiver, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
      ON CONFLICT (id) DO UPDATE SET name = excluded.name, receiver = excluded.receiver, updated_at = excluded.updated_at,
        created_at = CASE WHEN participants.deleted_at IS NULL THEN participants.created_at ELSE excluded.created_at END, deleted_at = NULL
      RETURNING *
    )
    SELECT up.*, NOT EXISTS (SELECT 1 FROM before WHERE deleted_at IS NULL) AS created FROM up`,
  [id, name, receiver ? JSON.stringify(receiver) : null, now]);
  const row = rows[0]!;
  return { created: row.created, record: toParticipant(row) };
}

export async function getParticipant(db: Db, id: string): Promise<ParticipantRow | null> {
  const { rows } = await db.query<ParticipantRow>('SELECT * FROM participants WHERE id = $1', [id]);
  return rows[0] ?? null;
}

export async function listParticipants(db: Db): Promise<ParticipantRecord[]> {
  const { rows } = await db.query<ParticipantRow>('SELECT * FROM participants WHERE deleted_at IS NULL ORDER BY id COLLATE "C"');
  return rows.map(toParticipant);
}

/** Soft delete; false when unknown or already deleted. */
export async function markParticipantDeleted(client: pg.ClientBase, id: string, now: number): Promise<boolean> {
  const r = await client.query('UPDATE participants SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL', [now, id]);
  return (r.rowCount ?? 0) > 0;
}

export async function revokeKeysOf(client: pg.ClientBase, participant: string, now: number): Promise<void> {
  await client.query('UPDATE api_keys SET revoked_at = $1 WHERE participant = $2 AND revoked_at IS NULL', [now, participant]);
}

/** The receiver's pull deliveries not yet acked go dead, with a 'dead' attempt row each. */
export async function deadLetterPullOf(client: pg.ClientBase, receiver: string, now: number, reason: string): Promise<number> {
  const { rows } = await client.query<{ n: number }>(`WITH u AS (
      UPDATE deliveries SET state = 'dead', dead_at = $2, last_error = $3, lease_until = NULL, lease_token = NULL
      WHERE receiver = $1 AND mode = 'pull' AND state IN ('pending', 'delivering')
      RETURNING id, sequence, receiver
    ), a AS (
      INSERT INTO attempts (delivery_id, sequence, receiver, started_at, outcome, status, latency_ms, error)
      SELECT id, sequence, receiver, $2::bigint, 'dead', NULL, NULL, $3::text FROM u ORDER BY id
    )
    SELECT count(*)::int AS n FROM u`, [receiver, now, reason]);
  return rows[0]!.n;
}

// ---- keys ----

export async function insertKey(client: pg.ClientBase, key: KeyRecord): Promise<void> {
  await client.query('INSERT INTO api_keys (id, participant, role, hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)',
    [key.id, key.participant, key.role, key.hash, key.createdAt, key.revokedAt]);
}

export async function findKeyByHash(db: Db, hash: string): Promise<KeyRecord | null> {
  // Named: every authenticated request asks it.
  const { rows } = await db.query<KeyRow>({ name: 'meterhub_key_by_hash', text: 'SELECT id, participant, role, hash, created_at, revoked_at FROM api_keys WHERE hash = $1', values: [hash] });
  return rows[0] ? toKey(rows[0]) : null;
}

export async function listKeys(db: Db, participant: string): Promise<KeyRecord[]> {
  const { rows } = await db.query<KeyRow>('SELECT * FROM api_keys WHERE participant = $1 ORDER BY created_at, id COLLATE "C"', [participant]);
  return rows.map(toKey);
}

export async function revokeKey(client: pg.ClientBase, participant: string | null, keyId: string, now: number): Promise<boolean> {
  const r = await client.query('UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND participant IS NOT DISTINCT FROM $3::text AND revoked_at IS NULL', [now, keyId, participant]);
  return (r.rowCount ?? 0) > 0;
}

export async function countAdminKeys(db: Db): Promise<number> {
  const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL");
  return rows[0]!.n;
}

// ---- routes ----

export async function latestRoutes(db: Db): Promise<{ rules: RouteRule[]; version: number }> {
  const { rows } = await db.query<{ version: number; rules: string }>('SELECT version, rules FROM routes ORDER BY version DESC LIMIT 1');
  return rows[0] ? { rules: JSON.parse(rows[0].rules), version: rows[0].version } : { rules: [], version: 0 };
}

/**
 * Serialises rule list versions across processes until the transaction ends: versions then
 * increase in commit order, so the latest version is the last one committed (an identity
 * column would not promise that).
 */
export async function lockRoutes(client: pg.ClientBase): Promise<void> {
  await client.query("SELECT pg_advisory_xact_lock($1::integer, hashtext(coalesce(current_schema(), '') || ':routes'))", [LOCK_CLASS]);
}

/** The next version of the rule list (run under lockRoutes). */
export async function insertRoutes(client: pg.ClientBase, rules: RouteRule[], now: number): Promise<number> {
  const { rows } = await client.query<{ version: number }>(
    'INSERT INTO routes (version, rules, created_at) SELECT coalesce(max(version), 0) + 1, $1, $2 FROM routes RETURNING version',
    [JSON.stringify(rules), now]);
  return rows[0]!.version;
}

// ---- meter registry ----

/** Inserts or replaces by (meter, role, validFrom); a key named twice keeps its last entry, as one by one would. */
export async function upsertMeters(client: pg.ClientBase, entries: MeterEntry[]): Promise<void> {
  const byKey = new Map<string, MeterEntry>();
  for (const e of entries) byKey.set(JSON.stringify([e.meter, e.role, e.validFrom ?? 0]), e);
  const rows = [...byKey.values()];
  if (rows.length === 0) return;
  await client.query({
    name: 'meterhub_upsert_meters',
    text: `INSERT INTO meters (meter, role, participant, valid_from, valid_to)
      SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])
      ON CONFLICT (meter, role, valid_from) DO UPDATE SET participant = excluded.participant, valid_to = excluded.valid_to`,
    values: [rows.map((e) => e.meter), rows.map((e) => e.role), rows.map((e) => e.participant), rows.map((e) => e.validFrom ?? 0), rows.map((e) => e.validTo)],
  });
}

export async function getMeterEntries(db: Db, meter: string, at: number | null): Promise<MeterEntry[]> {
  // Named (prepared once per connection): routing by role asks it for every message.
  const { rows } = at === null
    ? await db.query<MeterRow>({ name: 'meterhub_meter_all', text: 'SELECT * FROM meters WHERE meter = $1 ORDER BY role COLLATE "C", valid_from', values: [meter] })
    : await db.query<MeterRow>({ name: 'meterhub_meter_at', text: 'SELECT * FROM meters WHERE meter = $1 AND valid_from <= $2 AND (valid_to IS NULL OR valid_to > $2) ORDER BY role COLLATE "C", valid_from', values: [meter, at] });
  return rows.map(toMeter);
}
