/**
 * The embedded store's worker thread (storage.sqliteWrites: worker) stops under a running hub,
 * as if it had crashed: every write issued to it ends as 503 with Retry-After (never a 202 it did
 * not commit, never a request left hanging), /readyz and /healthz say why (only a restart brings
 * the writer back), reads keep working, and what was acknowledged before is still there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Worker } from 'node:worker_threads';
import { startTestHub } from '../support/hub.ts';
import { ThreadedSqliteStore } from '../../src/store/sqlite/threaded-sqlite-store.ts';

const event = (id: string) => JSON.stringify({ specversion: '1.0', id, source: 'MDP-A', type: 'test.reading', subject: 'NMI1', data: { v: 1 } });

test('a store worker that stops: writes answer 503 + Retry-After, /readyz not ready, what was accepted stays readable', async (t) => {
  const hub = await startTestHub();
  try {
    if (!(hub.hub.store instanceof ThreadedSqliteStore)) { t.skip('the hub is not on the threaded SQLite store'); return; }
    const { key } = await hub.participant('MDP-A');
    await hub.participant('RETAILER-A', { mode: 'pull' });
    await hub.routes([{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }]);
    const send = (id: string) => hub.api('POST', '/v1/messages', { key, body: event(id), headers: { 'content-type': 'application/cloudevents+json' } });
    const before = await send('before');
    assert.equal(before.status, 202);
    assert.equal((await hub.api('GET', '/readyz')).status, 200);

    const worker = (hub.hub.store as unknown as { worker: Worker }).worker;
    // Writes issued while it goes, and after.
    const during = [send('during-1'), send('during-2')];
    await worker.terminate();
    const after = await send('after');
    for (const r of [...(await Promise.all(during)), after]) {
      if (r.status === 202) continue; // committed before the thread went: a true 202
      assert.equal(r.status, 503, r.text);
      assert.equal(r.json.type.endsWith('storage-unavailable'), true, r.text);
      assert.ok(Number(r.headers['retry-after']) >= 1);
    }
    assert.equal(after.status, 503, 'nothing is accepted once the writer is gone');
    const alive = await hub.api('GET', '/healthz');
    assert.equal(alive.status, 503, 'not alive: only a restart brings the writer back');
    const ready = await hub.api('GET', '/readyz');
    assert.equal(ready.status, 503);
    assert.match(ready.json.detail, /worker thread/);
    // The message acknowledged before is still readable.
    const status = await hub.api('GET', `/v1/messages/${before.json.sequence}`, { key });
    assert.equal(status.status, 200);
    assert.equal(status.json.id, 'before');
  } finally {
    await hub.close();
  }
});

test('a hub that fails to start (a registry file that is not there) closes its store and frees its data folder', async () => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dataDir = mkdtempSync(join(tmpdir(), 'meterhub-failed-start-'));
  try {
    await assert.rejects(startTestHub({ meters: [join(dataDir, 'missing.csv')] }, { dataDir }), /missing\.csv|ENOENT/);
    // The lock is free and the file is closed: the same folder starts.
    const hub = await startTestHub({}, { dataDir });
    assert.equal((await hub.api('GET', '/readyz')).status, 200);
    await hub.close();
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
