/**
 * Outbound safety with allowPrivateTargets false: private, loopback, link-local and metadata
 * receiver URLs are refused at PUT, and again at connect time, so that a DNS answer that changes
 * between the check and the connect (rebinding) cannot reach an internal address. Only loopback
 * servers are ever connected to; other addresses are refused before any packet is sent.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { startTestHub, eventually, type TestHub } from '../support/hub.ts';

/** A loopback HTTP/1.1 server that counts connections and answers 204. */
async function countingServer(t: TestContext) {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('error', () => {});
    s.on('data', () => s.write('HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }));
  return { port: (server.address() as AddressInfo).port, connections: () => connections };
}

async function privateHub(t: TestContext, overrides: Record<string, unknown> = {}): Promise<{ hub: TestHub; key: string }> {
  const hub = await startTestHub({ allowPrivateTargets: false, ...overrides });
  t.after(() => hub.close());
  const { key } = await hub.participant('MDP-A');
  return { hub, key };
}

const put = (hub: TestHub, id: string, url: string, more: Record<string, unknown> = {}) =>
  hub.api('PUT', `/v1/admin/participants/${id}`, { json: { name: id, receiver: { mode: 'push', url, ...more } } });

test('PUT refuses private, loopback, link-local and metadata receiver URLs with 422 unsafe-target (problem+json)', async (t) => {
  const server = await countingServer(t);
  const { hub } = await privateHub(t);
  const urls = [
    `http://127.0.0.1:${server.port}/hook`,
    `http://localhost:${server.port}/hook`,
    'http://169.254.169.254/latest/meta-data/',
    `http://[::1]:${server.port}/hook`,
    `http://[::ffff:127.0.0.1]:${server.port}/hook`,
    'http://10.1.2.3/hook',
    'http://192.168.0.10/hook',
    'http://[fd00::1]/hook',
    'http://0.0.0.0/hook',
  ];
  for (const [i, url] of urls.entries()) {
    const r = await put(hub, `RX-${i}`, url);
    assert.equal(r.status, 422, `${url}: ${r.text}`);
    assert.match(String(r.headers['content-type']), /^application\/problem\+json/, url);
    assert.match(r.json.type, /unsafe-target$/, url);
    assert.equal(r.json.status, 422);
    assert.equal(typeof r.json.title, 'string');
    assert.match(r.json.detail, /private, loopback or link-local/, url);
    assert.equal((await hub.api('GET', `/v1/admin/participants/RX-${i}`)).status, 404, `${url}: nothing was stored`);
  }
  assert.equal(server.connections(), 0, 'checking a URL never connects to it');
});

test('PUT accepts an unresolvable host: that is a delivery failure, not an unsafe target', async (t) => {
  const { hub } = await privateHub(t);
  const r = await put(hub, 'RX', 'http://nonexistent.invalid/hook');
  assert.equal(r.status, 201, r.text);
});

/**
 * Rebinding: the pre-flight check is made to see a safe answer (as if DNS answered a public
 * address when asked), so the receiver is stored and the pre-flight passes at delivery; then the
 * real lookup at connect time gives loopback, and the connection is refused: no request reaches
 * the server, each attempt is recorded as EUNSAFETARGET, and the breaker does not count them.
 */
for (const host of ['localhost', '127.0.0.1', '[::ffff:127.0.0.1]']) {
  test(`connect time: a receiver at ${host} that got past the pre-flight check is refused without a connection`, async (t) => {
    const server = await countingServer(t);
    const { hub, key } = await privateHub(t, { delivery: { breaker: { failureThreshold: 2, cooldownMs: 60_000 } } });
    const guard = hub.hub.guard;
    guard.refusal = async () => null; // DNS said "public" when the guard asked
    assert.equal(guard.allowPrivate, false);

    const r = await put(hub, 'RX', `http://${host}:${server.port}/hook`, { retry: { maxAttempts: 3, initialDelayMs: 20, maxDelayMs: 20 } });
    assert.equal(r.status, 201, r.text);
    await hub.routes([{ name: 'all', match: {}, to: { participants: ['RX'] } }]);
    const body = JSON.stringify({ specversion: '1.0', id: 'm1', source: 'MDP-A', type: 'test.reading', subject: 'NMI1', data: {} });
    const sent = await hub.api('POST', '/v1/messages', { key, body, headers: { 'content-type': 'application/cloudevents+json' } });
    assert.equal(sent.status, 202, sent.text);
    const seq = sent.json.sequence as number;

    const d = await eventually(async () => {
      const x = (await hub.api('GET', `/v1/messages/${seq}`, { key })).json.deliveries[0];
      return x.state === 'dead' ? x : null;
    }, 5_000, 'the delivery to end');
    assert.equal(d.attempts, 3, 'every attempt was refused; the breaker (threshold 2) did not count them');
    assert.match(d.lastError, /EUNSAFETARGET/);
    assert.match(d.lastError, /127\.0\.0\.1|::1|::ffff:7f00:1/);
    assert.equal(server.connections(), 0, 'no connection reached the server');
    assert.deepEqual(hub.hub.push.breakerStates().map((b) => b.state), ['closed']);
  });
}

test('control: with allowPrivateTargets the same loopback receiver is delivered to', async (t) => {
  const server = await countingServer(t);
  const { hub, key } = await privateHub(t, { allowPrivateTargets: true });
  assert.equal((await put(hub, 'RX', `http://localhost:${server.port}/hook`)).status, 201);
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['RX'] } }]);
  const body = JSON.stringify({ specversion: '1.0', id: 'm1', source: 'MDP-A', type: 'test.reading', subject: 'NMI1', data: {} });
  const sent = await hub.api('POST', '/v1/messages', { key, body, headers: { 'content-type': 'application/cloudevents+json' } });
  await eventually(async () => (await hub.api('GET', `/v1/messages/${sent.json.sequence}`, { key })).json.deliveries[0].state === 'delivered', 5_000, 'delivered');
  assert.equal(server.connections(), 1);
});
