/**
 * The dead-letter queue end to end: 1,000 dead deliveries listed and redriven; each delivered
 * exactly once when the receiver is healthy; a second redrive redrives nothing; a redrive
 * while the receiver still fails puts them all back in the queue, none lost.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, startTestHub, type TestHub } from '../support/hub.ts';
import { startReceiver } from '../support/receiver.ts';

const N = 1000;

async function send(hub: TestHub, key: string, tag: string, n: number): Promise<number[]> {
  const sequences: number[] = [];
  for (let i = 0; i < n; i += 500) {
    const batch = Array.from({ length: Math.min(500, n - i) }, (_, j) => ({
      specversion: '1.0', id: `${tag}-${i + j}`, source: 'MDP-A', type: 'test.reading', subject: `NMI${(i + j) % 37}`, datacontenttype: 'application/json', data: { n: i + j },
    }));
    const res = await hub.api('POST', '/v1/messages', { key, body: JSON.stringify(batch), headers: { 'content-type': 'application/cloudevents-batch+json' } });
    assert.equal(res.status, 200, res.text);
    for (const r of res.json.results) { assert.equal(r.status, 202); sequences.push(r.sequence); }
  }
  return sequences;
}

async function counts(hub: TestHub): Promise<Record<string, number>> {
  const res = await hub.api('GET', '/v1/admin/deliveries/summary');
  return Object.fromEntries((res.json.deliveries as Array<{ receiver: string; state: string; count: number }>).filter((c) => c.receiver === 'R').map((c) => [c.state, c.count]));
}

/** Every page of GET /v1/admin/dlq. */
async function listAll(hub: TestHub, query = '', limit = 300): Promise<Array<Record<string, any>>> {
  const all: Array<Record<string, any>> = [];
  let after: string | null = null;
  for (;;) {
    const res = await hub.api('GET', `/v1/admin/dlq?limit=${limit}${query}${after ? `&after=${after}` : ''}`);
    assert.equal(res.status, 200, res.text);
    all.push(...res.json.deliveries);
    if (res.json.deliveries.length < limit) return all;
    after = res.json.next;
  }
}

test('1,000 dead deliveries: listed, redriven once each, a second redrive is a no-op, a failing redrive loses none', { timeout: 60_000 }, async (t) => {
  const hub = await startTestHub();
  let healthy = false;
  const receiver = await startReceiver((_req, res) => { res.statusCode = healthy ? 204 : 410; res.end(); });
  t.after(async () => { await hub.close(); await receiver.close(); });
  const sender = await hub.participant('MDP-A');
  await hub.participant('R', { mode: 'push', url: receiver.url, retry: { maxAttempts: 1 } });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['R'] } }]);

  // 1,000 dead (410 Gone).
  const first = await send(hub, sender.key, 'a', N);
  await eventually(async () => (await counts(hub)).dead === N, 20_000, '1,000 dead');
  const dlq = await listAll(hub, '&receiver=R');
  assert.equal(dlq.length, N);
  assert.equal(new Set(dlq.map((d) => d.delivery)).size, N, 'pages without repeats');
  assert.deepEqual(new Set(dlq.map((d) => d.sequence)), new Set(first));
  for (let i = 1; i < dlq.length; i++) assert.ok(dlq[i]!.deadAt >= dlq[i - 1]!.deadAt, 'oldest dead first');
  const one = dlq[0]!;
  assert.deepEqual(Object.keys(one).sort(), ['attempts', 'deadAt', 'delivery', 'lastAttemptAt', 'lastError', 'lastStatus', 'mode', 'receiver', 'receives', 'resend', 'sequence', 'source', 'subject', 'type', 'webhookId']);
  assert.deepEqual([one.receiver, one.type, one.source, one.attempts, one.lastStatus, one.mode], ['R', 'test.reading', 'MDP-A', 1, 410, 'push']);
  assert.match(one.lastError, /410/);
  assert.equal((await listAll(hub, '&receiver=OTHER')).length, 0);

  // Redriven while healthy: each delivered exactly once.
  healthy = true;
  const before = receiver.requests.length;
  const r1 = await hub.api('POST', '/v1/admin/dlq/redrive', { json: { receiver: 'R' } });
  assert.equal(r1.status, 200, r1.text);
  assert.deepEqual(r1.json, { redriven: N });
  await eventually(async () => (await counts(hub)).delivered === N, 20_000, '1,000 delivered');
  const delivered = receiver.requests.slice(before);
  const perId = new Map<string, number>();
  for (const r of delivered) perId.set(String(r.headers['webhook-id']), (perId.get(String(r.headers['webhook-id'])) ?? 0) + 1);
  assert.equal(perId.size, N);
  assert.ok([...perId.values()].every((n) => n === 1), 'each delivered exactly once');
  assert.deepEqual(await counts(hub), { delivered: N });
  const story = await hub.api('GET', `/v1/messages/${first[0]}/attempts`);
  assert.deepEqual(story.json.attempts.map((a: { outcome: string }) => a.outcome), ['dead', 'redriven', 'delivered'], 'the attempts tell the story');

  // A second redrive of the same set: nothing is dead, nothing is sent.
  const r2 = await hub.api('POST', '/v1/admin/dlq/redrive', { json: { receiver: 'R' } });
  assert.deepEqual(r2.json, { redriven: 0 });
  const ids = dlq.slice(0, 5).map((d) => d.delivery);
  assert.deepEqual((await hub.api('POST', '/v1/admin/dlq/redrive', { json: { deliveries: ids } })).json, { redriven: 0 }, 'by id neither');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(receiver.requests.length, before + N, 'nothing more was sent');
  assert.deepEqual((await hub.api('GET', `/v1/messages/${first[0]}/attempts`)).json.attempts.length, 3);

  // 1,000 more go dead; redriven while the receiver still fails: all back in the queue, none lost.
  healthy = false;
  await send(hub, sender.key, 'b', N);
  await eventually(async () => (await counts(hub)).dead === N, 20_000, '1,000 dead again');
  const deadBefore = (await listAll(hub)).map((d) => d.delivery).sort((a, b) => a - b);
  assert.equal(deadBefore.length, N);
  const r3 = await hub.api('POST', '/v1/admin/dlq/redrive', { json: { all: true } });
  assert.deepEqual(r3.json, { redriven: N });
  await eventually(async () => {
    const c = await counts(hub);
    return c.dead === N && c.pending === undefined && c.delivering === undefined;
  }, 20_000, 'all dead again');
  const deadAfter = (await listAll(hub, '', 1000)).map((d) => d.delivery).sort((a, b) => a - b);
  assert.deepEqual(deadAfter, deadBefore, 'the same deliveries, none lost');
  assert.deepEqual(await counts(hub), { delivered: N, dead: N });

  // One by id, healthy again: only those three go.
  healthy = true;
  const three = deadAfter.slice(0, 3);
  assert.deepEqual((await hub.api('POST', '/v1/admin/dlq/redrive', { json: { deliveries: three } })).json, { redriven: 3 });
  await eventually(async () => (await counts(hub)).delivered === N + 3, 10_000, 'the three delivered');
  assert.deepEqual(await counts(hub), { delivered: N + 3, dead: N - 3 });
});

test('the DLQ API refuses what it cannot do safely', async (t) => {
  const hub = await startTestHub();
  t.after(() => hub.close());
  const participant = await hub.participant('R', { mode: 'pull' });
  const bad = async (method: string, path: string, json?: unknown, key?: string) => {
    const res = await hub.api(method, path, { ...(json !== undefined ? { json } : {}), ...(key ? { key } : {}) });
    assert.match(String(res.headers['content-type']), /application\/problem\+json/);
    return [res.status, res.json.code];
  };
  assert.deepEqual(await bad('POST', '/v1/admin/dlq/redrive', {}), [400, 'malformed-request'], 'an empty filter would redrive everything');
  assert.deepEqual(await bad('POST', '/v1/admin/dlq/redrive', { deliveries: [] }), [400, 'malformed-request']);
  assert.deepEqual(await bad('POST', '/v1/admin/dlq/redrive', { deliveries: [1], receiver: 'R' }), [400, 'malformed-request'], 'a filter or a list, not both');
  assert.deepEqual(await bad('POST', '/v1/admin/dlq/redrive', { from: 'yesterday' }), [400, 'malformed-request']);
  assert.deepEqual(await bad('POST', '/v1/admin/dlq/redrive', { from: '2024-02-01T00:00:00Z', to: '2024-01-01T00:00:00Z' }), [400, 'malformed-request']);
  assert.deepEqual(await bad('GET', '/v1/admin/dlq?after=bm9wZQ'), [400, 'malformed-request'], 'not a cursor of ours');
  assert.deepEqual(await bad('GET', '/v1/admin/dlq?limit=1001'), [400, 'malformed-request']);
  assert.deepEqual(await bad('GET', '/v1/admin/dlq?from=2024-13-01'), [400, 'malformed-request']);
  assert.deepEqual(await bad('GET', '/v1/admin/dlq', undefined, participant.key), [403, 'forbidden']);
  assert.deepEqual(await bad('POST', '/v1/admin/dlq/redrive', { all: true }, participant.key), [403, 'forbidden']);
  const empty = await hub.api('GET', '/v1/admin/dlq?from=2024-01-01&to=2024-02-01T00:00:00%2B01:00');
  assert.deepEqual([empty.status, empty.json], [200, { deliveries: [], next: null }]);
  assert.deepEqual((await hub.api('POST', '/v1/admin/dlq/redrive', { json: { all: true } })).json, { redriven: 0 });
});
