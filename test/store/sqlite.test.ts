import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { migrate } from '../../src/store/sqlite/database.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { StorageUnavailableError } from '../../src/store/storage-error.ts';
import type { KeyRecord, NewMessage } from '../../src/store/types.ts';
import { runStoreConformance } from './conformance.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const MIGRATIONS = fileURLToPath(new URL('../../src/store/sqlite/migrations/', import.meta.url));

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'meterhub-store-'));
}

runStoreConformance('SqliteStore', async () => {
  const dir = tempDir();
  const store = new SqliteStore(join(dir, 'meterhub.db'));
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

/** A fresh store on a temp file, for the SQLite-only cases. */
function withFile(fn: (file: string, dir: string) => Promise<void>) {
  return async () => {
    const dir = tempDir();
    try {
      await fn(join(dir, 'meterhub.db'), dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

let n = 0;
const key = (): KeyRecord => ({ id: `k${++n}`, participant: 'A', role: 'participant', hash: `hash-${n}-${Math.random()}`, createdAt: 1, revokedAt: null });
const message = (id: string): NewMessage => ({
  source: 'MDP-A', id, type: 't', subject: 'NMI1', time: null, attributes: { specversion: '1.0', id, source: 'MDP-A', type: 't', subject: 'NMI1' },
  contentType: 'application/json', size: 2, sha256: 'x', fingerprint: `f-${id}`, receivedAt: 1, body: { kind: 'inline' }, inlineBody: Buffer.from('{}'),
  receivers: [{ receiver: 'R', mode: 'push' }],
});

const migrationFiles = () => readdirSync(MIGRATIONS).filter((f) => f.endsWith('.sql')).sort();

describe('SqliteStore (SQLite only)', () => {
  describe('migrations', () => {
    it('are numbered from 0001 without gaps, one forward-only file each', () => {
      const all = readdirSync(MIGRATIONS);
      assert.deepEqual(all.filter((f) => !/^\d{4}_[a-z0-9_]+\.sql$/.test(f)), [], 'only NNNN_name.sql files (no down migrations)');
      const numbers = migrationFiles().map((f) => Number(f.slice(0, 4)));
      assert.deepEqual(numbers, numbers.map((_, i) => i + 1));
    });

    it('a new file ends at user_version = the highest migration number', withFile(async (file) => {
      const store = new SqliteStore(file);
      const highest = Number(migrationFiles().at(-1)!.slice(0, 4));
      assert.equal(store.database.pragma('user_version', { simple: true }), highest);
      await store.close();
    }));

    it('reopening an existing file applies nothing new and keeps the data', withFile(async (file) => {
      const first = new SqliteStore(file);
      await first.upsertParticipant('A', 'A', null, 1);
      const schema = first.database.prepare('SELECT type, name, sql FROM sqlite_master ORDER BY name').all();
      const version = first.database.pragma('user_version', { simple: true });
      await first.close();

      const second = new SqliteStore(file);
      assert.equal(migrate(second.database), 0, 'nothing left to apply');
      assert.equal(second.database.pragma('user_version', { simple: true }), version);
      assert.deepEqual(second.database.prepare('SELECT type, name, sql FROM sqlite_master ORDER BY name').all(), schema);
      assert.equal((await second.getParticipant('A'))!.name, 'A');
      await second.close();
    }));

    it('only migrations numbered above user_version run, each atomically', withFile(async (file, dir) => {
      const mdir = join(dir, 'migrations');
      mkdirSync(mdir);
      writeFileSync(join(mdir, '0001_a.sql'), 'CREATE TABLE a (x INTEGER);');
      const db = new Database(file);
      assert.equal(migrate(db, mdir), 1);
      assert.equal(migrate(db, mdir), 0);
      writeFileSync(join(mdir, '0002_b.sql'), 'CREATE TABLE b (x INTEGER);');
      writeFileSync(join(mdir, '0003_broken.sql'), 'CREATE TABLE c (x INTEGER); INSERT INTO nowhere VALUES (1);');
      assert.throws(() => migrate(db, mdir), /nowhere/);
      assert.equal(db.pragma('user_version', { simple: true }), 2, '0002 applied, 0003 not');
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>).map((r) => r.name);
      assert.deepEqual(tables, ['a', 'b'], 'the broken migration left nothing behind');
      db.close();
    }));

    it('a file made by schema version 1 upgrades in place: deliveries keep their data and get firstCreatedAt', withFile(async (file, dir) => {
      const v1 = join(dir, 'v1');
      mkdirSync(v1);
      writeFileSync(join(v1, '0001_init.sql'), readFileSync(join(MIGRATIONS, '0001_init.sql')));
      const db = new Database(file);
      migrate(db, v1);
      db.prepare(`INSERT INTO messages (source, id, type, subject, attributes, content_type, size, sha256, fingerprint, received_at, body_kind)
        VALUES ('MDP-A', 'old', 't', 'NMI1', '{"specversion":"1.0","id":"old","source":"MDP-A","type":"t","subject":"NMI1"}', 'application/json', 2, 'x', 'f', 5, 'inline')`).run();
      db.prepare(`INSERT INTO deliveries (sequence, receiver, mode, subject, state, created_at, next_attempt_at, webhook_id)
        VALUES (1, 'R', 'push', 'NMI1', 'pending', 5, 5, 'msg_1_R')`).run();
      db.close();
      const store = new SqliteStore(file);
      const [d] = await store.getDeliveries(1);
      assert.equal(d!.createdAt, 5);
      assert.equal(d!.firstCreatedAt, 5, 'backfilled from created_at');
      assert.equal((await store.claimPush('R', 10, 5, 100, 'tok', true)).length, 1, 'and it is claimable with ordering');
      await store.close();
    }));

    it('a file from a newer version is refused, not opened', withFile(async (file) => {
      const store = new SqliteStore(file);
      const highest = store.database.pragma('user_version', { simple: true }) as number;
      store.database.pragma(`user_version = ${highest + 1}`);
      await store.close();
      assert.throws(() => new SqliteStore(file), /newer/);
    }));
  });

  it('runs in WAL mode with synchronous=FULL', withFile(async (file) => {
    const store = new SqliteStore(file);
    assert.equal(store.database.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(store.database.pragma('synchronous', { simple: true }), 2);
    const other = new Database(file);
    assert.equal(other.pragma('journal_mode', { simple: true }), 'wal', 'WAL is recorded in the file');
    other.close();
    await store.close();
  }));

  describe('group commit durability', () => {
    it('a write resolves only after its COMMIT: invisible to another connection before, visible when it resolves', withFile(async (file) => {
      const store = new SqliteStore(file);
      const reader = new Database(file, { readonly: true });
      const seen = (hash: string) => reader.prepare('SELECT 1 AS x FROM api_keys WHERE hash = ?').get(hash) !== undefined;
      // A pull lease that has expired, so that expirePullLeases calls back into the test from inside the group's transaction.
      await store.commitMessages([{ ...message('m1'), receivers: [{ receiver: 'R', mode: 'pull' }] }]);
      await store.leasePull('R', 1, 1, 2, 10);

      const keys = Array.from({ length: 50 }, key);
      let seenInside: boolean | null = null;
      const visibleWhenResolved: boolean[] = [];
      const writes = keys.map((k) => store.insertKey(k).then(() => { visibleWhenResolved.push(keys.every((x) => seen(x.hash))); }));
      const expiry = store.expirePullLeases(10, () => { seenInside = seen(keys[0]!.hash); return 10; });
      assert.equal(seen(keys[0]!.hash), false, 'nothing written before the group runs');
      await Promise.all([...writes, expiry]);
      assert.equal(seenInside, false, 'inside the group, before COMMIT, another connection does not see it');
      assert.deepEqual(visibleWhenResolved, keys.map(() => true), 'each write sees the whole group committed when it resolves');
      reader.close();
      await store.close();
    }));

    it('a lock held by another connection fails every write of the group with StorageUnavailableError', withFile(async (file) => {
      const store = new SqliteStore(file);
      store.database.pragma('busy_timeout = 20');
      const other = new Database(file);
      other.exec('BEGIN EXCLUSIVE');
      other.prepare("INSERT INTO meta (key, value) VALUES ('locked', 'yes')").run();
      const k = key();
      const results = await Promise.allSettled([
        store.insertKey(k),
        store.commitMessages([message('locked-1')]),
        store.upsertParticipant('B', 'B', null, 1),
      ]);
      for (const r of results) {
        assert.equal(r.status, 'rejected');
        assert.ok((r as PromiseRejectedResult).reason instanceof StorageUnavailableError, String((r as PromiseRejectedResult).reason));
      }
      assert.equal(store.database.inTransaction, false);
      other.exec('ROLLBACK');
      other.close();
      // The store works again, and nothing of the failed group was kept.
      assert.equal(await store.findKeyByHash(k.hash), null);
      assert.equal(await store.getParticipant('B'), null);
      const [again] = await store.commitMessages([message('locked-1')]);
      assert.equal(again!.kind, 'accepted');
      await store.upsertParticipant('B', 'B', null, 2);
      await store.close();
    }));

    it('a full disk fails the COMMIT and every write of its group with StorageUnavailableError (real tmpfs)', async (t) => {
      const dir = tempDir();
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const script = fileURLToPath(new URL('./fixtures/disk-full.ts', import.meta.url));
      const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile('unshare', ['--user', '--map-root-user', '--mount', 'sh', '-c',
          'mount -t tmpfs -o size=3m meterhub-test "$0" || exit 97; exec "$1" --import tsx "$2" "$0"', dir, process.execPath, script],
        { cwd: REPO, timeout: 60_000 }, (error, stdout, stderr) => resolve({ code: error ? (error as { code?: number }).code ?? 1 : 0, stdout, stderr }));
      });
      const line = run.stdout.split('\n').find((l) => l.startsWith('RESULT '));
      if (!line) {
        if (run.code === 97 || /unshare|mount|Operation not permitted/i.test(run.stderr)) {
          t.skip(`cannot mount a private tmpfs here: ${run.stderr.trim().slice(0, 200)}`);
          return;
        }
        assert.fail(`the disk-full script failed (${run.code}): ${run.stderr}`);
      }
      const r = JSON.parse(line.slice('RESULT '.length));
      assert.deepEqual(r.commitFull.statuses, ['rejected', 'rejected', 'rejected'], JSON.stringify(r));
      assert.deepEqual(r.commitFull.names, ['StorageUnavailableError', 'StorageUnavailableError', 'StorageUnavailableError']);
      assert.ok(r.commitFull.failedSql.includes('COMMIT'), `the COMMIT itself failed: ${JSON.stringify(r.commitFull)}`);
      assert.match(r.commitFull.causeCode, /^SQLITE_FULL/);
      assert.deepEqual(r.writeFull.statuses, ['rejected', 'rejected', 'rejected'], JSON.stringify(r));
      assert.deepEqual(r.writeFull.names, ['StorageUnavailableError', 'StorageUnavailableError', 'StorageUnavailableError'], JSON.stringify(r.writeFull));
      assert.deepEqual(r.after, { accepted: true, failedGroupsKept: false, earlierKept: true, integrity: 'ok' });
    });
  });

  it('close commits the writes already issued; writes after close fail with StorageUnavailableError', withFile(async (file) => {
    const store = new SqliteStore(file);
    const k = key();
    const pending = store.insertKey(k);
    await store.close();
    await pending;
    await assert.rejects(store.insertKey(key()), StorageUnavailableError);
    await store.close(); // idempotent
    const again = new SqliteStore(file);
    assert.ok(await again.findKeyByHash(k.hash));
    await again.close();
  }));
});
