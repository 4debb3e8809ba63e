// Invariant 7: a participant sees only the messages it sent and the deliveries routed to it;
// anything else answers 404, exactly as if it did not exist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_KEY, startTestHub, type TestHub } from '../support/hub.ts';
import { assertProblem, envelope, inject, injectParticipant, injectRoutes, send, STRUCTURED } from './helpers.ts';

interface World {
  hub: TestHub;
  keys: Record<'A' | 'R1' | 'R2' | 'U', string>;
  seq: number;
  data: string;
}

/** Sender A, pull receivers R1 and R2, an unrelated participant U (itself a sender and receiver of other traffic). */
async function world(listen: boolean): Promise<World> {
  const hub = await startTestHub({}, { listen });
  const mk = listen
    ? async (id: string, r: Record<string, unknown> | null) => (await hub.participant(id, r)).key
    : async (id: string, r: Record<string, unknown> | null) => (await injectParticipant(hub, id, r)).key;
  const keys = {
    A: await mk('SENDER-A', null),
    R1: await mk('RECV-1', { mode: 'pull' }),
    R2: await mk('RECV-2', { mode: 'pull' }),
    U: await mk('UNRELATED', { mode: 'pull' }),
  };
  const rules = [
    { name: 'a', match: { source: 'SENDER-A' }, to: { participants: ['RECV-1', 'RECV-2'] } },
    { name: 'u', match: { source: 'UNRELATED' }, to: { participants: ['RECV-1'] } },
  ];
  if (listen) await hub.routes(rules); else await injectRoutes(hub, rules);
  const data = '{"secret": "only A, R1 and R2 may read this"}';
  const call = listen ? send : inject;
  const res = await call(hub, 'POST', '/v1/messages', { key: keys.A, headers: { 'content-type': STRUCTURED }, body: envelope({ id: 'iso-1', source: 'SENDER-A' }, data) });
  assert.equal(res.status, 202, res.text);
  // U sends something of its own (so it is not merely a participant with no traffic).
  const own = await call(hub, 'POST', '/v1/messages', { key: keys.U, headers: { 'content-type': STRUCTURED }, body: envelope({ id: 'iso-u', source: 'UNRELATED' }, '{}') });
  assert.equal(own.status, 202, own.text);
  return { hub, keys, seq: res.json.sequence, data };
}

/** A 404 problem with the sequence in the detail and instance made generic: the shape a caller compares. */
function shapeOf(problem: any, seq: string): unknown {
  const re = new RegExp(`(?<![\\w])${seq.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')}(?![\\w])`, 'g');
  const norm = (v: unknown) => (typeof v === 'string' ? v.replace(re, '{seq}') : v);
  return Object.fromEntries(Object.entries(problem).map(([k, v]) => [k, norm(v)]));
}

test('status, attempts and data: the sender sees all deliveries, each receiver only its own, an outsider 404 as for nothing', async (t) => {
  const w = await world(true);
  t.after(() => w.hub.close());
  const { hub, keys, seq } = w;
  // Both receivers lease the message, so each delivery has an attempt.
  const leases: string[] = [];
  for (const k of [keys.R1, keys.R2]) {
    const poll = await send(hub, 'GET', '/v1/inbox?max=10', { key: k });
    assert.equal(poll.status, 200, poll.text);
    const m = poll.json.messages.find((x: any) => x.event.id === 'iso-1');
    assert.ok(m);
    leases.push(m.lease);
  }
  // U's inbox holds nothing of A's; U cannot ack R1's lease.
  const uPoll = await send(hub, 'GET', '/v1/inbox?max=10', { key: keys.U });
  assert.deepEqual(uPoll.json.messages, []);
  const json = { 'content-type': 'application/json' };
  const stolen = await send(hub, 'POST', '/v1/inbox/ack', { key: keys.U, headers: json, body: JSON.stringify({ leases: [leases[0]] }) });
  assert.equal(stolen.status, 200, stolen.text);
  assert.notEqual(stolen.json.results[0].result, 'acked');
  const mine = await send(hub, 'POST', '/v1/inbox/ack', { key: keys.R1, headers: json, body: JSON.stringify({ leases: [leases[0]] }) });
  assert.equal(mine.json.results[0].result, 'acked');

  // A (the sender): all deliveries and all attempts.
  const a = await send(hub, 'GET', `/v1/messages/${seq}`, { key: keys.A });
  assert.equal(a.status, 200);
  assert.deepEqual(a.json.deliveries.map((d: any) => d.receiver).sort(), ['RECV-1', 'RECV-2']);
  const aAttempts = await send(hub, 'GET', `/v1/messages/${seq}/attempts`, { key: keys.A });
  assert.deepEqual([...new Set(aAttempts.json.attempts.map((x: any) => x.receiver))].sort(), ['RECV-1', 'RECV-2']);
  assert.deepEqual(aAttempts.json.attempts.map((x: any) => `${x.receiver}:${x.outcome}`).sort(), ['RECV-1:acked', 'RECV-1:leased', 'RECV-2:leased']);
  const aData = await send(hub, 'GET', `/v1/messages/${seq}/data`, { key: keys.A });
  assert.equal(aData.text, w.data);

  // R1: the message, with only its own delivery and attempts; R2 likewise.
  for (const [k, me, other] of [[keys.R1, 'RECV-1', 'RECV-2'], [keys.R2, 'RECV-2', 'RECV-1']] as const) {
    const r = await send(hub, 'GET', `/v1/messages/${seq}`, { key: k });
    assert.equal(r.status, 200);
    assert.equal(r.json.id, 'iso-1');
    assert.deepEqual(r.json.deliveries.map((d: any) => d.receiver), [me]);
    assert.doesNotMatch(r.text, new RegExp(other), `${me} learns nothing of ${other}`);
    const att = await send(hub, 'GET', `/v1/messages/${seq}/attempts`, { key: k });
    assert.equal(att.status, 200);
    assert.ok(att.json.attempts.length >= 1);
    assert.ok(att.json.attempts.every((x: any) => x.receiver === me));
    const data = await send(hub, 'GET', `/v1/messages/${seq}/data`, { key: k });
    assert.equal(data.status, 200);
    assert.equal(data.text, w.data);
  }

  // U: 404 on all three, the same answer as for a sequence that does not exist.
  const missing = String(seq + 1000);
  for (const suffix of ['', '/attempts', '/data']) {
    const forU = await send(hub, 'GET', `/v1/messages/${seq}${suffix}`, { key: keys.U });
    const pU = assertProblem(forU, 404, 'not-found');
    assert.doesNotMatch(forU.text, /secret|SENDER-A|RECV|iso-1/);
    const none = await send(hub, 'GET', `/v1/messages/${missing}${suffix}`, { key: keys.U });
    const pNone = assertProblem(none, 404, 'not-found');
    assert.deepEqual(shapeOf(pU, String(seq)), shapeOf(pNone, missing), `U's answer for ${suffix || 'the message'} looks like nothing is there`);
    assert.deepEqual(Object.keys(forU.headers).filter((h) => h !== 'date' && h !== 'content-length').sort(), Object.keys(none.headers).filter((h) => h !== 'date' && h !== 'content-length').sort());
  }

  // U's own message: visible to U and R1 (routed), not to A or R2.
  const uSeq = seq + 1;
  assert.equal((await send(hub, 'GET', `/v1/messages/${uSeq}`, { key: keys.U })).status, 200);
  assert.equal((await send(hub, 'GET', `/v1/messages/${uSeq}`, { key: keys.R1 })).status, 200);
  assertProblem(await send(hub, 'GET', `/v1/messages/${uSeq}`, { key: keys.A }), 404, 'not-found');
  assertProblem(await send(hub, 'GET', `/v1/messages/${uSeq}/data`, { key: keys.R2 }), 404, 'not-found');

  // The admin sees everything.
  const adm = await send(hub, 'GET', `/v1/messages/${seq}`, { key: ADMIN_KEY });
  assert.deepEqual(adm.json.deliveries.map((d: any) => d.receiver).sort(), ['RECV-1', 'RECV-2']);
  const admAttempts = await send(hub, 'GET', `/v1/messages/${seq}/attempts`, { key: ADMIN_KEY });
  assert.deepEqual([...new Set(admAttempts.json.attempts.map((x: any) => x.receiver))].sort(), ['RECV-1', 'RECV-2']);
  assert.equal((await send(hub, 'GET', `/v1/messages/${seq}/data`, { key: ADMIN_KEY })).text, w.data);
});

test('an outsider cannot tell an existing sequence from a missing or malformed one (inject)', async (t) => {
  const w = await world(false);
  t.after(() => w.hub.close());
  const { hub, keys, seq } = w;
  const answers = [];
  for (const s of [String(seq), String(seq + 5), '0', 'abc', '00001', '-3', '1.0']) {
    const res = await inject(hub, 'GET', `/v1/messages/${s}`, { key: keys.U });
    const p = assertProblem(res, 404, 'not-found');
    answers.push(shapeOf(p, s));
  }
  for (const a of answers) assert.deepEqual(a, answers[0]);
  // The same holds for a receiver asking about a message routed only to others.
  const other = await inject(hub, 'GET', `/v1/messages/${seq + 1}`, { key: keys.R2 });
  const gone = await inject(hub, 'GET', `/v1/messages/${seq + 50}`, { key: keys.R2 });
  assert.deepEqual(shapeOf(assertProblem(other, 404, 'not-found'), String(seq + 1)), shapeOf(assertProblem(gone, 404, 'not-found'), String(seq + 50)));
});

test('participant keys on /v1/admin/* answer 403; the admin key is allowed', async (t) => {
  const w = await world(false);
  t.after(() => w.hub.close());
  const { hub, keys } = w;
  const json = { 'content-type': 'application/json' };
  const calls: Array<[string, string, Record<string, string>?, string?]> = [
    ['GET', '/v1/admin/participants'],
    ['GET', '/v1/admin/participants/SENDER-A'],
    ['PUT', '/v1/admin/participants/SENDER-A', json, '{"name":"taken over"}'],
    ['DELETE', '/v1/admin/participants/RECV-2'],
    ['GET', '/v1/admin/participants/SENDER-A/keys'],
    ['POST', '/v1/admin/participants/SENDER-A/keys'],
    ['DELETE', '/v1/admin/participants/SENDER-A/keys/whatever'],
    ['POST', '/v1/admin/keys'],
    ['GET', '/v1/admin/routes'],
    ['PUT', '/v1/admin/routes', json, '[]'],
    ['POST', '/v1/admin/meters', { 'content-type': 'text/csv' }, 'meter,role,participant\nM1,FRMP,UNRELATED\n'],
    ['GET', '/v1/admin/meters/M1'],
    ['GET', '/v1/admin/deliveries/summary'],
  ];
  for (const [method, path, headers, body] of calls) {
    for (const k of Object.values(keys)) {
      assertProblem(await inject(hub, method, path, { key: k, headers, body }), 403, 'forbidden');
    }
    assertProblem(await inject(hub, method, path, { headers, body }), 401, 'unauthorized');
  }
  // Nothing was changed by those attempts.
  const a = await inject(hub, 'GET', '/v1/admin/participants/SENDER-A', { key: ADMIN_KEY });
  assert.equal(a.status, 200);
  assert.equal(a.json.name, 'Participant SENDER-A');
  const routes = await inject(hub, 'GET', '/v1/admin/routes', { key: ADMIN_KEY });
  assert.equal(routes.json.length, 2);
  assert.equal((await inject(hub, 'GET', '/v1/admin/participants/RECV-2', { key: ADMIN_KEY })).status, 200);
  assertProblem(await inject(hub, 'GET', '/v1/admin/meters/M1', { key: ADMIN_KEY }), 404, 'not-found');
  // The sender's key still works: the refused admin calls revoked nothing.
  const list = await inject(hub, 'GET', '/v1/admin/participants', { key: ADMIN_KEY });
  assert.deepEqual(list.json.participants.map((p: any) => p.id), ['RECV-1', 'RECV-2', 'SENDER-A', 'UNRELATED']);
});
