// Fuzzing POST /v1/messages with hand-picked hostile input, over raw sockets (so that nothing is
// "fixed" by an HTTP client on the way): content types and charsets, BOMs, duplicate members,
// nesting, huge values, invalid UTF-8, NUL bytes, empty bodies, batches past the limit, binary-mode
// headers. Each case has its exact answer: 2xx where the input is valid, else the right 4xx
// problem+json. Never a 5xx, never a hang, and the hub stays healthy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import {
  assertHealthy, assertRawProblem, BATCH, envelope, fuzzWorld, rawExchange, rawRequest, STRUCTURED, type FuzzWorld, type RawAnswer,
} from './support.ts';

interface Case {
  what: string;
  headers?: Array<[string, string]>;
  body: Buffer | string;
  /** The status expected, and the problem code for a 4xx. */
  status: number;
  code?: string;
  /** For a batch answered 200: each item's status. */
  items?: number[];
}

let n = 0;
const uid = (p: string) => `${p}-${++n}`;
/** A structured event (MDP-A) with `data` spliced in verbatim. */
const ev = (data = '{"kwh":1}', attrs: Record<string, unknown> = {}) => envelope({ id: uid('f'), source: 'MDP-A', ...attrs }, data);
const withHead = (head: string, tail: string) => `{"specversion":"1.0","id":"${uid('h')}","source":"MDP-A","type":"t","subject":"NCDE001111"${head}${tail}}`;
const nest = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

async function run(w: FuzzWorld, c: Case): Promise<RawAnswer> {
  const headers: Array<[string, string]> = [['authorization', `Bearer ${w.key}`], ...(c.headers ?? [['content-type', STRUCTURED]])];
  const res = await rawExchange(w.hub.url, rawRequest('POST', '/v1/messages', headers, c.body), { timeoutMs: 20_000 });
  assert.ok(!res.timedOut, `${c.what}: no answer (hang)`);
  assert.ok(res.status < 500, `${c.what}: ${res.status} ${res.text.slice(0, 300)}`);
  if (c.status >= 400) {
    assertRawProblem(res, c.status, c.code, c.what);
  } else {
    assert.equal(res.status, c.status, `${c.what}: ${res.text.slice(0, 300)}`);
    if (c.items) assert.deepEqual(res.json.results.map((r: any) => r.status), c.items, `${c.what}: item statuses`);
  }
  return res;
}

async function runAll(w: FuzzWorld, cases: Case[]): Promise<void> {
  for (const c of cases) await run(w, c);
  await assertHealthy(w);
}

const ct = (v: string): Array<[string, string]> => [['content-type', v]];

test('content types and charsets: the three modes only, UTF-8 only (in any spelling), a BOM tolerated', async (t) => {
  const w = await fuzzWorld();
  t.after(() => w.close());
  const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
  await runAll(w, [
    { what: 'no Content-Type', headers: [], body: ev(), status: 415, code: 'unsupported-media-type' },
    { what: 'empty Content-Type', headers: ct(''), body: ev(), status: 415, code: 'unsupported-media-type' },
    { what: 'text/plain without ce-', headers: ct('text/plain'), body: ev(), status: 415, code: 'unsupported-media-type' },
    { what: 'application/json', headers: ct('application/json'), body: ev(), status: 415, code: 'unsupported-media-type' },
    { what: 'multipart', headers: ct('multipart/form-data; boundary=x'), body: ev(), status: 415, code: 'unsupported-media-type' },
    { what: 'a media type of 10 KB', headers: ct(`application/${'x'.repeat(10_000)}`), body: ev(), status: 415, code: 'unsupported-media-type' },
    { what: 'upper case type', headers: ct('APPLICATION/CLOUDEVENTS+JSON'), body: ev(), status: 202 },
    { what: 'charset=utf-8', headers: ct(`${STRUCTURED}; charset=utf-8`), body: ev(), status: 202 },
    { what: 'charset=UTF-8', headers: ct(`${STRUCTURED}; charset=UTF-8`), body: ev(), status: 202 },
    { what: 'charset="utf-8"', headers: ct(`${STRUCTURED}; charset="utf-8"`), body: ev(), status: 202 },
    { what: 'charset=utf8', headers: ct(`${STRUCTURED};charset=utf8`), body: ev(), status: 202 },
    { what: 'batch charset=UTF-8', headers: ct(`${BATCH}; charset=UTF-8`), body: `[${ev()}]`, status: 200, items: [202] },
    { what: 'charset=latin1', headers: ct(`${STRUCTURED}; charset=latin1`), body: ev(), status: 415, code: 'unsupported-media-type' },
    { what: 'charset=iso-8859-1', headers: ct(`${STRUCTURED}; charset=iso-8859-1`), body: ev(), status: 415, code: 'unsupported-media-type' },
    { what: 'charset=utf-16', headers: ct(`${STRUCTURED}; charset=utf-16`), body: Buffer.from(`\ufeff${ev()}`, 'utf16le'), status: 415, code: 'unsupported-media-type' },
    { what: 'batch charset=utf-16', headers: ct(`${BATCH}; charset=utf-16`), body: `[${ev()}]`, status: 415, code: 'unsupported-media-type' },
    { what: 'empty charset', headers: ct(`${STRUCTURED}; charset=`), body: ev(), status: 415, code: 'unsupported-media-type' },
    { what: 'UTF-16 body, no charset', headers: ct(STRUCTURED), body: Buffer.from(`\ufeff${ev()}`, 'utf16le'), status: 400, code: 'malformed-json' },
    { what: 'UTF-8 BOM, structured', body: Buffer.concat([BOM, Buffer.from(ev())]), status: 202 },
    { what: 'UTF-8 BOM, batch', headers: ct(BATCH), body: Buffer.concat([BOM, Buffer.from(`[${ev()},${ev()}]`)]), status: 200, items: [202, 202] },
    { what: 'two BOMs', body: Buffer.concat([BOM, BOM, Buffer.from(ev())]), status: 400, code: 'malformed-json' },
    { what: 'BOM alone', body: BOM, status: 400, code: 'malformed-json' },
    { what: 'Content-Type twice', headers: [['content-type', STRUCTURED], ['content-type', 'text/plain']], body: ev(), status: 400, code: 'malformed-request' },
    { what: 'structured type with ce- headers', headers: [['content-type', STRUCTURED], ['ce-specversion', '1.0']], body: ev(), status: 400, code: 'invalid-event' },
    { what: 'batch type, one object', headers: ct(BATCH), body: ev(), status: 400, code: 'invalid-event' },
  ]);
});

test('malformed and truncated JSON, empty bodies, NUL bytes, invalid UTF-8: 400 malformed-json; what is valid JSON but no event: 400 invalid-event', async (t) => {
  const w = await fuzzWorld();
  t.after(() => w.close());
  const valid = ev();
  const bad = (what: string, body: Buffer | string, code = 'malformed-json'): Case => ({ what, body, status: 400, code });
  const cases: Case[] = [
    bad('empty', ''), bad('spaces', '   \r\n\t '), bad('10 MB of spaces', ' '.repeat(10 * 1024 * 1024)),
    bad('{', '{'), bad('trailing comma', withHead(',', ',')), bad('single quotes', "{'specversion':'1.0'}"),
    bad('comment', `/* c */${valid}`), bad('NaN', withHead(',"x":NaN', '')), bad('Infinity', withHead(',"x":Infinity', '')),
    bad('undefined', withHead(',"x":undefined', '')), bad('two documents', `${valid}${valid}`), bad('extra brace', `${valid}}`),
    bad('unterminated string', '{"specversion":"1.0'), bad('10 MB unclosed', `[${'['.repeat(10 * 1024 * 1024 - 1)}`),
    bad('raw NUL outside strings', `${valid.slice(0, 1)}\0${valid.slice(1)}`), bad('raw NUL in a string', valid.replace('MDP-A', 'MDP\0-A')),
    bad('raw newline in a string', valid.replace('MDP-A', 'MDP\n-A')), bad('NUL only', Buffer.alloc(100)),
    bad('0xFF', Buffer.concat([Buffer.from(valid.slice(0, 20)), Buffer.from([0xff]), Buffer.from(valid.slice(20))])),
    bad('overlong slash', Buffer.concat([Buffer.from(withHead(',"x":"', '')), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')])),
    bad('UTF-8 surrogate', Buffer.concat([Buffer.from(withHead(',"x":"', '')), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')])),
    bad('cut multibyte', Buffer.concat([Buffer.from(withHead(',"x":"', '')), Buffer.from([0xe2, 0x82]), Buffer.from('"}')])),
    bad('Latin-1 é', Buffer.from(withHead(',"x":"caf\u00e9"', ''), 'latin1')),
    bad('batch of garbage', '[{"a":1},', 'malformed-json'),
    { what: 'empty batch', headers: ct(BATCH), body: '', status: 400, code: 'malformed-json' },
    { what: '[] batch', headers: ct(BATCH), body: '[]', status: 400, code: 'invalid-event' },
    { what: '{}', body: '{}', status: 400, code: 'invalid-event' },
    { what: 'null', body: 'null', status: 400, code: 'invalid-event' },
    { what: 'a string', body: '"event"', status: 400, code: 'invalid-event' },
    { what: 'an array', body: `[${valid}]`, status: 400, code: 'invalid-event' },
  ];
  // Truncations of a valid event, at every tenth byte.
  for (let i = 0; i < valid.length - 1; i += 10) cases.push(bad(`truncated at ${i}`, valid.slice(0, i)));
  await runAll(w, cases);
});

test('duplicate members: refused in the event (any spelling of the name), kept as sent inside data; in a batch, refused per item', async (t) => {
  const w = await fuzzWorld();
  t.after(() => w.close());
  const res = await run(w, { what: 'duplicate inside data', body: ev('{"a":1,"a":2}'), status: 202 });
  const data = await request(`${w.hub.url}/v1/messages/${res.json.sequence}/data`, { headers: { authorization: `Bearer ${w.key}` } });
  assert.equal(await data.body.text(), '{"a":1,"a":2}', 'data is archived exactly as sent');
  await runAll(w, [
    { what: 'id twice', body: withHead(',"id":"again"', ''), status: 400, code: 'malformed-json' },
    { what: 'id and \\u0069d', body: withHead(',"\\u0069d":"again"', ''), status: 400, code: 'malformed-json' },
    { what: 'data twice', body: withHead(',"data":1,"data":2', ''), status: 400, code: 'malformed-json' },
    { what: 'source twice, the second another participant', body: withHead(',"source":"MDP-B"', ''), status: 400, code: 'malformed-json' },
    { what: 'an extension twice', body: withHead(',"ext":"a","ext":"b"', ''), status: 400, code: 'malformed-json' },
    { what: 'a batch item with a duplicate', headers: ct(BATCH), body: `[${ev()},${withHead(',"id":"x"', '')},${ev()}]`, status: 200, items: [202, 400, 202] },
  ]);
});

test('nesting: a document 10 and 64 levels deep (server.maxJsonDepth) is accepted, 65 and 100000 levels are 400, in structured and batch mode alike', async (t) => {
  const w = await fuzzWorld();
  t.after(() => w.close());
  // The event object is level 1, so `data` may hold 63 more levels; in a batch the array is level 1.
  const deepObj = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
  await runAll(w, [
    { what: 'depth 10', body: ev(nest(9)), status: 202 },
    { what: 'depth 64 (arrays)', body: ev(nest(63)), status: 202 },
    { what: 'depth 64 (objects)', body: ev(deepObj(63)), status: 202 },
    { what: 'depth 65 (arrays)', body: ev(nest(64)), status: 400, code: 'malformed-json' },
    { what: 'depth 65 (objects)', body: ev(deepObj(64)), status: 400, code: 'malformed-json' },
    { what: 'depth 100000', body: ev(nest(100_000)), status: 400, code: 'malformed-json' },
    { what: 'depth 100000 (objects)', body: ev(deepObj(100_000)), status: 400, code: 'malformed-json' },
    { what: 'depth 100000 as the document', body: nest(100_000), status: 400, code: 'invalid-event' },
    { what: 'batch depth 64', headers: ct(BATCH), body: `[${ev(nest(62))}]`, status: 200, items: [202] },
    { what: 'batch depth 65', headers: ct(BATCH), body: `[${ev(nest(63))}]`, status: 400, code: 'malformed-json' },
    { what: 'batch depth 100000', headers: ct(BATCH), body: nest(100_000), status: 400, code: 'malformed-json' },
    { what: 'an attribute value nested', body: withHead(`,"ext":${deepObj(70)}`, ''), status: 400, code: 'malformed-json' },
  ]);
  // The depth is a setting.
  const shallow = await fuzzWorld({ server: { maxJsonDepth: 3 } });
  t.after(() => shallow.close());
  await runAll(shallow, [
    { what: 'depth 3', body: ev('[[1]]'), status: 202 },
    { what: 'depth 4', body: ev('[[[1]]]'), status: 400, code: 'malformed-json' },
  ]);
});

test('huge values: a 10 MB id, 1e400, big integers, many attributes, long names; numbers in data are archived as written', async (t) => {
  const w = await fuzzWorld();
  t.after(() => w.close());
  const tenMb = 'i'.repeat(10 * 1024 * 1024);
  const r = await run(w, { what: '1e400 and a big integer in data', body: ev('{"a":1e400,"b":123456789012345678901234567890,"c":-0.0000000000000000000001}'), status: 202 });
  const data = await request(`${w.hub.url}/v1/messages/${r.json.sequence}/data`, { headers: { authorization: `Bearer ${w.key}` } });
  assert.equal(await data.body.text(), '{"a":1e400,"b":123456789012345678901234567890,"c":-0.0000000000000000000001}');
  // 64 attributes in all (the 5 required ones and 59 extensions) pass; 65 do not.
  const manyExt = Object.fromEntries(Array.from({ length: 59 }, (_, i) => [`ext${i}`, 'x']));
  const tooManyExt = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`ext${i}`, 'x']));
  await runAll(w, [
    { what: '10 MB string id', body: ev('1', { id: tenMb }), status: 400, code: 'invalid-event' },
    { what: '10 MB subject', body: ev('1', { subject: tenMb }), status: 400, code: 'invalid-event' },
    { what: '10 MB extension', body: ev('1', { ext: tenMb }), status: 400, code: 'invalid-event' },
    { what: '10 MB member name', body: withHead(`,"${'n'.repeat(10 * 1024 * 1024)}":1`, ''), status: 400, code: 'invalid-event' },
    { what: '10 MB string as data', body: ev(`"${tenMb}"`), status: 202 },
    { what: 'id 1e400', body: withHead('', '').replace(/"id":"[^"]+"/, '"id":1e400'), status: 400, code: 'invalid-event' },
    { what: 'extension 1e400', body: withHead(',"ext":1e400', ''), status: 400, code: 'invalid-event' },
    { what: 'extension 2^53', body: withHead(',"ext":9007199254740993', ''), status: 400, code: 'invalid-event' },
    { what: 'extension 2^31', body: withHead(',"ext":2147483648', ''), status: 400, code: 'invalid-event' },
    { what: 'extension 2^31-1', body: withHead(',"ext":2147483647', ''), status: 202 },
    { what: 'extension 1.5', body: withHead(',"ext":1.5', ''), status: 400, code: 'invalid-event' },
    { what: 'specversion 1.0 as a number', body: withHead('', '').replace('"specversion":"1.0"', '"specversion":1.0'), status: 400, code: 'invalid-event' },
    { what: '64 attributes', body: ev('1', manyExt), status: 202 },
    { what: '65 attributes', body: ev('1', tooManyExt), status: 400, code: 'invalid-event' },
    { what: 'body over server.bodyLimitBytes (16 MiB)', body: ev(`"${'d'.repeat(17 * 1024 * 1024)}"`), status: 413, code: 'payload-too-large' },
  ]);
});

test('strings a CloudEvent may not hold: control characters and lone surrogates in attributes (structured and binary); NUL inside data is data', async (t) => {
  const w = await fuzzWorld();
  t.after(() => w.close());
  const bin = (attrs: Record<string, string>, body: Buffer | string = 'x', type = 'text/plain'): Case['headers'] => [
    ['ce-specversion', '1.0'], ['ce-id', attrs.id ?? uid('b')], ['ce-source', 'MDP-A'], ['ce-type', attrs.type ?? 't'], ['ce-subject', attrs.subject ?? 'NCDE001111'],
    ...Object.entries(attrs).filter(([k]) => !['id', 'type', 'subject'].includes(k)).map(([k, v]) => [`ce-${k}`, v] as [string, string]),
    ['content-type', type],
  ];
  await runAll(w, [
    { what: '\\u0000 in id', body: ev('1', { id: 'a\u0000b' }), status: 400, code: 'invalid-event' },
    { what: '\\u001f in subject', body: ev('1', { subject: 'N\u001f1' }), status: 400, code: 'invalid-event' },
    { what: '\\u007f in type', body: ev('1', { type: 't\u007f' }), status: 400, code: 'invalid-event' },
    { what: '\\u0085 in an extension', body: ev('1', { ext: 'a\u0085' }), status: 400, code: 'invalid-event' },
    { what: 'lone high surrogate in id', body: withHead('', '').replace(/"id":"[^"]+"/, '"id":"a\\ud800"'), status: 400, code: 'invalid-event' },
    { what: 'lone low surrogate in an extension', body: withHead(',"ext":"\\udc00b"', ''), status: 400, code: 'invalid-event' },
    { what: 'a surrogate pair (an emoji) in id', body: ev('1', { id: uid('emoji-\u{1F600}') }), status: 202 },
    { what: 'lone surrogate in text data', body: ev('"\\ud800"', { datacontenttype: 'text/plain' }), status: 400, code: 'invalid-event' },
    { what: 'lone surrogate escaped in JSON data', body: ev('"\\ud800"'), status: 202 },
    { what: 'NUL escaped in JSON data', body: ev('"a\\u0000b"'), status: 202 },
    { what: 'binary: %00 in ce-id', headers: bin({ id: 'a%00b' }), body: 'x', status: 400, code: 'invalid-event' },
    { what: 'binary: %0A in ce-subject', headers: bin({ subject: 'N%0A1' }), body: 'x', status: 400, code: 'invalid-event' },
    { what: 'binary: %ED%A0%80 (a surrogate) in ce-id', headers: bin({ id: 'a%ED%A0%80' }), body: 'x', status: 400, code: 'invalid-event' },
    { what: 'binary: %ZZ', headers: bin({ id: 'a%ZZ' }), body: 'x', status: 400, code: 'invalid-event' },
    { what: 'binary: %C3 cut', headers: bin({ id: 'a%C3' }), body: 'x', status: 400, code: 'invalid-event' },
    { what: 'binary: raw UTF-8 in ce-id', headers: bin({ id: 'caf\u00c3\u00a9' }), body: 'x', status: 400, code: 'invalid-event' },
    { what: 'binary: raw 0xFF in ce-type', headers: bin({ type: 't\u00ff' }), body: 'x', status: 400, code: 'invalid-event' },
    { what: 'binary: percent-encoded UTF-8 in ce-id', headers: bin({ id: `${uid('caf')}%C3%A9` }), body: 'x', status: 202 },
    { what: 'binary: NUL and 0xFF bytes in the data', headers: bin({}, '', 'application/octet-stream'), body: Buffer.from([0, 0xff, 0, 0xfe]), status: 202 },
    { what: 'binary: invalid UTF-8 in text/csv data (data is opaque)', headers: bin({}, '', 'text/csv'), body: Buffer.from([0x61, 0xff, 0x0a]), status: 202 },
    { what: 'binary: empty data', headers: bin({}, '', 'text/csv'), body: '', status: 202 },
    { what: 'binary: ce-id twice', headers: [...bin({})!, ['ce-id', 'second']], body: 'x', status: 400, code: 'invalid-event' },
    { what: 'binary: ce-datacontenttype', headers: bin({ datacontenttype: 'text/plain' }), body: 'x', status: 400, code: 'invalid-event' },
    { what: 'binary: ce-sequence', headers: bin({ sequence: '7' }), body: 'x', status: 400, code: 'invalid-event' },
    { what: 'binary: ce-specversion 0.3', headers: [['ce-specversion', '0.3'], ...bin({})!.slice(1)], body: 'x', status: 400, code: 'invalid-event' },
    { what: 'binary: no ce-specversion', headers: bin({})!.slice(1), body: 'x', status: 415, code: 'unsupported-media-type' },
    { what: 'binary: empty ce-id', headers: [['ce-specversion', '1.0'], ['ce-id', ''], ...bin({})!.slice(2)], body: 'x', status: 400, code: 'invalid-event' },
    { what: 'binary: a bad extension name', headers: [...bin({})!, ['ce-bad_name', 'x']], body: 'x', status: 400, code: 'invalid-event' },
  ]);
});

test('attribute type swaps: each required attribute as a number, boolean, null, array and object is a 400 naming it', async (t) => {
  const w = await fuzzWorld();
  t.after(() => w.close());
  const cases: Case[] = [];
  for (const name of ['specversion', 'id', 'source', 'type', 'subject']) {
    for (const v of ['1', 'true', 'null', '["x"]', '{"x":1}', '""']) {
      const obj: Record<string, unknown> = { specversion: '1.0', id: uid('sw'), source: 'MDP-A', type: 't', subject: 'NCDE001111' };
      const body = JSON.stringify(obj).replace(new RegExp(`"${name}":"[^"]*"`), `"${name}":${v}`);
      cases.push({ what: `${name} = ${v}`, body, status: 400, code: 'invalid-event' });
    }
  }
  for (const [name, v] of [['time', '1700000000'], ['time', '"2024-02-30T00:00:00Z"'], ['datacontenttype', '42'], ['datacontenttype', '"not a type"'], ['data_base64', '42'], ['data_base64', '"!!"'], ['ext', '[1]'], ['ext', '{}']] as const) {
    cases.push({ what: `${name} = ${v}`, body: withHead(`,"${name}":${v}`, ''), status: 400, code: 'invalid-event' });
  }
  await runAll(w, cases);
});

test('batch size: server.maxBatchEvents events pass, one more is 413; 20,000 items against the default 10,000 are 413, and 20,000 pass where the limit allows them', async (t) => {
  const w = await fuzzWorld({ server: { maxBatchEvents: 50 } });
  t.after(() => w.close());
  const batch = (k: number) => `[${Array.from({ length: k }, () => ev()).join(',')}]`;
  await run(w, { what: '50 events', headers: ct(BATCH), body: batch(50), status: 200, items: Array(50).fill(202) });
  await run(w, { what: '51 events', headers: ct(BATCH), body: batch(51), status: 413, code: 'payload-too-large' });
  // Items that are not even events count too: the limit is on the array.
  await run(w, { what: '51 numbers', headers: ct(BATCH), body: `[${Array(51).fill('1').join(',')}]`, status: 413, code: 'payload-too-large' });
  await assertHealthy(w);

  const d = await fuzzWorld();
  t.after(() => d.close());
  await run(d, { what: '20000 against the default', headers: ct(BATCH), body: batch(20_000), status: 413, code: 'payload-too-large' });
  await run(d, { what: '10000 with the default', headers: ct(BATCH), body: batch(10_000), status: 200, items: Array(10_000).fill(202) });
  await assertHealthy(d);

  const big = await fuzzWorld({ server: { maxBatchEvents: 20_000 } });
  t.after(() => big.close());
  await run(big, { what: '20000 allowed', headers: ct(BATCH), body: batch(20_000), status: 200, items: Array(20_000).fill(202) });
  await run(big, { what: '20001', headers: ct(BATCH), body: batch(20_001), status: 413, code: 'payload-too-large' });
  await assertHealthy(big);
});
