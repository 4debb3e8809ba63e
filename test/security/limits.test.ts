// The configurable limits at their boundaries: the per-key ingest rate limit (a token bucket,
// unit and over HTTP), the body size, and the documented defaults of every server.* setting.
// (The batch size, JSON depth, header size and header count boundaries are in test/fuzz:
// ingest.test.ts and http.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { parseConfig } from '../../src/config/load.ts';
import { KeyRateLimiter } from '../../src/limits/rate-limiter.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';
import { assertProblem, BATCH, ceHeaders, envelope, send, STRUCTURED } from '../api/helpers.ts';

test('token bucket: burst events pass at once, one more is refused with the whole seconds to wait; it refills at the rate; per key', () => {
  const l = new KeyRateLimiter({ eventsPerSecond: 10, burst: 20 });
  const t0 = 1_000_000;
  for (let i = 0; i < 20; i++) assert.deepEqual(l.take('k', 1, t0), { ok: true }, `event ${i + 1} of the burst`);
  assert.deepEqual(l.take('k', 1, t0), { ok: false, retryAfterSeconds: 1 }, 'burst + 1');
  assert.deepEqual(l.take('other', 1, t0), { ok: true }, 'another key has its own bucket');
  // 100 ms later one token is back, and only one.
  assert.deepEqual(l.take('k', 1, t0 + 100), { ok: true });
  assert.equal(l.take('k', 1, t0 + 100).ok, false);
  // A refused request takes nothing; peek never takes.
  assert.equal(l.peek('k', 1, t0 + 200).ok, true);
  assert.equal(l.peek('k', 1, t0 + 200).ok, true);
  assert.equal(l.take('k', 1, t0 + 200).ok, true);
  // After a long idle spell the bucket is full again, not more.
  assert.equal(l.tokens('k', t0 + 3_600_000), 20);
  // A clock going back adds nothing.
  assert.equal(l.tokens('k', t0), 20);
});

test('token bucket: a batch costs its length; up to the burst it needs that many tokens, a bigger one a full bucket, and leaves a debt', () => {
  const l = new KeyRateLimiter({ eventsPerSecond: 100, burst: 1000 });
  const t = 5_000_000;
  assert.equal(l.take('k', 1000, t).ok, true, 'a batch of exactly the burst');
  assert.equal(l.tokens('k', t), 0);
  const refused = l.take('k', 100, t);
  assert.deepEqual(refused, { ok: false, retryAfterSeconds: 1 }, '100 events at 100/s: 1 s');
  assert.deepEqual(l.take('k', 1000, t), { ok: false, retryAfterSeconds: 10 }, 'a batch of 1000 at 100/s: 10 s');
  assert.equal(l.take('k', 100, t + 999).ok, false, '99.9 tokens are not 100');
  assert.equal(l.take('k', 100, t + 1000).ok, true, 'exactly 1 s later');
  // Bigger than the burst: a full bucket lets it through, into debt.
  const m = new KeyRateLimiter({ eventsPerSecond: 100, burst: 1000 });
  assert.equal(m.take('k', 5000, t).ok, true, 'a full bucket takes a batch of 5000');
  assert.equal(m.tokens('k', t), -4000);
  assert.deepEqual(m.take('k', 1, t), { ok: false, retryAfterSeconds: 41 }, 'the debt (4000) and one token at 100/s');
  assert.deepEqual(m.take('k', 5000, t + 1), { ok: false, retryAfterSeconds: 50 }, 'the next big batch needs a full bucket again');
  // Fractional rates: Retry-After is rounded up, at least 1.
  const slow = new KeyRateLimiter({ eventsPerSecond: 0.3, burst: 1 });
  assert.equal(slow.take('k', 1, t).ok, true);
  assert.deepEqual(slow.take('k', 1, t), { ok: false, retryAfterSeconds: 4 });
  const fast = new KeyRateLimiter({ eventsPerSecond: 1e6, burst: 1 });
  assert.equal(fast.take('k', 1, t).ok, true);
  assert.deepEqual(fast.take('k', 1, t), { ok: false, retryAfterSeconds: 1 }, 'never less than 1 s');
  assert.throws(() => new KeyRateLimiter({ eventsPerSecond: 0, burst: 1 }), RangeError);
  assert.throws(() => new KeyRateLimiter({ eventsPerSecond: 1, burst: 0 }), RangeError);
});

test('token bucket: many keys (past the prune size) are kept in check; idle full buckets are dropped, indebted ones kept', () => {
  const l = new KeyRateLimiter({ eventsPerSecond: 1, burst: 2 });
  const t = 9_000_000;
  assert.equal(l.take('debtor', 2, t).ok, true);
  // 50,000 keys seen once (their buckets full: as good as none), 100 ms later.
  const started = Date.now();
  for (let i = 0; i < 50_000; i++) l.peek(`k${i}`, 1, t + 100);
  assert.ok(Date.now() - started < 2000, 'pruning stays cheap');
  const size = (l as unknown as { buckets: Map<string, unknown> }).buckets.size;
  assert.ok(size <= 10_000, `${size} buckets kept`);
  // The debtor survived the pruning with its state: 0.1 tokens, not a fresh bucket of 2.
  assert.ok(Math.abs(l.tokens('debtor', t + 100) - 0.1) < 1e-6);
  assert.equal(l.take('debtor', 1, t + 100).ok, false);
});

async function rateHub(eventsPerSecond: number | null, burst: number): Promise<{ hub: TestHub; key: string; key2: string }> {
  const hub = await startTestHub({ server: { ingestRateLimit: { eventsPerSecond, burst } } });
  const { key } = await hub.participant('MDP-A');
  const made = await hub.api('POST', '/v1/admin/participants/MDP-A/keys');
  await hub.participant('RETAILER-A', { mode: 'pull' });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }]);
  return { hub, key, key2: made.json.key };
}

let seq = 0;
const one = () => envelope({ id: `rl-${++seq}`, source: 'MDP-A' }, '{}');
const batch = (n: number) => `[${Array.from({ length: n }, one).join(',')}]`;
const post = (hub: TestHub, key: string, body: string, ct = STRUCTURED) => send(hub, 'POST', '/v1/messages', { key, headers: { 'content-type': ct }, body });

function assertRateLimited(res: Awaited<ReturnType<typeof send>>, retryAfter?: number): number {
  assertProblem(res, 429, 'rate-limited');
  const ra = String(res.headers['retry-after']);
  assert.match(ra, /^[1-9][0-9]*$/, `Retry-After in whole seconds, at least 1: '${ra}'`);
  if (retryAfter !== undefined) assert.equal(Number(ra), retryAfter);
  return Number(ra);
}

test('ingest rate limit over HTTP: the burst passes, one more event is 429 rate-limited with Retry-After; batches count their events; per key', async (t) => {
  // One token per 100 s: nothing refills during the test.
  const { hub, key, key2 } = await rateHub(0.01, 5);
  t.after(() => hub.close());
  for (let i = 0; i < 5; i++) assert.equal((await post(hub, key, one())).status, 202, `event ${i + 1} of 5`);
  assertRateLimited(await post(hub, key, one()), 100);
  // Every mode is limited; nothing refused was stored.
  assertRateLimited(await send(hub, 'POST', '/v1/messages', { key, headers: ceHeaders({ id: 'rl-bin', source: 'MDP-A' }, 'text/csv'), body: 'a,b\n' }));
  assertRateLimited(await post(hub, key, batch(2), BATCH));
  const found = await hub.api('GET', '/v1/messages?limit=100', { key });
  assert.equal(found.json.messages.length, 5, 'only the 5 admitted events were stored');
  // The participant's other key has a bucket of its own: a batch of 5 is exactly its burst.
  const b5 = await post(hub, key2, batch(5), BATCH);
  assert.equal(b5.status, 200, b5.text);
  assert.deepEqual(b5.json.results.map((r: any) => r.status), [202, 202, 202, 202, 202]);
  assertRateLimited(await post(hub, key2, one()), 100);
  await hub.close();

  // A batch of burst + 1 takes a full bucket into debt: 200, then 429 for 2 tokens' time.
  const h2 = await rateHub(0.01, 5);
  t.after(() => h2.hub.close());
  const b6 = await post(h2.hub, h2.key, batch(6), BATCH);
  assert.equal(b6.status, 200, b6.text);
  assert.equal(b6.json.results.length, 6);
  assertRateLimited(await post(h2.hub, h2.key, one()), 200);
  // A batch of burst + 1 on a bucket that is not full is refused whole.
  assert.equal((await post(h2.hub, h2.key2, one())).status, 202);
  const refused = await post(h2.hub, h2.key2, batch(6), BATCH);
  assertRateLimited(refused, 100);
  assert.match(refused.json.detail, /6 events/);
});

test('ingest rate limit: after Retry-After the key is served again; null turns the limit off; the default is 1000/s with a burst of 2000', async (t) => {
  const { hub, key } = await rateHub(2, 1);
  t.after(() => hub.close());
  assert.equal((await post(hub, key, one())).status, 202);
  const wait = assertRateLimited(await post(hub, key, one()), 1);
  await new Promise((r) => setTimeout(r, wait * 1000));
  assert.equal((await post(hub, key, one())).status, 202, 'served again after Retry-After');
  await hub.close();

  const off = await rateHub(null, 1);
  t.after(() => off.hub.close());
  const big = await post(off.hub, off.key, batch(3000), BATCH);
  assert.equal(big.status, 200);
  for (let i = 0; i < 20; i++) assert.equal((await post(off.hub, off.key, one())).status, 202);

  assert.deepEqual(parseConfig({}).server.ingestRateLimit, { eventsPerSecond: 1000, burst: 2000 });
  // The default limit is far from what the test suites send.
  const d = await startTestHub();
  t.after(() => d.close());
  const dk = (await d.participant('MDP-A')).key;
  await d.participant('RETAILER-A', { mode: 'pull' });
  await d.routes([{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }]);
  const b2000 = await post(d, dk, batch(2000), BATCH);
  assert.equal(b2000.status, 200);
  assertRateLimited(await post(d, dk, batch(2000), BATCH));
});

test('body size: exactly server.bodyLimitBytes passes and one byte more is 413, structured and batch alike', async (t) => {
  const hub = await startTestHub({ server: { bodyLimitBytes: 2048, ingestRateLimit: { eventsPerSecond: null } } });
  t.after(() => hub.close());
  const { key } = await hub.participant('MDP-A');
  await hub.participant('RETAILER-A', { mode: 'pull' });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }]);
  const padTo = (size: number, id: string) => {
    const head = envelope({ id, source: 'MDP-A' }, '"');
    const body = `${head.slice(0, -1)}${'p'.repeat(size - head.length - 1)}"}`;
    assert.equal(Buffer.byteLength(body), size);
    return body;
  };
  assert.equal((await post(hub, key, padTo(2048, 'fits'))).status, 202);
  assertProblem(await post(hub, key, padTo(2049, 'over')), 413, 'payload-too-large');
  const inBatch = (size: number, id: string) => `[${padTo(size - 2, id)}]`;
  assert.equal((await post(hub, key, inBatch(2048, 'b-fits'), BATCH)).status, 200);
  assertProblem(await post(hub, key, inBatch(2049, 'b-over'), BATCH), 413, 'payload-too-large');
  // Chunked (no Content-Length): the same boundary.
  const chunked = async (body: string) => {
    const res = await request(`${hub.url}/v1/messages`, {
      method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': STRUCTURED },
      body: Readable.from((async function* () { yield body.slice(0, 1000); yield body.slice(1000); })()),
    });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers as Record<string, unknown>, text, json: JSON.parse(text) };
  };
  assert.equal((await chunked(padTo(2048, 'c-fits'))).status, 202);
  assertProblem(await chunked(padTo(2049, 'c-over')), 413, 'payload-too-large');
});

test('timeout settings: headersTimeoutMs is held to requestTimeoutMs; a connection timeout that would cut long polls is refused at start', async (t) => {
  const hub = await startTestHub({ server: { requestTimeoutMs: 1500, connectionTimeoutMs: 25_000, keepAliveTimeoutMs: 3000 } }, { listen: false });
  t.after(() => hub.close());
  const server = hub.app.server as unknown as { headersTimeout: number; requestTimeout: number; timeout: number; keepAliveTimeout: number; maxHeadersCount: number };
  assert.deepEqual(
    { headers: server.headersTimeout, request: server.requestTimeout, idle: server.timeout, keepAlive: server.keepAliveTimeout, maxHeaders: server.maxHeadersCount },
    { headers: 1500, request: 1500, idle: 25_000, keepAlive: 3000, maxHeaders: 201 },
  );
  assert.throws(() => parseConfig({ server: { connectionTimeoutMs: 20_000 } }), /connectionTimeoutMs.*long polls/);
  assert.throws(() => parseConfig({ server: { connectionTimeoutMs: 60_000 }, inbox: { maxWaitSeconds: 60 } }), /connectionTimeoutMs/);
  assert.equal(parseConfig({ server: { connectionTimeoutMs: 20_001 } }).server.connectionTimeoutMs, 20_001);
  assert.throws(() => parseConfig({ server: { ingestRateLimit: { eventsPerSecond: 0 } } }), /eventsPerSecond/);
  assert.throws(() => parseConfig({ server: { ingestRateLimit: { burst: 0 } } }), /burst/);
  assert.throws(() => parseConfig({ server: { maxJsonDepth: 1 } }), /maxJsonDepth/);
  assert.throws(() => parseConfig({ server: { maxHeaderBytes: 100 } }), /maxHeaderBytes/);
});

test('docs/configuration.md documents every server.* setting with the default the hub has', () => {
  const doc = readFileSync(fileURLToPath(new URL('../../docs/configuration.md', import.meta.url)), 'utf8');
  const defaults = parseConfig({}).server as Record<string, unknown>;
  const flat: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(defaults)) {
    if (v !== null && typeof v === 'object') for (const [k2, v2] of Object.entries(v)) flat[`server.${k}.${k2}`] = v2;
    else flat[`server.${k}`] = v;
  }
  for (const [name, value] of Object.entries(flat)) {
    const row = new RegExp(`^\\| \`${name.replace(/\./g, '\\.')}\` \\| \`([^\`]*)\``, 'm').exec(doc);
    assert.ok(row, `docs/configuration.md has no row for ${name}`);
    assert.equal(row[1], String(value), `${name}: documented default`);
  }
});
