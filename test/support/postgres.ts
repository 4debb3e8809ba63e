/**
 * PostgreSQL for tests: which server, whether it is there, and a fresh schema per case.
 *
 * The server is METERHUB_TEST_DATABASE_URL, else the local default below. When it cannot be
 * reached, a PostgreSQL suite is skipped with a message saying how to run it, except under CI
 * (CI or METERHUB_REQUIRE_POSTGRES set and not "false"/"0"), where it fails: CI must run it
 * (.ci/run starts PostgreSQL).
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import pg from 'pg';
import { PostgresStore, type PostgresOptions } from '../../src/store/postgres/postgres-store.ts';

export const DEFAULT_TEST_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export function testDatabaseUrl(): string {
  return process.env.METERHUB_TEST_DATABASE_URL || DEFAULT_TEST_DATABASE_URL;
}

/** Whether a missing server is a failure: under CI, or when .ci/run asks (METERHUB_REQUIRE_POSTGRES=1). */
export function inCi(): boolean {
  const set = (v: string | undefined) => v !== undefined && v !== '' && v !== 'false' && v !== '0';
  return set(process.env.CI) || set(process.env.METERHUB_REQUIRE_POSTGRES);
}

/** Null when the server answers, else why not. */
export async function probePostgres(url = testDatabaseUrl()): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (error) {
    return (error as Error).message || String(error);
  } finally {
    await client.end().catch(() => {});
  }
}

/** What to tell someone whose PostgreSQL suite was skipped. */
export function skipMessage(url: string, reason: string): string {
  return `PostgreSQL is not reachable at ${redact(url)} (${reason}): ${inCi() ? 'under CI this is a failure' : 'PostgreSQL tests skipped'}. `
    + `Run them with a server, e.g. METERHUB_TEST_DATABASE_URL=${DEFAULT_TEST_DATABASE_URL} npm test `
    + '(start a local one with `pg_ctlcluster --skip-systemctl-redirect 15 main start`; CI=true makes a missing server a failure).';
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

/** A schema name no other case uses. */
export function freshSchemaName(): string {
  return `meterhub_test_${randomBytes(6).toString('hex')}`;
}

/** One connection for test bookkeeping (dropping schemas, holding locks, looking at rows). */
export async function adminClient(url = testDatabaseUrl(), schema?: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, ...(schema ? { options: `-c search_path=${schema}` } : {}) });
  client.on('error', () => {});
  await client.connect();
  return client;
}

export async function dropSchema(schema: string, url = testDatabaseUrl()): Promise<void> {
  const client = await adminClient(url);
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** A store on a fresh schema; cleanup closes it and drops the schema. */
export async function freshStore(opts: Partial<PostgresOptions> = {}): Promise<{ store: PostgresStore; schema: string; cleanup: () => Promise<void> }> {
  const schema = opts.schema ?? freshSchemaName();
  const store = await PostgresStore.open({ url: testDatabaseUrl(), poolSize: 4, ...opts, schema });
  return {
    store, schema,
    cleanup: async () => {
      await store.close();
      await dropSchema(schema);
    },
  };
}

/** Records in $METERHUB_POSTGRES_SUITE_MARKER (when set) that a PostgreSQL suite ran: .ci/run fails without it. */
export function markSuiteRan(name: string, detail: string): void {
  const file = process.env.METERHUB_POSTGRES_SUITE_MARKER;
  if (file) appendFileSync(file, `ran ${name} ${detail}\n`);
}
