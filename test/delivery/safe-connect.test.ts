/**
 * The Pool's connector refuses private addresses at connect time. Only loopback is ever
 * connected to here; other addresses are checked by classification alone (no traffic).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { Pool } from 'undici';
import { guardedLookup, safeConnector } from '../../src/delivery/safe-connect.ts';
import { isPrivateAddress } from '../../src/delivery/target-guard.ts';

const addresses: Array<[string, boolean]> = [
  ['127.0.0.1', true], ['127.1.2.3', true], ['10.0.0.1', true], ['172.16.5.4', true], ['192.168.1.1', true],
  ['169.254.169.254', true], ['100.64.0.1', true], ['0.0.0.0', true],
  ['::1', true], ['::', true], ['fe80::1', true], ['fd00::1', true], ['::ffff:127.0.0.1', true], ['::ffff:7f00:1', true],
  ['::ffff:169.254.169.254', true], ['0:0:0:0:0:ffff:127.0.0.1', true], ['::FFFF:A00:1', true], ['::7f00:1', true],
  ['fe80::1%eth0', true], ['64:ff9b::7f00:1', true], ['not-an-ip', true], ['', true],
  // Public addresses must pass (Node's BlockList once matched every IPv4 address against ::ffff:0:0/96).
  ['93.184.216.34', false], ['8.8.8.8', false], ['1.1.1.1', false], ['2606:4700::1111', false], ['::ffff:8.8.8.8', false],
];
for (const [address, isPrivate] of addresses) {
  test(`isPrivateAddress(${address}) is ${isPrivate}`, () => assert.equal(isPrivateAddress(address), isPrivate));
}

async function listener(t: import('node:test').TestContext): Promise<{ server: Server; port: number; connections: () => number }> {
  let n = 0;
  const server = createServer((s) => {
    n++;
    s.on('data', () => s.end('HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return { server, port: (server.address() as AddressInfo).port, connections: () => n };
}

async function get(origin: string, allowPrivate: boolean): Promise<{ status?: number; code?: string }> {
  const pool = new Pool(origin, { connect: safeConnector({ allowPrivate, timeoutMs: 2_000 }) });
  try {
    const res = await pool.request({ method: 'GET', path: '/' });
    await res.body.dump();
    return { status: res.statusCode };
  } catch (err) {
    return { code: (err as { code?: string }).code };
  } finally {
    await pool.close();
  }
}

test('safeConnector: a host name resolving to loopback is refused at connect, and no connection is made', async (t) => {
  const l = await listener(t);
  assert.deepEqual(await get(`http://localhost:${l.port}`, false), { code: 'EUNSAFETARGET' });
  assert.equal(l.connections(), 0);
});

for (const host of ['127.0.0.1', '[::ffff:127.0.0.1]']) {
  test(`safeConnector: the IP literal ${host} is refused before connecting`, async (t) => {
    const l = await listener(t);
    assert.deepEqual(await get(`http://${host}:${l.port}`, false), { code: 'EUNSAFETARGET' });
    assert.equal(l.connections(), 0);
  });
}

test('safeConnector: with allowPrivate the same hosts connect', async (t) => {
  const l = await listener(t);
  assert.deepEqual(await get(`http://localhost:${l.port}`, true), { status: 204 });
  assert.deepEqual(await get(`http://127.0.0.1:${l.port}`, true), { status: 204 });
  assert.equal(l.connections(), 2);
});

test('guardedLookup: refuses loopback in both callback shapes (one address, all addresses); passes DNS errors on', async () => {
  const one = await new Promise<unknown>((r) => guardedLookup('localhost', { family: 4 }, (err) => r(err)));
  assert.equal((one as { code?: string }).code, 'EUNSAFETARGET');
  const all = await new Promise<unknown>((r) => guardedLookup('localhost', { all: true }, (err) => r(err)));
  assert.equal((all as { code?: string }).code, 'EUNSAFETARGET');
  const missing = await new Promise<unknown>((r) => guardedLookup('nonexistent.invalid', {}, (err) => r(err)));
  assert.match(String((missing as { code?: string }).code), /ENOTFOUND|EAI_AGAIN/);
});
