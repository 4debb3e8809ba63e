// Seeded random fuzzing of POST /v1/messages: valid events in all three modes, mutated (bit flips,
// truncation, slices cut, repeated or spliced with nasty tokens, attribute type swaps, headers
// mangled, the raw request itself flipped), a few thousand cases over raw sockets. Every case must
// be answered within the bound with a 2xx or the right kind of 4xx problem+json; never a 5xx or a
// crash; the hub stays healthy.
//
// Deterministic: FUZZ_SEED picks the run (default below; FUZZ_SEED=random for a new one),
// FUZZ_CASES how many, FUZZ_CASE one case alone. A failure names the seed and the case.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertHealthy, BATCH, fuzzWorld, prng, rawExchange, rawRequest, STRUCTURED, type FuzzWorld } from './support.ts';

const SEED = process.env.FUZZ_SEED === 'random' ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.FUZZ_SEED ?? 20_240_601);
const CASES = Number(process.env.FUZZ_CASES ?? 3000);
const ONLY = process.env.FUZZ_CASE === undefined ? null : Number(process.env.FUZZ_CASE);

/** Statuses an ingest request may get from hostile input (routing matches everything; a mutated id may repeat, so 409 and 200 too). */
const ALLOWED = new Set([200, 202, 400, 401, 403, 404, 405, 408, 409, 413, 415, 431]);
const ITEM_ALLOWED = new Set([200, 202, 400, 403, 409]);

type Rng = ReturnType<typeof prng>;
interface Built { mode: string; headers: Array<[string, string]>; body: Buffer; mutation: string[]; rawFlip: boolean }

const NASTY = ['\u0000', '\\u0000', '\\ud800', '\\udfff', '1e400', '-0', '{', '}', '[', ']', '"', '\\', ',', ':', 'null', '\ufeff', '\u2028', '\r\n', '%00', '%', '\xff', '"__proto__"', '9'.repeat(400)];
const SWAPS: unknown[] = [0, -1, 1.5, 2 ** 53, true, false, null, [], ['x'], {}, { a: 1 }, '', ' ', 'x'.repeat(5000), '\u0000', 'MDP-B', '2024-02-30T00:00:00Z', '1.0'];

function baseAttrs(rng: Rng, id: string): Record<string, unknown> {
  const a: Record<string, unknown> = { specversion: '1.0', id, source: 'MDP-A', type: rng.pick(['meter.reading', 'au.nem12', 't']), subject: rng.pick(['NCDE001111', 'METER-1', '57131310000000001']) };
  if (rng.chance(0.5)) a.time = rng.pick(['2024-01-01T00:00:00Z', '2024-02-29T23:59:59.123+05:30']);
  if (rng.chance(0.3)) a.ext = rng.pick(['x', 7, true]);
  return a;
}

function swapAttribute(rng: Rng, a: Record<string, unknown>, mutation: string[]): void {
  const names = Object.keys(a);
  const r = rng.next();
  if (r < 0.5) {
    const name = rng.pick(names);
    const v = rng.pick(SWAPS);
    a[name] = v;
    mutation.push(`swap ${name}=${JSON.stringify(v)?.slice(0, 30)}`);
  } else if (r < 0.75) {
    const name = rng.pick(names);
    delete a[name];
    mutation.push(`drop ${name}`);
  } else {
    const name = rng.pick(['Bad-Name', 'sequence', 'data_base64', 'x'.repeat(21), 'ok1', '__proto__', 'constructor', 'datacontenttype']);
    a[name] = rng.pick(SWAPS);
    mutation.push(`add ${name}`);
  }
}

function mutateBytes(rng: Rng, b: Buffer, mutation: string[]): Buffer {
  if (b.length === 0) return b;
  const r = rng.next();
  if (r < 0.3) {
    const out = Buffer.from(b);
    const flips = 1 + rng.int(8);
    for (let i = 0; i < flips; i++) { const at = rng.int(out.length); out[at]! ^= 1 << rng.int(8); }
    mutation.push(`${flips} bit flips`);
    return out;
  }
  if (r < 0.5) {
    const at = rng.int(b.length);
    mutation.push(`truncate at ${at}/${b.length}`);
    return b.subarray(0, at);
  }
  if (r < 0.65) {
    const at = rng.int(b.length);
    const len = 1 + rng.int(Math.min(40, b.length - at));
    mutation.push(`cut ${len} at ${at}`);
    return Buffer.concat([b.subarray(0, at), b.subarray(at + len)]);
  }
  if (r < 0.75) {
    const at = rng.int(b.length);
    const len = 1 + rng.int(Math.min(40, b.length - at));
    const times = 1 + rng.int(rng.chance(0.1) ? 5000 : 5);
    mutation.push(`repeat ${len} at ${at} x${times}`);
    return Buffer.concat([b.subarray(0, at + len), ...Array(times).fill(b.subarray(at, at + len)), b.subarray(at + len)]);
  }
  const at = rng.int(b.length);
  const token = rng.pick(NASTY);
  mutation.push(`splice ${JSON.stringify(token).slice(0, 20)} at ${at}`);
  return Buffer.concat([b.subarray(0, at), Buffer.from(token, token === '\xff' ? 'latin1' : 'utf8'), b.subarray(at)]);
}

function build(rng: Rng, id: string): Built {
  const mutation: string[] = [];
  const mode = rng.pick(['structured', 'structured', 'batch', 'binary']);
  let headers: Array<[string, string]>;
  let body: Buffer;
  const data = rng.pick(['{"kwh":1.5}', '[1,2,3]', '"text"', '12345678901234567890', 'null', '{"a":{"b":[{"c":"d"}]}}']);
  if (mode === 'binary') {
    const a = baseAttrs(rng, id);
    if (rng.chance(0.4)) swapAttribute(rng, a, mutation);
    headers = Object.entries(a).map(([k, v]) => [`ce-${k}`, typeof v === 'string' ? v : JSON.stringify(v) ?? '']);
    headers.push(['content-type', rng.pick(['text/csv', 'application/json', 'application/xml', 'application/octet-stream'])]);
    body = Buffer.from(rng.pick(['100,NEM12,200506081149,UNITEDDP,NEMMCO\n', data, '<a/>', '']));
    if (rng.chance(0.4)) {
      // Mangle a header: a value with odd bytes, a name dropped or repeated, a Content-Type changed.
      const i = rng.int(headers.length);
      const r = rng.next();
      if (r < 0.3) { headers[i] = [headers[i]![0], `${headers[i]![1]}${rng.pick(['%', '%ZZ', '%00', '%C3', '\xc3\xa9', '\x7f', ' ', '"', ';'])}`]; mutation.push(`mangle ${headers[i]![0]}`); }
      else if (r < 0.5) { mutation.push(`drop header ${headers[i]![0]}`); headers.splice(i, 1); }
      else if (r < 0.7) { headers.push(headers[i]!); mutation.push(`repeat header ${headers[i]![0]}`); }
      else { headers = headers.filter(([k]) => k !== 'content-type'); headers.push(['content-type', rng.pick([STRUCTURED, BATCH, '', 'text/plain; charset=latin1', 'x'])]); mutation.push('content type'); }
    }
    if (rng.chance(0.3)) body = mutateBytes(rng, body, mutation);
  } else {
    const events = Array.from({ length: mode === 'batch' ? 1 + rng.int(5) : 1 }, (_, k) => {
      const a = baseAttrs(rng, `${id}.${k}`);
      if (rng.chance(0.35)) swapAttribute(rng, a, mutation);
      const head = JSON.stringify(a);
      const r = rng.next();
      if (r < 0.15) return `${head.slice(0, -1)},"data_base64":"${Buffer.from(data).toString('base64')}"}`;
      if (r < 0.2) return head;
      return `${head.slice(0, -1)},"data":${data}}`;
    });
    const text = mode === 'batch' ? `[${events.join(',')}]` : events[0]!;
    headers = [['content-type', mode === 'batch' ? BATCH : STRUCTURED]];
    if (rng.chance(0.1)) { headers = [['content-type', rng.pick([`${STRUCTURED}; charset=utf-8`, `${BATCH}; charset=UTF-8`, `${STRUCTURED}; charset=utf-16`, 'application/json', STRUCTURED])]]; mutation.push(`content type ${headers[0]![1]}`); }
    body = Buffer.from(text);
    if (rng.chance(0.6)) body = mutateBytes(rng, body, mutation);
  }
  return { mode, headers, body, mutation, rawFlip: rng.chance(0.1) };
}

async function runCase(w: FuzzWorld, index: number): Promise<string> {
  const rng = prng((SEED ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
  const c = build(rng, `rnd-${SEED}-${index}`);
  let raw = rawRequest('POST', '/v1/messages', [['authorization', `Bearer ${w.key}`], ...c.headers], c.body);
  if (c.rawFlip) {
    // Flip bits anywhere in the request, request line and headers included.
    raw = Buffer.from(raw);
    for (let i = 0, n = 1 + rng.int(3); i < n; i++) { const at = rng.int(raw.length); raw[at]! ^= 1 << rng.int(8); }
    c.mutation.push('raw flips');
  }
  const describe = () => `FUZZ_SEED=${SEED} FUZZ_CASE=${index} (${c.mode}; ${c.mutation.join(', ') || 'unmutated'}); request starts ${JSON.stringify(raw.toString('latin1', 0, 300))}`;
  const res = await rawExchange(w.hub.url, raw, { timeoutMs: 8000 });
  try {
    assert.ok(!res.timedOut, 'no answer within 8 s (the hub\'s own request timeout is 1 s here)');
    assert.ok(res.complete, `the connection ended without an answer (${res.raw.length} bytes)`);
    assert.ok(ALLOWED.has(res.status), `status ${res.status}: ${res.text.slice(0, 300)}`);
    if (res.status >= 400) {
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      const p = res.json;
      assert.ok(p && typeof p.type === 'string' && typeof p.title === 'string' && typeof p.detail === 'string' && p.status === res.status, `a problem with type/title/status/detail: ${res.text.slice(0, 300)}`);
      assert.doesNotMatch(res.text, /\n\s+at |\.ts:\d+|<html/i);
    }
    if (res.status === 200 && Array.isArray(res.json?.results)) {
      for (const item of res.json.results) {
        assert.ok(ITEM_ALLOWED.has(item.status), `batch item status ${item.status}`);
        if (item.status >= 400) assert.ok(item.problem?.type && item.problem.title && item.problem.detail && item.problem.status === item.status, 'batch item problem');
      }
    }
    if (res.status === 202) assert.ok(Number.isSafeInteger(res.json?.sequence), 'a receipt with a sequence');
  } catch (e) {
    (e as Error).message = `${describe()}\n${(e as Error).message}`;
    throw e;
  }
  return `${res.status}`;
}

test(`seeded mutation fuzz of ingest: ${ONLY === null ? CASES : 1} cases (FUZZ_SEED=${SEED}), each answered in bound with 2xx or a 4xx problem, never 5xx`, async (t) => {
  const w = await fuzzWorld({ server: { requestTimeoutMs: 1000, headersTimeoutMs: 1000 } });
  t.after(() => w.close());
  const seen = new Map<string, number>();
  const indexes = ONLY === null ? Array.from({ length: CASES }, (_, i) => i) : [ONLY];
  const started = Date.now();
  // A few connections at once, as real clients would.
  const lanes = 4;
  let next = 0;
  await Promise.all(Array.from({ length: lanes }, async () => {
    while (next < indexes.length) {
      const i = indexes[next++]!;
      const status = await runCase(w, i);
      seen.set(status, (seen.get(status) ?? 0) + 1);
      if (i % 500 === 499) await assertHealthy(w, `FUZZ_SEED=${SEED} after case ${i}`);
    }
  }));
  await assertHealthy(w, `FUZZ_SEED=${SEED} at the end`);
  t.diagnostic(`FUZZ_SEED=${SEED}: ${indexes.length} cases in ${Date.now() - started} ms; statuses ${JSON.stringify(Object.fromEntries([...seen].sort()))}`);
  if (ONLY === null && CASES >= 1000) {
    // The mutations reach both sides: plenty accepted, plenty refused.
    assert.ok((seen.get('202') ?? 0) + (seen.get('200') ?? 0) > CASES / 20, 'some cases were valid');
    assert.ok((seen.get('400') ?? 0) > CASES / 5, 'many cases were refused');
  }
});
