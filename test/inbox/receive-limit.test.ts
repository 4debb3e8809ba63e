import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from '../support/hub.ts';
import { pullHub, RECEIVER } from './pull-fixture.ts';

test('maxReceives 2, never acked: dead after the 2nd lease expires, and polls no longer return it', async (t) => {
  const f = await pullHub({ visibilityTimeoutSeconds: 1, maxReceives: 2 });
  t.after(() => f.close());
  const seq = await f.send('m1');

  const first = await f.poll();
  assert.equal(first.messages.length, 1);
  assert.equal(first.messages[0]!.receives, 1);
  const second = await f.poll('wait=5');
  assert.equal(second.messages.length, 1, 'redelivered once the first lease expired');
  assert.equal(second.messages[0]!.receives, 2);

  const d = await eventually(async () => {
    const x = await f.delivery(seq);
    return x.state === 'dead' ? x : null;
  }, 5000, 'the delivery to go dead');
  assert.ok(d.deadAt, 'deadAt set');
  assert.match(String(d.lastError), /receive limit/);
  assert.deepEqual((await f.attempts(seq)).map((a) => a.outcome), ['leased', 'expired', 'leased', 'dead']);
  const attempts = await f.attempts(seq);
  for (const a of attempts) assert.equal(a.receiver, RECEIVER);
  assert.match(String(attempts[3]!.error), /receive limit/);

  // Gone from the inbox: neither a poll nor a long poll returns it, and the old lease cannot ack.
  assert.equal((await f.poll()).messages.length, 0);
  assert.equal((await f.poll('wait=1')).messages.length, 0);
  assert.deepEqual((await f.ack([second.messages[0]!.lease])).json.results, [{ lease: second.messages[0]!.lease, result: 'expired' }]);
  assert.equal((await f.delivery(seq)).state, 'dead');

  // It is in the dead-letter queue for the operator.
  const dlq = await f.hub.api('GET', `/v1/admin/dlq?receiver=${RECEIVER}`);
  if (dlq.status === 200) assert.ok(JSON.stringify(dlq.json).includes(`${seq}`), dlq.text);
});

test('maxReceives 1: the first expired lease sends it dead', async (t) => {
  const f = await pullHub({ visibilityTimeoutSeconds: 1, maxReceives: 1 });
  t.after(() => f.close());
  const seq = await f.send('m1');
  assert.equal((await f.poll()).messages.length, 1);
  await eventually(async () => (await f.delivery(seq)).state === 'dead', 5000, 'dead');
  assert.deepEqual((await f.attempts(seq)).map((a) => a.outcome), ['leased', 'dead']);
  assert.equal((await f.poll()).messages.length, 0);
});

test('maxReceives 2, nacked every time: not leased a 3rd time, dead instead', async (t) => {
  const f = await pullHub({ visibilityTimeoutSeconds: 30, maxReceives: 2 });
  t.after(() => f.close());
  const seq = await f.send('m1');
  for (let i = 1; i <= 2; i++) {
    const p = await f.poll();
    assert.equal(p.messages.length, 1, `receive ${i}`);
    assert.equal(p.messages[0]!.receives, i);
    assert.equal((await f.nack([p.messages[0]!.lease], 0)).json.results[0].result, 'nacked');
  }
  // Leased twice without an ack: a third lease would exceed the receive limit.
  const third = await f.poll();
  assert.equal(third.messages.length, 0, `not received a 3rd time: ${third.text}`);
  const d = await eventually(async () => {
    const x = await f.delivery(seq);
    return x.state === 'dead' ? x : null;
  }, 3000, 'dead');
  assert.match(String(d.lastError), /receive limit/);
  const outcomes = (await f.attempts(seq)).map((a) => a.outcome);
  assert.deepEqual(outcomes, ['leased', 'nacked', 'leased', 'nacked', 'dead']);
});

test('an ack on the last allowed receive delivers, it does not go dead', async (t) => {
  const f = await pullHub({ visibilityTimeoutSeconds: 1, maxReceives: 2 });
  t.after(() => f.close());
  const seq = await f.send('m1');
  await f.poll();
  const second = await f.poll('wait=5');
  assert.equal(second.messages[0]!.receives, 2);
  assert.equal((await f.ack([second.messages[0]!.lease])).json.results[0].result, 'acked');
  assert.equal((await f.delivery(seq)).state, 'delivered');
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal((await f.delivery(seq)).state, 'delivered');
});

test('going dead raises the alert (metric) both at lease expiry and at lease time after nacks', async (t) => {
  const f = await pullHub({ visibilityTimeoutSeconds: 1, maxReceives: 1 });
  t.after(() => f.close());
  const deadCount = async () => {
    const m = await f.hub.api('GET', '/metrics');
    const line = m.text.split('\n').find((l) => l.startsWith('meterhub_deliveries_dead_total{') && l.includes(`receiver="${RECEIVER}"`));
    return line ? Number(line.split(' ').pop()) : 0;
  };
  // 1: leased once, nacked, then not leased again -> dead at lease time.
  const s1 = await f.send('m1');
  const p1 = await f.poll();
  await f.nack([p1.messages[0]!.lease], 0);
  assert.equal((await f.poll()).messages.length, 0);
  assert.equal((await f.delivery(s1)).state, 'dead');
  assert.equal(await deadCount(), 1, 'the dead-letter at lease time is counted');
  // 2: leased once, never acked -> dead at expiry.
  const s2 = await f.send('m2');
  assert.equal((await f.poll()).messages.length, 1);
  await eventually(async () => (await f.delivery(s2)).state === 'dead', 5000, 'dead at expiry');
  assert.equal(await eventually(async () => (await deadCount()) === 2 && 2, 2000, 'two dead counted'), 2);
});
