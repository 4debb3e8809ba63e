/**
 * Receiver-side failure classes and their documented outcome (docs/delivery-states.md), beyond
 * those in push-outcomes.test.ts: a connection reset mid-request, a host that does not resolve,
 * and Retry-After as an HTTP date, as junk (ignored: backoff applies) and huge (capped).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { startTestHub, eventually, type TestHub } from '../support/hub.ts';
import { startReceiver, type ReceiverHandler, type TestReceiver } from '../support/receiver.ts';

const FAST_RETRY = { maxAttempts: 3, maxAgeSeconds: 60, initialDelayMs: 50, maxDelayMs: 100, multiplier: 2, retryAfterCapMs: 5_000 };

interface Delivery { state: string; attempts: number; lastStatus: number | null; lastError: string | null }
interface Attempt { outcome: string; status: number | null; error: string | null }

async function setup(t: TestContext, url: string, receiver: Record<string, unknown> = {}, allowPrivateTargets = true) {
  const hub: TestHub = await startTestHub({ allowPrivateTargets });
  t.after(() => hub.close());
  const { key } = await hub.participant('MDP-A');
  await hub.participant('RETAILER-A', { mode: 'push', url, timeoutMs: 2_000, retry: FAST_RETRY, ...receiver });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }]);
  const body = JSON.stringify({ specversion: '1.0', id: 'm1', source: 'MDP-A', type: 'test.reading', subject: 'NMI1', data: { reading: 1 } });
  const r = await hub.api('POST', '/v1/messages', { key, body, headers: { 'content-type': 'application/cloudevents+json' } });
  assert.equal(r.status, 202, r.text);
  const seq = r.json.sequence as number;
  return {
    hub,
    settled: () => eventually(async () => {
      const d = (await hub.api('GET', `/v1/messages/${seq}`, { key })).json.deliveries[0] as Delivery;
      return d.state === 'delivered' || d.state === 'dead' ? d : null;
    }, 10_000, 'the delivery to end'),
    attempts: async () => (await hub.api('GET', `/v1/messages/${seq}/attempts`, { key })).json.attempts as Attempt[],
  };
}

async function receiver(t: TestContext, handler: ReceiverHandler): Promise<TestReceiver> {
  const r = await startReceiver(handler);
  t.after(() => r.close());
  return r;
}

/** Answers `first` to the first request, 204 to the others. */
const firstThenOk = (status: number, retryAfter: string): ReceiverHandler => (_req, res, n) => {
  if (n === 1) { res.writeHead(status, { 'retry-after': retryAfter }); res.end('later'); return; }
  res.writeHead(204); res.end();
};

const gap = (r: TestReceiver) => r.requests[1]!.at - r.requests[0]!.at;

// ---- resets ------------------------------------------------------------------

const resets: Array<[string, (s: Socket) => void, RegExp]> = [
  ['closes the connection (FIN) after reading the request headers', (s) => s.destroy(), /UND_ERR_SOCKET|other side closed|ECONNRESET/],
  ['resets the connection (RST) after reading the request headers', (s) => s.resetAndDestroy(), /ECONNRESET|UND_ERR_SOCKET/],
];
for (const [name, end, expected] of resets) {
  test(`reset: a receiver that ${name}: a network failure, retried, then dead`, async (t) => {
    let requests = 0;
    const sockets = new Set<Socket>();
    const server = createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
      let head = '';
      s.on('data', (chunk) => {
        head += chunk.toString('latin1');
        if (head.includes('\r\n\r\n')) { requests++; head = ''; end(s); }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }));
    const s = await setup(t, `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`);
    const d = await s.settled();
    assert.equal(d.state, 'dead');
    assert.equal(d.attempts, FAST_RETRY.maxAttempts);
    assert.equal(d.lastStatus, null);
    assert.match(d.lastError ?? '', expected);
    const attempts = await s.attempts();
    assert.deepEqual(attempts.map((a) => a.outcome), ['failed', 'failed', 'dead']);
    for (const a of attempts) { assert.equal(a.status, null); assert.match(a.error ?? '', expected); }
    assert.equal(requests, FAST_RETRY.maxAttempts, 'each attempt reached the server once (no hidden retries)');
  });
}

// ---- DNS ---------------------------------------------------------------------

test('DNS failure: a host that does not resolve is retried as a network error, then dead (allowPrivateTargets off)', async (t) => {
  const s = await setup(t, 'http://nonexistent.invalid/hook', {}, false);
  const d = await s.settled();
  assert.equal(d.state, 'dead');
  assert.equal(d.attempts, FAST_RETRY.maxAttempts);
  assert.equal(d.lastStatus, null);
  assert.match(d.lastError ?? '', /ENOTFOUND|EAI_AGAIN/);
  assert.doesNotMatch(d.lastError ?? '', /EUNSAFETARGET/, 'an unresolvable host is not an unsafe target');
  assert.deepEqual((await s.attempts()).map((a) => a.outcome), ['failed', 'failed', 'dead']);
});

// ---- Retry-After -------------------------------------------------------------

test('Retry-After as an HTTP date (≈2 s ahead): the retry waits until then', async (t) => {
  // HTTP dates have whole seconds: "2 s ahead" is 1–2 s ahead once truncated.
  const rx = await receiver(t, (req, res, n) => firstThenOk(503, new Date(Date.now() + 2_000).toUTCString())(req, res, n));
  const s = await setup(t, rx.url);
  const d = await s.settled();
  assert.equal(d.state, 'delivered');
  assert.equal(d.attempts, 2);
  assert.ok(gap(rx) >= 950, `the retry came ${gap(rx)} ms after the 503, before the date`);
  assert.ok(gap(rx) < 3_000, `the retry came ${gap(rx)} ms after the 503, long after the date`);
  assert.deepEqual((await s.attempts()).map((a) => [a.outcome, a.status]), [['failed', 503], ['delivered', 204]]);
});

for (const junk of ['soon', '1.5', '-3', 'Tue, 31 Feb 2026 10:00:00 GMT', '2026-01-01T00:00:00Z']) {
  test(`Retry-After junk (${JSON.stringify(junk)}) on a 429: ignored, the backoff applies`, async (t) => {
    const rx = await receiver(t, firstThenOk(429, junk));
    // initialDelayMs 50: the retry comes within [25, 50] ms plus scheduling.
    const s = await setup(t, rx.url);
    const d = await s.settled();
    assert.equal(d.state, 'delivered');
    assert.equal(d.attempts, 2);
    assert.ok(gap(rx) < 800, `the retry came ${gap(rx)} ms after the 429: junk was taken as a delay`);
  });
}

const huge: Array<[string, string]> = [
  ['an HTTP date in the year 9999', 'Fri, 31 Dec 9999 23:59:59 GMT'],
  ['40 digits of seconds', '9'.repeat(40)],
];
for (const [name, value] of huge) {
  test(`Retry-After huge (${name}) on a 503: capped at retryAfterCapMs`, async (t) => {
    const rx = await receiver(t, firstThenOk(503, value));
    const s = await setup(t, rx.url, { retry: { ...FAST_RETRY, initialDelayMs: 10, maxDelayMs: 10, retryAfterCapMs: 300 } });
    const d = await s.settled();
    assert.equal(d.state, 'delivered');
    assert.equal(d.attempts, 2);
    assert.ok(gap(rx) >= 290, `the retry came ${gap(rx)} ms after the 503, before the cap`);
    assert.ok(gap(rx) < 2_000, `the retry came ${gap(rx)} ms after the 503: not capped at 300 ms`);
  });
}
