/**
 * The circuit breaker, seen from a receiver's request log: a failing receiver gets exactly
 * failureThreshold requests, then nothing for the cooldown, then one probe at a time with the
 * cooldown doubling (up to its cap); when it recovers, the probe succeeds and the backlog flows
 * at full rate (maxInFlight at once). The pause uses no retry budget.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestHub, eventually } from '../support/hub.ts';
import { startReceiver, type ReceivedRequest } from '../support/receiver.ts';

const THRESHOLD = 3;
const COOLDOWN = 300;
const MAX_COOLDOWN = 1_200;
const N = 10;

const batch = (n: number) => JSON.stringify(Array.from({ length: n }, (_, i) => ({
  specversion: '1.0', id: `m${i}`, source: 'MDP-A', type: 'test.reading', subject: `NMI${i}`, data: { reading: i },
})));

test('breaker: threshold failures, silence for the cooldown, single probes with doubling cooldown, then full rate', async (t) => {
  const hub = await startTestHub({ delivery: { breaker: { failureThreshold: THRESHOLD, cooldownMs: COOLDOWN, maxCooldownMs: MAX_COOLDOWN } } });
  t.after(() => hub.close());

  // Each answer takes 40 ms, so concurrency is visible; `concurrent` is how many were being answered when each came.
  let failing = true;
  let active = 0;
  const concurrent: number[] = [];
  const rx = await startReceiver(async (_req, res) => {
    active++;
    concurrent.push(active);
    await new Promise((r) => setTimeout(r, 40));
    res.writeHead(failing ? 500 : 204);
    res.end(failing ? 'down' : '');
    active--;
  });
  t.after(() => rx.close());

  const { key } = await hub.participant('MDP-A');
  // Retries come due after 10–20 ms: without the breaker the receiver would be hammered.
  await hub.participant('RETAILER-A', {
    mode: 'push', url: rx.url, maxInFlight: THRESHOLD, timeoutMs: 2_000,
    retry: { maxAttempts: 50, maxAgeSeconds: 600, initialDelayMs: 10, maxDelayMs: 20 },
  });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }]);
  const r = await hub.api('POST', '/v1/messages', { key, body: batch(N), headers: { 'content-type': 'application/cloudevents-batch+json' } });
  assert.equal(r.status, 200, r.text);
  const sequences: number[] = r.json.results.map((x: { sequence: number }) => x.sequence);
  assert.equal(sequences.length, N);

  const deliveries = async () => Promise.all(sequences.map(async (seq) => {
    const s = await hub.api('GET', `/v1/messages/${seq}`, { key });
    return s.json.deliveries[0] as { state: string; attempts: number };
  }));
  const at = (q: ReceivedRequest) => q.at - rx.requests[0]!.at;

  // 1. Exactly THRESHOLD requests, then silence for the cooldown.
  await eventually(() => rx.requests.length >= THRESHOLD, 5_000, 'the first requests');
  await eventually(() => hub.hub.push.breakerStates()[0]?.state === 'open', 2_000, 'the breaker to open');
  assert.equal(rx.requests.length, THRESHOLD, 'no request beyond the threshold');
  const [b] = hub.hub.push.breakerStates();
  assert.equal(b!.receiver, 'RETAILER-A');
  assert.equal(b!.consecutiveFailures, THRESHOLD);
  assert.ok(b!.openUntil! > Date.now() && b!.openUntil! <= Date.now() + COOLDOWN, `openUntil ${b!.openUntil} is within the cooldown`);

  // 2. Probes: the 4th request (probe 1) after the cooldown, the 5th (probe 2) after twice that.
  await eventually(() => rx.requests.length >= THRESHOLD + 2, 5_000, 'two probes');
  await eventually(() => hub.hub.push.breakerStates()[0]?.state === 'open', 2_000, 'the breaker to open again');
  // While open: the admin API shows it, and every delivery waits as pending with its budget intact.
  const view = await hub.api('GET', '/v1/admin/receivers');
  assert.equal(view.status, 200, view.text);
  const mine = view.json.receivers.find((x: { receiver: string }) => x.receiver === 'RETAILER-A');
  assert.equal(mine.breaker.state, 'open');
  assert.equal(mine.breaker.consecutiveFailures, THRESHOLD + 2);
  const until = Date.parse(mine.breaker.openUntil);
  assert.ok(until > Date.now() && until <= Date.now() + MAX_COOLDOWN, `openUntil ${mine.breaker.openUntil}`);
  assert.equal(rx.requests.length, THRESHOLD + 2, 'nothing is sent while open');
  const paused = await deliveries();
  assert.deepEqual([...new Set(paused.map((d) => d.state))], ['pending'], 'all pending while open (none dead, none claimed)');
  assert.equal(paused.reduce((n, d) => n + d.attempts, 0), THRESHOLD + 2, 'only the requests made count as attempts');

  // 3. The receiver recovers; the third probe (after the cooldown capped at MAX_COOLDOWN) succeeds, then the backlog flows.
  failing = false;
  const done = await eventually(async () => {
    const ds = await deliveries();
    return ds.every((d) => d.state === 'delivered') ? ds : null;
  }, 8_000, 'every delivery to be delivered');
  assert.equal(rx.requests.length, THRESHOLD + 3 + (N - 1), `${THRESHOLD} failures + 3 probes + the other ${N - 1}, each once`);
  assert.equal(done.reduce((n, d) => n + d.attempts, 0), rx.requests.length);

  const q = rx.requests;
  const gaps = { cooldown1: at(q[3]!) - at(q[2]!), cooldown2: at(q[4]!) - at(q[3]!), cooldown3: at(q[5]!) - at(q[4]!) };
  const log = `request times: ${q.map(at).join(', ')}; concurrency: ${concurrent.join(', ')}`;
  assert.ok(at(q[2]!) < 250, `the first ${THRESHOLD} go at once: ${log}`);
  // Each cooldown starts when the failed answer arrives (40 ms after the request).
  assert.ok(gaps.cooldown1 >= COOLDOWN, `probe 1 came ${gaps.cooldown1} ms after the last failure's request, cooldown ${COOLDOWN}: ${log}`);
  assert.ok(gaps.cooldown2 >= 2 * COOLDOWN, `probe 2 came ${gaps.cooldown2} ms after probe 1, cooldown ${2 * COOLDOWN}: ${log}`);
  assert.ok(gaps.cooldown3 >= MAX_COOLDOWN, `probe 3 came ${gaps.cooldown3} ms after probe 2, cooldown ${MAX_COOLDOWN}: ${log}`);
  assert.ok(gaps.cooldown3 < 2 * MAX_COOLDOWN - 200, `probe 3 came ${gaps.cooldown3} ms after probe 2: the cooldown was not capped at ${MAX_COOLDOWN}: ${log}`);
  assert.deepEqual(concurrent.slice(THRESHOLD, THRESHOLD + 3), [1, 1, 1], `probes go one at a time: ${log}`);
  // Full rate again: the rest come maxInFlight at a time, promptly after the successful probe.
  assert.equal(Math.max(...concurrent.slice(THRESHOLD + 3)), THRESHOLD, `after recovery, ${THRESHOLD} at a time: ${log}`);
  // Generous: on a loaded 2-core CI box one scheduler round can take a few hundred ms; the
  // concurrency check above is what shows full rate, this one only that nothing waits a cooldown.
  assert.ok(at(q.at(-1)!) - at(q[5]!) < 1500, `the backlog took ${at(q.at(-1)!) - at(q[5]!)} ms after the probe: ${log}`);
  assert.equal(hub.hub.push.breakerStates()[0]!.state, 'closed');
});

test('breaker: a 410 does not count as a failure (the receiver answered; the message is gone)', async (t) => {
  const hub = await startTestHub({ delivery: { breaker: { failureThreshold: 2, cooldownMs: 10_000 } } });
  t.after(() => hub.close());
  const rx = await startReceiver((_req, res) => { res.writeHead(410); res.end(); });
  t.after(() => rx.close());
  const { key } = await hub.participant('MDP-A');
  await hub.participant('RETAILER-A', { mode: 'push', url: rx.url, maxInFlight: 1 });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }]);
  const r = await hub.api('POST', '/v1/messages', { key, body: batch(5), headers: { 'content-type': 'application/cloudevents-batch+json' } });
  assert.equal(r.status, 200, r.text);
  // With 410 counted, the breaker would open after 2 and hold the other 3 for 10 s.
  await eventually(() => rx.requests.length === 5, 3_000, 'all five to be tried');
  assert.deepEqual(hub.hub.push.breakerStates().map((s) => [s.state, s.consecutiveFailures]), [['closed', 0]]);
});
