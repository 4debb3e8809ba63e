import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pullHub, sleep, type PullFixture } from './pull-fixture.ts';

test('after a restart, un-acked pull deliveries are still there and a lease from before can still be acked', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'meterhub-inbox-restart-'));
  let current: PullFixture | null = null;
  t.after(async () => { await current?.close(); rmSync(dataDir, { recursive: true, force: true }); });

  const before = await pullHub({ visibilityTimeoutSeconds: 30 }, { dataDir });
  current = before;
  const seqs: number[] = [];
  for (let i = 0; i < 4; i++) seqs.push(await before.send(`m${i}`, `{"n":${i},"big":12345678901234567890}`));
  // Lease two (one of them acked before the restart), leave two pending.
  const leased = await before.poll('max=2');
  assert.deepEqual(leased.messages.map((m) => m.event.sequence), seqs.slice(0, 2).map(String));
  const [acked, held] = leased.messages;
  assert.deepEqual((await before.ack([acked!.lease])).json.results, [{ lease: acked!.lease, result: 'acked' }]);
  await before.close();
  current = null;

  const after = await pullHub({}, { dataDir, reuse: { senderKey: before.senderKey, receiverKey: before.receiverKey } });
  current = after;
  // Let the lease keeper run a few times: a lease still valid is not taken back by a restart.
  await sleep(200);
  assert.equal((await after.delivery(seqs[0]!)).state, 'delivered');
  assert.equal((await after.delivery(seqs[1]!)).state, 'delivering');

  const polled = await after.poll('max=10');
  assert.deepEqual(polled.messages.map((m) => m.event.sequence), seqs.slice(2).map(String), 'the pending two, not the acked one nor the leased one');
  assert.ok(polled.text.includes('12345678901234567890'), 'data still byte-exact after the restart');
  for (const m of polled.messages) assert.equal(m.receives, 1);

  const res = await after.ack([held!.lease, ...polled.messages.map((m) => m.lease)]);
  assert.deepEqual(res.json.results.map((r: any) => r.result), ['acked', 'acked', 'acked']);
  for (const s of seqs) assert.equal((await after.delivery(s)).state, 'delivered');
  assert.deepEqual((await after.attempts(seqs[1]!)).map((a) => a.outcome), ['leased', 'acked']);
  assert.equal((await after.poll()).messages.length, 0);
  // The acked lease from before the restart is spent.
  assert.deepEqual((await after.ack([acked!.lease])).json.results, [{ lease: acked!.lease, result: 'expired' }]);
});

test('a lease that expires while the hub is down comes back after the restart', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'meterhub-inbox-restart-'));
  let current: PullFixture | null = null;
  t.after(async () => { await current?.close(); rmSync(dataDir, { recursive: true, force: true }); });

  const before = await pullHub({ visibilityTimeoutSeconds: 1, maxReceives: 3 }, { dataDir });
  current = before;
  const seq = await before.send('m1');
  const old = (await before.poll()).messages[0]!;
  await before.close();
  current = null;
  await sleep(Math.max(0, Date.parse(old.leaseExpiresAt) - Date.now()) + 100);

  const after = await pullHub({}, { dataDir, reuse: { senderKey: before.senderKey, receiverKey: before.receiverKey } });
  current = after;
  const again = await after.poll('wait=3');
  assert.equal(again.messages.length, 1, again.text);
  assert.equal(again.messages[0]!.event.sequence, String(seq));
  assert.equal(again.messages[0]!.receives, 2);
  assert.deepEqual((await after.ack([old.lease])).json.results, [{ lease: old.lease, result: 'expired' }]);
  assert.deepEqual((await after.ack([again.messages[0]!.lease])).json.results, [{ lease: again.messages[0]!.lease, result: 'acked' }]);
  assert.deepEqual((await after.attempts(seq)).map((a) => a.outcome), ['leased', 'expired', 'leased', 'acked']);
});
