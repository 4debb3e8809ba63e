import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestHub, structured, eventually } from '../support/hub.ts';
import { startReceiver } from '../support/receiver.ts';

test('a structured event is pushed to the routed receiver with the exact data bytes', async (t) => {
  const hub = await startTestHub();
  const receiver = await startReceiver();
  t.after(async () => { await hub.close(); await receiver.close(); });
  const sender = await hub.participant('MDP-A');
  await hub.participant('RETAILER-A', { mode: 'push', url: receiver.url });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }]);

  const data = '{"reading": 12345678901234567890, "v": 0.1000000000000000055511}';
  const body = `{"specversion":"1.0","id":"m1","source":"MDP-A","type":"test.reading","subject":"NMI1","data":${data}}`;
  const res = await hub.api('POST', '/v1/messages', { key: sender.key, body, headers: { 'content-type': 'application/cloudevents+json' } });
  assert.equal(res.status, 202, res.text);
  assert.deepEqual(res.json.receivers, ['RETAILER-A']);
  await eventually(() => receiver.requests.length === 1, 5000, 'the push');
  const got = receiver.requests[0]!;
  assert.equal(got.body.toString(), data);
  assert.equal(got.headers['ce-id'], 'm1');
  assert.equal(got.headers['ce-sequence'], String(res.json.sequence));
  const status = await eventually(async () => {
    const s = await hub.api('GET', `/v1/messages/${res.json.sequence}`, { key: sender.key });
    return s.json.deliveries[0].state === 'delivered' ? s : null;
  }, 5000, 'delivered state');
  assert.equal(status.json.deliveries[0].attempts, 1);
  void structured;
});
