import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from '../support/hub.ts';
import { pullHub, RECEIVER, sleep, type PullFixture } from './pull-fixture.ts';

// SPEC "Pull inbox": `ordering: subject` holds for pull as for push.
async function orderedHub(settings: { visibilityTimeoutSeconds: number; maxReceives?: number }) {
  const f = await pullHub();
  await f.hub.participant(RECEIVER, { mode: 'pull', ordering: 'subject', ...settings });
  const send = async (id: string, subject: string) => {
    const body = `{"specversion":"1.0","id":"${id}","source":"MDP-A","type":"t","subject":"${subject}","data":{}}`;
    const r = await f.hub.api('POST', '/v1/messages', { key: f.senderKey, body, headers: { 'content-type': 'application/cloudevents+json' } });
    assert.equal(r.status, 202, r.text);
    return String(r.json.sequence);
  };
  return { f, send };
}
const seqs = (r: Awaited<ReturnType<PullFixture['poll']>>) => r.messages.map((m) => m.event.sequence);

test('ordering: subject — a meter\'s later message is not leased before the earlier one is acked; other meters are not held up', async (t) => {
  const { f, send } = await orderedHub({ visibilityTimeoutSeconds: 30 });
  t.after(() => f.close());
  const a1 = await send('a1', 'NMI-A');
  const a2 = await send('a2', 'NMI-A');
  const b1 = await send('b1', 'NMI-B');
  const first = await f.poll('max=10');
  assert.deepEqual(seqs(first), [a1, b1], 'one per meter in flight');
  assert.deepEqual(seqs(await f.poll('max=10')), []);
  // A long poll waiting for a2 is woken by the ack of a1.
  const waiting = f.poll('max=10&wait=5');
  await sleep(200);
  const ackedAt = performance.now();
  await f.ack([first.messages.find((m) => m.event.sequence === a1)!.lease]);
  const next = await waiting;
  assert.deepEqual(seqs(next), [a2]);
  assert.ok(performance.now() - ackedAt < 500, `the long poll returned ${(performance.now() - ackedAt).toFixed(0)} ms after the ack`);
});

test('ordering: subject — an earlier message that goes dead lets the next of its meter through', async (t) => {
  const { f, send } = await orderedHub({ visibilityTimeoutSeconds: 1, maxReceives: 1 });
  t.after(() => f.close());
  const a1 = await send('a1', 'NMI-A');
  const a2 = await send('a2', 'NMI-A');
  assert.deepEqual(seqs(await f.poll('max=10')), [a1]);
  // a1's only lease expires unacked -> dead; a2 comes next.
  const next = await f.poll('max=10&wait=5');
  assert.deepEqual(seqs(next), [a2]);
  await eventually(async () => (await f.delivery(Number(a1))).state === 'dead', 2000, 'a1 dead');
});
