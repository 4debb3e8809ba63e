// POST /v1/messages refusals: idempotency, auth, validation, limits, media types, routing.
// Every refusal is problem+json with type/title/status/detail and no stack trace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { ADMIN_KEY, startTestHub, eventually, type TestHub } from '../support/hub.ts';
import { startReceiver } from '../support/receiver.ts';
import {
  assertProblem, assertReceipt, BATCH, ceHeaders, deliveryCounts, envelope, inject, injectParticipant, injectRoutes, send, sleep, STRUCTURED, totalDeliveries,
} from './helpers.ts';

async function basicHub(overrides = {}) {
  const hub = await startTestHub(overrides);
  const sender = await hub.participant('MDP-A');
  await hub.participant('RETAILER-A', { mode: 'pull' });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }]);
  return { hub, sender };
}

const post = (hub: TestHub, key: string | null, body: any, headers: Record<string, string> = { 'content-type': STRUCTURED }) =>
  send(hub, 'POST', '/v1/messages', { key, headers, body });

/** The hub still answers normally after a refusal (nothing wedged). */
async function stillWorks(hub: TestHub, key: string, id: string) {
  const ok = await post(hub, key, envelope({ id, source: 'MDP-A' }, '{}'));
  assert.equal(ok.status, 202, ok.text);
  return ok.json.sequence as number;
}

test('idempotency: the same (source, id) and content answers 200 with the first receipt and delivers nothing new; other content is 409', async (t) => {
  const hub = await startTestHub();
  const receiver = await startReceiver();
  t.after(async () => { await hub.close(); await receiver.close(); });
  const sender = await hub.participant('MDP-A');
  await hub.participant('RETAILER-A', { mode: 'push', url: receiver.url });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }]);

  const body = envelope({ id: 'dup-1', source: 'MDP-A', time: '2024-01-01T00:00:00Z' }, '{"kwh": 1.25}');
  const first = await post(hub, sender.key, body);
  const seq = assertReceipt(first, { id: 'dup-1', source: 'MDP-A', receivers: ['RETAILER-A'] });
  await eventually(() => receiver.requests.length === 1, 5000, 'the first push');
  await eventually(async () => (await deliveryCounts(hub))['RETAILER-A:delivered'] === 1, 5000, 'delivered');

  // The same again, also with the attributes in another order: same content.
  const reordered = `{"data":{"kwh": 1.25},"time":"2024-01-01T00:00:00Z","subject":"NCDE001111","type":"meter.reading","source":"MDP-A","id":"dup-1","specversion":"1.0"}`;
  for (const again of [body, reordered]) {
    const dup = await post(hub, sender.key, again);
    assert.equal(dup.status, 200, dup.text);
    assert.deepEqual(dup.json, first.json, 'the first receipt, receivedAt included');
    assert.equal(dup.headers.location, `/v1/messages/${seq}`);
  }
  await sleep(300);
  assert.equal(receiver.requests.length, 1, 'nothing new was pushed');
  assert.equal(totalDeliveries(await deliveryCounts(hub)), 1, 'no new delivery');
  const status = await hub.api('GET', `/v1/messages/${seq}`, { key: sender.key });
  assert.equal(status.json.deliveries.length, 1);

  // Different data, or a different attribute, under the same (source, id): 409 naming the sequence.
  for (const other of [
    envelope({ id: 'dup-1', source: 'MDP-A', time: '2024-01-01T00:00:00Z' }, '{"kwh": 9.99}'),
    envelope({ id: 'dup-1', source: 'MDP-A', time: '2024-01-01T00:00:00Z', type: 'meter.correction' }, '{"kwh": 1.25}'),
    envelope({ id: 'dup-1', source: 'MDP-A' }, '{"kwh": 1.25}'),
  ]) {
    const conflict = await post(hub, sender.key, other);
    const p = assertProblem(conflict, 409, 'duplicate-conflict');
    assert.equal(p.sequence, seq);
  }
  // A duplicate inside a batch is reported per item.
  const batch = await post(hub, sender.key, `[${body},${envelope({ id: 'dup-2', source: 'MDP-A' }, '{}')}]`, { 'content-type': BATCH });
  assert.equal(batch.status, 200);
  assert.deepEqual(batch.json.results.map((r: any) => r.status), [200, 202]);
  assert.equal(batch.json.results[0].sequence, seq);
  await eventually(() => receiver.requests.length === 2, 5000, 'dup-2 pushed');
  await sleep(200);
  assert.deepEqual(receiver.requests.map((r) => r.headers['ce-id']), ['dup-1', 'dup-2']);
});

test('idempotency in binary mode, including a body streamed to a file', async (t) => {
  const { hub, sender } = await basicHub({ storage: { inlineBodyMaxBytes: 1024 } });
  t.after(() => hub.close());
  for (const [id, body] of [['bin-small', Buffer.from('a,b\n1,2\n')], ['bin-big', Buffer.alloc(5000, 'x')]] as const) {
    const headers = ceHeaders({ id, source: 'MDP-A' }, 'text/csv');
    const first = await post(hub, sender.key, body, headers);
    const seq = assertReceipt(first, { id, source: 'MDP-A', receivers: ['RETAILER-A'] });
    const dup = await post(hub, sender.key, body, headers);
    assert.equal(dup.status, 200, dup.text);
    assert.deepEqual(dup.json, first.json);
    const changed = Buffer.concat([body, Buffer.from('!')]);
    assertProblem(await post(hub, sender.key, changed, headers), 409, 'duplicate-conflict');
    assertProblem(await post(hub, sender.key, body, ceHeaders({ id, source: 'MDP-A' }, 'text/plain')), 409, 'duplicate-conflict');
    const got = await send(hub, 'GET', `/v1/messages/${seq}/data`, { key: sender.key });
    assert.ok(got.raw.equals(body), 'the archive keeps the first content');
  }
  assert.equal(totalDeliveries(await deliveryCounts(hub)), 2);
});

test('idempotency holds after the routing changed: a retry of an accepted message still gets its receipt', async (t) => {
  const { hub, sender } = await basicHub();
  t.after(() => hub.close());
  const body = envelope({ id: 'retry-1', source: 'MDP-A' }, '{"a":1}');
  const first = await post(hub, sender.key, body);
  assertReceipt(first, { id: 'retry-1', source: 'MDP-A', receivers: ['RETAILER-A'] });
  // The operator removes every route: a new message has no route, but the sender's retry of the accepted one
  // must not be told 422 (it would think the message was refused, though it was accepted and is being delivered).
  await hub.routes([]);
  assertProblem(await post(hub, sender.key, envelope({ id: 'retry-new', source: 'MDP-A' }, '{}')), 422, 'no-route');
  const dup = await post(hub, sender.key, body);
  assert.equal(dup.status, 200, dup.text);
  assert.deepEqual(dup.json, first.json);
  const changed = await post(hub, sender.key, envelope({ id: 'retry-1', source: 'MDP-A' }, '{"a":2}'));
  assertProblem(changed, 409, 'duplicate-conflict');
  // Also in binary mode, streamed.
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }]);
  const big = Buffer.alloc(300 * 1024, 'y');
  const bh = ceHeaders({ id: 'retry-big', source: 'MDP-A' }, 'application/octet-stream');
  const firstBig = await post(hub, sender.key, big, bh);
  assert.equal(firstBig.status, 202, firstBig.text);
  await hub.routes([]);
  const dupBig = await post(hub, sender.key, big, bh);
  assert.equal(dupBig.status, 200, dupBig.text);
  assert.deepEqual(dupBig.json, firstBig.json);
  assertProblem(await post(hub, sender.key, Buffer.alloc(300 * 1024, 'z'), bh), 409, 'duplicate-conflict');
  assert.equal(totalDeliveries(await deliveryCounts(hub)), 2);
});

test('401: no key, unknown key, malformed Authorization, revoked key (at once)', async (t) => {
  const { hub, sender } = await basicHub();
  t.after(() => hub.close());
  const body = envelope({ id: 'auth-1', source: 'MDP-A' }, '{}');
  assertProblem(await post(hub, null, body), 401, 'unauthorized');
  assertProblem(await post(hub, 'mh_000000000000_unknownunknownunknownunknown', body), 401, 'unauthorized');
  for (const header of ['Basic dXNlcjpwYXNz', 'Bearer', 'Bearer ', sender.key, `Bearer ${sender.key} extra`, 'Bearer\tx']) {
    const res = await send(hub, 'POST', '/v1/messages', { headers: { authorization: header, 'content-type': STRUCTURED }, body });
    assertProblem(res, 401, 'unauthorized');
  }

  // A second key (rotation): it works, then is revoked and stops working at once; the first key still works.
  const made = await hub.api('POST', '/v1/admin/participants/MDP-A/keys');
  assert.equal(made.status, 201);
  assert.equal((await post(hub, made.json.key, envelope({ id: 'auth-2', source: 'MDP-A' }, '{}'))).status, 202);
  const revoke = await hub.api('DELETE', `/v1/admin/participants/MDP-A/keys/${made.json.id}`);
  assert.equal(revoke.status, 204, revoke.text);
  assertProblem(await post(hub, made.json.key, envelope({ id: 'auth-3', source: 'MDP-A' }, '{}')), 401, 'unauthorized');
  assertProblem(await send(hub, 'GET', '/v1/messages/1', { key: made.json.key }), 401, 'unauthorized');
  assert.equal((await post(hub, sender.key, envelope({ id: 'auth-4', source: 'MDP-A' }, '{}'))).status, 202);
  // Revoking it again, or under another participant: 404.
  assertProblem(await hub.api('DELETE', `/v1/admin/participants/MDP-A/keys/${made.json.id}`), 404, 'not-found');
  const k2 = await hub.api('POST', '/v1/admin/participants/MDP-A/keys');
  assertProblem(await hub.api('DELETE', `/v1/admin/participants/RETAILER-A/keys/${k2.json.id}`), 404, 'not-found');
  assert.equal((await post(hub, k2.json.key, envelope({ id: 'auth-5', source: 'MDP-A' }, '{}'))).status, 202);
});

test('403: a source that is not the key\'s participant; an admin key sending a message', async (t) => {
  const { hub, sender } = await basicHub();
  t.after(() => hub.close());
  const other = await hub.participant('MDP-B');
  assertProblem(await post(hub, sender.key, envelope({ id: 'x', source: 'MDP-B' }, '{}')), 403, 'source-mismatch');
  assertProblem(await post(hub, other.key, envelope({ id: 'x', source: 'MDP-A' }, '{}')), 403, 'source-mismatch');
  assertProblem(await post(hub, sender.key, Buffer.from('a'), ceHeaders({ id: 'x', source: 'MDP-B' }, 'text/plain')), 403, 'source-mismatch');
  assertProblem(await post(hub, ADMIN_KEY, envelope({ id: 'x', source: 'MDP-A' }, '{}')), 403, 'forbidden');
  assertProblem(await post(hub, ADMIN_KEY, Buffer.alloc(400_000, 'a'), ceHeaders({ id: 'x', source: 'MDP-A' }, 'text/plain')), 403, 'forbidden');
  assert.equal(totalDeliveries(await deliveryCounts(hub)), 0);
  await stillWorks(hub, sender.key, 'after-403');
});

test('400: malformed JSON, each required attribute missing, specversion 0.3, bad time, data and data_base64, not an object', async (t) => {
  const hub = await startTestHub({}, { listen: false });
  t.after(() => hub.close());
  const sender = await injectParticipant(hub, 'MDP-A');
  await injectParticipant(hub, 'RETAILER-A', { mode: 'pull' });
  await injectRoutes(hub, [{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }]);
  const structuredPost = (body: string | Buffer, ct = STRUCTURED) => inject(hub, 'POST', '/v1/messages', { key: sender.key, headers: { 'content-type': ct }, body });

  for (const bad of ['{', '{"specversion":"1.0",}', '', '   ', 'nul', '{"a":1}{"b":2}', Buffer.from([0x7b, 0xff, 0xfe, 0x7d])]) {
    assertProblem(await structuredPost(bad), 400, 'malformed-json');
  }
  assertProblem(await structuredPost('[{', BATCH), 400, 'malformed-json');
  // Duplicate members would make "which one was accepted" ambiguous.
  assertProblem(await structuredPost('{"specversion":"1.0","id":"a","id":"b","source":"MDP-A","type":"t","subject":"s"}'), 400, 'malformed-json');

  const full = { specversion: '1.0', id: 'v1', source: 'MDP-A', type: 't', subject: 'NCDE001111', data: { a: 1 } };
  for (const name of ['specversion', 'id', 'source', 'type', 'subject'] as const) {
    const { [name]: _gone, ...rest } = full;
    const p = assertProblem(await structuredPost(JSON.stringify(rest)), 400, 'invalid-event');
    assert.equal(p.attribute, name, `the missing '${name}' is named`);
    assert.match(p.detail, new RegExp(name));
    const empty = assertProblem(await structuredPost(JSON.stringify({ ...full, [name]: '' })), 400, 'invalid-event');
    assert.equal(empty.attribute, name);
    // And in binary mode.
    const headers = ceHeaders({ id: 'v1', source: 'MDP-A' }, 'text/plain');
    delete headers[`ce-${name}`];
    const bin = assertProblem(await inject(hub, 'POST', '/v1/messages', { key: sender.key, headers, body: 'x' }), name === 'specversion' ? 415 : 400);
    if (name !== 'specversion') assert.equal(bin.attribute, name);
  }
  assertProblem(await structuredPost(JSON.stringify({ ...full, id: 1 })), 400, 'invalid-event');
  const v03 = assertProblem(await structuredPost(JSON.stringify({ ...full, specversion: '0.3' })), 400, 'invalid-event');
  assert.equal(v03.attribute, 'specversion');
  assertProblem(await inject(hub, 'POST', '/v1/messages', { key: sender.key, headers: { ...ceHeaders({ id: 'v1', source: 'MDP-A' }, 'text/plain'), 'ce-specversion': '0.3' }, body: 'x' }), 400, 'invalid-event');

  for (const time of ['yesterday', '2024-13-45T00:00:00Z', '2024-01-01', '2024-01-01T25:00:00Z', '', '2024-02-30T00:00:00Z', '2023-02-29T12:00:00Z', '2024-04-31T00:00:00+10:00', '2024-01-01T00:00:00+24:00']) {
    const p = assertProblem(await structuredPost(JSON.stringify({ ...full, time })), 400, 'invalid-event');
    assert.equal(p.attribute, 'time', `time '${time}' is refused`);
  }
  assertProblem(await inject(hub, 'POST', '/v1/messages', { key: sender.key, headers: { ...ceHeaders({ id: 'v1', source: 'MDP-A' }, 'text/plain'), 'ce-time': 'soon' }, body: 'x' }), 400, 'invalid-event');

  assertProblem(await structuredPost(JSON.stringify({ ...full, data_base64: 'AAEC' })), 400, 'invalid-event');
  assertProblem(await structuredPost(JSON.stringify({ ...full, data: undefined, data_base64: '***' })), 400, 'invalid-event');
  assertProblem(await structuredPost(JSON.stringify({ ...full, sequence: '7' })), 400, 'invalid-event');
  // Names that exist on Object.prototype are attributes like any other: '__proto__' is refused, never silently dropped.
  const head = '{"specversion":"1.0","id":"proto","source":"MDP-A","type":"t","subject":"s"';
  assertProblem(await structuredPost(`${head},"__proto__":{"x":1},"data":{}}`), 400, 'invalid-event');
  assertProblem(await inject(hub, 'POST', '/v1/messages', { key: sender.key, headers: { ...ceHeaders({ id: 'proto', source: 'MDP-A' }, 'text/plain'), 'ce-__proto__': 'x' }, body: 'x' }), 400, 'invalid-event');
  assertProblem(await structuredPost(JSON.stringify({ ...full, 'Bad-Name': 'x' })), 400, 'invalid-event');
  assertProblem(await structuredPost(JSON.stringify({ ...full, datacontenttype: 'text/csv', data: { a: 1 } })), 400, 'invalid-event');

  for (const notObject of ['[]', '[{"a":1}]', '42', '"event"', 'null', 'true']) {
    assertProblem(await structuredPost(notObject), 400, 'invalid-event');
  }
  for (const notArray of ['{}', '42', '[]']) assertProblem(await structuredPost(notArray, BATCH), 400, 'invalid-event');
  // Deep nesting is refused, not a crash.
  assertProblem(await structuredPost(`{"specversion":"1.0","id":"d","source":"MDP-A","type":"t","subject":"s","data":${'['.repeat(5000)}${']'.repeat(5000)}}`), 400);
  assertProblem(await structuredPost(`${'['.repeat(100_000)}${']'.repeat(100_000)}`, BATCH), 400);

  // Nothing was accepted; the hub still takes a good event.
  const ok = await structuredPost(JSON.stringify(full));
  assert.equal(ok.status, 202, ok.text);
  assert.equal(ok.json.sequence, 1, 'no refused event took a sequence');
  // A valid extension that happens to be named like an Object.prototype member is kept (it was dropped unchecked).
  const ctor = await structuredPost(`${head.replace('"proto"', '"ctor"')},"constructor":"x","data":{}}`);
  assert.equal(ctor.status, 202, ctor.text);
  const view = await inject(hub, 'GET', `/v1/messages/${ctor.json.sequence}`, { key: sender.key });
  assert.equal(view.json.attributes.constructor, 'x');
  const leap = await structuredPost(JSON.stringify({ ...full, id: 'leap', time: '2024-02-29T23:59:59.123+05:30' }));
  assert.equal(leap.status, 202, leap.text);
});

test('413: over server.bodyLimitBytes, with Content-Length and chunked, in every mode', async (t) => {
  const { hub, sender } = await basicHub({ server: { bodyLimitBytes: 1024 }, storage: { inlineBodyMaxBytes: 512 } });
  t.after(() => hub.close());
  const big = Buffer.alloc(64 * 1024, 'a');
  const chunks = () => Readable.from((function* () { for (let i = 0; i < 64; i++) yield big.subarray(i * 1024, (i + 1) * 1024); })());
  const slowChunks = () => Readable.from((async function* () {
    for (let i = 0; i < 16; i++) { yield big.subarray(i * 1024, (i + 1) * 1024); await sleep(5); }
  })());
  const modes: Array<[string, Record<string, string>]> = [
    ['structured', { 'content-type': STRUCTURED }],
    ['batch', { 'content-type': BATCH }],
    ['binary', ceHeaders({ id: 'big', source: 'MDP-A' }, 'text/csv')],
  ];
  for (const [mode, headers] of modes) {
    for (const [how, body] of [['content-length', big], ['chunked', chunks()], ['chunked, slow', slowChunks()]] as const) {
      const res = await send(hub, 'POST', '/v1/messages', { key: sender.key, headers, body });
      assertProblem(res, 413, 'payload-too-large');
      void mode; void how;
    }
  }
  // A large chunked upload (megabytes past the limit) still gets its 413, not a reset connection.
  const huge = Buffer.alloc(4 * 1024 * 1024, 'h');
  const hugeChunks = () => Readable.from((function* () { for (let i = 0; i < 64; i++) yield huge.subarray(i * 65536, (i + 1) * 65536); })());
  assertProblem(await send(hub, 'POST', '/v1/messages', { key: sender.key, headers: { 'content-type': STRUCTURED }, body: hugeChunks() }), 413, 'payload-too-large');
  assertProblem(await send(hub, 'POST', '/v1/messages', { key: sender.key, headers: ceHeaders({ id: 'huge', source: 'MDP-A' }, 'text/csv'), body: hugeChunks() }), 413, 'payload-too-large');
  // Just over the limit, binary with a length (between the inline limit and the body limit it streams).
  assertProblem(await send(hub, 'POST', '/v1/messages', { key: sender.key, headers: ceHeaders({ id: 'big', source: 'MDP-A' }, 'text/csv'), body: Buffer.alloc(1025, 'b') }), 413, 'payload-too-large');
  assert.equal((await send(hub, 'POST', '/v1/messages', { key: sender.key, headers: ceHeaders({ id: 'fits', source: 'MDP-A' }, 'text/csv'), body: Buffer.alloc(1024, 'b') })).status, 202);
  assert.equal(totalDeliveries(await deliveryCounts(hub)), 1, 'nothing over the limit was accepted');
  await stillWorks(hub, sender.key, 'after-413');
});

test('415: no CloudEvents mode (text/plain without ce- headers, no Content-Type at all, a non-UTF-8 charset)', async (t) => {
  const { hub, sender } = await basicHub();
  t.after(() => hub.close());
  assertProblem(await post(hub, sender.key, 'hello', { 'content-type': 'text/plain' }), 415, 'unsupported-media-type');
  assertProblem(await post(hub, sender.key, envelope({ id: 'x', source: 'MDP-A' }, '{}'), { 'content-type': 'application/json' }), 415, 'unsupported-media-type');
  assertProblem(await post(hub, sender.key, 'hello', {}), 415, 'unsupported-media-type');
  assertProblem(await post(hub, sender.key, undefined, {}), 415, 'unsupported-media-type');
  assertProblem(await post(hub, sender.key, envelope({ id: 'x', source: 'MDP-A' }, '{}'), { 'content-type': `${STRUCTURED}; charset=latin1` }), 415, 'unsupported-media-type');
  await stillWorks(hub, sender.key, 'after-415');
});

test('422: no route, with a problem type ending in no-route', async (t) => {
  const { hub, sender } = await basicHub();
  t.after(() => hub.close());
  await hub.routes([{ name: 'only-nem12', match: { type: 'au.nem12' }, to: { participants: ['RETAILER-A'] } }, { name: 'to-sender', match: { type: 'self' }, to: { participants: ['MDP-A'] } }]);
  const p = assertProblem(await post(hub, sender.key, envelope({ id: 'nr', source: 'MDP-A', type: 'other' }, '{}')), 422, 'no-route');
  assert.match(p.type, /no-route$/);
  // A rule that names only the sender routes to nobody.
  assertProblem(await post(hub, sender.key, envelope({ id: 'nr2', source: 'MDP-A', type: 'self' }, '{}')), 422, 'no-route');
  // A rule naming a meter role with no registry entry for the meter.
  await hub.routes([{ name: 'frmp', match: {}, to: { roles: ['FRMP'] } }]);
  const role = assertProblem(await post(hub, sender.key, envelope({ id: 'nr3', source: 'MDP-A' }, '{}')), 422, 'no-route');
  assert.match(role.detail, /frmp/);
  assert.equal(totalDeliveries(await deliveryCounts(hub)), 0);
});

/** GS1 mod-10 check digit (an independent implementation, for building valid GSRNs). */
function gs1(digits17: string): string {
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(digits17[16 - i]) * (i % 2 === 0 ? 3 : 1);
  return digits17 + String((10 - (sum % 10)) % 10);
}

test('400 invalid-meter-id when a rule validates the subject (GSRN, NMI)', async (t) => {
  const { hub, sender } = await basicHub();
  t.after(() => hub.close());
  await hub.routes([
    { name: 'dk', match: { type: 'dk.reading' }, to: { participants: ['RETAILER-A'] }, validateSubject: 'gsrn' },
    { name: 'au', match: { type: 'au.reading' }, to: { participants: ['RETAILER-A'] }, validateSubject: 'nmi' },
  ]);
  const good = gs1('57131310000000001');
  const wrongDigit = good.slice(0, 17) + String((Number(good[17]) + 1) % 10);
  const ev = (id: string, type: string, subject: string) => envelope({ id, source: 'MDP-A', type, subject }, '{}');
  assert.equal((await post(hub, sender.key, ev('g1', 'dk.reading', good))).status, 202);
  for (const [i, s] of [wrongDigit, '57131310000000001', 'ABCDEFGHIJKLMNOPQR', `${good}0`].entries()) {
    const p = assertProblem(await post(hub, sender.key, ev(`g-bad-${i}`, 'dk.reading', s)), 400, 'invalid-meter-id');
    assert.match(p.detail, /GSRN/);
  }
  // NMIs exclude the letters I and O: 'NMI1234567' is not a valid NMI.
  assert.equal((await post(hub, sender.key, ev('n1', 'au.reading', 'NCDE001111'))).status, 202);
  assertProblem(await post(hub, sender.key, ev('n-bad', 'au.reading', 'NMI1234567')), 400, 'invalid-meter-id');
  // Binary mode too; a rule that does not match does not validate.
  assertProblem(await post(hub, sender.key, 'x', ceHeaders({ id: 'g-bin', source: 'MDP-A', type: 'dk.reading', subject: wrongDigit }, 'text/plain')), 400, 'invalid-meter-id');
  assertProblem(await post(hub, sender.key, ev('u1', 'other', 'NMI1234567')), 422, 'no-route');
  assert.equal(totalDeliveries(await deliveryCounts(hub)), 2);
});

test('unknown paths and methods answer 404 problem+json, with or without a key', async (t) => {
  const hub = await startTestHub({}, { listen: false });
  t.after(() => hub.close());
  const sender = await injectParticipant(hub, 'MDP-A');
  // [method, path, is it a route (so a key is asked for first)?]
  const cases: Array<[string, string, boolean]> = [
    ['GET', '/', false], ['GET', '/nope', false], ['POST', '/v1/nothing', false],
    ['GET', '/v1/messages/1/nothing', false], ['GET', '/v2/messages', false], ['POST', '/v1/admin/nothing', false],
    ['GET', '/v1/messages/abc', true], ['GET', '/v1/messages/0', true], ['GET', '/v1/messages/-1', true],
    ['GET', '/v1/messages/99999999999999999999', true], ['GET', '/v1/messages/1e3/data', true], ['GET', '/v1/messages/12/attempts', true],
  ];
  for (const [method, path, route] of cases) {
    for (const key of [null, sender.key]) {
      const res = await inject(hub, method, path, { key });
      if (route && !key) assertProblem(res, 401, 'unauthorized');
      else assertProblem(res, 404, 'not-found');
    }
  }
  // A known path with a method it does not take: 405 with Allow.
  for (const [method, path, allow] of [['DELETE', '/v1/messages', /POST/], ['PATCH', '/v1/admin/routes', /GET.*PUT/], ['POST', '/v1/messages/7', /GET/]] as const) {
    const res = await inject(hub, method, path, { key: sender.key });
    assertProblem(res, 405, 'method-not-allowed');
    assert.match(String(res.headers.allow), allow);
    assert.doesNotMatch(String(res.headers.allow), new RegExp(`\\b${method}\\b`));
  }
  // 401 says how to authenticate.
  assert.equal((await inject(hub, 'GET', '/v1/messages/1')).headers['www-authenticate'], 'Bearer');
  // Errors fastify raises before routing answer problem+json too (they were its own JSON shape).
  for (const path of ['/v1/messages/%ZZ', '/%E0%A4%A', '/v1/admin/participants/%ZZ']) {
    assertProblem(await inject(hub, 'GET', path, { key: sender.key }), 400, 'malformed-request');
  }
  assertProblem(await inject(hub, 'GET', `/v1/messages/${'9'.repeat(300)}`, { key: sender.key }), 404, 'not-found');
  assertProblem(await inject(hub, 'GET', `/v1/admin/participants/${'A'.repeat(300)}`), 404, 'not-found');
});
