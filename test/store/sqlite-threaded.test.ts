/**
 * The embedded store with its writes in a worker thread (ThreadedSqliteStore, the hub's default)
 * passes the same conformance suite as SqliteStore, plus what only the thread split can get
 * wrong: errors keep their kind across the thread, bodies cross as exact bytes, a write's
 * result is visible to the next read here, and a closed or failed worker refuses writes as a
 * storage outage (503), never a hang.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { ThreadedSqliteStore } from '../../src/store/sqlite/threaded-sqlite-store.ts';
import { StorageUnavailableError, isStorageFault } from '../../src/store/storage-error.ts';
import type { KeyRecord, NewMessage } from '../../src/store/types.ts';
import { runStoreConformance } from './conformance.ts';

const tempDir = () => mkdtempSync(join(tmpdir(), 'meterhub-threaded-'));

runStoreConformance('ThreadedSqliteStore', async () => {
  const dir = tempDir();
  const store = await ThreadedSqliteStore.open(join(dir, 'meterhub.db'));
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

const message = (id: string, body: Buffer): NewMessage => ({
  source: 'MDP-A', id, type: 't', subject: 'NMI1', time: null, attributes: { specversion: '1.0', id, source: 'MDP-A', type: 't', subject: 'NMI1' },
  contentType: 'application/octet-stream', size: body.length, sha256: 'x', fingerprint: `f-${id}`, receivedAt: 1, body: { kind: 'inline' }, inlineBody: body,
  receivers: [{ receiver: 'R', mode: 'push' }],
});

async function withStore(fn: (store: ThreadedSqliteStore, file: string) => Promise<void>): Promise<void> {
  const dir = tempDir();
  const file = join(dir, 'meterhub.db');
  const store = await ThreadedSqliteStore.open(file);
  try {
    await fn(store, file);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('ThreadedSqliteStore (the thread split)', () => {
  it('stores a body that is a view into a larger buffer as exactly its own bytes', () => withStore(async (store) => {
    const big = Buffer.alloc(64 * 1024, 0x61);
    big.write('HELLO', 1000);
    const view = big.subarray(1000, 1005);
    const [r] = await store.commitMessages([message('view', view)]);
    assert.equal(r!.kind, 'accepted');
    const stored = await store.readInlineBody(r!.message.sequence);
    assert.ok(Buffer.isBuffer(stored));
    assert.equal(stored!.toString(), 'HELLO');
    assert.equal(view.toString(), 'HELLO', 'the caller\'s buffer is left as it was');
  }));

  it('a message just accepted reads back (from the recent messages) exactly as SQLite has it', () => withStore(async (store, file) => {
    const accepted = await store.commitMessages([message('recent-1', Buffer.from('{"v":1}')), { ...message('recent-2', Buffer.alloc(0)), time: '2026-01-01T00:00:00Z' }]);
    const fromFile = new SqliteStore(file, { reader: true });
    try {
      for (const r of accepted) {
        assert.equal(r.kind, 'accepted');
        const seq = r.message.sequence;
        assert.deepEqual(await store.getMessage(seq), await fromFile.getMessage(seq), `message ${seq}`);
        assert.deepEqual(await store.readInlineBody(seq), await fromFile.readInlineBody(seq), `body of ${seq}`);
      }
      const first = (await store.getMessage(accepted[0]!.message.sequence))!;
      first.subject = 'changed by a caller';
      assert.equal((await store.getMessage(accepted[0]!.message.sequence))!.subject, 'NMI1', 'each caller gets its own copy');
    } finally {
      await fromFile.close();
    }
  }));

  it('a bad write fails alone, as the same kind of error, and the others of its turn commit', () => withStore(async (store) => {
    const key = (id: string, hash: string): KeyRecord => ({ id, participant: 'A', role: 'participant', hash, createdAt: 1, revokedAt: null });
    await store.insertKey(key('k1', 'h1'));
    const [dup, other] = await Promise.allSettled([store.insertKey(key('k1', 'h2')), store.insertKey(key('k2', 'h3'))]);
    assert.equal(dup.status, 'rejected');
    assert.match(String((dup as PromiseRejectedResult).reason.code), /^SQLITE_CONSTRAINT/);
    assert.equal(isStorageFault((dup as PromiseRejectedResult).reason), false, 'a duplicate key is a bad operation, not an outage');
    assert.equal(other.status, 'fulfilled');
    assert.equal((await store.findKeyByHash('h3'))?.id, 'k2', 'visible to the next read, on the other connection');
  }));

  it('refuses writes once closed with StorageUnavailableError, and close is idempotent', async () => {
    const dir = tempDir();
    const store = await ThreadedSqliteStore.open(join(dir, 'meterhub.db'));
    const inFlight = store.commitMessages([message('last', Buffer.from('x'))]);
    await Promise.all([store.close(), store.close()]);
    assert.equal((await inFlight)[0]!.kind, 'accepted', 'a write issued before close is committed');
    await assert.rejects(store.setRoutes([], 1), StorageUnavailableError);
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses to open a file written by a newer hub, and says why', async () => {
    const dir = tempDir();
    const file = join(dir, 'meterhub.db');
    const db = new Database(file);
    db.pragma('user_version = 9999');
    db.close();
    await assert.rejects(ThreadedSqliteStore.open(file), /newer/);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a file that is not a database fails to open, it does not hang', async () => {
    const dir = tempDir();
    const file = join(dir, 'meterhub.db');
    writeFileSync(file, 'this is not a database'.repeat(100));
    await assert.rejects(ThreadedSqliteStore.open(file));
    rmSync(dir, { recursive: true, force: true });
  });
});
