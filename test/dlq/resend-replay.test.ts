/**
 * Resend and replay end to end: a resend (by the receiver, or an admin naming receivers) and a
 * replay by filter deliver exactly the selected messages, marked as resends and with the
 * original webhook-id, by push and by pull; nothing else is sent again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, startTestHub, type TestHub } from '../support/hub.ts';
import { startReceiver, type ReceivedRequest } from '../support/receiver.ts';

interface Sent { sequence: number; source: string; subject: string; type: string }

async function send(hub: TestHub, key: string, source: string, events: Array<{ id: string; subject: string; type: string }>): Promise<Sent[]> {
  const body = JSON.stringify(events.map((e) => ({ specversion: '1.0', source, datacontenttype: 'application/json', data: { id: e.id }, ...e })));
  const res = await hub.api('POST', '/v1/messages', { key, body, headers: { 'content-type': 'application/cloudevents-batch+json' } });
  assert.equal(res.status, 200, res.text);
  return res.json.results.map((r: { sequence: number }, i: number) => ({ sequence: r.sequence, source, subject: events[i]!.subject, type: events[i]!.type }));
}

/** Polls the pull inbox until it is empty for a moment; acks everything; returns what came. */
async function drainInbox(hub: TestHub, key: string): Promise<Array<{ sequence: number; resend: boolean; deliveryid: string }>> {
  const got: Array<{ sequence: number; resend: boolean; deliveryid: string }> = [];
  for (;;) {
    const res = await hub.api('GET', '/v1/inbox?max=100&wait=0', { key });
    assert.equal(res.status, 200, res.text);
    const items = res.json.messages as Array<{ lease: string; resend: boolean; event: { sequence: string; deliveryid: string } }>;
    if (items.length === 0) return got;
    for (const i of items) got.push({ sequence: Number(i.event.sequence), resend: i.resend, deliveryid: i.event.deliveryid });
    assert.equal((await hub.api('POST', '/v1/inbox/ack', { key, json: { leases: items.map((i) => i.lease) } })).status, 200);
  }
}

const resendsAt = (requests: ReceivedRequest[]) => requests.filter((r) => r.headers['meterhub-resend'] === 'true');
const sequencesOf = (requests: ReceivedRequest[]) => requests.map((r) => Number(r.headers['ce-sequence'])).sort((a, b) => a - b);
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

test('resend and replay deliver exactly the selected messages, marked as resends, and nothing else', { timeout: 60_000 }, async (t) => {
  const hub = await startTestHub();
  const receiver = await startReceiver();
  t.after(async () => { await hub.close(); await receiver.close(); });
  const a = await hub.participant('MDP-A');
  const b = await hub.participant('MDP-B');
  const p = await hub.participant('P', { mode: 'push', url: receiver.url });
  const q = await hub.participant('Q', { mode: 'pull' });
  await hub.routes([
    { name: 'a', match: { source: 'MDP-A' }, to: { participants: ['P', 'Q'] } },
    { name: 'b', match: { source: 'MDP-B' }, to: { participants: ['P'] } },
  ]);
  const fromA = await send(hub, a.key, 'MDP-A', Array.from({ length: 10 }, (_, i) => ({ id: `a${i}`, subject: i % 2 ? 'S2' : 'S1', type: 't.a' })));
  const beforeB = new Date().toISOString();
  await new Promise((r) => setTimeout(r, 5));
  const fromB = await send(hub, b.key, 'MDP-B', Array.from({ length: 5 }, (_, i) => ({ id: `b${i}`, subject: 'S1', type: 't.b' })));
  await eventually(() => receiver.requests.length === 15, 10_000, 'the first pushes');
  assert.equal((await drainInbox(hub, q.key)).length, 10);
  assert.equal(resendsAt(receiver.requests).length, 0);
  const originalIds = new Map(receiver.requests.map((r) => [Number(r.headers['ce-sequence']), String(r.headers['webhook-id'])]));

  // A receiver asks again for one message routed to it.
  const [a0, a1, a2, a3] = fromA;
  const r1 = await hub.api('POST', `/v1/messages/${a0!.sequence}/resend`, { key: p.key, json: {} });
  assert.equal(r1.status, 202, r1.text);
  assert.deepEqual(r1.json.resent.map((x: { receiver: string }) => x.receiver), ['P']);
  await eventually(() => resendsAt(receiver.requests).length === 1, 5000, 'the resend');
  const resent = resendsAt(receiver.requests)[0]!;
  assert.equal(Number(resent.headers['ce-sequence']), a0!.sequence);
  assert.equal(resent.headers['webhook-id'], originalIds.get(a0!.sequence), 'the same webhook-id as the original');

  // Pull: the resend comes back through the inbox, marked.
  assert.equal((await hub.api('POST', `/v1/messages/${a1!.sequence}/resend`, { key: q.key })).status, 202, 'no body at all is fine');
  const pulled = await drainInbox(hub, q.key);
  assert.deepEqual(pulled.map((x) => [x.sequence, x.resend]), [[a1!.sequence, true]]);
  assert.equal(pulled[0]!.deliveryid, originalIds.get(a1!.sequence)!.replace('_P', '_Q'), 'the webhook id of the original delivery to Q');

  // What a receiver may not do.
  const code = async (res: Promise<{ status: number; json: any }>) => { const r = await res; return [r.status, r.json?.code]; };
  assert.deepEqual(await code(hub.api('POST', `/v1/messages/${fromB[0]!.sequence}/resend`, { key: q.key, json: {} })), [404, 'not-found'], 'not routed to Q: as if it did not exist');
  assert.deepEqual(await code(hub.api('POST', `/v1/messages/${a0!.sequence}/resend`, { key: a.key, json: {} })), [404, 'not-found'], 'the sender is no receiver of it');
  assert.deepEqual(await code(hub.api('POST', `/v1/messages/${a0!.sequence}/resend`, { key: q.key, json: { receivers: ['P'] } })), [403, 'forbidden']);
  assert.deepEqual(await code(hub.api('POST', '/v1/messages/999999/resend', { key: p.key, json: {} })), [404, 'not-found']);

  // An admin names receivers (active ones the message was routed to), or takes them all.
  const r2 = await hub.api('POST', `/v1/messages/${a2!.sequence}/resend`, { json: { receivers: ['Q'] } });
  assert.deepEqual([r2.status, r2.json.resent.map((x: { receiver: string }) => x.receiver)], [202, ['Q']]);
  assert.deepEqual(await code(hub.api('POST', `/v1/messages/${a2!.sequence}/resend`, { json: { receivers: ['NOPE'] } })), [400, 'malformed-request']);
  assert.deepEqual(await code(hub.api('POST', `/v1/messages/${fromB[0]!.sequence}/resend`, { json: { receivers: ['Q'] } })), [400, 'malformed-request'], 'not routed to Q');
  const r3 = await hub.api('POST', `/v1/messages/${a3!.sequence}/resend`, { json: {} });
  assert.deepEqual(r3.json.resent.map((x: { receiver: string }) => x.receiver).sort(), ['P', 'Q']);
  await eventually(() => resendsAt(receiver.requests).length === 2, 5000, 'the admin resend to P');
  assert.deepEqual((await drainInbox(hub, q.key)).map((x) => [x.sequence, x.resend]), [[a2!.sequence, true], [a3!.sequence, true]]);
  const status = await hub.api('GET', `/v1/messages/${a3!.sequence}`, { key: a.key });
  assert.deepEqual(status.json.deliveries.map((d: { receiver: string; resend: boolean }) => [d.receiver, d.resend]), [['P', false], ['Q', false], ['P', true], ['Q', true]]);

  // Replay by filter: S1 from MDP-A, to P only.
  const pushedBefore = receiver.requests.length;
  const rp = await hub.api('POST', '/v1/admin/replay', { json: { subject: 'S1', source: 'MDP-A', receiver: 'P' } });
  assert.equal(rp.status, 202, rp.text);
  const s1 = fromA.filter((m) => m.subject === 'S1').map((m) => m.sequence);
  assert.deepEqual(rp.json, { messages: s1.length, deliveries: s1.length });
  await eventually(() => receiver.requests.length === pushedBefore + s1.length, 5000, 'the replay');
  const replayed = receiver.requests.slice(pushedBefore);
  assert.deepEqual(sequencesOf(replayed), sorted(s1));
  assert.ok(replayed.every((r) => r.headers['meterhub-resend'] === 'true' && r.headers['webhook-id'] === originalIds.get(Number(r.headers['ce-sequence']))));
  assert.deepEqual(await drainInbox(hub, q.key), [], 'Q was not named: nothing for it');

  // Replay by type and time, to every receiver the messages were routed to (B's: P only).
  const pushed2 = receiver.requests.length;
  const rt = await hub.api('POST', '/v1/admin/replay', { json: { type: 't.b', from: beforeB, to: new Date(Date.now() + 1000).toISOString() } });
  assert.deepEqual(rt.json, { messages: 5, deliveries: 5 });
  await eventually(() => receiver.requests.length === pushed2 + 5, 5000, 'the type replay');
  assert.deepEqual(sequencesOf(receiver.requests.slice(pushed2)), sorted(fromB.map((m) => m.sequence)));
  assert.deepEqual((await hub.api('POST', '/v1/admin/replay', { json: { source: 'MDP-A', to: beforeB.slice(0, 10) } })).json, { messages: 0, deliveries: 0 }, 'received before that day: none');

  // Refusals.
  assert.deepEqual(await code(hub.api('POST', '/v1/admin/replay', { json: {} })), [400, 'malformed-request'], 'an empty filter would replay everything');
  assert.deepEqual(await code(hub.api('POST', '/v1/admin/replay', { json: { receiver: 'NOPE' } })), [400, 'malformed-request']);
  assert.deepEqual(await code(hub.api('POST', '/v1/admin/replay', { json: { subject: 'S1' }, key: p.key })), [403, 'forbidden']);

  // Everything, on purpose.
  const pushed3 = receiver.requests.length;
  const everything = await hub.api('POST', '/v1/admin/replay', { json: { all: true } });
  assert.deepEqual(everything.json, { messages: 15, deliveries: 25 });
  await eventually(() => receiver.requests.length === pushed3 + 15, 5000, 'the full replay');
  assert.equal((await drainInbox(hub, q.key)).length, 10);

  // Nothing else went out: the resends at P are exactly the ones asked for.
  await new Promise((r) => setTimeout(r, 200));
  const expectedAtP = sorted([a0!.sequence, a3!.sequence, ...s1, ...fromB.map((m) => m.sequence), ...fromA.map((m) => m.sequence), ...fromB.map((m) => m.sequence)]);
  assert.deepEqual(sequencesOf(resendsAt(receiver.requests)), expectedAtP);
  assert.equal(receiver.requests.length - resendsAt(receiver.requests).length, 15, 'the originals once each');
  assert.deepEqual(await drainInbox(hub, q.key), []);
});
