/**
 * Which store the test hubs run on: the embedded SQLite file (default), or PostgreSQL with
 * METERHUB_TEST_STORE=postgres (`npm run test:postgres`), on METERHUB_TEST_DATABASE_URL (else
 * the local default of test/support/postgres.ts).
 *
 * On PostgreSQL each data folder gets its own schema, named from the folder's path: a hub
 * started again on the same data folder (a restart on "the same data") finds the same schema
 * and data, and a fresh temp folder is a fresh, empty schema. Schemas are dropped when the
 * in-process hub that made them closes (unless it keeps its data), and in any case at the end
 * of the test file (a root `after` hook, registered when this module is loaded), so a test
 * that restarts hubs on one folder, or runs child-process hubs, leaves nothing behind.
 */
import { createHash } from 'node:crypto';
import { after } from 'node:test';
import { resolve } from 'node:path';
import pg from 'pg';
import { markSuiteRan, testDatabaseUrl } from './postgres.ts';

export type TestStoreKind = 'sqlite' | 'postgres';

export function testStoreKind(): TestStoreKind {
  const v = (process.env.METERHUB_TEST_STORE ?? '').trim().toLowerCase();
  if (v === '' || v === 'sqlite') return 'sqlite';
  if (v === 'postgres' || v === 'postgresql' || v === 'pg') return 'postgres';
  throw new Error(`METERHUB_TEST_STORE must be sqlite or postgres, not ${process.env.METERHUB_TEST_STORE}`);
}

/** Connections per test hub: small, so that two test files at once, each with a few hubs, stay far below max_connections (100 by default). */
const TEST_POOL_SIZE = Number(process.env.METERHUB_TEST_POOL_SIZE ?? 5);

/** Schemas this process made (or may have made, through a child hub), dropped at the end of the file. */
const made = new Set<string>();
let marked = false;

/** The schema of a data folder: `mh_t_` and a hash of its absolute path. */
export function schemaForDataDir(dataDir: string): string {
  return `mh_t_${createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 20)}`;
}

/**
 * The database URL of a test hub on `dataDir` (same folder, same schema), with a small pool;
 * null on the embedded store. Remembered for the end-of-file cleanup.
 */
export function testDatabaseUrlFor(dataDir: string): { url: string; schema: string } | null {
  if (testStoreKind() !== 'postgres') return null;
  const schema = schemaForDataDir(dataDir);
  const url = new URL(testDatabaseUrl());
  url.searchParams.set('schema', schema);
  if (!url.searchParams.has('pool_size')) url.searchParams.set('pool_size', String(TEST_POOL_SIZE));
  if (made.size === 0 && !marked) {
    marked = true;
    markSuiteRan('METERHUB_TEST_STORE=postgres', `(${process.argv[1] ?? 'a test file'})`); // .ci/run checks that test:postgres really ran on PostgreSQL
  }
  made.add(schema);
  return { url: url.toString(), schema };
}

/** Drops a test schema (best effort: a test's own failure is more telling than a cleanup's). */
export async function dropTestSchema(schema: string): Promise<void> {
  made.delete(schema);
  const client = new pg.Client({ connectionString: testDatabaseUrl(), connectionTimeoutMillis: 5_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    // A hub process still connected (a test that failed before killing it) holds no lock while
    // idle; one mid-transaction must not hang the cleanup.
    await client.query("SET lock_timeout = '5s'");
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } catch {
    // left behind (the server unreachable): a test schema holds only test data
  } finally {
    await client.end().catch(() => {});
  }
}

if (testStoreKind() === 'postgres') {
  after(async () => {
    for (const schema of [...made]) await dropTestSchema(schema);
  });
}
