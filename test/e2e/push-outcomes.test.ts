/**
 * Push outcomes, one test per kind of receiver answer, against real loopback receivers:
 * what the receiver sees (its request log) and what the hub reports (GET /v1/messages/{seq}
 * and /attempts). Each test has its own hub, data folder and receivers.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { startTestHub, eventually, type TestHub } from '../support/hub.ts';
import { startReceiver, type ReceiverHandler, type TestReceiver } from '../support/receiver.ts';

/** Short retry settings, so that each test ends in a second or two. */
const FAST_RETRY = { maxAttempts: 3, maxAgeSeconds: 60, initialDelayMs: 50, maxDelayMs: 100, multiplier: 2, retryAfterCapMs: 5_000 };

interface Delivery {
  receiver: string; state: string; attempts: number; lastStatus: number | null; lastError: string | null;
  lastAttemptAt: string | null; deliveredAt: string | null; deadAt: string | null; nextAttemptAt: string | null; webhookId: string;
}
interface Attempt { receiver: string; at: string; outcome: string; status: number | null; latencyMs: number | null; error: string | null }

interface Setup {
  hub: TestHub;
  senderKey: string;
  /** Sends one structured event routed to RETAILER-A; answers its sequence. */
  send(id?: string): Promise<number>;
  delivery(seq: number): Promise<Delivery>;
  attempts(seq: number): Promise<Attempt[]>;
  /** Waits until the delivery is in a final state (delivered or dead) and returns it. */
  settled(seq: number, timeoutMs?: number): Promise<Delivery>;
}

/** A hub with sender MDP-A and push receiver RETAILER-A at `url`, and a rule routing everything to it. */
async function setup(t: TestContext, url: string, receiver: Record<string, unknown> = {}): Promise<Setup> {
  const hub = await startTestHub();
  t.after(() => hub.close());
  const { key: senderKey } = await hub.participant('MDP-A');
  await hub.participant('RETAILER-A', { mode: 'push', url, timeoutMs: 1_000, retry: FAST_RETRY, ...receiver });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }]);

  const delivery = async (seq: number): Promise<Delivery> => {
    const r = await hub.api('GET', `/v1/messages/${seq}`, { key: senderKey });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.deliveries.length, 1, r.text);
    return r.json.deliveries[0];
  };
  return {
    hub, senderKey, delivery,
    async send(id = 'm1') {
      const body = JSON.stringify({ specversion: '1.0', id, source: 'MDP-A', type: 'test.reading', subject: 'NMI1', data: { reading: 42 } });
      const r = await hub.api('POST', '/v1/messages', { key: senderKey, body, headers: { 'content-type': 'application/cloudevents+json' } });
      assert.equal(r.status, 202, r.text);
      return r.json.sequence as number;
    },
    async attempts(seq) {
      const r = await hub.api('GET', `/v1/messages/${seq}/attempts`, { key: senderKey });
      assert.equal(r.status, 200, r.text);
      return r.json.attempts;
    },
    async settled(seq, timeoutMs = 8_000) {
      return eventually(async () => {
        const d = await delivery(seq);
        return d.state === 'delivered' || d.state === 'dead' ? d : null;
      }, timeoutMs, `delivery of message ${seq} to end`);
    },
  };
}

async function receiver(t: TestContext, handler?: ReceiverHandler): Promise<TestReceiver> {
  const r = await startReceiver(handler);
  t.after(() => r.close());
  return r;
}

const answer = (status: number, headers: Record<string, string> = {}): ReceiverHandler => (_req, res) => {
  res.writeHead(status, headers);
  res.end(status >= 400 ? `error ${status}` : '');
};

/** After a delivery ended, nothing more reaches the receiver. */
async function assertQuiet(r: TestReceiver, count: number, ms = 300): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  assert.equal(r.requests.length, count, 'no request may follow the end of a delivery');
}

const gaps = (r: TestReceiver) => r.requests.slice(1).map((q, i) => q.at - r.requests[i]!.at);

test('2xx: delivered with one attempt', async (t) => {
  const rx = await receiver(t, answer(200));
  const s = await setup(t, rx.url);
  const seq = await s.send();
  const d = await s.settled(seq);
  assert.equal(d.state, 'delivered');
  assert.equal(d.attempts, 1);
  assert.equal(d.lastStatus, 200);
  assert.equal(d.lastError, null);
  assert.ok(d.deliveredAt, 'deliveredAt is set');
  assert.equal(d.nextAttemptAt, null);
  const attempts = await s.attempts(seq);
  assert.equal(attempts.length, 1);
  assert.equal(attempts[0]!.outcome, 'delivered');
  assert.equal(attempts[0]!.status, 200);
  assert.equal(attempts[0]!.receiver, 'RETAILER-A');
  assert.equal(typeof attempts[0]!.latencyMs, 'number');
  await assertQuiet(rx, 1);
});

test('302 redirect: not followed, retried, then dead after maxAttempts', async (t) => {
  const elsewhere = await receiver(t, answer(200));
  const rx = await receiver(t, answer(302, { location: elsewhere.url }));
  const s = await setup(t, rx.url);
  const seq = await s.send();
  const d = await s.settled(seq);
  assert.equal(d.state, 'dead');
  assert.equal(d.attempts, FAST_RETRY.maxAttempts);
  assert.equal(d.lastStatus, 302);
  assert.match(d.lastError ?? '', /302/);
  assert.match(d.lastError ?? '', /not followed/);
  const attempts = await s.attempts(seq);
  assert.deepEqual(attempts.map((a) => a.status), [302, 302, 302]);
  assert.deepEqual(attempts.map((a) => a.outcome), ['failed', 'failed', 'dead']);
  await assertQuiet(rx, FAST_RETRY.maxAttempts);
  assert.equal(elsewhere.requests.length, 0, 'the redirect target never hears from the hub');
});

test('410 Gone: dead at once, after one attempt', async (t) => {
  const rx = await receiver(t, answer(410));
  const s = await setup(t, rx.url);
  const seq = await s.send();
  const d = await s.settled(seq);
  assert.equal(d.state, 'dead');
  assert.equal(d.attempts, 1);
  assert.equal(d.lastStatus, 410);
  assert.match(d.lastError ?? '', /410/);
  assert.ok(d.deadAt, 'deadAt is set');
  const attempts = await s.attempts(seq);
  assert.equal(attempts.length, 1);
  assert.equal(attempts[0]!.outcome, 'dead');
  assert.equal(attempts[0]!.status, 410);
  await assertQuiet(rx, 1);
});

test('429 with Retry-After: 1: the next attempt comes about a second later', async (t) => {
  const rx = await receiver(t, (_req, res, n) => {
    if (n === 1) { res.writeHead(429, { 'retry-after': '1' }); res.end('slow down'); return; }
    res.writeHead(204); res.end();
  });
  // initialDelayMs 50: without Retry-After the retry would come within ~50 ms.
  const s = await setup(t, rx.url);
  const seq = await s.send();
  const d = await s.settled(seq);
  assert.equal(d.state, 'delivered');
  assert.equal(d.attempts, 2);
  assert.equal(rx.requests.length, 2);
  const [gap] = gaps(rx);
  assert.ok(gap! >= 990, `the retry came ${gap} ms after the 429, before Retry-After's 1 s`);
  assert.ok(gap! < 3_000, `the retry came ${gap} ms after the 429, much later than asked`);
  const attempts = await s.attempts(seq);
  assert.deepEqual(attempts.map((a) => [a.outcome, a.status]), [['failed', 429], ['delivered', 204]]);
});

test('503 with a huge Retry-After: the wait is capped by retryAfterCapMs', async (t) => {
  const rx = await receiver(t, (_req, res, n) => {
    if (n === 1) { res.writeHead(503, { 'retry-after': '86400' }); res.end('maintenance'); return; }
    res.writeHead(200); res.end();
  });
  const s = await setup(t, rx.url, { retry: { ...FAST_RETRY, initialDelayMs: 10, maxDelayMs: 10, retryAfterCapMs: 300 } });
  const seq = await s.send();
  // Before the retry: pending, with the 503 recorded and the next attempt ≈ 300 ms out (not a day).
  const waiting = await eventually(async () => {
    const d = await s.delivery(seq);
    return d.lastStatus === 503 ? d : null;
  }, 5_000, 'the 503 to be recorded');
  if (waiting.state === 'pending') {
    const next = Date.parse(waiting.nextAttemptAt!) - Date.parse(waiting.lastAttemptAt!);
    assert.ok(next <= 2_000, `next attempt scheduled ${next} ms after the last one, not capped`);
  }
  const d = await s.settled(seq);
  assert.equal(d.state, 'delivered');
  assert.equal(d.attempts, 2);
  const [gap] = gaps(rx);
  assert.ok(gap! >= 290, `the retry came ${gap} ms after the 503, before the 300 ms cap`);
  assert.ok(gap! < 2_000, `the retry came ${gap} ms after the 503: Retry-After was not capped at 300 ms`);
});

test('500 then 200: delivered on attempt 2', async (t) => {
  const rx = await receiver(t, (_req, res, n) => {
    res.writeHead(n === 1 ? 500 : 200);
    res.end(n === 1 ? 'boom' : 'ok');
  });
  const s = await setup(t, rx.url);
  const seq = await s.send();
  const d = await s.settled(seq);
  assert.equal(d.state, 'delivered');
  assert.equal(d.attempts, 2);
  assert.equal(d.lastStatus, 200);
  const attempts = await s.attempts(seq);
  assert.deepEqual(attempts.map((a) => [a.outcome, a.status]), [['failed', 500], ['delivered', 200]]);
  assert.match(attempts[0]!.error ?? '', /500/);
  await assertQuiet(rx, 2);
  // Both tries carry the same webhook-id (stable across retries).
  assert.equal(rx.requests[0]!.headers['webhook-id'], rx.requests[1]!.headers['webhook-id']);
  assert.equal(rx.requests[0]!.headers['webhook-id'], d.webhookId);
});

test('always 500: dead after exactly maxAttempts attempts, each listed with status 500', async (t) => {
  const rx = await receiver(t, answer(500));
  const s = await setup(t, rx.url, { retry: { ...FAST_RETRY, maxAttempts: 4 } });
  const seq = await s.send();
  const d = await s.settled(seq);
  assert.equal(d.state, 'dead');
  assert.equal(d.attempts, 4);
  assert.equal(d.lastStatus, 500);
  assert.match(d.lastError ?? '', /500/);
  assert.match(d.lastError ?? '', /max attempts/);
  const attempts = await s.attempts(seq);
  assert.equal(attempts.length, 4);
  for (const a of attempts) {
    assert.equal(a.status, 500);
    assert.equal(a.receiver, 'RETAILER-A');
    assert.match(a.error ?? '', /500/);
  }
  assert.deepEqual(attempts.map((a) => a.outcome), ['failed', 'failed', 'failed', 'dead']);
  await assertQuiet(rx, 4);
});

test('a receiver that never answers: the timeout is recorded and the delivery retried', async (t) => {
  const rx = await receiver(t, () => { /* never answer */ });
  const s = await setup(t, rx.url, { timeoutMs: 300, retry: { ...FAST_RETRY, maxAttempts: 2 } });
  const seq = await s.send();
  const d = await s.settled(seq);
  assert.equal(d.state, 'dead');
  assert.equal(d.attempts, 2);
  assert.equal(d.lastStatus, null);
  assert.match(d.lastError ?? '', /timeout/);
  const attempts = await s.attempts(seq);
  assert.equal(attempts.length, 2);
  for (const a of attempts) {
    assert.equal(a.status, null);
    assert.match(a.error ?? '', /timeout/);
    assert.ok(a.latencyMs! >= 250 && a.latencyMs! < 2_000, `an attempt took ${a.latencyMs} ms with timeoutMs 300`);
  }
  assert.equal(rx.requests.length, 2, 'the receiver saw both tries');
  await assertQuiet(rx, 2);
});

test('connection refused: retried, then dead', async (t) => {
  const port = await closedPort();
  const s = await setup(t, `http://127.0.0.1:${port}/hook`);
  const seq = await s.send();
  const d = await s.settled(seq);
  assert.equal(d.state, 'dead');
  assert.equal(d.attempts, FAST_RETRY.maxAttempts);
  assert.equal(d.lastStatus, null);
  assert.match(d.lastError ?? '', /ECONNREFUSED/);
  const attempts = await s.attempts(seq);
  assert.equal(attempts.length, FAST_RETRY.maxAttempts);
  assert.deepEqual(attempts.map((a) => a.outcome), ['failed', 'failed', 'dead']);
  for (const a of attempts) {
    assert.equal(a.status, null);
    assert.match(a.error ?? '', /ECONNREFUSED/);
  }
});

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
