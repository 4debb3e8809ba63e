/**
 * PostgresBodies against a real PostgreSQL, each case on a schema of its own (dropped after).
 * Skipped with a message unless METERHUB_TEST_DATABASE_URL is set or CI=true (then default
 * postgres://postgres@127.0.0.1:5432/postgres); in CI, or with the variable set, an unreachable
 * server fails the cases instead.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import pg from 'pg';
import { PostgresBodies, type PostgresBodiesOptions } from '../../src/archive/postgres-bodies.ts';
import { toHubError } from '../../src/http/errors.ts';
import { StorageUnavailableError } from '../../src/store/storage-error.ts';
import { MIB, bodyOf, bodyStream, runBodyStoreConformance } from './bodies-conformance.ts';

const DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const ci = process.env.CI === 'true' || process.env.CI === '1';
const url = process.env.METERHUB_TEST_DATABASE_URL || (ci ? DEFAULT_URL : '');
const skip = url ? false : `PostgreSQL body store tests skipped: set METERHUB_TEST_DATABASE_URL (e.g. ${DEFAULT_URL}), or CI=true`;

async function admin(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (e) {
    throw new Error(`PostgreSQL at ${url.replace(/:[^:@/]*@/, ':***@')} is not reachable: ${(e as Error).message}`, { cause: e });
  }
  return client;
}

async function openPg(overrides: Partial<PostgresBodiesOptions> = {}) {
  const schema = `meterhub_bodies_test_${randomBytes(5).toString('hex')}`;
  const check = await admin();
  const store = new PostgresBodies({ url, schema, chunkBytes: MIB, poolSize: 4, connectTimeoutMs: 5000, ...overrides });
  await store.init();
  return {
    store, schema, check,
    holdings: async () => {
      const objects = await check.query<{ key: string; size: string }>(`SELECT key, size FROM "${schema}".meterhub_body_objects ORDER BY key`);
      const chunks = await check.query<{ key: string; n: number; len: number }>(`SELECT key, n, length(data) AS len FROM "${schema}".meterhub_body_chunks ORDER BY key, n`);
      return [...objects.rows.map((r) => `object ${r.key} (${r.size} bytes)`), ...chunks.rows.map((r) => `chunk ${r.key}/${r.n} (${r.len} bytes)`)].sort();
    },
    cleanup: async () => {
      try { await store.close(); } finally {
        await check.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
        await check.end();
      }
    },
  };
}

runBodyStoreConformance('PostgresBodies', () => openPg(), {
  skip,
  unitBytes: MIB,
  // 1 MiB chunks: the one filling, the one being sent; on the way back the driver's receive buffer
  // per connection (a chunk comes as hex text, twice its size) and the chunk being read ahead.
  maxGrowthBytes: 16 * MIB,
});

describe('PostgresBodies (PostgreSQL only)', { skip }, () => {
  const withStore = (title: string, fn: (s: Awaited<ReturnType<typeof openPg>>) => Promise<void>) =>
    it(title, { timeout: 60_000 }, async () => {
      const s = await openPg();
      try { await fn(s); } finally { await s.cleanup(); }
    });

  withStore('a body is kept in chunk rows of chunkBytes, with its size and SHA-256 in its object row', async (s) => {
    const stored = await s.store.putStream(bodyStream('rows', 3 * MIB + 5), 4 * MIB);
    const { rows } = await s.check.query<{ n: number; len: number }>(`SELECT n, length(data) AS len FROM "${s.schema}".meterhub_body_chunks WHERE key = $1 ORDER BY n`, [stored.key]);
    assert.deepEqual(rows, [{ n: 0, len: MIB }, { n: 1, len: MIB }, { n: 2, len: MIB }, { n: 3, len: 5 }]);
    const obj = await s.check.query(`SELECT size::int AS size, sha256, chunks FROM "${s.schema}".meterhub_body_objects WHERE key = $1`, [stored.key]);
    assert.deepEqual(obj.rows, [{ size: 3 * MIB + 5, sha256: stored.sha256, chunks: 4 }]);
  });

  withStore('a put is one transaction: nothing of a body is visible until it is all committed', async (s) => {
    const source = new PassThrough();
    const put = s.store.putStream(source, 10 * MIB);
    source.write(bodyOf('tx', 3 * MIB));
    // Chunks are written (inside the put's transaction) but another connection sees none.
    for (let i = 0; i < 100; i++) {
      const active = await s.check.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'idle in transaction' AND query LIKE 'INSERT INTO "${s.schema}"%'`);
      if (active.rows[0].n > 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(await s.holdings(), []);
    source.end(bodyOf('tx-end', 10));
    const stored = await put;
    assert.equal(stored.size, 3 * MIB + 10);
    assert.equal((await s.holdings()).length, 1 + 4);
  });

  it('init makes the tables once, however many hubs start at once', { timeout: 30_000 }, async () => {
    const schema = `meterhub_bodies_test_${randomBytes(5).toString('hex')}`;
    const stores = [1, 2, 3, 4].map(() => new PostgresBodies({ url, schema, chunkBytes: MIB, poolSize: 2, connectTimeoutMs: 5000 }));
    const check = await admin();
    try {
      await Promise.all(stores.map((s) => s.init()));
      await stores[0]!.init();
      const key = await stores[1]!.putBuffer(Buffer.from('shared'));
      assert.equal((await stores[2]!.read(key)).toString(), 'shared');
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await check.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await check.end();
    }
  });

  it('PostgreSQL not answering: init says so; puts and reads fail as storage unavailable (503)', { timeout: 30_000 }, async () => {
    const store = new PostgresBodies({ url: 'postgres://postgres@127.0.0.1:9/none', schema: null, chunkBytes: MIB, poolSize: 1, connectTimeoutMs: 1000 });
    try {
      await assert.rejects(store.init(), /PostgreSQL for message bodies is not reachable/);
      for (const op of [() => store.putBuffer(Buffer.from('x')), () => store.read('00000000-0000-0000-0000-000000000000')]) {
        await assert.rejects(op(), (e: unknown) => {
          assert.ok(e instanceof StorageUnavailableError, String(e));
          assert.equal(toHubError(e).status, 503);
          return true;
        });
      }
    } finally {
      await store.close();
    }
  });
});
