// /v1/admin: participants, keys, routes, the meter registry, and the routing they drive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_KEY, startTestHub, eventually, type TestHub } from '../support/hub.ts';
import { startReceiver } from '../support/receiver.ts';
import { assertProblem, envelope, inject, send, sleep, STRUCTURED } from './helpers.ts';

const JSON_CT = { 'content-type': 'application/json' };
const CSV_CT = { 'content-type': 'text/csv' };

function putParticipant(hub: TestHub, id: string, body: unknown) {
  return inject(hub, 'PUT', `/v1/admin/participants/${id}`, { key: ADMIN_KEY, headers: JSON_CT, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

async function newKey(hub: TestHub, id: string): Promise<{ id: string; key: string }> {
  const r = await inject(hub, 'POST', `/v1/admin/participants/${id}/keys`, { key: ADMIN_KEY });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

function postEvent(hub: TestHub, key: string, attrs: Record<string, unknown>, data = '{}') {
  return inject(hub, 'POST', '/v1/messages', { key, headers: { 'content-type': STRUCTURED }, body: envelope(attrs, data) });
}

test('participants: PUT creates (201) and replaces (200), GET, list, DELETE (then 404), PUT again restores', async (t) => {
  const hub = await startTestHub({}, { listen: false });
  t.after(() => hub.close());
  const created = await putParticipant(hub, 'RETAILER-A', { name: 'Retailer A', receiver: { mode: 'pull', visibilityTimeoutSeconds: 60 } });
  assert.equal(created.status, 201, created.text);
  assert.equal(created.json.id, 'RETAILER-A');
  assert.equal(created.json.name, 'Retailer A');
  assert.equal(created.json.receiver.mode, 'pull');
  assert.equal(created.json.receiver.visibilityTimeoutSeconds, 60);
  assert.equal(created.json.receiver.maxReceives, 10, 'defaults are filled in');
  assert.ok(!Number.isNaN(Date.parse(created.json.createdAt)));

  const replaced = await putParticipant(hub, 'RETAILER-A', { name: 'Retailer A Ltd' });
  assert.equal(replaced.status, 200, replaced.text);
  assert.equal(replaced.json.name, 'Retailer A Ltd');
  assert.equal(replaced.json.receiver, null, 'replace means replace: no receiver now');
  assert.equal(replaced.json.createdAt, created.json.createdAt);

  assert.equal((await putParticipant(hub, 'MDP-1', { name: 'MDP 1' })).status, 201);
  const got = await inject(hub, 'GET', '/v1/admin/participants/RETAILER-A', { key: ADMIN_KEY });
  assert.equal(got.status, 200);
  assert.deepEqual(got.json, replaced.json);
  const list = await inject(hub, 'GET', '/v1/admin/participants', { key: ADMIN_KEY });
  assert.deepEqual(list.json.participants.map((p: any) => p.id), ['MDP-1', 'RETAILER-A']);

  const key = await newKey(hub, 'RETAILER-A');
  const del = await inject(hub, 'DELETE', '/v1/admin/participants/RETAILER-A', { key: ADMIN_KEY });
  assert.equal(del.status, 204);
  assertProblem(await inject(hub, 'GET', '/v1/admin/participants/RETAILER-A', { key: ADMIN_KEY }), 404, 'not-found');
  assertProblem(await inject(hub, 'DELETE', '/v1/admin/participants/RETAILER-A', { key: ADMIN_KEY }), 404, 'not-found');
  assertProblem(await inject(hub, 'GET', '/v1/admin/participants/RETAILER-A/keys', { key: ADMIN_KEY }), 404, 'not-found');
  assert.deepEqual((await inject(hub, 'GET', '/v1/admin/participants', { key: ADMIN_KEY })).json.participants.map((p: any) => p.id), ['MDP-1']);
  // Its keys died with it.
  assertProblem(await inject(hub, 'GET', '/v1/messages/1', { key: key.key }), 401, 'unauthorized');
  // PUT again: a new participant (201), the old keys still revoked.
  assert.equal((await putParticipant(hub, 'RETAILER-A', { name: 'Back' })).status, 201);
  assertProblem(await inject(hub, 'GET', '/v1/messages/1', { key: key.key }), 401, 'unauthorized');
  assertProblem(await inject(hub, 'GET', '/v1/admin/participants/NOBODY', { key: ADMIN_KEY }), 404, 'not-found');
});

test('a push receiver without a secret gets a whsec_ secret in the PUT answer, never shown again', async (t) => {
  const hub = await startTestHub({}, { listen: false });
  t.after(() => hub.close());
  const put = await putParticipant(hub, 'PUSHER', { name: 'Pusher', receiver: { mode: 'push', url: 'http://127.0.0.1:9/hook' } });
  assert.equal(put.status, 201, put.text);
  assert.match(put.json.secret, /^whsec_[A-Za-z0-9+/=]{24,}$/);
  assert.equal(put.json.receiver.url, 'http://127.0.0.1:9/hook');
  assert.equal(put.json.receiver.secret, undefined);
  assert.equal(put.json.receiver.secrets, undefined);
  const got = await inject(hub, 'GET', '/v1/admin/participants/PUSHER', { key: ADMIN_KEY });
  assert.ok(!got.text.includes(put.json.secret.slice(6)), 'GET does not show the secret');
  assert.ok(!(await inject(hub, 'GET', '/v1/admin/participants', { key: ADMIN_KEY })).text.includes(put.json.secret.slice(6)));
  // Replacing the settings without a secret keeps the secret (receivers keep verifying).
  const again = await putParticipant(hub, 'PUSHER', { name: 'Pusher', receiver: { mode: 'push', url: 'http://127.0.0.1:9/other', timeoutMs: 2000 } });
  assert.equal(again.status, 200);
  assert.equal(again.json.secret, put.json.secret);
  // A given secret is used as given.
  const given = 'whsec_' + Buffer.alloc(32, 7).toString('base64');
  const withSecret = await putParticipant(hub, 'PUSHER-2', { name: 'P2', receiver: { mode: 'push', url: 'http://127.0.0.1:9/hook', secret: given } });
  assert.equal(withSecret.status, 201);
  assert.equal(withSecret.json.secret ?? given, given);
  // Pull receivers and senders get none.
  assert.equal((await putParticipant(hub, 'PULLER', { name: 'x', receiver: { mode: 'pull' } })).json.secret, undefined);
  assert.equal((await putParticipant(hub, 'SENDER', { name: 'x' })).json.secret, undefined);
});

test('invalid participant bodies answer 400 problems that name the field', async (t) => {
  const hub = await startTestHub({}, { listen: false });
  t.after(() => hub.close());
  const cases: Array<[unknown, RegExp]> = [
    [{}, /name/],
    [{ name: '' }, /name/],
    [{ name: 'x', receiver: { mode: 'push' } }, /receiver\.url/],
    [{ name: 'x', receiver: { mode: 'push', url: 'ftp://example.com/x' } }, /receiver\.url/],
    [{ name: 'x', receiver: { mode: 'fax' } }, /receiver\.mode/],
    [{ name: 'x', receiver: { mode: 'pull', visibilityTimeoutSeconds: 0 } }, /receiver\.visibilityTimeoutSeconds/],
    [{ name: 'x', receiver: { mode: 'push', url: 'http://127.0.0.1:9/', timeoutMs: 'soon' } }, /receiver\.timeoutMs/],
    [{ name: 'x', receiver: { mode: 'push', url: 'http://127.0.0.1:9/', secret: 'hunter2' } }, /receiver\.secret/],
    [{ name: 'x', receiver: { mode: 'push', url: 'http://127.0.0.1:9/', retry: { maxAttempts: 0 } } }, /receiver\.retry\.maxAttempts/],
    [{ name: 'x', receiver: { mode: 'pull', ordering: 'random' } }, /receiver\.ordering/],
    [{ name: 'x', colour: 'blue' }, /colour/],
    [[], /root|expected object/],
    ['"just a string"', /root|expected object/],
  ];
  for (const [body, field] of cases) {
    const p = assertProblem(await putParticipant(hub, 'P1', body), 400, 'invalid-config');
    assert.match(p.detail, field, `${JSON.stringify(body)} → ${p.detail}`);
  }
  assertProblem(await putParticipant(hub, 'P1', '{"name": '), 400, 'malformed-json');
  assertProblem(await putParticipant(hub, 'bad id!', { name: 'x' }), 400);
  assertProblem(await putParticipant(hub, '-dash-first', { name: 'x' }), 400);
  assertProblem(await inject(hub, 'PUT', '/v1/admin/participants/P1', { key: ADMIN_KEY, headers: { 'content-type': 'application/xml' }, body: '<p/>' }), 415, 'unsupported-media-type');
  // Nothing was created by the refused bodies.
  assert.deepEqual((await inject(hub, 'GET', '/v1/admin/participants', { key: ADMIN_KEY })).json.participants, []);
});

test('a push URL on a loopback or private address is refused (422 unsafe-target) unless the operator allows it', async (t) => {
  const hub = await startTestHub({ allowPrivateTargets: false }, { listen: false });
  t.after(() => hub.close());
  for (const url of ['http://127.0.0.1:8080/hook', 'http://10.1.2.3/hook', 'http://169.254.169.254/latest/meta-data', 'http://[::1]/hook']) {
    const p = assertProblem(await putParticipant(hub, 'PUSHER', { name: 'x', receiver: { mode: 'push', url } }), 422, 'unsafe-target');
    assert.ok(p.detail.length > 0);
  }
  assertProblem(await inject(hub, 'GET', '/v1/admin/participants/PUSHER', { key: ADMIN_KEY }), 404, 'not-found');
});

test('keys: created with 201 and shown once, listed by id without the key, revoked', async (t) => {
  const hub = await startTestHub({}, { listen: false });
  t.after(() => hub.close());
  assert.equal((await putParticipant(hub, 'MDP-A', { name: 'A' })).status, 201);
  await putParticipant(hub, 'R', { name: 'R', receiver: { mode: 'pull' } });
  const k1 = await newKey(hub, 'MDP-A');
  const k2 = await newKey(hub, 'MDP-A');
  for (const k of [k1, k2]) {
    assert.deepEqual(Object.keys(k).sort(), ['id', 'key']);
    assert.ok(k.key.length >= 32, 'at least 128 random bits');
  }
  assert.notEqual(k1.key, k2.key);
  const listed = await inject(hub, 'GET', '/v1/admin/participants/MDP-A/keys', { key: ADMIN_KEY });
  assert.equal(listed.status, 200);
  assert.deepEqual(listed.json.keys.map((k: any) => k.id).sort(), [k1.id, k2.id].sort());
  for (const k of listed.json.keys) {
    assert.equal(k.key, undefined);
    assert.equal(k.hash, undefined);
    assert.equal(k.revokedAt, null);
  }
  assert.ok(!listed.text.includes(k1.key) && !listed.text.includes(k2.key.slice(-20)));

  // Both work (rotation); revoke one, it stops at once, the other goes on.
  await inject(hub, 'PUT', '/v1/admin/routes', { key: ADMIN_KEY, headers: JSON_CT, body: JSON.stringify([{ name: 'all', match: {}, to: { participants: ['R'] } }]) });
  assert.equal((await postEvent(hub, k1.key, { id: 'k-1', source: 'MDP-A' })).status, 202);
  assert.equal((await postEvent(hub, k2.key, { id: 'k-2', source: 'MDP-A' })).status, 202);
  assert.equal((await inject(hub, 'DELETE', `/v1/admin/participants/MDP-A/keys/${k1.id}`, { key: ADMIN_KEY })).status, 204);
  assertProblem(await postEvent(hub, k1.key, { id: 'k-3', source: 'MDP-A' }), 401, 'unauthorized');
  assert.equal((await postEvent(hub, k2.key, { id: 'k-4', source: 'MDP-A' })).status, 202);
  const after = await inject(hub, 'GET', '/v1/admin/participants/MDP-A/keys', { key: ADMIN_KEY });
  const revoked = after.json.keys.find((k: any) => k.id === k1.id);
  assert.ok(revoked.revokedAt && !Number.isNaN(Date.parse(revoked.revokedAt)));
  assert.equal(after.json.keys.find((k: any) => k.id === k2.id).revokedAt, null);
  assertProblem(await inject(hub, 'DELETE', `/v1/admin/participants/MDP-A/keys/${k1.id}`, { key: ADMIN_KEY }), 404, 'not-found');
  assertProblem(await inject(hub, 'DELETE', '/v1/admin/participants/MDP-A/keys/nope', { key: ADMIN_KEY }), 404, 'not-found');
  assertProblem(await inject(hub, 'POST', '/v1/admin/participants/NOBODY/keys', { key: ADMIN_KEY }), 404, 'not-found');

  // Admin keys: made, used, revoked.
  const adm = await inject(hub, 'POST', '/v1/admin/keys', { key: ADMIN_KEY });
  assert.equal(adm.status, 201);
  assert.equal((await inject(hub, 'GET', '/v1/admin/participants', { key: adm.json.key })).status, 200);
  assertProblem(await postEvent(hub, adm.json.key, { id: 'k-5', source: 'MDP-A' }), 403, 'forbidden');
  assert.equal((await inject(hub, 'DELETE', `/v1/admin/keys/${adm.json.id}`, { key: ADMIN_KEY })).status, 204);
  assertProblem(await inject(hub, 'GET', '/v1/admin/participants', { key: adm.json.key }), 401, 'unauthorized');
});

test('routes: PUT/GET round trip with exact, any-of, prefix and extension matchers, and they route as written', async (t) => {
  const hub = await startTestHub({}, { listen: false });
  t.after(() => hub.close());
  const a = await (async () => { await putParticipant(hub, 'MDP-A', { name: 'A' }); return newKey(hub, 'MDP-A'); })();
  for (const id of ['R1', 'R2', 'R3']) await putParticipant(hub, id, { name: id, receiver: { mode: 'pull' } });
  const rules = [
    { name: 'nmi-prefix', match: { subject: { prefix: 'NCDE' } }, to: { participants: ['R1'] } },
    { name: 'types', match: { type: ['au.nem12', 'au.nem13'], source: 'MDP-A' }, to: { participants: ['R2'] } },
    { name: 'ext', match: { extensions: { region: ['nsw', 'vic'] } }, to: { participants: ['R3'] } },
    { name: 'roles', match: { type: 'never' }, to: { roles: ['FRMP', 'LNSP'], participants: ['R1'] }, validateSubject: 'nmi' },
  ];
  const put = await inject(hub, 'PUT', '/v1/admin/routes', { key: ADMIN_KEY, headers: JSON_CT, body: JSON.stringify(rules) });
  assert.equal(put.status, 200, put.text);
  assert.ok(Number.isInteger(put.json.version) && put.json.version >= 1);
  const got = await inject(hub, 'GET', '/v1/admin/routes', { key: ADMIN_KEY });
  assert.equal(got.status, 200);
  assert.deepEqual(got.json, rules);

  const route = async (id: string, attrs: Record<string, unknown>) => {
    const r = await postEvent(hub, a.key, { id, source: 'MDP-A', ...attrs });
    return r.status === 202 ? r.json.receivers : r.status;
  };
  assert.deepEqual(await route('m1', { subject: 'NCDE001111', type: 'x' }), ['R1']);
  assert.deepEqual(await route('m2', { subject: 'XNCDE', type: 'au.nem13' }), ['R2']);
  assert.deepEqual(await route('m3', { subject: 'NCDE001111', type: 'au.nem12' }), ['R1', 'R2'], 'the union of the matching rules');
  assert.deepEqual(await route('m4', { subject: 'Q', type: 'x', region: 'vic' }), ['R3']);
  assert.equal(await route('m5', { subject: 'Q', type: 'au.nem14', region: 'qld' }), 422);
  assert.equal(await route('m6', { subject: 'ncde001111', type: 'x' }), 422, 'prefixes are case-sensitive');

  // A second PUT replaces the list and bumps the version.
  const put2 = await inject(hub, 'PUT', '/v1/admin/routes', { key: ADMIN_KEY, headers: JSON_CT, body: JSON.stringify([{ name: 'only', to: { participants: ['R3'] } }]) });
  assert.equal(put2.status, 200);
  assert.ok(put2.json.version > put.json.version);
  assert.deepEqual((await inject(hub, 'GET', '/v1/admin/routes', { key: ADMIN_KEY })).json, [{ name: 'only', match: {}, to: { participants: ['R3'] } }]);
  assert.deepEqual(await route('m7', { subject: 'NCDE001111' }), ['R3']);
});

test('routes: invalid lists are refused with 400 naming the problem, and the old list stays', async (t) => {
  const hub = await startTestHub({}, { listen: false });
  t.after(() => hub.close());
  const good = [{ name: 'r', match: {}, to: { participants: ['X'] } }];
  assert.equal((await inject(hub, 'PUT', '/v1/admin/routes', { key: ADMIN_KEY, headers: JSON_CT, body: JSON.stringify(good) })).status, 200);
  const cases: Array<[unknown, RegExp]> = [
    [[{ name: 'a', to: { participants: ['X'] } }, { name: 'a', to: { participants: ['Y'] } }], /duplicate rule name 'a'/],
    [[{ name: 'a', to: {} }], /participant or role/],
    [[{ name: 'a', to: { participants: [] } }], /participant or role/],
    [[{ name: 'a' }], /to/],
    [[{ to: { participants: ['X'] } }], /name/],
    [[{ name: 'a', match: { subject: '' }, to: { participants: ['X'] } }], /match\.subject/],
    [[{ name: 'a', match: { subject: { startsWith: 'N' } }, to: { participants: ['X'] } }], /match\.subject/],
    [[{ name: 'a', match: { colour: 'red' }, to: { participants: ['X'] } }], /colour/],
    [[{ name: 'a', to: { participants: ['X'] }, validateSubject: 'iban' }], /validateSubject/],
    [{ name: 'not a list' }, /expected array/],
  ];
  for (const [body, why] of cases) {
    const p = assertProblem(await inject(hub, 'PUT', '/v1/admin/routes', { key: ADMIN_KEY, headers: JSON_CT, body: JSON.stringify(body) }), 400, 'invalid-config');
    assert.match(p.detail, why, `${JSON.stringify(body)} → ${p.detail}`);
  }
  assertProblem(await inject(hub, 'PUT', '/v1/admin/routes', { key: ADMIN_KEY, headers: JSON_CT, body: '[{' }), 400, 'malformed-json');
  assert.deepEqual((await inject(hub, 'GET', '/v1/admin/routes', { key: ADMIN_KEY })).json, good);
});

test('meters: CSV import counts rows, refuses a bad row with its line number, checks header and dates; GET shows roles', async (t) => {
  const hub = await startTestHub({}, { listen: false });
  t.after(() => hub.close());
  const importCsv = (csv: string | Buffer, headers: Record<string, string> = CSV_CT) => inject(hub, 'POST', '/v1/admin/meters', { key: ADMIN_KEY, headers, body: csv });

  const ok = await importCsv('\uFEFFmeter,role,participant,validFrom,validTo\r\nNCDE001111,FRMP,RETAILER-A,2024-01-01,2025-01-01\r\n\r\nNCDE001111,frmp,RETAILER-B,2025-01-01,\r\nNCDE001111,LNSP,LNSP-X\r\nQB00000001,MDP,MDP-Y,2024-06-01T12:00:00+10:00,\r\n');
  assert.equal(ok.status, 200, ok.text);
  assert.deepEqual(ok.json, { imported: 4 });
  const m = await inject(hub, 'GET', '/v1/admin/meters/NCDE001111', { key: ADMIN_KEY });
  assert.equal(m.status, 200);
  assert.equal(m.json.meter, 'NCDE001111');
  assert.deepEqual(m.json.roles, [
    { role: 'FRMP', participant: 'RETAILER-A', validFrom: '2024-01-01T00:00:00.000Z', validTo: '2025-01-01T00:00:00.000Z' },
    { role: 'FRMP', participant: 'RETAILER-B', validFrom: '2025-01-01T00:00:00.000Z', validTo: null },
    { role: 'LNSP', participant: 'LNSP-X', validFrom: null, validTo: null },
  ]);
  const q = await inject(hub, 'GET', '/v1/admin/meters/QB00000001', { key: ADMIN_KEY });
  assert.equal(q.json.roles[0].validFrom, '2024-06-01T02:00:00.000Z', 'offsets are honoured');
  assertProblem(await inject(hub, 'GET', '/v1/admin/meters/NOSUCH', { key: ADMIN_KEY }), 404, 'not-found');

  // Importing again updates (same meter, role and validFrom): idempotent upsert.
  assert.deepEqual((await importCsv('meter,role,participant,validFrom,validTo\nNCDE001111,FRMP,RETAILER-C,2024-01-01,2025-01-01\n')).json, { imported: 1 });
  assert.equal((await inject(hub, 'GET', '/v1/admin/meters/NCDE001111', { key: ADMIN_KEY })).json.roles[0].participant, 'RETAILER-C');

  // A bad row: 400 with its line number (in detail and as `line`); nothing of the file is imported.
  const bad = await importCsv('meter,role,participant,validFrom,validTo\nM-OK,FRMP,R1,,\nM-BAD,FR MP,R1,,\nM-AFTER,FRMP,R1,,\n');
  const p = assertProblem(bad, 400, 'invalid-csv');
  assert.equal(p.line, 3);
  assert.match(p.detail, /line 3/);
  assertProblem(await inject(hub, 'GET', '/v1/admin/meters/M-OK', { key: ADMIN_KEY }), 404, 'not-found');
  assertProblem(await inject(hub, 'GET', '/v1/admin/meters/M-AFTER', { key: ADMIN_KEY }), 404, 'not-found');

  const rows: Array<[string, number, RegExp]> = [
    ['meter,role,participant,validFrom,validTo\nM1,FRMP,R1,2024-13-01,\n', 2, /validFrom/],
    ['meter,role,participant,validFrom,validTo\nM1,FRMP,R1,,tomorrow\n', 2, /validTo/],
    ['meter,role,participant,validFrom,validTo\nM1,FRMP,R1,2024-02-01,2024-01-01\n', 2, /after validFrom/],
    ['meter,role,participant,validFrom,validTo\nM1,FRMP,R1,2024-01-01,2024-01-01\n', 2, /after validFrom/],
    ['meter,role,participant,validFrom,validTo\nM1,FRMP\n', 2, /columns/],
    ['meter,role,participant,validFrom,validTo\nM1,FRMP,R1,,,extra\n', 2, /columns/],
    ['meter,role,participant,validFrom,validTo\n\n\nM1,FRMP,bad participant,,\n', 4, /participant/],
    ['meter,role,participant\nM1,FRMP,R1\nM 2,FRMP,R1\n', 3, /meter/],
    ['participant,role,meter,validFrom,validTo\nR1,FRMP,M1,,\n', 1, /header/],
    ['meter;role;participant\nM1;FRMP;R1\n', 1, /header/],
    ['M1,FRMP,R1,,\n', 1, /header/],
    ['', 1, /empty|header/],
  ];
  for (const [csv, line, why] of rows) {
    const r = csv === '' ? await importCsv(Buffer.alloc(0)) : await importCsv(csv);
    const prob = assertProblem(r, 400);
    assert.equal(prob.line, line, `${JSON.stringify(csv)} → ${prob.detail}`);
    assert.match(prob.detail, why);
  }
  assertProblem(await importCsv('meter,role,participant\n', { 'content-type': 'application/json' }), 400);
  assertProblem(await importCsv('meter,role,participant\n', { 'content-type': 'text/plain' }), 415, 'unsupported-media-type');
});

test('effective-dated routing: the FRMP at the message time (or at receipt, without time) receives it', async (t) => {
  const hub = await startTestHub({}, { listen: false });
  t.after(() => hub.close());
  await putParticipant(hub, 'MDP-A', { name: 'A' });
  const a = await newKey(hub, 'MDP-A');
  for (const id of ['RETAILER-OLD', 'RETAILER-NEW', 'LNSP-X']) await putParticipant(hub, id, { name: id, receiver: { mode: 'pull' } });
  // RETAILER-OLD was FRMP until yesterday; RETAILER-NEW from then on, open-ended.
  const switchAt = new Date(Date.now() - 86_400_000);
  switchAt.setUTCMilliseconds(0);
  const sw = switchAt.toISOString();
  const csv = `meter,role,participant,validFrom,validTo\nNCDE001111,FRMP,RETAILER-OLD,2020-01-01,${sw}\nNCDE001111,FRMP,RETAILER-NEW,${sw},\nNCDE001111,LNSP,LNSP-X,,\n`;
  assert.deepEqual((await inject(hub, 'POST', '/v1/admin/meters', { key: ADMIN_KEY, headers: CSV_CT, body: csv })).json, { imported: 3 });
  await inject(hub, 'PUT', '/v1/admin/routes', { key: ADMIN_KEY, headers: JSON_CT, body: JSON.stringify([{ name: 'frmp', match: { type: 'reading' }, to: { roles: ['FRMP'] } }, { name: 'both', match: { type: 'both' }, to: { roles: ['FRMP', 'LNSP'] } }]) });

  const receivers = async (id: string, attrs: Record<string, unknown>) => {
    const r = await postEvent(hub, a.key, { id, source: 'MDP-A', subject: 'NCDE001111', type: 'reading', ...attrs });
    return r.status === 202 ? r.json.receivers : r.status;
  };
  assert.deepEqual(await receivers('t-2021', { time: '2021-06-01T00:00:00Z' }), ['RETAILER-OLD']);
  assert.deepEqual(await receivers('t-before-switch', { time: new Date(switchAt.getTime() - 1000).toISOString() }), ['RETAILER-OLD']);
  assert.deepEqual(await receivers('t-at-switch', { time: sw }), ['RETAILER-NEW'], 'validFrom is inclusive, validTo exclusive');
  assert.deepEqual(await receivers('t-future', { time: '2099-01-01T00:00:00Z' }), ['RETAILER-NEW']);
  // An offset is an instant like any other: 1 s before the switch, written in +10:00.
  const before = new Date(switchAt.getTime() - 1000 + 10 * 3600_000).toISOString().replace('.000Z', '+10:00');
  assert.deepEqual(await receivers('t-offset', { time: before }), ['RETAILER-OLD']);
  assert.equal(await receivers('t-2019', { time: '2019-06-01T00:00:00Z' }), 422, 'no FRMP then: no route');
  // Without time: the receipt time (now) decides, so the new retailer.
  assert.deepEqual(await receivers('t-none', {}), ['RETAILER-NEW']);
  assert.deepEqual(await receivers('t-both', { type: 'both', time: '2021-06-01T00:00:00Z' }), ['LNSP-X', 'RETAILER-OLD']);
  // The message view keeps the time it was routed by.
  const seq = (await postEvent(hub, a.key, { id: 't-view', source: 'MDP-A', subject: 'NCDE001111', type: 'reading', time: '2021-06-01T10:00:00+02:00' })).json.sequence;
  const view = await inject(hub, 'GET', `/v1/messages/${seq}`, { key: a.key });
  assert.equal(view.json.time, '2021-06-01T10:00:00+02:00');
  assert.deepEqual(view.json.deliveries.map((d: any) => d.receiver), ['RETAILER-OLD']);
});

test('a deleted participant named in a rule or the registry is no longer routed to', async (t) => {
  const hub = await startTestHub({}, { listen: false });
  t.after(() => hub.close());
  await putParticipant(hub, 'MDP-A', { name: 'A' });
  const a = await newKey(hub, 'MDP-A');
  for (const id of ['R1', 'GONE', 'GONE-FRMP']) await putParticipant(hub, id, { name: id, receiver: { mode: 'pull' } });
  await inject(hub, 'POST', '/v1/admin/meters', { key: ADMIN_KEY, headers: CSV_CT, body: 'meter,role,participant\nM1,FRMP,GONE-FRMP\n' });
  await inject(hub, 'PUT', '/v1/admin/routes', { key: ADMIN_KEY, headers: JSON_CT, body: JSON.stringify([
    { name: 'named', match: { type: 'named' }, to: { participants: ['R1', 'GONE'] } },
    { name: 'only-gone', match: { type: 'only-gone' }, to: { participants: ['GONE'] } },
    { name: 'role', match: { type: 'role' }, to: { roles: ['FRMP'], participants: ['R1'] } },
  ]) });
  const ev = (id: string, type: string) => postEvent(hub, a.key, { id, source: 'MDP-A', subject: 'M1', type });
  assert.deepEqual((await ev('before', 'named')).json.receivers, ['GONE', 'R1']);
  assert.deepEqual((await ev('before-role', 'role')).json.receivers, ['GONE-FRMP', 'R1']);
  for (const id of ['GONE', 'GONE-FRMP']) assert.equal((await inject(hub, 'DELETE', `/v1/admin/participants/${id}`, { key: ADMIN_KEY })).status, 204);
  assert.deepEqual((await ev('after', 'named')).json.receivers, ['R1']);
  assert.deepEqual((await ev('after-role', 'role')).json.receivers, ['R1']);
  assertProblem(await ev('after-only', 'only-gone'), 422, 'no-route');
  // The message accepted before the delete keeps its delivery to the deleted participant.
  const first = await inject(hub, 'GET', '/v1/messages/1', { key: a.key });
  assert.deepEqual(first.json.deliveries.map((d: any) => d.receiver), ['GONE', 'R1']);
});

test('deleting a participant never drops deliveries already accepted for it: they still show, and a push one is delivered', async (t) => {
  const hub = await startTestHub();
  const receiver = await startReceiver((_r, res, n) => { res.statusCode = n === 1 ? 503 : 204; res.end(); });
  t.after(async () => { await hub.close(); await receiver.close(); });
  const a = await hub.participant('MDP-A');
  await hub.participant('PUSHED', { mode: 'push', url: receiver.url, retry: { initialDelayMs: 300, maxDelayMs: 300 } });
  await hub.participant('PULLED', { mode: 'pull' });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['PUSHED', 'PULLED'] } }]);
  const res = await send(hub, 'POST', '/v1/messages', { key: a.key, headers: { 'content-type': STRUCTURED }, body: envelope({ id: 'del-1', source: 'MDP-A' }, '{"v":1}') });
  assert.equal(res.status, 202, res.text);
  const seq = res.json.sequence;
  await eventually(() => receiver.requests.length >= 1, 5000, 'the first (failing) push');

  // Both receivers are deleted while their deliveries are outstanding.
  for (const id of ['PUSHED', 'PULLED']) assert.equal((await hub.api('DELETE', `/v1/admin/participants/${id}`)).status, 204);
  const view = await hub.api('GET', `/v1/messages/${seq}`, { key: a.key });
  assert.deepEqual(view.json.deliveries.map((d: any) => d.receiver).sort(), ['PULLED', 'PUSHED']);

  // The push delivery is retried and delivered to the deleted participant's last URL.
  const done = await eventually(async () => {
    const s = await hub.api('GET', `/v1/messages/${seq}`, { key: a.key });
    const d = s.json.deliveries.find((x: any) => x.receiver === 'PUSHED');
    return d.state === 'delivered' ? d : null;
  }, 8000, 'delivered after the delete');
  assert.equal(done.attempts, 2);
  assert.equal(receiver.requests.length, 2);
  assert.equal(receiver.requests[1]!.body.toString(), '{"v":1}');
  const pulled = (await hub.api('GET', `/v1/messages/${seq}`, { key: a.key })).json.deliveries.find((x: any) => x.receiver === 'PULLED');
  assert.notEqual(pulled, undefined, 'the pull delivery is still there');
  await sleep(100);
  const admin = await hub.api('GET', `/v1/messages/${seq}/attempts`);
  assert.ok(admin.json.attempts.filter((x: any) => x.receiver === 'PUSHED').length >= 2);
});
