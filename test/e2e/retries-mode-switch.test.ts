/**
 * Retries across a change of the receiver's settings. A push receiver switched to pull takes
 * its deliveries with it, those waiting for a retry and those in flight at the switch alike
 * (the in-flight ones come back as pending push after their failed attempt, and go to the inbox
 * then): the receiver polls and gets every one, none dead. Only a participant left with no
 * receiver settings at all ends its pending push deliveries dead, with a reason.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { startTestHub, eventually, type TestHub } from '../support/hub.ts';
import { startReceiver } from '../support/receiver.ts';

const N = 8;
const MAX_IN_FLIGHT = 4;
const RETRY = { maxAttempts: 100, maxAgeSeconds: 600, initialDelayMs: 50, maxDelayMs: 100 };

interface Delivery { receiver: string; mode: string; state: string; attempts: number; lastError: string | null }

/**
 * A hub with push receiver RETAILER-A at a receiver that fails every request (500), at once or,
 * once `hold()` is called, only when `release()` is; N messages sent, each already failed once.
 */
async function failingPushReceiver(t: TestContext) {
  // The breaker stays closed: this is about the deliveries, not about pausing the receiver.
  const hub = await startTestHub({ delivery: { breaker: { failureThreshold: 10_000 } } });
  t.after(() => hub.close());
  let holding = false;
  const held: ServerResponse[] = [];
  const rx = await startReceiver((_req, res) => {
    if (holding) { held.push(res); return; }
    res.writeHead(500); res.end('down');
  });
  t.after(() => rx.close());
  const { key } = await hub.participant('MDP-A');
  const retailer = await hub.participant('RETAILER-A', { mode: 'push', url: rx.url, maxInFlight: MAX_IN_FLIGHT, timeoutMs: 10_000, retry: RETRY });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }]);
  const batch = JSON.stringify(Array.from({ length: N }, (_, i) => ({
    specversion: '1.0', id: `m${i}`, source: 'MDP-A', type: 'test.reading', subject: `NMI${i}`, data: { reading: i },
  })));
  const r = await hub.api('POST', '/v1/messages', { key, body: batch, headers: { 'content-type': 'application/cloudevents-batch+json' } });
  assert.equal(r.status, 200, r.text);
  const sequences: number[] = r.json.results.map((x: { sequence: number }) => x.sequence);
  const deliveries = () => Promise.all(sequences.map(async (seq) => {
    const s = await hub.api('GET', `/v1/messages/${seq}`, { key });
    return s.json.deliveries[0] as Delivery;
  }));
  await eventually(async () => (await deliveries()).every((d) => d.attempts >= 1), 5_000, 'every delivery to have failed once');
  return {
    hub, rx, key, retailerKey: retailer.key, sequences, deliveries, held,
    hold() { holding = true; },
    release() { holding = false; for (const res of held.splice(0)) { res.writeHead(500); res.end('down'); } },
  };
}

async function pollAll(hub: TestHub, key: string, expected: number) {
  const got: Array<{ lease: string; event: { id: string } }> = [];
  const deadline = Date.now() + 10_000;
  while (got.length < expected && Date.now() < deadline) {
    const r = await hub.api('GET', '/v1/inbox?max=10&wait=1', { key });
    assert.equal(r.status, 200, r.text);
    got.push(...r.json.messages);
  }
  return got;
}

test('switch to pull: push deliveries waiting for a retry, and those in flight at the switch, all come to the inbox', async (t) => {
  const s = await failingPushReceiver(t);
  // Requests now hang at the receiver until released: MAX_IN_FLIGHT deliveries are in flight.
  s.hold();
  await eventually(() => s.held.length === MAX_IN_FLIGHT, 5_000, 'requests in flight');
  const before = await s.deliveries();
  assert.equal(before.filter((d) => d.state === 'delivering').length, MAX_IN_FLIGHT, JSON.stringify(before));

  const put = await s.hub.api('PUT', '/v1/admin/participants/RETAILER-A', { json: { name: 'Retailer A', receiver: { mode: 'pull', visibilityTimeoutSeconds: 30 } } });
  assert.equal(put.status, 200, put.text);
  // The in-flight attempts fail after the switch: they come back as pending push deliveries of a pull receiver.
  s.release();

  const polled = await pollAll(s.hub, s.retailerKey, N);
  assert.deepEqual(polled.map((m) => m.event.id).sort(), Array.from({ length: N }, (_, i) => `m${i}`).sort(), 'every message comes to the inbox');
  const ack = await s.hub.api('POST', '/v1/inbox/ack', { key: s.retailerKey, json: { leases: polled.map((m) => m.lease) } });
  assert.equal(ack.status, 200, ack.text);

  const after = await s.deliveries();
  assert.deepEqual(after.map((d) => [d.state, d.mode]), after.map(() => ['delivered', 'pull']), JSON.stringify(after));
  const dlq = await s.hub.api('GET', '/v1/admin/dlq');
  assert.equal(dlq.status, 200, dlq.text);
  assert.deepEqual(dlq.json.deliveries, [], 'nothing dead');
  // Every push request made before the switch is an attempt on record, followed by the lease.
  for (const seq of s.sequences) {
    const a = await s.hub.api('GET', `/v1/messages/${seq}/attempts`, { key: s.key });
    const outcomes: string[] = a.json.attempts.map((x: { outcome: string }) => x.outcome);
    assert.ok(outcomes.includes('failed') && outcomes.at(-1) === 'acked' && !outcomes.includes('dead'), `message ${seq}: ${outcomes.join(', ')}`);
  }
});

test('no receiver settings any more: its pending push deliveries end dead, with the reason', async (t) => {
  const s = await failingPushReceiver(t);
  const put = await s.hub.api('PUT', '/v1/admin/participants/RETAILER-A', { json: { name: 'Retailer A, sender only now' } });
  assert.equal(put.status, 200, put.text);
  const after = await eventually(async () => {
    const ds = await s.deliveries();
    return ds.every((d) => d.state === 'dead') ? ds : null;
  }, 5_000, 'every delivery dead');
  for (const d of after) assert.match(d.lastError ?? '', /has no receiver settings any more/);
});
