import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, startTestHub, structured } from '../support/hub.ts';
import { startReceiver } from '../support/receiver.ts';

test('a pull lease that expires after its receiver switched to push is delivered by push', async (t) => {
  const hub = await startTestHub();
  const rx = await startReceiver();
  t.after(async () => { await hub.close(); await rx.close(); });
  const sender = await hub.participant('MDP-A');
  const { key } = await hub.participant('RETAILER-A', { mode: 'pull', visibilityTimeoutSeconds: 1 });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }]);
  const sent = await hub.api('POST', '/v1/messages', { key: sender.key, body: structured({ id: 'x1', source: 'MDP-A' }), headers: { 'content-type': 'application/cloudevents+json' } });
  assert.equal(sent.status, 202);
  const polled = await hub.api('GET', '/v1/inbox?max=1', { key });
  assert.equal(polled.json.messages.length, 1, 'leased by the pull receiver');

  const put = await hub.api('PUT', '/v1/admin/participants/RETAILER-A', { json: { name: 'Retailer A', receiver: { mode: 'push', url: rx.url } } });
  assert.equal(put.status, 200);
  await eventually(() => rx.requests.length === 1, 8000, 'the push after the lease expired');
  assert.equal(rx.requests[0]!.headers['ce-id'], 'x1');
  const status = await eventually(async () => {
    const s = await hub.api('GET', `/v1/messages/${sent.json.sequence}`, { key: sender.key });
    return s.json.deliveries[0].state === 'delivered' ? s : null;
  }, 5000, 'delivered');
  assert.equal(status.json.deliveries[0].mode, 'push');
});
