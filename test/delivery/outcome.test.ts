import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, errors, request } from 'undici';
import {
  classifyError,
  classifyResponse,
  describeOutcome,
  isSuccess,
  type DeliveryOutcome,
} from '../../src/delivery/outcome.ts';

const now = new Date('2025-03-01T12:00:00.000Z');

// ---- classifyResponse ------------------------------------------------------

const responseCases: Array<[string, number, Record<string, string | string[] | undefined>, DeliveryOutcome]> = [
  ['200', 200, {}, { kind: 'delivered', status: 200 }],
  ['204', 204, {}, { kind: 'delivered', status: 204 }],
  ['299', 299, {}, { kind: 'delivered', status: 299 }],
  ['410 gone', 410, {}, { kind: 'gone', status: 410 }],
  ['301 with location', 301, { location: 'https://new.test/hook' }, { kind: 'redirect', status: 301, location: 'https://new.test/hook' }],
  ['302 location as array', 302, { location: ['https://a.test/', 'https://b.test/'] }, { kind: 'redirect', status: 302, location: 'https://a.test/' }],
  ['307 without location', 307, {}, { kind: 'redirect', status: 307, location: null }],
  ['300', 300, {}, { kind: 'redirect', status: 300, location: null }],
  ['399', 399, {}, { kind: 'redirect', status: 399, location: null }],
  ['Location header name in any case', 308, { Location: '/x' }, { kind: 'redirect', status: 308, location: '/x' }],
  ['199 → http', 199, {}, { kind: 'http', status: 199, retryAfterMs: null, bodySnippet: 'b' }],
  ['400', 400, {}, { kind: 'http', status: 400, retryAfterMs: null, bodySnippet: 'b' }],
  ['500', 500, {}, { kind: 'http', status: 500, retryAfterMs: null, bodySnippet: 'b' }],
  ['429 with Retry-After seconds', 429, { 'retry-after': '30' }, { kind: 'http', status: 429, retryAfterMs: 30_000, bodySnippet: 'b' }],
  ['503 with Retry-After date', 503, { 'retry-after': 'Sat, 01 Mar 2025 12:01:00 GMT' }, { kind: 'http', status: 503, retryAfterMs: 60_000, bodySnippet: 'b' }],
  ['Retry-After header name in any case', 429, { 'Retry-After': '5' }, { kind: 'http', status: 429, retryAfterMs: 5_000, bodySnippet: 'b' }],
  ['429 with junk Retry-After', 429, { 'retry-after': 'soon' }, { kind: 'http', status: 429, retryAfterMs: null, bodySnippet: 'b' }],
  ['429 without Retry-After', 429, {}, { kind: 'http', status: 429, retryAfterMs: null, bodySnippet: 'b' }],
  ['500 Retry-After is ignored', 500, { 'retry-after': '30' }, { kind: 'http', status: 500, retryAfterMs: null, bodySnippet: 'b' }],
  ['502 Retry-After is ignored', 502, { 'retry-after': '30' }, { kind: 'http', status: 502, retryAfterMs: null, bodySnippet: 'b' }],
];
for (const [name, status, headers, expected] of responseCases) {
  test(`classifyResponse: ${name}`, () => {
    assert.deepEqual(classifyResponse(status, headers, 'b', now), expected);
  });
}

// ---- classifyError with real undici errors ---------------------------------

async function listen(handler: RequestListener): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/hook` };
}

async function shut(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Run `fn`, expect it to reject, return what it rejected with. */
async function caught(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  assert.fail('expected a rejection');
}

/** A fresh agent per test, so no keep-alive socket is reused between cases. */
async function withAgent<T>(fn: (dispatcher: Agent) => Promise<T>): Promise<T> {
  const dispatcher = new Agent({ connect: { timeout: 500 } });
  try {
    return await fn(dispatcher);
  } finally {
    await dispatcher.destroy();
  }
}

test('classifyError: real headers timeout → timeout (headers)', { timeout: 2_000 }, async () => {
  const { server, url } = await listen(() => {
    /* never answer */
  });
  try {
    const err = await withAgent((dispatcher) =>
      caught(() => request(url, { method: 'POST', body: '{}', dispatcher, headersTimeout: 100 })),
    );
    assert.equal((err as { code?: string }).code, 'UND_ERR_HEADERS_TIMEOUT');
    const o = classifyError(err);
    assert.deepEqual({ ...o, message: '' }, { kind: 'timeout', phase: 'headers', message: '' });
    assert.equal(describeOutcome(o), 'timeout (headers)');
  } finally {
    await shut(server);
  }
});

test('classifyError: real body timeout → timeout (body)', { timeout: 2_000 }, async () => {
  const { server, url } = await listen((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('partial'); // then stall
  });
  try {
    const err = await withAgent(async (dispatcher) => {
      const res = await request(url, { dispatcher, bodyTimeout: 100 });
      assert.equal(res.statusCode, 200);
      return caught(() => res.body.text());
    });
    assert.equal((err as { code?: string }).code, 'UND_ERR_BODY_TIMEOUT');
    assert.equal(classifyError(err).kind, 'timeout');
    assert.equal(describeOutcome(classifyError(err)), 'timeout (body)');
  } finally {
    await shut(server);
  }
});

test('classifyError: real AbortSignal.timeout → timeout (deadline)', { timeout: 2_000 }, async () => {
  const { server, url } = await listen(() => {
    /* never answer */
  });
  try {
    const err = await withAgent((dispatcher) =>
      caught(() => request(url, { dispatcher, signal: AbortSignal.timeout(100) })),
    );
    assert.equal((err as { name?: string }).name, 'TimeoutError');
    assert.equal(describeOutcome(classifyError(err)), 'timeout (deadline)');
  } finally {
    await shut(server);
  }
});

test('classifyError: real AbortController.abort() → timeout (deadline)', { timeout: 2_000 }, async () => {
  const { server, url } = await listen(() => {
    /* never answer */
  });
  try {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const err = await withAgent((dispatcher) => caught(() => request(url, { dispatcher, signal: ac.signal })));
    assert.equal((err as { name?: string }).name, 'AbortError');
    assert.equal(describeOutcome(classifyError(err)), 'timeout (deadline)');
  } finally {
    await shut(server);
  }
});

test('classifyError: real closed port → network ECONNREFUSED', { timeout: 2_000 }, async () => {
  const { server, url } = await listen(() => {});
  await shut(server); // the port is now closed
  const err = await withAgent((dispatcher) => caught(() => request(url, { dispatcher })));
  const o = classifyError(err);
  assert.equal(o.kind, 'network');
  assert.equal(o.kind === 'network' && o.code, 'ECONNREFUSED');
  assert.match(describeOutcome(o), /^ECONNREFUSED: connect ECONNREFUSED 127\.0\.0\.1:\d+$/);
});

test('classifyError: real socket destroyed mid-request → network UND_ERR_SOCKET', { timeout: 2_000 }, async () => {
  const { server, url } = await listen((req) => req.socket.destroy());
  try {
    const err = await withAgent((dispatcher) =>
      caught(() => request(url, { method: 'POST', body: '{"a":1}', dispatcher })),
    );
    const o = classifyError(err);
    assert.equal(o.kind, 'network');
    assert.ok(o.kind === 'network' && ['UND_ERR_SOCKET', 'ECONNRESET'].includes(o.code), JSON.stringify(o));
  } finally {
    await shut(server);
  }
});

test('classifyError: real TCP reset mid-request → network ECONNRESET or UND_ERR_SOCKET', { timeout: 2_000 }, async () => {
  const { server, url } = await listen((req) => req.socket.resetAndDestroy());
  try {
    const err = await withAgent((dispatcher) =>
      caught(() => request(url, { method: 'POST', body: '{"a":1}', dispatcher })),
    );
    const o = classifyError(err);
    assert.equal(o.kind, 'network');
    assert.ok(o.kind === 'network' && ['ECONNRESET', 'UND_ERR_SOCKET'].includes(o.code), JSON.stringify(o));
  } finally {
    await shut(server);
  }
});

test('classifyError: real unknown host → network ENOTFOUND', { timeout: 2_000 }, async () => {
  const err = await withAgent((dispatcher) => caught(() => request('http://nonexistent.invalid/hook', { dispatcher })));
  const o = classifyError(err);
  assert.equal(o.kind, 'network');
  // EAI_AGAIN only if the resolver itself is unreachable (e.g. an offline sandbox)
  assert.ok(o.kind === 'network' && ['ENOTFOUND', 'EAI_AGAIN'].includes(o.code), JSON.stringify(o));
  assert.match(describeOutcome(o), /nonexistent\.invalid/);
});

test('classifyError: real undici error classes', () => {
  const table: Array<[unknown, DeliveryOutcome['kind'], string]> = [
    [new errors.ConnectTimeoutError(), 'timeout', 'timeout (connect)'],
    [new errors.HeadersTimeoutError(), 'timeout', 'timeout (headers)'],
    [new errors.BodyTimeoutError(), 'timeout', 'timeout (body)'],
    [new errors.RequestAbortedError(), 'timeout', 'timeout (deadline)'],
    [new errors.SocketError('other side closed'), 'network', 'UND_ERR_SOCKET: other side closed'],
    [new errors.ResponseContentLengthMismatchError(), 'network', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH: Response body length does not match content-length header'],
  ];
  for (const [err, kind, text] of table) {
    const o = classifyError(err);
    assert.equal(o.kind, kind, text);
    assert.equal(describeOutcome(o), text);
  }
});

// ---- classifyError with synthetic shapes -----------------------------------

const errno = (code: string, message: string) => Object.assign(new Error(message), { code });

const errorCases: Array<[string, unknown, DeliveryOutcome]> = [
  ['fetch-style wrapper: cause carries the timeout', new TypeError('fetch failed', { cause: new errors.ConnectTimeoutError() }), { kind: 'timeout', phase: 'connect', message: 'Connect Timeout Error' }],
  ['fetch-style wrapper: cause carries the code', new TypeError('fetch failed', { cause: errno('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:9') }), { kind: 'network', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:9' }],
  ['DOMException TimeoutError', new DOMException('The operation was aborted due to timeout', 'TimeoutError'), { kind: 'timeout', phase: 'deadline', message: 'The operation was aborted due to timeout' }],
  ['DOMException AbortError', new DOMException('This operation was aborted', 'AbortError'), { kind: 'timeout', phase: 'deadline', message: 'This operation was aborted' }],
  ['AggregateError (happy eyeballs) with empty message', new AggregateError([errno('ECONNREFUSED', 'connect ECONNREFUSED ::1:9'), errno('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:9')], ''), { kind: 'network', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED ::1:9' }],
  ['EAI_AGAIN', errno('EAI_AGAIN', 'getaddrinfo EAI_AGAIN x.test'), { kind: 'network', code: 'EAI_AGAIN', message: 'getaddrinfo EAI_AGAIN x.test' }],
  ['plain Error without code', new Error('boom'), { kind: 'network', code: 'UNKNOWN', message: 'boom' }],
  ['a thrown string', 'weird', { kind: 'network', code: 'UNKNOWN', message: 'weird' }],
  ['undefined', undefined, { kind: 'network', code: 'UNKNOWN', message: 'undefined' }],
  ['numeric code is not a network code', Object.assign(new Error('x'), { code: 23 }), { kind: 'network', code: 'UNKNOWN', message: 'x' }],
];
for (const [name, err, expected] of errorCases) {
  test(`classifyError: ${name}`, () => {
    assert.deepEqual(classifyError(err), expected);
  });
}

test('classifyError: a cyclic cause chain terminates', () => {
  const a: Error & { cause?: unknown } = new Error('a');
  a.cause = a;
  assert.deepEqual(classifyError(a), { kind: 'network', code: 'UNKNOWN', message: 'a' });
});

// ---- describeOutcome / isSuccess -------------------------------------------

const describeCases: Array<[DeliveryOutcome, string]> = [
  [{ kind: 'delivered', status: 204 }, 'HTTP 204'],
  [{ kind: 'gone', status: 410 }, 'HTTP 410 Gone'],
  [{ kind: 'redirect', status: 301, location: 'https://new.test/hook' }, 'HTTP 301 redirect to https://new.test/hook (not followed)'],
  [{ kind: 'redirect', status: 302, location: null }, 'HTTP 302 redirect (not followed)'],
  [{ kind: 'redirect', status: 302, location: 'https://u:pw@new.test/h?token=abc#f' }, 'HTTP 302 redirect to https://***@new.test/h?… (not followed)'],
  [{ kind: 'http', status: 500, retryAfterMs: null, bodySnippet: 'Internal\n  Server Error\n' }, 'HTTP 500: Internal Server Error'],
  [{ kind: 'http', status: 502, retryAfterMs: null, bodySnippet: '' }, 'HTTP 502'],
  [{ kind: 'http', status: 400, retryAfterMs: null, bodySnippet: 'bad signature for whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }, 'HTTP 400: bad signature for whsec_***'],
  [{ kind: 'timeout', phase: 'connect', message: 'Connect Timeout Error' }, 'timeout (connect)'],
  [{ kind: 'network', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:9' }, 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9'],
  [{ kind: 'network', code: 'UNKNOWN', message: '' }, 'UNKNOWN'],
];
for (const [o, text] of describeCases) {
  test(`describeOutcome: ${text}`, () => {
    assert.equal(describeOutcome(o), text);
  });
}

test('describeOutcome: long body snippets are cut to 200 characters', () => {
  const text = describeOutcome({ kind: 'http', status: 500, retryAfterMs: null, bodySnippet: 'x'.repeat(5_000) });
  assert.equal(text, `HTTP 500: ${'x'.repeat(200)}…`);
});

test('isSuccess: only delivered', () => {
  assert.equal(isSuccess({ kind: 'delivered', status: 200 }), true);
  assert.equal(isSuccess({ kind: 'gone', status: 410 }), false);
  assert.equal(isSuccess({ kind: 'http', status: 500, retryAfterMs: null, bodySnippet: '' }), false);
  assert.equal(isSuccess({ kind: 'redirect', status: 301, location: null }), false);
});
