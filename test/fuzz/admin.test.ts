// Fuzzing the hub's own JSON and CSV endpoints (admin, inbox, replay, dead-letter queue, resend)
// over raw sockets: every endpoint that takes a body gets the same hostile bodies (malformed,
// truncated, wrong and missing content types, charsets, a BOM, duplicate members, nesting,
// invalid UTF-8, NUL bytes, empty, over the size limit), with its one valid body as the control.
// The meter registry import gets hostile CSV; path parameters get hostile IDs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_KEY } from '../support/hub.ts';
import { assertHealthy, assertRawProblem, fuzzWorld, rawExchange, rawRequest, type FuzzWorld, type RawAnswer } from './support.ts';

interface Endpoint { method: string; path: string; key: string; valid: string; ok: number[]; alsoValid?: string[] }

async function call(w: FuzzWorld, method: string, path: string, key: string, headers: Array<[string, string]>, body: Buffer | string = ''): Promise<RawAnswer> {
  const res = await rawExchange(w.hub.url, rawRequest(method, path, [['authorization', `Bearer ${key}`], ...headers], body), { timeoutMs: 15_000 });
  assert.ok(!res.timedOut, `${method} ${path}: no answer (hang)`);
  assert.ok(res.status > 0 && res.status < 500, `${method} ${path}: ${res.status} ${res.text.slice(0, 300)}`);
  return res;
}

/** Every hostile body for a JSON endpoint, with the answer it must get. */
function hostileBodies(valid: string): Array<{ what: string; ct: string | null; body: Buffer | string; status: number | 'ok'; code?: string }> {
  const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
  const J = 'application/json';
  const bad = (what: string, body: Buffer | string) => ({ what, ct: J, body, status: 400, code: 'malformed-json' });
  const out: Array<{ what: string; ct: string | null; body: Buffer | string; status: number | 'ok'; code?: string }> = [
    { what: 'valid', ct: J, body: valid, status: 'ok' },
    { what: 'charset=utf-8', ct: `${J}; charset=utf-8`, body: valid, status: 'ok' },
    { what: 'charset=UTF-8', ct: `${J}; charset=UTF-8`, body: valid, status: 'ok' },
    { what: 'charset="utf-8"', ct: `${J}; charset="utf-8"`, body: valid, status: 'ok' },
    { what: 'a BOM', ct: J, body: Buffer.concat([BOM, Buffer.from(valid)]), status: 'ok' },
    { what: 'charset=latin1', ct: `${J}; charset=latin1`, body: valid, status: 415, code: 'unsupported-media-type' },
    { what: 'charset=utf-16', ct: `${J}; charset=utf-16`, body: Buffer.from(valid, 'utf16le'), status: 415, code: 'unsupported-media-type' },
    { what: 'no Content-Type', ct: null, body: valid, status: 415, code: 'unsupported-media-type' },
    { what: 'text/plain', ct: 'text/plain', body: valid, status: 415, code: 'unsupported-media-type' },
    { what: 'form', ct: 'application/x-www-form-urlencoded', body: 'a=1', status: 415, code: 'unsupported-media-type' },
    { what: 'cloudevents', ct: 'application/cloudevents+json', body: valid, status: 415, code: 'unsupported-media-type' },
    bad('empty', ''), bad('spaces', '  \n '), bad('{', '{'), bad('truncated', valid.slice(0, Math.max(1, valid.length - 2))),
    bad('trailing comma', `${valid.slice(0, -1)},${valid.slice(-1)}`), bad('two documents', `${valid}${valid}`),
    bad('NUL byte', `${valid.slice(0, 1)}\0${valid.slice(1)}`), bad('NUL only', Buffer.alloc(64)),
    bad('0xFF', Buffer.concat([Buffer.from(valid.slice(0, 1)), Buffer.from([0xff]), Buffer.from(valid.slice(1))])),
    bad('UTF-16 without charset', Buffer.from(`\ufeff${valid}`, 'utf16le')),
    bad('Latin-1 é in a string', Buffer.from('{"name":"Caf\u00e9"}', 'latin1')),
    bad('depth 65', `${'['.repeat(65)}${']'.repeat(65)}`), bad('depth 100000', `${'['.repeat(100_000)}${']'.repeat(100_000)}`),
    bad('depth 100000 of objects', `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`),
    bad('a duplicate member', '{"a":1,"a":2}'), bad('a duplicate member, escaped', '{"name":"x","n\\u0061me":"y"}'),
    bad('a nested duplicate', '[{"x":{"b":1,"b":1}}]'), bad('__proto__', '{"__proto__":{"polluted":true}}'),
    { what: 'over 1 MiB', ct: J, body: `{"name":"${'n'.repeat(1024 * 1024 + 10)}"}`, status: 413, code: 'payload-too-large' },
  ];
  // A well-formed body of every other JSON type, and type swaps: the endpoint's own validation answers 400.
  for (const v of ['null', 'true', '0', '1e400', '"x"', '[]', '{}', '[[[[[[[[[[]]]]]]]]]]', '{"unexpected":1}']) {
    out.push({ what: `the document ${v}`, ct: J, body: v, status: 400 });
  }
  return out;
}

test('every JSON endpoint of the hub: hostile bodies get the right 4xx problem+json, the valid one its 2xx', async (t) => {
  const w = await fuzzWorld();
  t.after(() => w.close());
  const receiver = await w.hub.participant('PULL-R', { mode: 'pull' });
  await w.hub.routes([{ name: 'all', match: {}, to: { participants: ['RETAILER-A', 'PULL-R'] } }]);
  await assertHealthy(w); // message 1, routed to PULL-R
  const endpoints: Endpoint[] = [
    { method: 'PUT', path: '/v1/admin/participants/FUZZ-1', key: ADMIN_KEY, valid: '{"name":"Fuzz 1","receiver":{"mode":"pull"}}', ok: [200, 201] },
    { method: 'PUT', path: '/v1/admin/routes', key: ADMIN_KEY, valid: '[{"name":"all","match":{"type":["t","meter.reading"],"subject":{"prefix":"NCDE"}},"to":{"participants":["RETAILER-A","PULL-R"]}},{"name":"rest","match":{},"to":{"participants":["RETAILER-A","PULL-R"]}}]', ok: [200], alsoValid: ['[]'] },
    { method: 'POST', path: '/v1/admin/replay', key: ADMIN_KEY, valid: '{"subject":"no-such-meter"}', ok: [202] },
    { method: 'POST', path: '/v1/admin/dlq/redrive', key: ADMIN_KEY, valid: '{"receiver":"RETAILER-A"}', ok: [200] },
    { method: 'POST', path: '/v1/inbox/ack', key: receiver.key, valid: '{"leases":["no-such-lease"]}', ok: [200] },
    { method: 'POST', path: '/v1/inbox/nack', key: receiver.key, valid: '{"leases":["no-such-lease"],"delaySeconds":1}', ok: [200] },
    { method: 'POST', path: '/v1/messages/1/resend', key: receiver.key, valid: '{}', ok: [202], alsoValid: ['{}', 'null'] },
    { method: 'POST', path: '/v1/messages/1/resend', key: ADMIN_KEY, valid: '{"receivers":["PULL-R"]}', ok: [202], alsoValid: ['{}', 'null'] },
  ];
  for (const e of endpoints) {
    // The valid body goes last, so that the hub is left as it was (the routes in particular).
    for (const h of [...hostileBodies(e.valid), ...hostileBodies(e.valid).slice(0, 1)]) {
      const what = `${e.method} ${e.path} with ${h.what}`;
      const res = await call(w, e.method, e.path, e.key, h.ct === null ? [] : [['content-type', h.ct]], h.body);
      if (h.status === 'ok' || (h.what.startsWith('the document ') && e.alsoValid?.includes(String(h.body)))) assert.ok(e.ok.includes(res.status), `${what}: ${res.status} ${res.text.slice(0, 300)}`);
      else assertRawProblem(res, h.status, h.code, what);
    }
  }
  // Endpoints without a body: a JSON Content-Type with an empty or hostile body is refused the same way.
  // (A GET's body is not read at all.)
  for (const [method, path] of [['POST', '/v1/admin/keys'], ['POST', '/v1/admin/participants/FUZZ-1/keys'], ['DELETE', '/v1/admin/participants/NOBODY']] as const) {
    assertRawProblem(await call(w, method, path, ADMIN_KEY, [['content-type', 'application/json']], '{"a":1,"a":2}'), 400, 'malformed-json', `${method} ${path}`);
  }
  await assertHealthy(w);
});

test('participant and route settings: type swaps, huge and non-finite numbers, huge strings and arrays are 400 invalid-config naming the field', async (t) => {
  const w = await fuzzWorld();
  t.after(() => w.close());
  const put = (path: string, body: string) => call(w, 'PUT', path, ADMIN_KEY, [['content-type', 'application/json']], body);
  const participant = [
    '{"name":1}', '{"name":""}', '{"name":null}', `{"name":"${'n'.repeat(201)}"}`, '{"name":"x","receiver":{"mode":"carrier-pigeon"}}',
    '{"name":"x","receiver":{"mode":"pull","visibilityTimeoutSeconds":1e400}}', '{"name":"x","receiver":{"mode":"pull","maxReceives":-1}}',
    '{"name":"x","receiver":{"mode":"pull","maxReceives":1.5}}', '{"name":"x","receiver":{"mode":"pull","maxReceives":"10"}}',
    '{"name":"x","receiver":{"mode":"push","url":"not a url"}}', '{"name":"x","receiver":{"mode":"push","url":"file:///etc/passwd"}}',
    `{"name":"x","receiver":{"mode":"push","url":"https://example.com/${'p'.repeat(3000)}"}}`, '{"name":"x","receiver":{"mode":"push","url":"https://example.com","secret":"plain"}}',
    '{"name":"x","receiver":{"mode":"push","url":"https://example.com","timeoutMs":99999999999999999999}}', '{"name":"x","extra":true}',
    '{"name":"x","receiver":{"mode":"pull","ordering":"chaos"}}', '{"name":"x","receiver":[]}',
  ];
  for (const body of participant) assertRawProblem(await put('/v1/admin/participants/FUZZ-2', body), 400, 'invalid-config', body.slice(0, 100));
  const routes = [
    '{}', '[1]', '[{"name":"r"}]', '[{"name":"r","match":{"type":1},"to":{"participants":["RETAILER-A"]}}]',
    '[{"name":"r","match":{"type":{"prefix":1}},"to":{"participants":["RETAILER-A"]}}]', '[{"name":"r","match":{"bogus":"x"},"to":{"participants":["RETAILER-A"]}}]',
    '[{"name":"r","match":{},"to":{"participants":"RETAILER-A"}}]',
    `[${Array(20_000).fill('{"name":"r","match":{},"to":{"participants":["RETAILER-A"]}}').join(',')}]`.slice(0, 1000 * 1024),
  ];
  for (const body of routes) {
    const res = await put('/v1/admin/routes', body);
    assert.ok(res.status === 400, `PUT routes ${body.slice(0, 80)}: ${res.status} ${res.text.slice(0, 200)}`);
    assertRawProblem(res, 400, undefined, body.slice(0, 80));
  }
  await assertHealthy(w);
});

test('meter registry CSV: hostile files get 400 invalid-csv with the line, wrong types 415; a BOM and CRLF are fine; the registry still works after', async (t) => {
  const w = await fuzzWorld();
  t.after(() => w.close());
  const post = (body: Buffer | string, ct = 'text/csv') => call(w, 'POST', '/v1/admin/meters', ADMIN_KEY, ct ? [['content-type', ct]] : [], body);
  const H = 'meter,role,participant,validFrom,validTo\n';
  const okCases: Array<[string, Buffer | string, number]> = [
    ['header only', H, 0],
    ['a BOM', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`${H}NCDE001111,FRMP,RETAILER-A,,\n`)]), 1],
    ['CRLF', `${H.replace('\n', '\r\n')}NCDE001111,FRMP,RETAILER-A,,\r\nNCDE001112,FRMP,RETAILER-A,2024-01-01,\r\n`, 2],
    ['blank lines', `${H}\n\nNCDE001111,LNSP,RETAILER-A,,\n\n`, 1],
    ['application/csv; charset=utf-8', `${H}NCDE001113,FRMP,RETAILER-A,,\n`, 1],
  ];
  for (const [what, body, imported] of okCases) {
    const res = await post(body, what.startsWith('application/csv') ? 'application/csv; charset=utf-8' : 'text/csv');
    assert.equal(res.status, 200, `${what}: ${res.text}`);
    assert.equal(res.json.imported, imported, what);
  }
  const badCases: Array<[string, Buffer | string, number]> = [
    ['empty', '', 1], ['no header', 'NCDE001111,FRMP,RETAILER-A\n', 1], ['a wrong header', 'a,b,c\n', 1],
    ['NUL in a meter', `${H}NCDE\x001111,FRMP,RETAILER-A,,\n`, 2], ['0xFF in a meter', Buffer.concat([Buffer.from(`${H}NCDE`), Buffer.from([0xff]), Buffer.from('1,FRMP,RETAILER-A,,\n')]), 2],
    ['too many columns', `${H}A,B,C,D,E,F\n`, 2], ['too few', `${H}A,B\n`, 2], ['a bad date', `${H}NCDE001111,FRMP,RETAILER-A,yesterday,\n`, 2],
    ['validTo before validFrom', `${H}NCDE001111,FRMP,RETAILER-A,2024-02-01,2024-01-01\n`, 2], ['quotes', `${H}"NCDE001111",FRMP,RETAILER-A,,\n`, 2],
    ['a 5 MB line without newline', `${H}${'M'.repeat(5 * 1024 * 1024)}`, 2], ['binary noise', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)), 1],
    ['a bad row after good ones', `${H}${Array.from({ length: 100 }, (_, i) => `NCDE00${String(2000 + i)},FRMP,RETAILER-A,,`).join('\n')}\nBAD ROW,,\n`, 102],
  ];
  for (const [what, body, line] of badCases) {
    const p = assertRawProblem(await post(body), 400, 'invalid-csv', what);
    assert.equal(p.line, line, `${what}: the line named`);
  }
  for (const ct of ['', 'text/plain', 'application/json', 'text/csvx']) {
    const res = await post(`${H}NCDE001111,FRMP,RETAILER-A,,\n`, ct);
    assert.ok(res.status === 415 || (ct === 'application/json' && res.status === 400), `Content-Type '${ct}': ${res.status} ${res.text.slice(0, 200)}`);
    assertRawProblem(res, res.status, undefined, `Content-Type '${ct}'`);
  }
  const meter = await rawExchange(w.hub.url, rawRequest('GET', '/v1/admin/meters/NCDE001111', [['authorization', `Bearer ${ADMIN_KEY}`]]));
  assert.equal(meter.status, 200, meter.text);
  await assertHealthy(w);
});

test('hostile path parameters and query strings: 404 or 400 problem+json, never 5xx', async (t) => {
  const w = await fuzzWorld();
  t.after(() => w.close());
  const ids = ['%00', '%2F', '..', '%2E%2E', 'a%20b', '%E2%82%AC', '%FF', '%', 'A'.repeat(65), 'A'.repeat(300), '-lead', 'a/b', 'x;y', "'; DROP TABLE participants;--", '%F0%9F%98%80', '1e400', '__proto__', 'constructor'];
  const paths = (id: string) => [
    ['GET', `/v1/admin/participants/${id}`], ['DELETE', `/v1/admin/participants/${id}`], ['GET', `/v1/admin/participants/${id}/keys`],
    ['POST', `/v1/admin/participants/${id}/keys`], ['DELETE', `/v1/admin/participants/RETAILER-A/keys/${id}`], ['DELETE', `/v1/admin/keys/${id}`],
    ['GET', `/v1/admin/meters/${id}`], ['GET', `/v1/messages/${id}`], ['GET', `/v1/messages/${id}/data`], ['POST', `/v1/messages/${id}/resend`],
  ] as const;
  for (const id of ids) {
    for (const [method, path] of paths(id)) {
      const res = await call(w, method, path, method === 'GET' && path.startsWith('/v1/messages') ? w.key : ADMIN_KEY, []);
      assert.ok([400, 404].includes(res.status), `${method} ${path}: ${res.status} ${res.text.slice(0, 200)}`);
      assertRawProblem(res, res.status, undefined, `${method} ${path}`);
    }
  }
  const queries = ['limit=-1', 'limit=1e400', 'limit=99999999999', 'after=garbage', 'from=yesterday', 'to=2024-13-45', 'state=exploded', 'limit=1&limit=2', 'subject=%00', 'receiver=bad%20id', `subject=${'s'.repeat(5000)}`, 'from=2024-02-01T00:00:00Z&to=2024-01-01T00:00:00Z'];
  for (const q of queries) {
    for (const [path, key] of [['/v1/messages', w.key], ['/v1/admin/dlq', ADMIN_KEY]] as const) {
      const res = await call(w, 'GET', `${path}?${q}`, key, []);
      assert.ok(res.status === 200 || res.status === 400, `GET ${path}?${q.slice(0, 60)}: ${res.status} ${res.text.slice(0, 200)}`);
      if (res.status === 400) assertRawProblem(res, 400, 'malformed-request', `${path}?${q.slice(0, 60)}`);
    }
  }
  for (const q of ['max=0', 'max=-1', 'max=1e3', 'wait=999', 'wait=-1', 'max=1&max=2', `max=${'9'.repeat(400)}`]) {
    const receiver = await w.hub.participant(`PULL-${q.length}`, { mode: 'pull' });
    assertRawProblem(await call(w, 'GET', `/v1/inbox?${q}`, receiver.key, []), 400, 'malformed-request', `inbox ${q}`);
  }
  await assertHealthy(w);
});
