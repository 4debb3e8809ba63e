/**
 * Dead-letter alerts to the operator webhook (alerts.webhookUrl): one small JSON POST per
 * delivery going dead, whichever way it dies (push, pull receive limit at lease time, pull
 * lease expiry); best effort, bounded, never holding delivery up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { DeadLetterAlerts } from '../../src/dlq/dead-alerts.ts';
import type { DeliveryRecord } from '../../src/store/types.ts';
import { eventually, startTestHub, type TestHub } from '../support/hub.ts';
import { startReceiver } from '../support/receiver.ts';

async function sendOne(hub: TestHub, key: string, id: string): Promise<number> {
  const body = JSON.stringify({ specversion: '1.0', id, source: 'MDP-A', type: 'test.reading', subject: 'NMI1', datacontenttype: 'application/json', data: {} });
  const res = await hub.api('POST', '/v1/messages', { key, body, headers: { 'content-type': 'application/cloudevents+json' } });
  assert.equal(res.status, 202, res.text);
  return res.json.sequence;
}

test('a delivery going dead is POSTed to the operator webhook: push, pull at the receive limit, pull lease expiry', { timeout: 30_000 }, async (t) => {
  const alerts = await startReceiver();
  const target = await startReceiver((_req, res) => { res.statusCode = 410; res.end(); });
  const hub = await startTestHub({ alerts: { webhookUrl: alerts.url } });
  t.after(async () => { await hub.close(); await alerts.close(); await target.close(); });
  const sender = await hub.participant('MDP-A');
  await hub.participant('P', { mode: 'push', url: target.url });
  const q = await hub.participant('Q', { mode: 'pull', maxReceives: 1, visibilityTimeoutSeconds: 1 });
  await hub.routes([{ name: 'push', match: {}, to: { participants: ['P'] } }]);
  const alertBodies = () => alerts.requests.map((r) => JSON.parse(r.body.toString('utf8')));

  // Push: 410 Gone.
  const s1 = await sendOne(hub, sender.key, 'p1');
  await eventually(() => alerts.requests.length === 1, 5000, 'the push alert');
  const [a1] = alertBodies();
  assert.equal(alerts.requests[0]!.headers['content-type'], 'application/json');
  assert.deepEqual(Object.keys(a1).sort(), ['at', 'delivery', 'event', 'reason', 'receiver', 'sequence']);
  assert.deepEqual([a1.event, a1.sequence, a1.receiver], ['delivery.dead', s1, 'P']);
  assert.match(a1.reason, /410/);
  assert.ok(!Number.isNaN(Date.parse(a1.at)));

  // Pull: leased once (the limit), nacked; the next poll sends it dead instead of leasing it.
  await hub.routes([{ name: 'pull', match: {}, to: { participants: ['Q'] } }]);
  const s2 = await sendOne(hub, sender.key, 'q1');
  const first = await hub.api('GET', '/v1/inbox?max=10', { key: q.key });
  assert.equal(first.json.messages.length, 1);
  await hub.api('POST', '/v1/inbox/nack', { key: q.key, json: { leases: [first.json.messages[0].lease] } });
  assert.deepEqual((await hub.api('GET', '/v1/inbox?max=10', { key: q.key })).json.messages, []);
  await eventually(() => alerts.requests.length === 2, 5000, 'the receive-limit alert');
  assert.deepEqual([alertBodies()[1].sequence, alertBodies()[1].receiver], [s2, 'Q']);
  assert.match(alertBodies()[1].reason, /receive limit/);

  // Pull: leased and never acked; the lease expires at the limit.
  const s3 = await sendOne(hub, sender.key, 'q2');
  assert.equal((await hub.api('GET', '/v1/inbox?max=10', { key: q.key })).json.messages.length, 1);
  await eventually(() => alerts.requests.length === 3, 5000, 'the lease-expiry alert');
  assert.deepEqual([alertBodies()[2].sequence, alertBodies()[2].receiver], [s3, 'Q']);

  // The three are in the dead-letter queue, and the metric counted them.
  const dlq = await hub.api('GET', '/v1/admin/dlq');
  assert.deepEqual(dlq.json.deliveries.map((d: { sequence: number }) => d.sequence).sort(), [s1, s2, s3].sort());
  assert.deepEqual(dlq.json.deliveries.map((d: { delivery: number }) => d.delivery).sort(), alertBodies().map((a) => a.delivery).sort());
  const metrics = await hub.api('GET', '/metrics');
  assert.match(metrics.text, /meterhub_deliveries_dead_total\{receiver="Q"\} 2/);
});

test('a hanging alert webhook never holds delivery up, and the hub still stops promptly', { timeout: 30_000 }, async (t) => {
  const hanging = await startReceiver(() => { /* never answers */ });
  const target = await startReceiver((_req, res) => { res.statusCode = 410; res.end(); });
  const hub = await startTestHub({ alerts: { webhookUrl: hanging.url, timeoutMs: 10_000, queueSize: 10 } });
  let closed = false;
  t.after(async () => { if (!closed) await hub.close(); await hanging.close(); await target.close(); });
  const sender = await hub.participant('MDP-A');
  await hub.participant('P', { mode: 'push', url: target.url });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['P'] } }]);
  const startedAt = Date.now();
  for (let i = 0; i < 50; i++) await sendOne(hub, sender.key, `h${i}`);
  await eventually(async () => {
    const s = await hub.api('GET', '/v1/admin/deliveries/summary');
    return s.json.deliveries.find((c: { state: string }) => c.state === 'dead')?.count === 50;
  }, 10_000, 'all 50 dead');
  assert.ok(Date.now() - startedAt < 5000, 'delivery went on at full speed');
  assert.ok(hanging.requests.length <= 2, 'two alert workers at most, each stuck on its request');
  const stopAt = Date.now();
  await hub.close();
  closed = true;
  assert.ok(Date.now() - stopAt < 5000, `stop took ${Date.now() - stopAt} ms`);
});

test('DeadLetterAlerts: failures and drops are logged, rate-limited, and raise never throws', async () => {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'warn' }, { write: (s: string) => { lines.push(JSON.parse(s)); } });
  const d = { id: 7, sequence: 42, receiver: 'R', deadAt: 1_700_000_000_000 } as DeliveryRecord;

  // Nothing listens on this port (it was free a moment ago): every POST fails.
  const closedPort = await startReceiver();
  const url = closedPort.url;
  await closedPort.close();
  const failing = new DeadLetterAlerts({ webhookUrl: url, timeoutMs: 500, queueSize: 3 }, logger);
  for (let i = 0; i < 10; i++) failing.raise(d, 'gone');
  await eventually(() => lines.some((l) => l.event === 'alerts.failed'), 5000, 'a failure logged');
  await new Promise((r) => setTimeout(r, 300)); // the queued ones fail too
  await failing.stop(1000);
  const logged = lines.filter((l) => l.event === 'alerts.failed');
  assert.ok(logged.length >= 1 && logged.length <= 2, `a line for the burst and one summary at stop, not one per alert: ${logged.length}`);
  assert.equal(logged[0]!.url, url);
  const total = logged.reduce((n, l) => n + (l.failed as number) + (l.dropped as number), 0);
  assert.equal(total, 10, 'every alert either failed or was dropped (queue of 3, two in flight), and each is counted');
  assert.ok(logged.some((l) => (l.dropped as number) > 0), 'the bounded queue dropped some');

  // Disabled: nothing queued, nothing logged.
  const before = lines.length;
  const off = new DeadLetterAlerts({ webhookUrl: null, timeoutMs: 500, queueSize: 3 }, logger);
  off.raise(d, 'gone');
  await off.stop();
  assert.equal(lines.length, before);
  assert.equal(off.enabled, false);
});
