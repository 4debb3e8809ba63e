/**
 * PostgresStore: the shared Store conformance suite, each case on a fresh schema, then what only
 * PostgreSQL has: migrations under concurrent start, group commit and durability, storage faults,
 * and several processes (two stores = two pools) sharing one database.
 *
 * Needs a server: METERHUB_TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres.
 * Without one the file is skipped with a message, or fails under CI (see test/support/postgres.ts).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { isPgStorageFault, isRetryable } from '../../src/store/postgres/errors.ts';
import { migrate, readMigrations } from '../../src/store/postgres/migrate.ts';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { StorageUnavailableError } from '../../src/store/storage-error.ts';
import type { ClaimedDelivery, DeliveryRecord } from '../../src/store/types.ts';
import { MIN, T0, commitOne, key, msg, oneDelivery } from './builders.ts';
import { runStoreConformance } from './conformance.ts';
import {
  adminClient, dropSchema, freshSchemaName, freshStore, inCi, markSuiteRan, probePostgres, skipMessage, testDatabaseUrl,
} from '../support/postgres.ts';

const MIGRATIONS = fileURLToPath(new URL('../../src/store/postgres/migrations/', import.meta.url));
const url = testDatabaseUrl();
const unreachable = await probePostgres(url);

if (unreachable !== null) {
  const message = skipMessage(url, unreachable);
  if (inCi()) {
    it('PostgreSQL is reachable (CI must run the PostgreSQL suite)', () => assert.fail(message));
  } else {
    process.stderr.write(`\n# ${message}\n`);
    describe('PostgresStore', { skip: message }, () => {});
  }
} else {
  let opened = 0;
  after(() => markSuiteRan('test/store/postgres.test.ts', `${opened} stores`));

  runStoreConformance('PostgresStore', async () => {
    opened++;
    return freshStore();
  });

  describe('PostgresStore (PostgreSQL only)', () => {
    /** Several stores (processes) on one fresh schema; dropped at the end. */
    async function shared(n: number, opts: { poolSize?: number } = {}): Promise<{ stores: PostgresStore[]; schema: string; cleanup: () => Promise<void> }> {
      const schema = freshSchemaName();
      const stores: PostgresStore[] = [];
      for (let i = 0; i < n; i++) stores.push(await PostgresStore.open({ url, schema, poolSize: opts.poolSize ?? 6, applicationName: `meterhub-test-${schema}-${i}` }));
      opened += n;
      return { stores, schema, cleanup: async () => { await Promise.all(stores.map((s) => s.close())); await dropSchema(schema); } };
    }

    function withStore(fn: (store: PostgresStore, schema: string) => Promise<void>, opts: Parameters<typeof freshStore>[0] = {}) {
      return async () => {
        const { store, schema, cleanup } = await freshStore(opts);
        opened++;
        try {
          await fn(store, schema);
        } finally {
          await cleanup();
        }
      };
    }

    // -----------------------------------------------------------------------------------------
    describe('migrations', () => {
      it('are numbered from 0001 without gaps, one forward-only file each', () => {
        const all = readdirSync(MIGRATIONS);
        assert.deepEqual(all.filter((f) => !/^\d{4}_[a-z0-9_]+\.sql$/.test(f)), [], 'only NNNN_name.sql files (no down migrations)');
        const numbers = readMigrations().map((m) => m.version);
        assert.deepEqual(numbers, numbers.map((_, i) => i + 1));
      });

      it('a fresh schema ends at the highest version; opening again applies nothing and keeps the data', async () => {
        const schema = freshSchemaName();
        try {
          const first = await PostgresStore.open({ url, schema });
          await first.upsertParticipant('A', 'A', null, 1);
          await first.close();
          const admin = await adminClient(url, schema);
          try {
            const versions = (await admin.query('SELECT version FROM meterhub_migrations ORDER BY version')).rows.map((r) => r.version);
            assert.deepEqual(versions, readMigrations().map((m) => m.version));
            const tables = async () => (await admin.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`, [schema])).rows;
            const before = await tables();
            assert.equal(await migrate(admin, schema), 0, 'nothing left to apply');
            const second = await PostgresStore.open({ url, schema });
            assert.deepEqual(await tables(), before);
            assert.equal((await second.getParticipant('A'))!.name, 'A');
            await second.close();
          } finally {
            await admin.end();
          }
        } finally {
          await dropSchema(schema);
        }
      });

      it('eight stores opening one new schema at once apply each migration once and share the data', async () => {
        const schema = freshSchemaName();
        try {
          const stores = await Promise.all(Array.from({ length: 8 }, () => PostgresStore.open({ url, schema, poolSize: 2 })));
          opened += stores.length;
          const admin = await adminClient(url, schema);
          const rows = (await admin.query('SELECT version, count(*)::int AS n FROM meterhub_migrations GROUP BY version ORDER BY version')).rows;
          await admin.end();
          assert.deepEqual(rows, readMigrations().map((m) => ({ version: m.version, n: 1 })));
          const m = await commitOne(stores[0]!, msg());
          for (const s of stores) assert.equal((await s.getMessage(m.sequence))!.id, m.id);
          await Promise.all(stores.map((s) => s.close()));
        } finally {
          await dropSchema(schema);
        }
      });

      it('only migrations numbered above the applied version run, each atomically', async () => {
        const schema = freshSchemaName();
        const dir = mkdtempSync(join(tmpdir(), 'meterhub-pg-migrations-'));
        const admin = await adminClient(url, schema);
        try {
          writeFileSync(join(dir, '0001_a.sql'), 'CREATE TABLE a (x integer);');
          assert.equal(await migrate(admin, schema, readMigrations(dir)), 1);
          assert.equal(await migrate(admin, schema, readMigrations(dir)), 0);
          writeFileSync(join(dir, '0002_b.sql'), 'CREATE TABLE b (x integer);');
          writeFileSync(join(dir, '0003_broken.sql'), 'CREATE TABLE c (x integer); INSERT INTO nowhere VALUES (1);');
          await assert.rejects(migrate(admin, schema, readMigrations(dir)), /nowhere/);
          assert.deepEqual((await admin.query('SELECT version FROM meterhub_migrations ORDER BY version')).rows.map((r) => r.version), [1, 2], '0002 applied, 0003 not');
          const tables = (await admin.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`, [schema])).rows.map((r) => r.table_name);
          assert.deepEqual(tables, ['a', 'b', 'meterhub_migrations'], 'the broken migration left nothing behind');
        } finally {
          await admin.end();
          rmSync(dir, { recursive: true, force: true });
          await dropSchema(schema);
        }
      });

      it('a schema from a newer hub is refused, not opened', async () => {
        const schema = freshSchemaName();
        try {
          await (await PostgresStore.open({ url, schema })).close();
          const admin = await adminClient(url, schema);
          await admin.query("INSERT INTO meterhub_migrations (version, name) VALUES (9999, 'from_the_future')");
          await admin.end();
          await assert.rejects(PostgresStore.open({ url, schema }), /newer/);
        } finally {
          await dropSchema(schema);
        }
      });

      it('an unreachable server fails the open with StorageUnavailableError', async () => {
        await assert.rejects(PostgresStore.open({ url: 'postgres://postgres@127.0.0.1:1/nowhere', connectTimeoutMs: 1000 }), StorageUnavailableError);
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('group commit and durability', () => {
      it('a write resolves only after COMMIT: invisible to others before, visible when it resolves', withStore(async (store, schema) => {
        const holder = await adminClient(url, schema);
        const reader = await adminClient(url, schema);
        try {
          // Hold the sequence row: the next ingesting group waits inside its transaction.
          await holder.query('BEGIN');
          await holder.query('SELECT last FROM hub_sequence FOR UPDATE');
          const k = key();
          const m = msg();
          let resolved = 0;
          const ingest = store.commitMessages([m]).then((r) => { resolved++; return r; });
          const insert = store.insertKey(k).then(() => { resolved++; });
          await new Promise((r) => setTimeout(r, 300));
          assert.equal(resolved, 0, 'nothing resolved while the group cannot commit');
          assert.equal((await reader.query('SELECT 1 FROM api_keys WHERE hash = $1', [k.hash])).rowCount, 0, 'not visible before COMMIT');
          await holder.query('ROLLBACK');
          const [[r]] = await Promise.all([ingest, insert]);
          assert.equal(r!.kind, 'accepted');
          assert.equal((await reader.query('SELECT 1 FROM api_keys WHERE hash = $1', [k.hash])).rowCount, 1);
          assert.equal((await reader.query('SELECT 1 FROM messages WHERE sequence = $1', [r!.message.sequence])).rowCount, 1);
        } finally {
          await holder.query('ROLLBACK').catch(() => {});
          await holder.end();
          await reader.end();
        }
      }));

      it('commits issued in one tick share a few transactions (group commit)', withStore(async (store) => {
        const before = { ...store.writeStats };
        const results = await Promise.all(Array.from({ length: 200 }, () => store.commitMessages([msg()])));
        assert.equal(results.flat().filter((r) => r.kind === 'accepted').length, 200);
        const groups = store.writeStats.groups - before.groups;
        assert.ok(groups >= 1 && groups <= 3, `200 commits in ${groups} transactions`);
        assert.equal(store.writeStats.writes - before.writes, 200);
      }));

      it('commits batched in one group: a bad call fails alone (in JS or in PostgreSQL), the others commit in issue order', withStore(async (store) => {
        const first = msg();
        const unserialisable = msg();
        (unserialisable.attributes as Record<string, unknown>).broken = 10n;
        const refusedByPg = msg({ subject: 'NMI\u0000' }); // text cannot hold NUL: 22021 from the server
        const calls = [
          [first], [msg(), msg()], [unserialisable], [msg()], [refusedByPg], [{ ...first, fingerprint: 'other' }], [msg()],
        ];
        const before = store.writeStats.groups;
        const settled = await Promise.allSettled(calls.map((c) => store.commitMessages(c)));
        assert.ok(store.writeStats.groups - before <= 2, 'one group (two at most)');
        assert.deepEqual(settled.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
        for (const i of [2, 4]) {
          const reason = (settled[i] as PromiseRejectedResult).reason;
          assert.ok(!(reason instanceof StorageUnavailableError), `a bad call is not a storage outage: ${reason}`);
        }
        const results = settled.map((r) => (r.status === 'fulfilled' ? r.value : null));
        assert.equal(results[5]![0]!.kind, 'conflict', 'judged against the earlier call of the group');
        const accepted = results.flatMap((r) => r ?? []).filter((r) => r.kind === 'accepted').map((r) => r.message.sequence);
        assert.equal(accepted.length, 5);
        for (let i = 1; i < accepted.length; i++) assert.ok(accepted[i]! > accepted[i - 1]!, `issue order: ${accepted}`);
        assert.equal(await store.findMessage(unserialisable.source, unserialisable.id), null);
        assert.equal(await store.findMessage(refusedByPg.source, refusedByPg.id), null);
        assert.equal((await store.countDeliveriesByState()).reduce((n, c) => n + c.count, 0), 5);
      }));

      it('close commits the writes already issued; later writes and reads fail with StorageUnavailableError', async () => {
        const { store, schema, cleanup } = await freshStore();
        opened++;
        try {
          const k = key();
          const pending = store.insertKey(k);
          await store.close();
          await pending;
          await assert.rejects(store.insertKey(key()), StorageUnavailableError);
          await assert.rejects(store.getMessage(1), StorageUnavailableError);
          await store.close(); // idempotent
          const again = await PostgresStore.open({ url, schema });
          assert.ok(await again.findKeyByHash(k.hash));
          await again.close();
        } finally {
          await cleanup();
        }
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('storage faults', () => {
      it('classifies PostgreSQL errors: faults of the storage vs bad operations', () => {
        for (const code of ['53100', '53200', '53300', '08006', '08001', '57P01', '57P03', '58030', 'XX000', '25006', '55P03', '57014', 'ECONNREFUSED', 'ECONNRESET']) {
          assert.ok(isPgStorageFault({ code }), code);
        }
        for (const code of ['23505', '23502', '22021', '22P02', '42P01', '40P01', '40001']) assert.ok(!isPgStorageFault({ code }), code);
        assert.ok(isPgStorageFault(new Error('Connection terminated unexpectedly')));
        assert.ok(isRetryable({ code: '40P01' }) && isRetryable({ code: '40001' }) && !isRetryable({ code: '23505' }));
      });

      it('a read-only database (a standby, default_transaction_read_only) refuses every write with StorageUnavailableError', async () => {
        const { store: writable, schema, cleanup } = await freshStore();
        opened++;
        try {
          const m = await commitOne(writable, msg());
          const store = await PostgresStore.open({ url, schema, settings: { default_transaction_read_only: 'on' } });
          try {
            const results = await Promise.allSettled([store.commitMessages([msg()]), store.insertKey(key()), store.upsertParticipant('B', 'B', null, 1)]);
            for (const r of results) {
              assert.equal(r.status, 'rejected');
              assert.ok((r as PromiseRejectedResult).reason instanceof StorageUnavailableError, String((r as PromiseRejectedResult).reason));
            }
            assert.equal((await store.getMessage(m.sequence))!.id, m.id, 'reads still work');
            assert.match((await store.writableFault()) ?? '', /read-only/, 'a readiness probe can tell');
            assert.equal(await writable.writableFault(), null);
          } finally {
            await store.close();
          }
        } finally {
          await cleanup();
        }
      });

      it('a lock held too long by another session fails the group with StorageUnavailableError (no hang), then writes work again', withStore(async (store, schema) => {
        const holder = await adminClient(url, schema);
        try {
          await holder.query('BEGIN');
          await holder.query('SELECT last FROM hub_sequence FOR UPDATE');
          const started = performance.now();
          const results = await Promise.allSettled([store.commitMessages([msg()]), store.insertKey(key())]);
          const took = performance.now() - started;
          for (const r of results) assert.ok(r.status === 'rejected' && r.reason instanceof StorageUnavailableError, String((r as PromiseRejectedResult).reason));
          assert.ok(took >= 250 && took < 5000, `gave up after ${Math.round(took)} ms`);
          await holder.query('ROLLBACK');
          assert.equal((await store.commitMessages([msg()]))[0]!.kind, 'accepted');
        } finally {
          await holder.query('ROLLBACK').catch(() => {});
          await holder.end();
        }
      }, { lockTimeoutMs: 300 }));

      it('a connection killed mid-transaction fails its group with StorageUnavailableError; nothing of it is kept', async () => {
        const schema = freshSchemaName();
        const app = `meterhub-kill-${schema}`;
        const store = await PostgresStore.open({ url, schema, applicationName: app });
        opened++;
        const holder = await adminClient(url, schema);
        const observer = await adminClient(url, schema); // outside a transaction: pg_stat_activity is a snapshot per transaction
        try {
          await holder.query('BEGIN');
          await holder.query('SELECT last FROM hub_sequence FOR UPDATE');
          const k = key();
          const m = msg();
          const writes = Promise.allSettled([store.commitMessages([m]), store.insertKey(k)]);
          // Wait until the store's group is waiting for the lock, then kill its backend.
          let killed = false;
          for (let i = 0; i < 200 && !killed; i++) {
            const { rows } = await observer.query("SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", [app]);
            if (rows.length > 0) killed = (await observer.query('SELECT pg_terminate_backend($1) AS ok', [rows[0].pid])).rows[0].ok;
            else await new Promise((r) => setTimeout(r, 10));
          }
          assert.ok(killed, 'found the waiting backend and killed it');
          for (const r of await writes) assert.ok(r.status === 'rejected' && r.reason instanceof StorageUnavailableError, String((r as PromiseRejectedResult).reason));
          await holder.query('ROLLBACK');
          assert.equal(await store.findKeyByHash(k.hash), null, 'nothing of the failed group');
          assert.equal(await store.findMessage(m.source, m.id), null);
          assert.equal((await store.commitMessages([m]))[0]!.kind, 'accepted', 'a new connection takes over');
        } finally {
          await holder.query('ROLLBACK').catch(() => {});
          await holder.end();
          await observer.end();
          await store.close();
          await dropSchema(schema);
        }
      });

      it('the server going away fails writes and reads with StorageUnavailableError; coming back, the store works again', async () => {
        // A TCP proxy in front of the server that we can cut.
        const target = new URL(url);
        const sockets = new Set<Socket>();
        let proxy: Server | null = null;
        const startProxy = (port: number) => new Promise<number>((resolve) => {
          proxy = createServer((client) => {
            const upstream = connect(Number(target.port || 5432), target.hostname || '127.0.0.1');
            for (const s of [client, upstream]) { sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => {}); }
            client.pipe(upstream).pipe(client);
          });
          proxy.listen(port, '127.0.0.1', () => resolve((proxy!.address() as { port: number }).port));
        });
        const stopProxy = () => new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          proxy!.close(() => resolve());
        });
        const port = await startProxy(0);
        const viaProxy = new URL(url);
        viaProxy.hostname = '127.0.0.1';
        viaProxy.port = String(port);
        const schema = freshSchemaName();
        const store = await PostgresStore.open({ url: viaProxy.toString(), schema, connectTimeoutMs: 1000 });
        opened++;
        try {
          const m = await commitOne(store, msg());
          await stopProxy();
          const writes = await Promise.allSettled([store.commitMessages([msg()]), store.insertKey(key())]);
          for (const r of writes) assert.ok(r.status === 'rejected' && r.reason instanceof StorageUnavailableError, String((r as PromiseRejectedResult).reason));
          await assert.rejects(store.getMessage(m.sequence), StorageUnavailableError);
          await startProxy(port);
          assert.equal((await store.getMessage(m.sequence))!.id, m.id);
          assert.equal((await store.commitMessages([msg()]))[0]!.kind, 'accepted');
        } finally {
          await store.close();
          if (proxy) await stopProxy().catch(() => {});
          await dropSchema(schema);
        }
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('several processes on one database', () => {
      it('sequences are unique and in commit order across two stores committing concurrently', async () => {
        const { stores, schema, cleanup } = await shared(2);
        const reader = await adminClient(url, schema);
        try {
          interface Commit { store: number; started: number; resolved: number; sequences: number[] }
          const commits: Commit[] = [];
          const snapshots: number[][] = [];
          let done = false;
          // A reader watching which sequences are visible: always a prefix of the final set.
          const watching = (async () => {
            while (!done) {
              snapshots.push((await reader.query('SELECT sequence FROM messages ORDER BY sequence')).rows.map((r) => Number(r.sequence)));
              await new Promise((r) => setImmediate(r));
            }
          })();
          const worker = async (s: number) => {
            for (let i = 0; i < 60; i++) {
              const batch = Array.from({ length: 1 + (i % 3) }, () => msg({ to: ['R'] }));
              const started = performance.now();
              const results = await stores[s]!.commitMessages(batch);
              const resolved = performance.now();
              commits.push({ store: s, started, resolved, sequences: results.map((r) => r.message.sequence) });
              if (i % 7 === 0) await new Promise((r) => setTimeout(r, Math.random() * 3));
            }
          };
          try {
            await Promise.all([0, 0, 0, 0, 1, 1, 1, 1].map((s) => worker(s)));
          } finally {
            done = true;
            await watching;
          }

          const all = commits.flatMap((c) => c.sequences);
          assert.equal(new Set(all).size, all.length, 'unique');
          for (const c of commits) for (let i = 1; i < c.sequences.length; i++) assert.ok(c.sequences[i]! > c.sequences[i - 1]!, 'in order within a call');
          assert.ok(commits.some((c) => c.store === 0) && commits.some((c) => c.store === 1));
          // Whatever resolved before another commit started was numbered below it.
          let pairs = 0;
          for (const a of commits) {
            for (const b of commits) {
              if (a.resolved < b.started) {
                pairs++;
                assert.ok(Math.max(...a.sequences) < Math.min(...b.sequences), `commit resolved at ${a.resolved} got ${a.sequences}, a later one ${b.sequences}`);
              }
            }
          }
          assert.ok(pairs > 1000, `${pairs} ordered pairs checked`);
          // Never a later sequence visible without every earlier one that committed.
          const final = [...all].sort((x, y) => x - y);
          for (const snap of snapshots) {
            if (snap.length === 0) continue;
            const max = snap.at(-1)!;
            assert.deepEqual(snap, final.filter((x) => x <= max), `a snapshot up to ${max} misses an earlier sequence`);
          }
          assert.ok(snapshots.length > 10, `${snapshots.length} snapshots`);
        } finally {
          await reader.end();
          await cleanup();
        }
      });

      it('the same (source, id) sent through two stores at once is accepted once, the other a duplicate', async () => {
        const { stores, cleanup } = await shared(2);
        try {
          for (let i = 0; i < 20; i++) {
            const m = msg({ to: ['R1', 'R2'] });
            const results = (await Promise.all([stores[0]!.commitMessages([{ ...m }]), stores[1]!.commitMessages([{ ...m }])])).flat();
            assert.deepEqual(results.map((r) => r.kind).sort(), ['accepted', 'duplicate']);
            assert.equal(results[0]!.message.sequence, results[1]!.message.sequence);
            assert.equal((await stores[0]!.getDeliveries(results[0]!.message.sequence)).length, 2);
          }
        } finally {
          await cleanup();
        }
      });

      it('two stores claiming one receiver concurrently never claim the same delivery', async () => {
        const { stores, cleanup } = await shared(2);
        try {
          const n = 300;
          for (let i = 0; i < n; i += 50) await stores[0]!.commitMessages(Array.from({ length: 50 }, (_, j) => msg({ to: ['R'], subject: `NMI${(i + j) % 7}` })));
          const claimed: number[] = [];
          const worker = async (s: number, w: number) => {
            for (;;) {
              const got = await stores[s]!.claimPush('R', 1 + ((w * 3) % 9), T0 + MIN, T0 + 10 * MIN, `proc-${s}-${w}`);
              if (got.length === 0) return;
              claimed.push(...got.map((d) => d.id));
              await stores[s]!.recordPushResults(got.map((d) => ({ delivery: d, result: { kind: 'delivered' as const, status: 200, latencyMs: 1, at: T0 + MIN } })));
            }
          };
          await Promise.all([0, 0, 0, 1, 1, 1].map((s, w) => worker(s, w)));
          assert.equal(claimed.length, n, 'every delivery claimed');
          assert.equal(new Set(claimed).size, n, 'none twice');
          const counts = await stores[1]!.countDeliveriesByState();
          assert.deepEqual(counts, [{ receiver: 'R', state: 'delivered', count: n }]);
        } finally {
          await cleanup();
        }
      });

      for (const mode of ['push', 'pull'] as const) {
        it(`ordered ${mode} claims across two stores never have two in flight of one subject, and go in sequence order`, async () => {
          const { stores, cleanup } = await shared(2);
          try {
            const subjects = 6;
            const perSubject = 25;
            const made: DeliveryRecord[] = [];
            for (let i = 0; i < perSubject; i++) {
              const results = await stores[i % 2]!.commitMessages(Array.from({ length: subjects }, (_, s) => msg({ to: [['R', mode]], subject: `NMI${s}`, receivedAt: T0 })));
              for (const r of results) made.push(...await stores[0]!.getDeliveries(r.message.sequence));
            }
            const bySubject = new Map<string, DeliveryRecord[]>();
            for (const d of made) bySubject.set(d.subject, [...(bySubject.get(d.subject) ?? []), d]);
            const inFlight = new Map<string, number>(); // subject -> delivery id, from claim resolved to result issued
            const finished = new Set<number>(); // final result issued
            const violations: string[] = [];
            let attempts = 0;
            const now = () => T0 + MIN;
            const claim = (s: number): Promise<ClaimedDelivery[]> => mode === 'push'
              ? stores[s]!.claimPush('R', 4, now(), now() + 10 * MIN, `proc-${s}`, true)
              : stores[s]!.leasePull('R', 4, now(), now() + 10 * MIN, 1000, undefined, true);
            const worker = async (s: number) => {
              let idle = 0;
              while (finished.size < made.length && idle < 200) {
                const got = await claim(s);
                if (got.length === 0) { idle++; await new Promise((r) => setTimeout(r, 1)); continue; }
                idle = 0;
                for (const d of got) {
                  attempts++;
                  const other = inFlight.get(d.subject);
                  if (other !== undefined) violations.push(`${d.subject}: ${d.id} claimed while ${other} in flight`);
                  const earlier = bySubject.get(d.subject)!.filter((e) => e.sequence < d.sequence && !finished.has(e.id));
                  if (earlier.length > 0) violations.push(`${d.subject}: ${d.id} (seq ${d.sequence}) before ${earlier.map((e) => e.id)}`);
                  inFlight.set(d.subject, d.id);
                }
                await Promise.all(got.map(async (d) => {
                  await new Promise((r) => setTimeout(r, Math.random() * 2));
                  const again = Math.random() < 0.2; // a retry (push) or a nack (pull): the head goes back to pending
                  inFlight.delete(d.subject);
                  if (!again) finished.add(d.id);
                  if (mode === 'push') {
                    const [ok] = await stores[s]!.recordPushResults([{ delivery: d, result: again
                      ? { kind: 'retry', status: 503, latencyMs: 1, at: now(), error: 'HTTP 503', nextAttemptAt: now() }
                      : { kind: 'delivered', status: 200, latencyMs: 1, at: now() } }]);
                    assert.ok(ok);
                  } else {
                    const [r] = again ? await stores[s]!.nackPull('R', [d.leaseToken], now(), now()) : await stores[s]!.ackPull('R', [d.leaseToken], now());
                    assert.equal(r!.result, 'acked');
                  }
                }));
              }
            };
            await Promise.all([0, 0, 1, 1].map((s) => worker(s)));
            assert.deepEqual(violations, []);
            assert.equal(finished.size, made.length, 'all delivered');
            assert.ok(attempts > made.length, 'with some retries');
            assert.deepEqual(await stores[0]!.countDeliveriesByState(), [{ receiver: 'R', state: 'delivered', count: made.length }]);
          } finally {
            await cleanup();
          }
        });
      }

      it('expired leases rescued by two stores at once are each rescued once', async () => {
        const { stores, cleanup } = await shared(2);
        try {
          const push: DeliveryRecord[] = [];
          const pull: DeliveryRecord[] = [];
          for (let i = 0; i < 40; i++) push.push(await oneDelivery(stores[0]!, 'P', 'push'));
          for (let i = 0; i < 40; i++) pull.push(await oneDelivery(stores[1]!, 'Q', 'pull'));
          assert.equal((await stores[0]!.claimPush('P', 100, T0, T0 + 1000, 'dead-proc')).length, 40);
          assert.equal((await stores[1]!.leasePull('Q', 100, T0, T0 + 1000, 10)).length, 40);
          const rescued = await Promise.all([stores[0]!.rescueExpiredPush(T0 + 1000), stores[1]!.rescueExpiredPush(T0 + 1000)]);
          const expired = await Promise.all([stores[0]!.expirePullLeases(T0 + 1000, () => 10), stores[1]!.expirePullLeases(T0 + 1000, () => 10)]);
          assert.equal(rescued[0]! + rescued[1]!, 40);
          assert.equal(expired[0]!.released + expired[1]!.released, 40);
          for (const d of push) assert.deepEqual((await stores[0]!.getAttempts(d.sequence)).map((a) => a.outcome), ['lease-lost']);
          for (const d of pull) assert.deepEqual((await stores[0]!.getAttempts(d.sequence)).map((a) => a.outcome), ['leased', 'expired']);
        } finally {
          await cleanup();
        }
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('the hub on PostgreSQL', () => {
      it('METERHUB_DATABASE_URL selects it; two hubs share one database, and starting one does not take the other\'s leases', async () => {
        const { startTestHub } = await import('../support/hub.ts');
        const schema = freshSchemaName();
        const databaseUrl = new URL(url);
        databaseUrl.searchParams.set('schema', schema);
        const dirs = [mkdtempSync(join(tmpdir(), 'meterhub-pg-hub-')), mkdtempSync(join(tmpdir(), 'meterhub-pg-hub-'))];
        const first = await startTestHub({ storage: { databaseUrl: databaseUrl.toString() } }, { dataDir: dirs[0]! });
        let second: Awaited<ReturnType<typeof startTestHub>> | null = null;
        try {
          assert.equal(first.hub.store.kind, 'postgres');
          // A live lease of the first hub (a push in flight).
          const d = await oneDelivery(first.hub.store, 'SOMEONE', 'push', { receivedAt: Date.now() - 1000 });
          const [lease] = await first.hub.store.claimPush('SOMEONE', 1, Date.now(), Date.now() + 10 * MIN, 'first-hub');
          assert.equal(lease!.id, d.id);
          mkdirSync(dirs[1]!, { recursive: true });
          second = await startTestHub({ storage: { databaseUrl: databaseUrl.toString() } }, { dataDir: dirs[1]! });
          const after = await second.hub.store.getDelivery(d.id);
          assert.equal(after!.state, 'delivering', 'still leased by the first hub');
          assert.equal(after!.leaseToken, lease!.leaseToken);

          // End to end through the second hub: ingest, then the pull inbox.
          const sender = await second.participant('MDP-A');
          const inbox = await second.participant('RETAILER-A', { mode: 'pull' });
          await second.routes([{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }]);
          const res = await second.api('POST', '/v1/messages', {
            key: sender.key, headers: { 'content-type': 'application/cloudevents+json' },
            body: JSON.stringify({ specversion: '1.0', id: 'pg-e2e-1', source: 'MDP-A', type: 'au.nem12.interval', subject: 'NMI0000001', data: { kwh: 1.5 } }),
          });
          assert.equal(res.status, 202, res.text);
          const polled = await second.api('GET', '/v1/inbox?max=5&wait=2', { key: inbox.key });
          assert.equal(polled.status, 200, polled.text);
          assert.deepEqual(polled.json.messages.map((m: { event: { id: string; data: unknown } }) => [m.event.id, m.event.data]), [['pg-e2e-1', { kwh: 1.5 }]]);
          const acked = await second.api('POST', '/v1/inbox/ack', { key: inbox.key, json: { leases: [polled.json.messages[0].lease] } });
          assert.equal(acked.status, 200, acked.text);
          const [delivered] = await first.hub.store.getDeliveries(res.json.sequence);
          assert.equal(delivered!.state, 'delivered', 'the other hub sees it delivered');
        } finally {
          await second?.close();
          await first.close();
          for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
          await dropSchema(schema);
        }
      });
    });
  });
}
