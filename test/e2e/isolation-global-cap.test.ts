import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, startTestHub, structured } from '../support/hub.ts';
import { startReceiver } from '../support/receiver.ts';

test('receivers hanging until their timeout cannot take every hub-wide slot from a healthy one', async (t) => {
  // Hub-wide cap 8; four hanging receivers that would each take 8.
  const hub = await startTestHub({ delivery: { maxInFlight: 8, breaker: { failureThreshold: 10_000 } } });
  const healthy = await startReceiver();
  const hanging = await Promise.all([0, 1, 2, 3].map(() => startReceiver(() => { /* never answers */ })));
  t.after(async () => { await hub.close(); await healthy.close(); for (const h of hanging) await h.close(); });
  const sender = await hub.participant('MDP-A');
  const names = ['HANG-0', 'HANG-1', 'HANG-2', 'HANG-3'];
  for (const [i, name] of names.entries()) {
    await hub.participant(name, { mode: 'push', url: hanging[i]!.url, timeoutMs: 5000, maxInFlight: 8, retry: { maxAttempts: 1 } });
  }
  await hub.participant('HEALTHY', { mode: 'push', url: healthy.url });
  await hub.routes([
    { name: 'hanging', match: { type: 'to.hanging' }, to: { participants: names } },
    { name: 'healthy', match: { type: 'to.healthy' }, to: { participants: ['HEALTHY'] } },
  ]);
  const post = (id: string, type: string) => hub.api('POST', '/v1/messages', { key: sender.key, body: structured({ id, source: 'MDP-A', type }), headers: { 'content-type': 'application/cloudevents+json' } });
  // Enough hanging work to fill the whole cap many times over.
  for (let i = 0; i < 20; i++) assert.equal((await post(`h${i}`, 'to.hanging')).status, 202);
  await eventually(() => hanging.every((h) => h.requests.length >= 1), 3000, 'every hanging receiver holding slots');
  assert.ok(hub.hub.push.inFlightCount <= 8, `the hub-wide cap holds: ${hub.hub.push.inFlightCount}`);

  const t0 = Date.now();
  for (let i = 0; i < 5; i++) assert.equal((await post(`ok${i}`, 'to.healthy')).status, 202);
  await eventually(() => healthy.requests.length === 5, 3000, 'the healthy receiver served while the others hang');
  assert.ok(Date.now() - t0 < 3000);
  const perHanging = hanging.map((h) => h.requests.length);
  assert.ok(perHanging.every((n) => n <= 2), `each hanging receiver kept to its fair share of the cap: ${perHanging}`);
});
