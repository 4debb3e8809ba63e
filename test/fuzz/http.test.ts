// Fuzzing below the API: what Node's HTTP parser sees before Fastify does. Raw sockets, since an
// HTTP client would refuse to send most of this. Every answer is a 4xx problem+json (never a
// bare Node answer, a 5xx, or silence), nothing hangs past its bound, slow clients do not stop
// others being served, and the hub is healthy afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { request } from 'undici';
import {
  assertHealthy, assertRawProblem, envelope, fuzzWorld, rawExchange, rawRequest, STRUCTURED, type Piece,
} from './support.ts';

const GET_HEALTH = 'GET /healthz HTTP/1.1\r\nhost: x\r\n';

test('header size: the target plus header names and values up to server.maxHeaderBytes pass, one byte more is 431 problem+json; 100 KB headers and URLs are 431', async (t) => {
  const w = await fuzzWorld({ server: { maxHeaderBytes: 2048 } });
  t.after(() => w.close());
  // Node counts the request target and every header name and value (not ': ' and CRLFs).
  const counted = (filler: number) => '/healthz'.length + 'host'.length + 'x'.length + 'x-fill'.length + filler;
  const withFiller = (n: number) => `${GET_HEALTH}x-fill: ${'a'.repeat(n)}\r\n\r\n`;
  const fits = 2048 - counted(0);
  assert.equal(counted(fits), 2048);
  const ok = await rawExchange(w.hub.url, withFiller(fits));
  assert.equal(ok.status, 200, `exactly maxHeaderBytes: ${ok.text}`);
  assertRawProblem(await rawExchange(w.hub.url, withFiller(fits + 1)), 431, 'headers-too-large', 'maxHeaderBytes + 1');
  // The same limit counts a long URL.
  const longPath = `/healthz?${'q'.repeat(2048)}`;
  assertRawProblem(await rawExchange(w.hub.url, `GET ${longPath} HTTP/1.1\r\nhost: x\r\n\r\n`), 431, 'headers-too-large', 'long URL');
  await assertHealthy(w, 'after 431s');
});

test('with the default limit (16 KiB) a 100 KB header, a 100 KB URL and a 100 KB authorization are 431 problem+json, on ingest and admin alike', async (t) => {
  const w = await fuzzWorld();
  t.after(() => w.close());
  const big = 'b'.repeat(100 * 1024);
  const cases: Array<[string, Buffer | string]> = [
    ['100 KB header on /healthz', `${GET_HEALTH}x-big: ${big}\r\n\r\n`],
    ['100 KB URL', `GET /v1/messages/${big} HTTP/1.1\r\nhost: x\r\n\r\n`],
    ['100 KB ce-id', rawRequest('POST', '/v1/messages', [['authorization', `Bearer ${w.key}`], ['ce-specversion', '1.0'], ['ce-id', big], ['ce-source', 'MDP-A'], ['ce-type', 't'], ['ce-subject', 's'], ['content-type', 'text/plain']], 'x')],
    ['100 KB authorization', rawRequest('GET', '/v1/admin/participants', [['authorization', `Bearer ${big}`]])],
    // A header block that never ends: the limit stops the read, not the memory.
    ['1 MB of header lines', `${GET_HEALTH}${'x-a: 1\r\n'.repeat(128 * 1024)}`],
  ];
  for (const [what, bytes] of cases) {
    assertRawProblem(await rawExchange(w.hub.url, bytes), 431, 'headers-too-large', what);
  }
  await assertHealthy(w, 'after 100 KB headers');
});

test('header count: server.maxHeaders fields pass, one more is 431 (Node would silently drop the rest); thousands of headers are 431', async (t) => {
  const w = await fuzzWorld({ server: { maxHeaders: 50 } });
  t.after(() => w.close());
  const withHeaders = (n: number) => `GET /healthz HTTP/1.1\r\n${['host: x', ...Array.from({ length: n - 1 }, (_, i) => `x-h${i}: ${i}`)].join('\r\n')}\r\n\r\n`;
  const ok = await rawExchange(w.hub.url, withHeaders(50));
  assert.equal(ok.status, 200, ok.text);
  assertRawProblem(await rawExchange(w.hub.url, withHeaders(51)), 431, 'headers-too-large', '51 headers');
  assertRawProblem(await rawExchange(w.hub.url, withHeaders(3000)), 431, 'headers-too-large', '3000 headers');
  // The header that would have been dropped is what made the difference: here the key.
  const ingest = Buffer.concat([
    Buffer.from(`POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: ${STRUCTURED}\r\n${Array.from({ length: 60 }, (_, i) => `x-h${i}: ${i}`).join('\r\n')}\r\nauthorization: Bearer ${w.key}\r\n`),
    Buffer.from(`content-length: ${Buffer.byteLength(w.validEvent())}\r\n\r\n${w.validEvent()}`),
  ]);
  assertRawProblem(await rawExchange(w.hub.url, ingest), 431, 'headers-too-large', 'many headers before the key');
  await assertHealthy(w);
});

test('garbage below HTTP: each is a 400 malformed-request problem+json, never a bare answer or a hang', async (t) => {
  const w = await fuzzWorld();
  t.after(() => w.close());
  const auth = `authorization: Bearer ${w.key}\r\n`;
  const cases: Array<[string, Piece[], { halfClose?: boolean; status?: number }?]> = [
    ['unknown method', ['FROB /healthz HTTP/1.1\r\nhost: x\r\n\r\n']],
    ['binary noise', [Buffer.from([0xff, 0x00, 0x01, 0x02, 0x0d, 0x0a, 0x0d, 0x0a])]],
    ['NUL in a header value', [`${GET_HEALTH}x-a: a\0b\r\n\r\n`]],
    ['NUL in a header name', [`${GET_HEALTH}x\0a: b\r\n\r\n`]],
    ['NUL in the path', ['GET /heal\0thz HTTP/1.1\r\nhost: x\r\n\r\n']],
    ['raw 0xFF in the path', [Buffer.concat([Buffer.from('GET /v1/messages/'), Buffer.from([0xff]), Buffer.from(' HTTP/1.1\r\nhost: x\r\n\r\n')])]],
    ['space in the path', ['GET /a b HTTP/1.1\r\nhost: x\r\n\r\n']],
    ['header without a colon', [`${GET_HEALTH}no-colon-here\r\n\r\n`]],
    ['obsolete line folding', [`${GET_HEALTH}x-a: 1\r\n  folded\r\n\r\n`]],
    ['HTTP/9.9', ['GET /healthz HTTP/9.9\r\nhost: x\r\n\r\n']],
    ['HTTP/2 preface', ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n']],
    ['a method of 10 KB', [`${'A'.repeat(10 * 1024)} / HTTP/1.1\r\nhost: x\r\n\r\n`]],
    ['no Host (HTTP/1.1)', ['GET /healthz HTTP/1.1\r\n\r\n']],
    ['CONNECT', ['CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n']],
    ['Transfer-Encoding and Content-Length', [`POST /v1/messages HTTP/1.1\r\nhost: x\r\n${auth}content-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n`]],
    ['two different Content-Lengths', [`POST /v1/messages HTTP/1.1\r\nhost: x\r\n${auth}content-length: 3\r\ncontent-length: 4\r\n\r\nabcd`]],
    ['Content-Length not a number', [`POST /v1/messages HTTP/1.1\r\nhost: x\r\n${auth}content-length: 1e3\r\n\r\n`]],
    ['negative Content-Length', [`POST /v1/messages HTTP/1.1\r\nhost: x\r\n${auth}content-length: -1\r\n\r\n`]],
    ['Content-Length over 2^64', [`POST /v1/messages HTTP/1.1\r\nhost: x\r\n${auth}content-length: 99999999999999999999999\r\n\r\n`]],
    ['bad chunk size', [`POST /v1/messages HTTP/1.1\r\nhost: x\r\n${auth}content-type: ${STRUCTURED}\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n`]],
    ['chunk longer than announced', [`POST /v1/messages HTTP/1.1\r\nhost: x\r\n${auth}content-type: ${STRUCTURED}\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabcdef\r\n0\r\n\r\n`]],
    ['unknown transfer coding', [`POST /v1/messages HTTP/1.1\r\nhost: x\r\n${auth}content-type: ${STRUCTURED}\r\ntransfer-encoding: gzip\r\n\r\n{}`]],
    ['body cut short, then FIN', [`POST /v1/messages HTTP/1.1\r\nhost: x\r\n${auth}content-type: ${STRUCTURED}\r\ncontent-length: 100\r\n\r\n{"specversion":`], { halfClose: true }],
    ['chunked body cut short, then FIN', [`POST /v1/messages HTTP/1.1\r\nhost: x\r\n${auth}content-type: ${STRUCTURED}\r\ntransfer-encoding: chunked\r\n\r\n10\r\n{"spec`], { halfClose: true }],
  ];
  for (const [what, pieces, o] of cases) {
    const res = await rawExchange(w.hub.url, pieces, { timeoutMs: 5000, ...(o?.halfClose ? { halfClose: true } : {}) });
    assertRawProblem(res, o?.status ?? 400, 'malformed-request', what);
  }
  // Headers only, then FIN before the blank line.
  assertRawProblem(await rawExchange(w.hub.url, [`${GET_HEALTH}x-a: 1`], { halfClose: true, timeoutMs: 5000 }), 400, 'malformed-request', 'headers cut off by FIN');
  await assertHealthy(w, 'after garbage');
});

test('protocol corners answered normally: Expect (100-continue and unknown), pipelining, HTTP/1.0 without Host, HEAD, an absolute URI', async (t) => {
  const w = await fuzzWorld();
  t.after(() => w.close());
  const headers: Array<[string, string]> = [['authorization', `Bearer ${w.key}`], ['content-type', STRUCTURED]];
  for (const expect of ['100-continue', 'something-else']) {
    const res = await rawExchange(w.hub.url, rawRequest('POST', '/v1/messages', [...headers, ['expect', expect]], w.validEvent()));
    assert.equal(res.status, 202, `Expect: ${expect}: ${res.text}`);
  }
  const http10 = await rawExchange(w.hub.url, 'GET /healthz HTTP/1.0\r\n\r\n');
  assert.equal(http10.status, 200);
  const head = await rawExchange(w.hub.url, 'HEAD /healthz HTTP/1.1\r\nhost: x\r\n\r\n', { head: true });
  assert.equal(head.status, 200);
  const absolute = await rawExchange(w.hub.url, 'GET http://elsewhere.example/healthz HTTP/1.1\r\nhost: x\r\n\r\n');
  assert.equal(absolute.status, 200);
  // Three pipelined requests, the last garbage: two answers, then a problem, then the close.
  const { hostname, port } = new URL(w.hub.url);
  const all = await new Promise<string>((resolve, reject) => {
    const s = connect({ host: hostname, port: Number(port) });
    const got: Buffer[] = [];
    const timer = setTimeout(() => { s.destroy(); reject(new Error('pipelined requests: no close within 5 s')); }, 5000);
    s.on('data', (d) => got.push(d));
    s.on('error', () => { /* reset after the answers */ });
    s.on('close', () => { clearTimeout(timer); resolve(Buffer.concat(got).toString('latin1')); });
    s.write(`${GET_HEALTH}\r\n${GET_HEALTH}\r\nGARBAGE\r\n\r\n`);
  });
  assert.deepEqual([...all.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]), ['200', '200', '400'], all.slice(0, 500));
  assert.match(all, /application\/problem\+json/);
  await assertHealthy(w);
});

test('slow clients: headers or a body trickled past server.headersTimeoutMs / requestTimeoutMs get 408 problem+json and the close, within the bound', async (t) => {
  const w = await fuzzWorld({ server: { headersTimeoutMs: 1000, requestTimeoutMs: 2000 } });
  t.after(() => w.close());
  const trickle = (text: string, everyMs: number): Piece[] => [...text].flatMap((c) => [c, { pauseMs: everyMs }]);
  // Headers a byte every 100 ms: 408 once 1 s has passed (Node checks every 250 ms here).
  const slowHeaders = await rawExchange(w.hub.url, trickle(`${GET_HEALTH}x-slow: ${'s'.repeat(200)}\r\n\r\n`, 100), { timeoutMs: 6000 });
  assertRawProblem(slowHeaders, 408, 'request-timeout', 'slow headers');
  assert.ok(slowHeaders.elapsedMs >= 900 && slowHeaders.elapsedMs < 3000, `408 after ${slowHeaders.elapsedMs} ms (headersTimeoutMs 1000)`);
  // A connection that sends nothing at all is closed too.
  const silent = await rawExchange(w.hub.url, [{ pauseMs: 10_000 }], { timeoutMs: 6000 });
  assertRawProblem(silent, 408, 'request-timeout', 'a connection that sends nothing');
  assert.ok(silent.elapsedMs < 3000, `an idle new connection is answered and closed after ${silent.elapsedMs} ms`);
  // Headers at once, the body a byte every 100 ms: 408 once 2 s have passed.
  const body = w.validEvent();
  const head = `POST /v1/messages HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${w.key}\r\ncontent-type: ${STRUCTURED}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n`;
  const slowBody = await rawExchange(w.hub.url, [head, ...trickle(body, 100)], { timeoutMs: 8000 });
  assertRawProblem(slowBody, 408, 'request-timeout', 'slow body');
  assert.ok(slowBody.elapsedMs >= 1900 && slowBody.elapsedMs < 4500, `408 after ${slowBody.elapsedMs} ms (requestTimeoutMs 2000)`);
  // A kept-alive connection idle between requests past headersTimeoutMs is fine (keepAliveTimeoutMs
  // governs it); partial headers on it then time out like on a new one.
  const { hostname, port } = new URL(w.hub.url);
  const seen = await new Promise<string[]>((resolve) => {
    const s = connect({ host: hostname, port: Number(port) });
    const events: string[] = [];
    let got = '';
    s.on('data', (d) => { got += d.toString('latin1'); for (const m of got.matchAll(/HTTP\/1\.1 (\d{3})/g)) events.push(m[1]!); got = got.replace(/HTTP\/1\.1 \d{3}/g, ''); });
    s.on('error', () => { /* closed */ });
    s.on('close', () => resolve(events));
    s.write(`${GET_HEALTH}\r\n`);
    setTimeout(() => s.write(`${GET_HEALTH}\r\n`), 1800);
    setTimeout(() => s.write(GET_HEALTH), 2100);
    setTimeout(() => { events.push('bound'); s.destroy(); }, 6000);
  });
  assert.deepEqual(seen, ['200', '200', '408'], 'idle kept-alive connection: served again; then partial headers: 408 and closed');
  // Slow but within the limits: accepted.
  const chunks = body.match(/.{1,20}/g)!;
  const patient = await rawExchange(w.hub.url, [head, ...chunks.flatMap((c) => [c, { pauseMs: Math.floor(1000 / chunks.length) }])], { timeoutMs: 8000 });
  assert.equal(patient.status, 202, patient.text);
  await assertHealthy(w, 'after slow clients');
});

test('slowloris: 300 connections sending headers a byte at a time do not stop a normal client being served promptly; the hub cuts them off at headersTimeoutMs', async (t) => {
  const HEADERS_TIMEOUT = 4000;
  const w = await fuzzWorld({ server: { headersTimeoutMs: HEADERS_TIMEOUT } });
  t.after(() => w.close());
  const { hostname, port } = new URL(w.hub.url);
  const slow = Array.from({ length: 300 }, () => {
    const s = connect({ host: hostname, port: Number(port) });
    const state = { closedAt: 0, got: '' };
    const line = `${GET_HEALTH}x-slow: ${'z'.repeat(10_000)}`;
    let i = 0;
    const timer = setInterval(() => { if (!s.destroyed && i < line.length) s.write(line[i++]!); }, 20);
    s.on('data', (d) => { state.got += d.toString('latin1'); });
    s.on('error', () => { /* closed by the hub */ });
    s.on('close', () => { clearInterval(timer); state.closedAt = Date.now(); });
    return { s, state, timer };
  });
  t.after(() => { for (const c of slow) { clearInterval(c.timer); c.s.destroy(); } });
  const started = Date.now();
  await new Promise((r) => setTimeout(r, 300));
  // Meanwhile a normal client ingests (kept-alive connection) and reads /healthz (new connections),
  // for as long as every slow connection is surely still open.
  const latencies: number[] = [];
  while (Date.now() - started < HEADERS_TIMEOUT - 1500 && latencies.length < 30) {
    const t0 = Date.now();
    const res = await request(`${w.hub.url}/v1/messages`, {
      method: 'POST', headers: { authorization: `Bearer ${w.key}`, 'content-type': STRUCTURED }, body: w.validEvent(), signal: AbortSignal.timeout(2000),
    });
    await res.body.text();
    assert.equal(res.statusCode, 202);
    const h = await rawExchange(w.hub.url, `${GET_HEALTH}\r\n`, { timeoutMs: 2000 });
    assert.equal(h.status, 200);
    latencies.push(Date.now() - t0);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(latencies.length >= 5, `only ${latencies.length} normal requests in ${Date.now() - started} ms`);
  assert.ok(slow.every((c) => c.state.closedAt === 0), 'the slow connections were all still open while measured');
  const worst = Math.max(...latencies);
  assert.ok(worst < 1000, `a normal request took ${worst} ms while 300 slowloris connections trickled`);
  // Every slow connection is cut off once headersTimeoutMs is past (with Node's check interval), with a 408.
  const deadline = started + HEADERS_TIMEOUT + 3000;
  while (slow.some((c) => c.state.closedAt === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const open = slow.filter((c) => c.state.closedAt === 0).length;
  assert.equal(open, 0, `${open} slowloris connections still open ${Date.now() - started} ms in (headersTimeoutMs ${HEADERS_TIMEOUT})`);
  assert.ok(slow.every((c) => c.state.closedAt - started >= HEADERS_TIMEOUT - 500), 'none was cut off before headersTimeoutMs');
  const answered408 = slow.filter((c) => /^HTTP\/1\.1 408 /.test(c.state.got) && c.state.got.includes('request-timeout')).length;
  assert.ok(answered408 >= 290, `${answered408} of 300 got a 408 problem`);
  await assertHealthy(w, 'after slowloris');
});

test('clients that vanish mid-request (reset during headers, during a body, during a long answer) leave the hub healthy', async (t) => {
  const w = await fuzzWorld();
  t.after(() => w.close());
  const { hostname, port } = new URL(w.hub.url);
  const body = envelope({ id: 'vanish', source: 'MDP-A' }, `{"pad":"${'p'.repeat(300_000)}"}`);
  const partials = [
    `${GET_HEALTH}x-a: 1`,
    `POST /v1/messages HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${w.key}\r\ncontent-type: ${STRUCTURED}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, 150_000)}`,
    `GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n`,
  ];
  for (let round = 0; round < 20; round++) {
    await Promise.all(partials.map((p) => new Promise<void>((resolve) => {
      const s = connect({ host: hostname, port: Number(port) }, () => {
        s.write(p);
        setTimeout(() => { s.resetAndDestroy(); resolve(); }, round % 3);
      });
      s.on('error', () => resolve());
    })));
  }
  await assertHealthy(w, 'after vanishing clients');
});
