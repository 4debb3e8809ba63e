/**
 * Timeouts that hold against receivers that accept the connection and then stall or trickle.
 * undici's headersTimeout/bodyTimeout measure gaps between bytes, so a byte every 100 ms never
 * trips them; the attempt's whole deadline (timeoutMs) must end it, body reading included.
 * Each behaviour: every attempt ends within timeoutMs + 500 ms and is recorded as a timeout,
 * while a healthy receiver routed the same messages gets them promptly.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { startTestHub, eventually } from '../support/hub.ts';
import { startReceiver } from '../support/receiver.ts';

const TIMEOUT_MS = 600;
const MAX_ATTEMPTS = 2;

/** A raw TCP server that does `behave` with each connection once it has the request's first bytes. */
async function rawServer(t: TestContext, behave: (socket: Socket, every: (ms: number, fn: () => void) => void) => void) {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    const timers: NodeJS.Timeout[] = [];
    const every = (ms: number, fn: () => void) => { timers.push(setInterval(() => { if (!socket.destroyed) fn(); }, ms)); };
    socket.on('error', () => {});
    socket.on('close', () => timers.forEach(clearInterval));
    socket.once('data', () => behave(socket, every));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    server.close(() => r());
  }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, connections: () => connections, server };
}

/** Writes `text` one byte every 100 ms, then `then` (repeated forever) one byte every 100 ms. */
function trickle(socket: Socket, every: (ms: number, fn: () => void) => void, text: string, then = 'a'): void {
  let i = 0;
  every(100, () => { socket.write(i < text.length ? text[i++]! : then); });
}

const behaviours: Array<[string, (s: Socket, every: (ms: number, fn: () => void) => void) => void]> = [
  ['accepts, then stalls (never answers)', () => { /* nothing */ }],
  ['trickles the status line and headers, a byte every 100 ms', (s, every) => trickle(s, every, 'HTTP/1.1 200 OK\r\nx-slow: ')],
  ['sends the headers, then stalls the body', (s) => { s.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\nabc'); }],
  ['sends the headers, then trickles the body, a byte every 100 ms', (s, every) => { s.write('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n'); trickle(s, every, ''); }],
];

for (const [name, behave] of behaviours) {
  test(`timeout: a receiver that ${name}: each attempt ends by timeoutMs + 500 ms as a timeout; others are not held up`, async (t) => {
    const stall = await rawServer(t, behave);
    const healthy = await startReceiver();
    t.after(() => healthy.close());
    const hub = await startTestHub();
    t.after(() => hub.close());
    const { key } = await hub.participant('MDP-A');
    await hub.participant('STALL', { mode: 'push', url: stall.url, timeoutMs: TIMEOUT_MS, retry: { maxAttempts: MAX_ATTEMPTS, initialDelayMs: 50, maxDelayMs: 50 } });
    await hub.participant('HEALTHY', { mode: 'push', url: healthy.url });
    await hub.routes([{ name: 'all', match: {}, to: { participants: ['STALL', 'HEALTHY'] } }]);

    const send = async (id: string) => {
      const body = JSON.stringify({ specversion: '1.0', id, source: 'MDP-A', type: 'test.reading', subject: 'NMI1', data: { reading: 1 } });
      const r = await hub.api('POST', '/v1/messages', { key, body, headers: { 'content-type': 'application/cloudevents+json' } });
      assert.equal(r.status, 202, r.text);
      return r.json.sequence as number;
    };
    const deliveryTo = async (seq: number, receiver: string) => {
      const r = await hub.api('GET', `/v1/messages/${seq}`, { key });
      return r.json.deliveries.find((d: { receiver: string }) => d.receiver === receiver);
    };

    const seq = await send('m1');
    await eventually(() => stall.connections() >= 1, 3_000, 'the stalling receiver to be connected to');
    // Mid-stall, a second message: the healthy receiver gets it at once.
    await new Promise((r) => setTimeout(r, TIMEOUT_MS / 3));
    const sentAt = Date.now();
    await send('m2');
    await eventually(() => healthy.requests.length === 2, 3_000, 'the healthy receiver to get both messages');
    const late = healthy.requests[1]!.at - sentAt;
    assert.ok(late < 300, `the healthy receiver got the second message ${late} ms after it was sent, behind the stall`);

    const d = await eventually(async () => {
      const x = await deliveryTo(seq, 'STALL');
      return x.state === 'dead' ? x : null;
    }, MAX_ATTEMPTS * (TIMEOUT_MS + 500) + 2_000, 'the stalled delivery to end');
    assert.equal(d.attempts, MAX_ATTEMPTS);
    assert.equal(d.lastStatus, null);
    assert.match(d.lastError, /timeout/);
    const attempts = (await hub.api('GET', `/v1/messages/${seq}/attempts`, { key })).json.attempts.filter((a: { receiver: string }) => a.receiver === 'STALL');
    assert.equal(attempts.length, MAX_ATTEMPTS);
    for (const a of attempts) {
      assert.equal(a.status, null, 'a timed-out attempt has no status, even when a 200 status line arrived');
      assert.match(a.error, /timeout/);
      assert.ok(a.latencyMs >= TIMEOUT_MS - 50 && a.latencyMs <= TIMEOUT_MS + 500, `an attempt took ${a.latencyMs} ms with timeoutMs ${TIMEOUT_MS}`);
    }
    assert.equal((await deliveryTo(seq, 'HEALTHY')).state, 'delivered');
  });
}

test('timeout: a receiver that never reads a large (file-stored) body: the send itself is cut at the deadline', async (t) => {
  const stall = await rawServer(t, (s) => s.pause());
  const hub = await startTestHub({ storage: { inlineBodyMaxBytes: 1024 } });
  t.after(() => hub.close());
  const { key } = await hub.participant('MDP-A');
  await hub.participant('STALL', { mode: 'push', url: stall.url, timeoutMs: TIMEOUT_MS, retry: { maxAttempts: 1 } });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['STALL'] } }]);
  const data = Buffer.alloc(12 * 1024 * 1024, 'x'); // more than loopback socket buffers hold
  const r = await hub.api('POST', '/v1/messages', {
    key, body: data,
    headers: { 'content-type': 'application/octet-stream', 'ce-specversion': '1.0', 'ce-id': 'big', 'ce-source': 'MDP-A', 'ce-type': 'test.blob', 'ce-subject': 'NMI1' },
  });
  assert.equal(r.status, 202, r.text);
  const seq = r.json.sequence as number;
  const d = await eventually(async () => {
    const x = (await hub.api('GET', `/v1/messages/${seq}`, { key })).json.deliveries[0];
    return x.state === 'dead' ? x : null;
  }, TIMEOUT_MS + 5_000, 'the delivery to end');
  assert.match(d.lastError, /timeout/);
  const [a] = (await hub.api('GET', `/v1/messages/${seq}/attempts`, { key })).json.attempts;
  assert.ok(a.latencyMs >= TIMEOUT_MS - 50 && a.latencyMs <= TIMEOUT_MS + 500, `the attempt took ${a.latencyMs} ms with timeoutMs ${TIMEOUT_MS}`);
});
