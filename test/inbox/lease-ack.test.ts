import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from '../support/hub.ts';
import { pullHub, sleep } from './pull-fixture.ts';

test('a leased message is invisible to other polls until its lease expires, then delivered again', async (t) => {
  const f = await pullHub({ visibilityTimeoutSeconds: 1 });
  t.after(() => f.close());
  const seq = await f.send('m1');

  const first = await f.poll();
  assert.equal(first.messages.length, 1);
  const leasedAt = Date.now();
  assert.equal(first.messages[0]!.receives, 1);
  const expiresAt = Date.parse(first.messages[0]!.leaseExpiresAt);
  assert.ok(expiresAt - leasedAt <= 1000 && expiresAt - leasedAt > 500, `lease of ~1 s, got ${expiresAt - leasedAt} ms`);

  // Still leased: a second poll (and a concurrent one) sees nothing.
  const [a, b] = await Promise.all([f.poll(), f.poll()]);
  assert.equal(a.messages.length + b.messages.length, 0);

  const again = await eventually(async () => {
    const r = await f.poll();
    return r.messages.length > 0 ? r : null;
  }, 5000, 'redelivery after the lease expired');
  const elapsed = Date.now() - leasedAt;
  assert.ok(elapsed >= 900, `not redelivered before the lease ran out (${elapsed} ms)`);
  assert.ok(elapsed < 2500, `redelivered soon after the lease ran out (${elapsed} ms)`);
  const m = again.messages[0]!;
  assert.equal(m.event.sequence, String(seq));
  assert.equal(m.receives, 2);
  assert.notEqual(m.lease, first.messages[0]!.lease, 'a new lease');

  // The first, expired lease cannot ack; the new one can.
  const stale = await f.ack([first.messages[0]!.lease]);
  assert.equal(stale.status, 200, stale.text);
  assert.deepEqual(stale.json.results, [{ lease: first.messages[0]!.lease, result: 'expired' }]);
  const ok = await f.ack([m.lease]);
  assert.deepEqual(ok.json.results, [{ lease: m.lease, result: 'acked' }]);
  const d = await f.delivery(seq);
  assert.equal(d.state, 'delivered');
  const outcomes = (await f.attempts(seq)).map((x) => x.outcome);
  assert.deepEqual(outcomes, ['leased', 'expired', 'leased', 'acked']);
});

test('ack: the delivery is delivered in the sender\'s view and never comes back; a double ack is reported', async (t) => {
  const f = await pullHub({ visibilityTimeoutSeconds: 1 });
  t.after(() => f.close());
  const seq = await f.send('m1');
  const { messages } = await f.poll();
  const lease = messages[0]!.lease;

  const res = await f.ack([lease]);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json.results, [{ lease, result: 'acked' }]);
  const d = await f.delivery(seq);
  assert.equal(d.state, 'delivered');
  assert.ok(d.deliveredAt && Date.parse(d.deliveredAt) <= Date.now());
  assert.equal(d.lastError, null);

  // The same lease again: not acked twice (the lease is spent), still delivered.
  const twice = await f.ack([lease]);
  assert.equal(twice.status, 200, twice.text);
  assert.deepEqual(twice.json.results, [{ lease, result: 'expired' }]);
  // A nack of the spent lease does not put a delivered delivery back either.
  const nack = await f.nack([lease], 0);
  assert.deepEqual(nack.json.results, [{ lease, result: 'expired' }]);

  // Well past the visibility timeout it never comes back.
  await sleep(1300);
  assert.equal((await f.poll()).messages.length, 0);
  assert.equal((await f.delivery(seq)).state, 'delivered');
  assert.deepEqual((await f.attempts(seq)).map((a) => a.outcome), ['leased', 'acked']);
});

test('an ack with an expired, an unknown and a valid lease acks the valid one and reports the others per item', async (t) => {
  const f = await pullHub({ visibilityTimeoutSeconds: 1 });
  t.after(() => f.close());
  const s1 = await f.send('m1');
  const old = (await f.poll()).messages[0]!;
  // Let m1's lease run out (and the keeper release it), then lease m2 fresh.
  await sleep(1200);
  const s2 = await f.send('m2');
  const fresh = await f.poll('max=10');
  // m1 came back with a new lease as well: leave it leased.
  const m2 = fresh.messages.find((m) => m.event.sequence === String(s2))!;
  assert.ok(m2, fresh.text);
  const unknown = 'no-such-lease.999';
  const res = await f.ack([old.lease, unknown, m2.lease]);
  assert.equal(res.status, 200, JSON.stringify(res.json));
  assert.deepEqual(res.json.results, [
    { lease: old.lease, result: 'expired' },
    { lease: unknown, result: 'expired' },
    { lease: m2.lease, result: 'acked' },
  ]);
  assert.equal((await f.delivery(s2)).state, 'delivered');
  assert.notEqual((await f.delivery(s1)).state, 'delivered', 'the expired lease acked nothing');
});

test('an ack that arrives after the lease ran out but before the keeper noticed is still refused', async (t) => {
  // Keeper slowed right down: the lease is past its time but the row still says delivering.
  const f = await pullHub({ visibilityTimeoutSeconds: 1 }, { overrides: { maintenance: { intervalMs: 60_000 } } });
  t.after(() => f.close());
  const seq = await f.send('m1');
  const m = (await f.poll()).messages[0]!;
  await sleep(Date.parse(m.leaseExpiresAt) - Date.now() + 50);
  const res = await f.ack([m.lease]);
  assert.deepEqual(res.json.results, [{ lease: m.lease, result: 'expired' }]);
  assert.notEqual((await f.delivery(seq)).state, 'delivered');
});

test('nack with delaySeconds 0 puts the message back at once', async (t) => {
  const f = await pullHub({ visibilityTimeoutSeconds: 30 });
  t.after(() => f.close());
  const seq = await f.send('m1');
  const m = (await f.poll()).messages[0]!;
  const res = await f.nack([m.lease], 0);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json.results, [{ lease: m.lease, result: 'nacked' }]);
  assert.equal((await f.delivery(seq)).state, 'pending');

  const next = await f.poll();
  assert.equal(next.messages.length, 1, 'the next poll gets it, long before the 30 s visibility timeout');
  assert.equal(next.messages[0]!.event.sequence, String(seq));
  assert.equal(next.messages[0]!.receives, 2);
  // The nacked lease is spent.
  assert.deepEqual((await f.ack([m.lease])).json.results, [{ lease: m.lease, result: 'expired' }]);
  assert.deepEqual((await f.ack([next.messages[0]!.lease])).json.results, [{ lease: next.messages[0]!.lease, result: 'acked' }]);
  assert.deepEqual((await f.attempts(seq)).map((a) => a.outcome), ['leased', 'nacked', 'leased', 'acked']);
});

test('nack without delaySeconds means 0', async (t) => {
  const f = await pullHub({ visibilityTimeoutSeconds: 30 });
  t.after(() => f.close());
  await f.send('m1');
  const m = (await f.poll()).messages[0]!;
  assert.deepEqual((await f.nack([m.lease])).json.results, [{ lease: m.lease, result: 'nacked' }]);
  assert.equal((await f.poll()).messages.length, 1);
});

test('nack with delaySeconds 2 keeps the message back for ~2 s', async (t) => {
  const f = await pullHub({ visibilityTimeoutSeconds: 30 });
  t.after(() => f.close());
  const seq = await f.send('m1');
  const m = (await f.poll()).messages[0]!;
  const nackedAt = Date.now();
  assert.deepEqual((await f.nack([m.lease], 2)).json.results, [{ lease: m.lease, result: 'nacked' }]);
  const d = await f.delivery(seq);
  assert.equal(d.state, 'pending');
  assert.ok(Date.parse(d.nextAttemptAt) >= nackedAt + 1900, `nextAttemptAt ${d.nextAttemptAt}`);

  assert.equal((await f.poll()).messages.length, 0);
  await sleep(1000);
  assert.equal((await f.poll()).messages.length, 0, 'not back after 1 s');
  // A long poll started now picks it up once it is due.
  const back = await f.poll('wait=5');
  const at = Date.now() - nackedAt;
  assert.equal(back.messages.length, 1, back.text);
  assert.ok(at >= 1900, `not before ~2 s (${at} ms)`);
  assert.ok(at < 3500, `soon after 2 s (${at} ms)`);
  assert.equal(back.messages[0]!.receives, 2);
});

test('nack of an expired lease is reported per item, the valid one nacked', async (t) => {
  const f = await pullHub({ visibilityTimeoutSeconds: 30 });
  t.after(() => f.close());
  await f.send('m1');
  const m = (await f.poll()).messages[0]!;
  const res = await f.nack(['bogus.1', m.lease], 0);
  assert.deepEqual(res.json.results, [{ lease: 'bogus.1', result: 'expired' }, { lease: m.lease, result: 'nacked' }]);
});
