import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_KEY } from '../support/hub.ts';
import { assertProblem, pullHub, RECEIVER } from './pull-fixture.ts';

test('receiver R2 cannot ack or nack R1\'s lease: reported expired, R1\'s lease stays valid and ackable by R1', async (t) => {
  const f = await pullHub({ visibilityTimeoutSeconds: 30 });
  t.after(() => f.close());
  const r2 = await f.hub.participant('RETAILER-B', { mode: 'pull', visibilityTimeoutSeconds: 30 });
  await f.hub.routes([
    { name: 'a', match: { subject: 'NMI1' }, to: { participants: [RECEIVER] } },
    { name: 'b', match: { subject: 'NMI2' }, to: { participants: ['RETAILER-B'] } },
  ]);
  const seq = await f.send('m1');
  const m = (await f.poll()).messages[0]!;
  assert.equal(m.event.sequence, String(seq));

  // R2 sees nothing of R1's inbox.
  const r2poll = await f.poll('max=10', r2.key);
  assert.equal(r2poll.status, 200, r2poll.text);
  assert.deepEqual(r2poll.json, { messages: [] });

  const ack = await f.ack([m.lease], r2.key);
  assert.equal(ack.status, 200, ack.text);
  assert.deepEqual(ack.json.results, [{ lease: m.lease, result: 'expired' }]);
  const nack = await f.nack([m.lease], 0, r2.key);
  assert.deepEqual(nack.json.results, [{ lease: m.lease, result: 'expired' }]);

  // Still R1's: still leased (nothing for R1's next poll), then acked by R1.
  const d = await f.delivery(seq);
  assert.equal(d.state, 'delivering');
  assert.equal((await f.poll()).messages.length, 0, 'the nack by R2 did not put it back');
  assert.deepEqual((await f.ack([m.lease])).json.results, [{ lease: m.lease, result: 'acked' }]);
  assert.equal((await f.delivery(seq)).state, 'delivered');
  assert.deepEqual((await f.attempts(seq)).map((a) => a.outcome), ['leased', 'acked']);

  // R2 may not look at R1's message either (404, as if it did not exist).
  const peek = await f.hub.api('GET', `/v1/messages/${seq}`, { key: r2.key });
  assertProblem(peek, 404);
});

test('each receiver gets only its own deliveries, one each for a message routed to both', async (t) => {
  const f = await pullHub({ visibilityTimeoutSeconds: 30 });
  t.after(() => f.close());
  const r2 = await f.hub.participant('RETAILER-B', { mode: 'pull' });
  await f.hub.routes([{ name: 'both', match: {}, to: { participants: [RECEIVER, 'RETAILER-B'] } }]);
  const body = '{"specversion":"1.0","id":"both-1","source":"MDP-A","type":"t","subject":"NMI1","data":{"x":1}}';
  const sent = await f.hub.api('POST', '/v1/messages', { key: f.senderKey, body, headers: { 'content-type': 'application/cloudevents+json' } });
  assert.equal(sent.status, 202, sent.text);
  const a = await f.poll();
  const b = await f.poll('', r2.key);
  assert.equal(a.messages.length, 1);
  assert.equal(b.messages.length, 1);
  assert.notEqual(a.messages[0]!.lease, b.messages[0]!.lease);
  assert.notEqual(a.messages[0]!.event.deliveryid, b.messages[0]!.event.deliveryid);
  // R1's ack does not settle R2's delivery.
  await f.ack([a.messages[0]!.lease]);
  const status = await f.hub.api('GET', `/v1/messages/${sent.json.sequence}`, { key: f.senderKey });
  const states = Object.fromEntries(status.json.deliveries.map((d: any) => [d.receiver, d.state]));
  assert.deepEqual(states, { [RECEIVER]: 'delivered', 'RETAILER-B': 'delivering' });
});

test('a sender-only participant polling, acking or nacking gets 403', async (t) => {
  const f = await pullHub();
  t.after(() => f.close());
  await f.send('m1');
  assertProblem(await f.poll('', f.senderKey), 403);
  assertProblem(await f.poll('wait=5', f.senderKey), 403);
  assertProblem(await f.ack(['x.1'], f.senderKey), 403);
  assertProblem(await f.nack(['x.1'], 0, f.senderKey), 403);
  // Its 403s leased nothing.
  assert.equal((await f.poll()).messages[0]!.receives, 1);
});

test('a push receiver polling gets 403', async (t) => {
  const f = await pullHub();
  t.after(() => f.close());
  const push = await f.hub.participant('PUSHER', { mode: 'push', url: 'http://127.0.0.1:9/hook' });
  assertProblem(await f.poll('', push.key), 403);
});

test('the admin key polling gets 403; no key 401; an unknown key 401', async (t) => {
  const f = await pullHub();
  t.after(() => f.close());
  await f.send('m1');
  assertProblem(await f.poll('', ADMIN_KEY), 403);
  assertProblem(await f.ack(['x.1'], ADMIN_KEY), 403);
  assertProblem(await f.nack(['x.1'], 0, ADMIN_KEY), 403);
  assertProblem(await f.hub.api('GET', '/v1/inbox', { key: '' }), 401);
  assertProblem(await f.poll('', 'mh_not-a-real-key-0000000000000000'), 401);
  assert.equal((await f.poll()).messages[0]!.receives, 1, 'none of those leased anything');
});
