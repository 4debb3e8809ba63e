/**
 * POST /v1/admin/meters at size: every row is checked before any is applied (a bad row late in
 * the file leaves the registry as it was), a second import updates in place, and with
 * `Accept: application/x-ndjson` the answer streams progress lines before `{"imported": n}`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { ADMIN_KEY, startTestHub } from '../support/hub.ts';

const HEADER = 'meter,role,participant,validFrom,validTo';

function csv(rows: number, row: (i: number) => string): string {
  const lines = [HEADER];
  for (let i = 0; i < rows; i++) lines.push(row(i));
  return `${lines.join('\n')}\n`;
}

const meter = (i: number) => `QB${String(i).padStart(8, '0')}`;

async function post(url: string, body: string, accept?: string) {
  const res = await request(`${url}/v1/admin/meters`, {
    method: 'POST', body,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'text/csv', ...(accept ? { accept } : {}) },
  });
  const text = await res.body.text();
  return { status: res.statusCode, type: String(res.headers['content-type'] ?? ''), text };
}

test('a bad row at line 30,002 refuses the whole file: nothing imported, nothing spooled left behind', async (t) => {
  const hub = await startTestHub();
  t.after(() => hub.close());
  const body = `${csv(30_000, (i) => `${meter(i)},FRMP,RETAILER-A,2024-01-01,`)}${meter(30_000)},FRMP,not a participant,,\n${meter(30_001)},FRMP,RETAILER-A,,\n`;
  for (const accept of [undefined, 'application/x-ndjson']) {
    const r = await post(hub.url, body, accept);
    assert.equal(r.status, 400, r.text);
    const problem = JSON.parse(r.text);
    assert.equal(problem.code, 'invalid-csv');
    assert.equal(problem.line, 30_002);
    assert.equal(problem.imported, 0);
    assert.match(problem.detail, /^line 30002: participant .*nothing was imported/);
  }
  for (const m of [meter(0), meter(29_999)]) assert.equal((await hub.api('GET', `/v1/admin/meters/${m}`)).status, 404, `${m} is not in the registry`);
  const spool = join(hub.dataDir, 'imports');
  assert.deepEqual(existsSync(spool) ? readdirSync(spool) : [], [], 'the spool file is deleted');
});

test('importing again updates entries in place (same meter, role, validFrom) and adds the new ones', async (t) => {
  const hub = await startTestHub();
  t.after(() => hub.close());
  const first = await post(hub.url, csv(10_000, (i) => `${meter(i)},FRMP,RETAILER-A,2024-01-01,`));
  assert.deepEqual(JSON.parse(first.text), { imported: 10_000 });
  // The same keys, a new FRMP and an end date for the even meters; and 10 more meters.
  const second = await post(hub.url, csv(10_010, (i) => `${meter(i)},frmp,${i % 2 === 0 ? 'RETAILER-B' : 'RETAILER-A'},2024-01-01,${i % 2 === 0 ? '2025-01-01' : ''}`));
  assert.deepEqual(JSON.parse(second.text), { imported: 10_010 });
  const roles = async (i: number) => (await hub.api('GET', `/v1/admin/meters/${meter(i)}`)).json.roles;
  assert.deepEqual(await roles(0), [{ role: 'FRMP', participant: 'RETAILER-B', validFrom: '2024-01-01T00:00:00.000Z', validTo: '2025-01-01T00:00:00.000Z' }]);
  assert.deepEqual(await roles(9_999), [{ role: 'FRMP', participant: 'RETAILER-A', validFrom: '2024-01-01T00:00:00.000Z', validTo: null }]);
  assert.equal((await roles(10_009)).length, 1);
  const total = await hub.hub.store.getMeterEntries(meter(4_000), null);
  assert.equal(total.length, 1, 'updated, not added');
});

test('Accept: application/x-ndjson streams progress lines, then {"imported": n}; without it the answer is plain JSON', async (t) => {
  const hub = await startTestHub();
  t.after(() => hub.close());
  const rows = 50_000;
  const body = csv(rows, (i) => `${meter(i)},LNSP,LNSP-X,,`);
  const r = await post(hub.url, body, 'application/x-ndjson');
  assert.equal(r.status, 200, r.text);
  assert.match(r.type, /^application\/x-ndjson/);
  const lines = r.text.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.at(-1), { imported: rows });
  const progress = lines.slice(0, -1);
  assert.ok(progress.length >= 1, r.text);
  let last = -1;
  for (const p of progress) {
    assert.equal(p.progress.rows, rows);
    assert.ok(p.progress.imported >= last && p.progress.imported <= rows, JSON.stringify(p));
    last = p.progress.imported;
  }
  const plain = await post(hub.url, body);
  assert.match(plain.type, /^application\/json/);
  assert.deepEqual(JSON.parse(plain.text), { imported: rows });
});

test('a bad row early in a large upload is answered at once (400, connection closed), not after the whole file', async (t) => {
  const hub = await startTestHub();
  t.after(() => hub.close());
  let sent = 0;
  async function* upload() {
    yield Buffer.from(`${HEADER}\nBAD ROW,,\n`);
    for (let i = 0; i < 2_000; i++) {
      const block = Buffer.from(csv(1_000, (j) => `${meter(i * 1_000 + j)},FRMP,RETAILER-A,,`).slice(HEADER.length + 1));
      sent += block.length;
      yield block;
    }
  }
  const res = await request(`${hub.url}/v1/admin/meters`, {
    method: 'POST', body: Readable.from(upload()),
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'text/csv' },
  });
  const problem = JSON.parse(await res.body.text());
  assert.equal(res.statusCode, 400);
  assert.equal(problem.line, 2);
  assert.equal(res.headers.connection, 'close');
  assert.ok(sent < 60 * 1024 * 1024, `answered before the 80 MB upload ended (${sent} bytes sent)`);
});
