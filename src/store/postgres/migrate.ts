import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

/** First key of the hub's advisory locks (the second is per schema): "mhub". */
export const LOCK_CLASS = 0x6d687562;

export interface Migration { version: number; name: string; sql: string }

/** The numbered migrations `NNNN_name.sql` of a folder, in order. */
export function readMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  const files = readdirSync(dir).filter((f) => /^\d{4}_.+\.sql$/.test(f)).sort();
  const migrations = files.map((f) => ({ version: Number(f.slice(0, 4)), name: f.slice(5, -4), sql: readFileSync(join(dir, f), 'utf8') }));
  if (new Set(migrations.map((m) => m.version)).size !== migrations.length) throw new Error(`two migrations share a number in ${dir}`);
  return migrations;
}

/**
 * Applies the numbered, forward-only migrations not yet applied (a change is a new file, never
 * an edit; graphile-worker's `sql/` style). Each runs in its own transaction together with its
 * row in `meterhub_migrations`, under a transaction-level advisory lock of the schema, and the
 * applied version is read again under that lock: several hubs starting at once apply each
 * migration exactly once, and one that fails leaves nothing behind. Refuses a schema written by
 * a newer hub. `schema` (or, when null, the session's current schema) is created when missing.
 * Returns how many were applied.
 */
export async function migrate(client: pg.ClientBase, schema: string | null, migrations: Migration[] = readMigrations()): Promise<number> {
  const highest = migrations.at(-1)?.version ?? 0;
  let applied = 0;
  for (let i = 0; ; i++) {
    await client.query('BEGIN');
    try {
      await lockSchema(client, schema);
      if (schema !== null) await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
      await client.query(`CREATE TABLE IF NOT EXISTS meterhub_migrations (
        version    integer PRIMARY KEY,
        name       text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now())`);
      const current = await currentVersion(client);
      if (current > highest) {
        throw new Error(`the database is at schema version ${current}, newer than this hub knows (${highest}): upgrade the hub`);
      }
      const next = migrations.find((m) => m.version > current);
      if (!next) {
        await client.query('COMMIT');
        return applied;
      }
      await client.query(next.sql);
      await client.query('INSERT INTO meterhub_migrations (version, name) VALUES ($1, $2)', [next.version, next.name]);
      await client.query('COMMIT');
      applied++;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    }
    if (i > migrations.length) throw new Error('migrations did not converge');
  }
}

/** Serialises schema changes per schema, across processes, until the transaction ends. */
async function lockSchema(client: pg.ClientBase, schema: string | null): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock($1::integer, hashtext(coalesce($2::text, current_schema(), \'\')))', [LOCK_CLASS, schema]);
}

async function currentVersion(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM meterhub_migrations');
  return rows[0]?.v ?? 0;
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
