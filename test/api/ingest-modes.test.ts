// POST /v1/messages in the three CloudEvents modes: what is accepted is archived byte-exact,
// with its content type, and the receipt has the documented shape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { startTestHub, eventually } from '../support/hub.ts';
import { startReceiver } from '../support/receiver.ts';
import {
  assertProblem, assertReceipt, BATCH, ceHeaders, envelope, inject, injectParticipant, injectRoutes, sample, send, STRUCTURED,
} from './helpers.ts';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const NEM12 = sample('nem12_multiple_meters.csv');
const CIM = sample('cim_json_notify_validated_measure_data_two_series.json');

/** Files under the hub's body folder (bodies too large to keep inline). */
function bodyFiles(dataDir: string): string[] {
  const root = join(dataDir, 'bodies');
  const out: string[] = [];
  for (const d of readdirSync(root)) {
    if (d === 'tmp') continue;
    const p = join(root, d);
    if (statSync(p).isDirectory()) for (const f of readdirSync(p)) out.push(join(p, f));
  }
  return out;
}

async function injectHub() {
  const hub = await startTestHub({}, { listen: false });
  const sender = await injectParticipant(hub, 'MDP-A');
  await injectParticipant(hub, 'RETAILER-A', { mode: 'pull' });
  await injectRoutes(hub, [{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }]);
  return { hub, sender };
}

test('structured: JSON data is archived byte-exact (big integers, spacing, newlines) with a full receipt', async (t) => {
  const { hub, sender } = await injectHub();
  t.after(() => hub.close());
  const data = '{ "reading" :  12345678901234567890,\n  "v": [1.50, 2e3, -0.0],\t"s": "caf\\u00e9 \u00e9" }';
  const res = await inject(hub, 'POST', '/v1/messages', { key: sender.key, headers: { 'content-type': STRUCTURED }, body: envelope({ id: 's-json', source: 'MDP-A' }, data) });
  const seq = assertReceipt(res, { id: 's-json', source: 'MDP-A', receivers: ['RETAILER-A'] });

  const got = await inject(hub, 'GET', `/v1/messages/${seq}/data`, { key: sender.key });
  assert.equal(got.status, 200);
  assert.ok(got.raw.equals(Buffer.from(data, 'utf8')), `archived bytes differ: ${got.text}`);
  assert.match(String(got.headers['content-type']), /^application\/json/);

  const status = await inject(hub, 'GET', `/v1/messages/${seq}`, { key: sender.key });
  assert.equal(status.status, 200);
  assert.equal(status.json.size, Buffer.byteLength(data));
  assert.equal(status.json.sha256, sha256(data));
  assert.equal(status.json.subject, 'NCDE001111');
  assert.equal(status.json.type, 'meter.reading');
  assert.deepEqual(status.json.deliveries.map((d: any) => [d.receiver, d.state]), [['RETAILER-A', 'pending']]);
});

test('structured: data as a string with datacontenttype text/csv is archived as the string\'s bytes', async (t) => {
  const { hub, sender } = await injectHub();
  t.after(() => hub.close());
  const csv = NEM12.toString('utf8');
  const body = JSON.stringify({ specversion: '1.0', id: 's-csv', source: 'MDP-A', type: 'nem12', subject: 'NCDE001111', datacontenttype: 'text/csv', data: csv });
  const res = await inject(hub, 'POST', '/v1/messages', { key: sender.key, headers: { 'content-type': `${STRUCTURED}; charset=utf-8` }, body });
  const seq = assertReceipt(res, { id: 's-csv', source: 'MDP-A', receivers: ['RETAILER-A'] });
  const got = await inject(hub, 'GET', `/v1/messages/${seq}/data`, { key: sender.key });
  assert.ok(got.raw.equals(NEM12));
  assert.match(String(got.headers['content-type']), /^text\/csv/);
});

test('structured: data_base64 is decoded and archived as those bytes', async (t) => {
  const { hub, sender } = await injectHub();
  t.after(() => hub.close());
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const body = JSON.stringify({ specversion: '1.0', id: 's-b64', source: 'MDP-A', type: 't', subject: 'NCDE001111', datacontenttype: 'application/octet-stream', data_base64: bytes.toString('base64') });
  const res = await inject(hub, 'POST', '/v1/messages', { key: sender.key, headers: { 'content-type': STRUCTURED }, body });
  const seq = assertReceipt(res, { id: 's-b64', source: 'MDP-A', receivers: ['RETAILER-A'] });
  const got = await inject(hub, 'GET', `/v1/messages/${seq}/data`, { key: sender.key });
  assert.ok(got.raw.equals(bytes));
  assert.equal(got.headers['content-type'], 'application/octet-stream');
  const status = await inject(hub, 'GET', `/v1/messages/${seq}`, { key: sender.key });
  assert.equal(status.json.sha256, sha256(bytes));
  assert.equal(status.json.size, 256);
});

test('binary: a NEM12 CSV body is archived byte-exact with its content type; ce-subject is percent-decoded; extensions kept', async (t) => {
  const hub = await startTestHub();
  t.after(() => hub.close());
  const sender = await hub.participant('MDP-A');
  await hub.participant('RETAILER-A', { mode: 'pull' });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }]);

  const res = await send(hub, 'POST', '/v1/messages', {
    key: sender.key,
    headers: ceHeaders({ id: 'b-nem12', source: 'MDP-A', type: 'au.nem12', subject: 'NCDE%20001111%2F%C3%A9', time: '2003-12-04T00:00:00Z', foo: 'bar%25baz' }, 'text/csv'),
    body: NEM12,
  });
  const seq = assertReceipt(res, { id: 'b-nem12', source: 'MDP-A', receivers: ['RETAILER-A'] });

  const got = await send(hub, 'GET', `/v1/messages/${seq}/data`, { key: sender.key });
  assert.equal(got.status, 200);
  assert.ok(got.raw.equals(NEM12), 'the NEM12 file comes back byte for byte');
  assert.match(String(got.headers['content-type']), /^text\/csv/);

  const status = await send(hub, 'GET', `/v1/messages/${seq}`, { key: sender.key });
  assert.equal(status.json.subject, 'NCDE 001111/é');
  assert.equal(status.json.attributes.foo, 'bar%baz');
  assert.equal(status.json.time, '2003-12-04T00:00:00Z');
  assert.equal(status.json.contentType, 'text/csv');
  assert.equal(status.json.size, NEM12.length);
  assert.equal(status.json.sha256, sha256(NEM12));
});

test('binary: a body over storage.inlineBodyMaxBytes streams to a file and reads back (and is pushed) identical', async (t) => {
  const hub = await startTestHub({ storage: { inlineBodyMaxBytes: 1024 } });
  const receiver = await startReceiver();
  t.after(async () => { await hub.close(); await receiver.close(); });
  assert.ok(NEM12.length > 1024);
  const sender = await hub.participant('MDP-A');
  await hub.participant('RETAILER-A', { mode: 'push', url: receiver.url });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }]);

  const before = bodyFiles(hub.dataDir).length;
  // Once with Content-Length, once chunked (no length known in advance).
  const withLength = await send(hub, 'POST', '/v1/messages', { key: sender.key, headers: ceHeaders({ id: 'big-1', source: 'MDP-A' }, 'text/csv'), body: NEM12 });
  const seq1 = assertReceipt(withLength, { id: 'big-1', source: 'MDP-A', receivers: ['RETAILER-A'] });
  const chunked = await send(hub, 'POST', '/v1/messages', {
    key: sender.key, headers: ceHeaders({ id: 'big-2', source: 'MDP-A' }, 'text/csv'),
    body: Readable.from([NEM12.subarray(0, 1000), NEM12.subarray(1000, 3000), NEM12.subarray(3000)]),
  });
  const seq2 = assertReceipt(chunked, { id: 'big-2', source: 'MDP-A', receivers: ['RETAILER-A'] });
  assert.ok(seq2 > seq1);
  assert.equal(bodyFiles(hub.dataDir).length, before + 2, 'both bodies are files under data/bodies');

  for (const seq of [seq1, seq2]) {
    const got = await send(hub, 'GET', `/v1/messages/${seq}/data`, { key: sender.key });
    assert.ok(got.raw.equals(NEM12), `message ${seq} reads back identical`);
    assert.match(String(got.headers['content-type']), /^text\/csv/);
    const status = await send(hub, 'GET', `/v1/messages/${seq}`, { key: sender.key });
    assert.equal(status.json.sha256, sha256(NEM12));
  }
  await eventually(() => receiver.requests.length >= 2, 5000, 'two pushes');
  for (const r of receiver.requests) {
    assert.ok(r.body.equals(NEM12), 'the pushed body is the accepted bytes');
    assert.equal(r.headers['content-type'], 'text/csv');
  }
});

test('batch: each event is accepted or refused on its own, results in order; the good ones are committed', async (t) => {
  const { hub, sender } = await injectHub();
  t.after(() => hub.close());
  const batch = `[
    ${envelope({ id: 'k1', source: 'MDP-A' }, '{"n": 1.10}')},
    ${JSON.stringify({ specversion: '1.0', id: 'k2', source: 'MDP-A', type: 't' })},
    ${envelope({ id: 'k3', source: 'MDP-A', datacontenttype: 'text/csv' }, '"a,b\\n1,2\\n"')},
    ${envelope({ id: 'k4', source: 'SOMEONE-ELSE' }, '{}')},
    ${JSON.stringify({ specversion: '1.0', id: 'k5', source: 'MDP-A', type: 't', subject: 'M5', data_base64: Buffer.from([0, 1, 2]).toString('base64') })},
    42,
    ${envelope({ id: 'k6', source: 'MDP-A', time: 'not-a-time' }, '{}')}
  ]`;
  const res = await inject(hub, 'POST', '/v1/messages', { key: sender.key, headers: { 'content-type': BATCH }, body: batch });
  assert.equal(res.status, 200, res.text);
  const results = res.json.results as any[];
  assert.deepEqual(results.map((r) => r.status), [202, 400, 202, 403, 202, 400, 400]);
  assert.equal(results[1].problem.attribute, 'subject');
  assert.ok(results[3].problem.type.endsWith('/source-mismatch'));
  assert.ok(results[6].problem.type.endsWith('/invalid-event'));
  for (const r of results.filter((x) => x.status !== 202)) {
    for (const k of ['type', 'title', 'status', 'detail']) assert.ok(k in r.problem, `problem member ${k}`);
    assert.equal(r.problem.status, r.status);
  }
  const accepted = results.filter((r) => r.status === 202);
  assert.deepEqual(accepted.map((r) => r.id), ['k1', 'k3', 'k5']);
  const seqs = accepted.map((r) => r.sequence as number);
  assert.ok(seqs[0]! < seqs[1]! && seqs[1]! < seqs[2]!, `sequences increase: ${seqs}`);
  for (const r of accepted) assert.deepEqual(r.receivers, ['RETAILER-A']);

  const want = [Buffer.from('{"n": 1.10}'), Buffer.from('a,b\n1,2\n'), Buffer.from([0, 1, 2])];
  for (const [i, seq] of seqs.entries()) {
    const got = await inject(hub, 'GET', `/v1/messages/${seq}/data`, { key: sender.key });
    assert.equal(got.status, 200);
    assert.ok(got.raw.equals(want[i]!), `batch item ${i} archived byte-exact`);
  }
  // The refused ones left nothing behind: the next sequence follows the last accepted one.
  const next = await inject(hub, 'POST', '/v1/messages', { key: sender.key, headers: { 'content-type': STRUCTURED }, body: envelope({ id: 'k7', source: 'MDP-A' }, '{}') });
  assert.ok(next.json.sequence > seqs[2]!);
  assert.equal((await inject(hub, 'GET', `/v1/messages/${seqs[2]! + 1}`, { key: sender.key })).json.id, 'k7');
});

test('the CIM JSON sample (with a UTF-8 BOM) as binary application/json and as structured data', async (t) => {
  const hub = await startTestHub();
  t.after(() => hub.close());
  const sender = await hub.participant('MDP-A');
  const receiver = await hub.participant('RETAILER-A', { mode: 'pull' });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }]);
  assert.deepEqual([...CIM.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'the sample starts with a BOM');
  const withoutBom = CIM.subarray(3);

  // Binary: the body is the data exactly, BOM included.
  const bin = await send(hub, 'POST', '/v1/messages', { key: sender.key, headers: ceHeaders({ id: 'cim-bin', source: 'MDP-A', type: 'eu.cim.notify' }, 'application/json'), body: CIM });
  const seqBin = assertReceipt(bin, { id: 'cim-bin', source: 'MDP-A', receivers: ['RETAILER-A'] });
  const gotBin = await send(hub, 'GET', `/v1/messages/${seqBin}/data`, { key: sender.key });
  assert.ok(gotBin.raw.equals(CIM), 'binary mode keeps every byte, the BOM too');
  assert.match(String(gotBin.headers['content-type']), /^application\/json/);

  // Structured: the document (a BOM cannot sit inside JSON) spliced in as `data`, the envelope itself BOM-prefixed.
  const env = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(envelope({ id: 'cim-struct', source: 'MDP-A', type: 'eu.cim.notify' }, withoutBom.toString('utf8')))]);
  const st = await send(hub, 'POST', '/v1/messages', { key: sender.key, headers: { 'content-type': STRUCTURED }, body: env });
  const seqSt = assertReceipt(st, { id: 'cim-struct', source: 'MDP-A', receivers: ['RETAILER-A'] });
  assert.ok(seqSt > seqBin);
  const gotSt = await send(hub, 'GET', `/v1/messages/${seqSt}/data`, { key: sender.key });
  assert.ok(gotSt.raw.equals(withoutBom), 'structured data is the document\'s exact bytes');
  assert.deepEqual(JSON.parse(gotSt.text), JSON.parse(withoutBom.toString('utf8')));

  // What the receiver polls carries the same bytes: inline JSON, or base64 where the body is not plain JSON (the BOM).
  const inbox = await send(hub, 'GET', '/v1/inbox?max=10', { key: receiver.key });
  assert.equal(inbox.status, 200, inbox.text);
  const events = (inbox.json.messages as any[]).map((m) => m.event);
  const polledBin = events.find((e) => e.id === 'cim-bin');
  const polledSt = events.find((e) => e.id === 'cim-struct');
  const binBytes = polledBin.data_base64 !== undefined ? Buffer.from(polledBin.data_base64, 'base64') : Buffer.from(JSON.stringify(polledBin.data));
  assert.ok(binBytes.equals(CIM));
  assert.deepEqual(polledSt.data, JSON.parse(withoutBom.toString('utf8')));
});

test('sequences increase across modes and requests', async (t) => {
  const hub = await startTestHub();
  t.after(() => hub.close());
  const sender = await hub.participant('MDP-A');
  await hub.participant('RETAILER-A', { mode: 'pull' });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }]);
  const seqs: number[] = [];
  for (let i = 0; i < 6; i++) {
    const res = i % 2 === 0
      ? await send(hub, 'POST', '/v1/messages', { key: sender.key, headers: { 'content-type': STRUCTURED }, body: envelope({ id: `q${i}`, source: 'MDP-A' }, `{"i":${i}}`) })
      : await send(hub, 'POST', '/v1/messages', { key: sender.key, headers: ceHeaders({ id: `q${i}`, source: 'MDP-A' }, 'text/plain'), body: `i=${i}` });
    seqs.push(assertReceipt(res, { id: `q${i}`, source: 'MDP-A', receivers: ['RETAILER-A'] }));
  }
  for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!, `sequences increase: ${seqs}`);
  // Concurrent posts get distinct sequences too.
  const many = await Promise.all(Array.from({ length: 20 }, (_, i) => send(hub, 'POST', '/v1/messages', { key: sender.key, headers: { 'content-type': STRUCTURED }, body: envelope({ id: `c${i}`, source: 'MDP-A' }, '{}') })));
  const cs = many.map((r) => { assert.equal(r.status, 202, r.text); return r.json.sequence as number; });
  assert.equal(new Set(cs).size, 20);
  assert.ok(Math.min(...cs) > seqs.at(-1)!);
  // A binary event with ce-* headers but a CloudEvents JSON content type is refused, not guessed at.
  const mixed = await send(hub, 'POST', '/v1/messages', { key: sender.key, headers: ceHeaders({ id: 'mixed', source: 'MDP-A' }, STRUCTURED), body: '{}' });
  assertProblem(mixed, 400, 'invalid-event');
});
