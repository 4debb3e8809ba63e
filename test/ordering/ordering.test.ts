/**
 * Invariant 5, per-meter order: for a receiver with `ordering: subject`, one meter's deliveries
 * are attempted in sequence order (a later one not before the earlier one is delivered or dead),
 * through failures and retries, push and pull alike, while the other meters keep flowing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, startTestHub, type TestHub } from '../support/hub.ts';
import { startReceiver } from '../support/receiver.ts';

const METERS = 50;
const PER_METER = 20;
const FAST_RETRY = { initialDelayMs: 10, maxDelayMs: 50, maxAttempts: 50 };

/** Sends `rounds` batches, each one message per meter; returns each meter's sequences in sending order. */
async function sendRounds(hub: TestHub, key: string, meters: string[], rounds: number, tag: string): Promise<Map<string, number[]>> {
  const sequences = new Map(meters.map((m) => [m, [] as number[]]));
  for (let round = 0; round < rounds; round++) {
    const batch = meters.map((subject) => ({
      specversion: '1.0', id: `${tag}-${subject}-${round}`, source: 'MDP-A', type: 'test.reading', subject,
      datacontenttype: 'application/json', data: { round },
    }));
    const res = await hub.api('POST', '/v1/messages', { key, body: JSON.stringify(batch), headers: { 'content-type': 'application/cloudevents-batch+json' } });
    assert.equal(res.status, 200, res.text);
    res.json.results.forEach((r: { status: number; sequence: number }, i: number) => {
      assert.equal(r.status, 202);
      sequences.get(meters[i]!)!.push(r.sequence);
    });
  }
  return sequences;
}

async function summary(hub: TestHub): Promise<Record<string, Record<string, number>>> {
  const res = await hub.api('GET', '/v1/admin/deliveries/summary');
  const out: Record<string, Record<string, number>> = {};
  for (const c of res.json.deliveries as Array<{ receiver: string; state: string; count: number }>) (out[c.receiver] ??= {})[c.state] = c.count;
  return out;
}

test('50 meters x 20 messages arrive in per-meter sequence order through failures, push and pull, and all end delivered', { timeout: 60_000 }, async (t) => {
  const started = Date.now();
  const hub = await startTestHub();
  // Push receiver: every third request fails with 500.
  const pushLog: Array<{ id: string; subject: string; sequence: number; ok: boolean }> = [];
  const receiver = await startReceiver((req, res, n) => {
    const ok = n % 3 !== 0;
    pushLog.push({ id: String(req.headers['webhook-id']), subject: String(req.headers['ce-subject']), sequence: Number(req.headers['ce-sequence']), ok });
    res.statusCode = ok ? 204 : 500;
    res.end();
  });
  t.after(async () => { await hub.close(); await receiver.close(); });
  const sender = await hub.participant('MDP-A');
  await hub.participant('PUSH-R', { mode: 'push', url: receiver.url, ordering: 'subject', maxInFlight: 16, retry: FAST_RETRY });
  const pull = await hub.participant('PULL-R', { mode: 'pull', ordering: 'subject', maxReceives: 50 });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['PUSH-R', 'PULL-R'] } }]);
  const meters = Array.from({ length: METERS }, (_, i) => `NMI${String(i).padStart(4, '0')}`);

  // Pull consumer, running while messages are still being sent: nacks every third message it gets.
  const acked = new Map(meters.map((m) => [m, [] as number[]]));
  let pullTotal = 0;
  const violations: string[] = [];
  // What the pull receiver saw, in order: checked against the sending order once that is known.
  const pullEvents: Array<{ kind: 'leased' | 'acked'; subject: string; sequence: number }> = [];
  const consumer = (async () => {
    let got = 0;
    while (pullTotal < METERS * PER_METER) {
      const res = await hub.api('GET', '/v1/inbox?max=100&wait=1', { key: pull.key });
      assert.equal(res.status, 200, res.text);
      const ack: string[] = [];
      const nack: string[] = [];
      const ackedNow: Array<[string, number]> = [];
      const perMeterThisPoll = new Set<string>();
      for (const item of res.json.messages as Array<{ lease: string; event: { subject: string; sequence: string } }>) {
        const subject = item.event.subject;
        const sequence = Number(item.event.sequence);
        if (perMeterThisPoll.has(subject)) violations.push(`pull: two deliveries of ${subject} leased at once`);
        perMeterThisPoll.add(subject);
        pullEvents.push({ kind: 'leased', subject, sequence });
        if (++got % 3 === 0) nack.push(item.lease);
        else { ack.push(item.lease); ackedNow.push([subject, sequence]); }
      }
      if (nack.length > 0) assert.equal((await hub.api('POST', '/v1/inbox/nack', { key: pull.key, json: { leases: nack } })).status, 200);
      if (ack.length > 0) {
        const r = await hub.api('POST', '/v1/inbox/ack', { key: pull.key, json: { leases: ack } });
        assert.equal(r.status, 200, r.text);
        assert.ok(r.json.results.every((x: { result: string }) => x.result === 'acked'), r.text);
        for (const [subject, sequence] of ackedNow) {
          acked.get(subject)!.push(sequence);
          pullEvents.push({ kind: 'acked', subject, sequence });
        }
        pullTotal += ack.length;
      }
    }
  })();

  const expected = await sendRounds(hub, sender.key, meters, PER_METER, 'o');
  await consumer;
  // Pull: each message leased only once every earlier message of its meter was acked.
  const ackedSoFar = new Map(meters.map((m) => [m, new Set<number>()]));
  for (const e of pullEvents) {
    if (e.kind === 'acked') { ackedSoFar.get(e.subject)!.add(e.sequence); continue; }
    const seqs = expected.get(e.subject)!;
    const earlier = seqs.slice(0, seqs.indexOf(e.sequence));
    if (earlier.some((x) => !ackedSoFar.get(e.subject)!.has(x))) violations.push(`pull: ${e.subject} ${e.sequence} leased before an earlier one was acked`);
  }
  await eventually(async () => (await summary(hub))['PUSH-R']?.delivered === METERS * PER_METER, 30_000, 'every push delivery delivered');

  // Push: first successful delivery per webhook-id, per meter, in sequence order; and no attempt
  // of a message started before every earlier message of its meter had succeeded.
  const firstOk = new Map<string, number>();
  const succeeded = new Map(meters.map((m) => [m, new Set<number>()]));
  pushLog.forEach((r, i) => {
    const seqs = expected.get(r.subject)!;
    const earlier = seqs.slice(0, seqs.indexOf(r.sequence));
    const done = succeeded.get(r.subject)!;
    if (earlier.some((s) => !done.has(s))) violations.push(`push: request ${i} (${r.subject} ${r.sequence}) before an earlier one was delivered`);
    if (r.ok) {
      done.add(r.sequence);
      if (!firstOk.has(r.id)) firstOk.set(r.id, i);
    }
  });
  assert.deepEqual(violations, []);
  assert.equal(firstOk.size, METERS * PER_METER, 'every message reached the push receiver');
  const arrivalOrder = new Map(meters.map((m) => [m, [] as number[]]));
  for (const [, i] of [...firstOk].sort((a, b) => a[1] - b[1])) arrivalOrder.get(pushLog[i]!.subject)!.push(pushLog[i]!.sequence);
  for (const m of meters) {
    assert.deepEqual(arrivalOrder.get(m), expected.get(m), `push order of ${m}`);
    assert.deepEqual(acked.get(m), expected.get(m), `pull order of ${m}`);
  }
  assert.ok(pushLog.some((r) => !r.ok), 'the push receiver did fail some requests');

  const counts = await summary(hub);
  assert.deepEqual(counts, { 'PUSH-R': { delivered: METERS * PER_METER }, 'PULL-R': { delivered: METERS * PER_METER } }, 'all end delivered, nothing else');
  assert.ok(Date.now() - started < 30_000, `took ${Date.now() - started} ms`);
});

test('a dead delivery does not hold up the later ones of its meter, and a failing meter does not hold up the others', { timeout: 30_000 }, async (t) => {
  // The breaker would pause the whole receiver after a few SLOW failures: this is about ordering.
  const hub = await startTestHub({ delivery: { breaker: { failureThreshold: 10_000 } } });
  const log: Array<{ subject: string; sequence: number; status: number }> = [];
  let slowSubjectFails = true;
  const receiver = await startReceiver((req, res) => {
    const subject = String(req.headers['ce-subject']);
    const sequence = Number(req.headers['ce-sequence']);
    const status = req.headers['ce-id'] === 'f-FAST-0' ? 410 : subject === 'SLOW' && slowSubjectFails ? 503 : 204;
    log.push({ subject, sequence, status });
    res.statusCode = status;
    res.end();
  });
  t.after(async () => { await hub.close(); await receiver.close(); });
  const sender = await hub.participant('MDP-A');
  await hub.participant('PUSH-R', { mode: 'push', url: receiver.url, ordering: 'subject', retry: { initialDelayMs: 200, maxDelayMs: 200, maxAttempts: 100 } });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['PUSH-R'] } }]);

  // SLOW fails (and waits for its retries) while FAST's three messages go through.
  const slow = await sendRounds(hub, sender.key, ['SLOW'], 2, 's');
  await eventually(() => log.some((r) => r.subject === 'SLOW'), 5000, 'the first SLOW attempt');
  const fast = await sendRounds(hub, sender.key, ['FAST'], 3, 'f'); // the first one is answered 410: dead
  await eventually(() => log.filter((r) => r.subject === 'FAST' && r.status === 204).length === 2, 5000, 'the later FAST messages');
  assert.deepEqual(log.filter((r) => r.subject === 'FAST').map((r) => [r.sequence, r.status]), [
    [fast.get('FAST')![0]!, 410], [fast.get('FAST')![1]!, 204], [fast.get('FAST')![2]!, 204],
  ], 'dead, then the later ones in order');
  assert.ok(log.filter((r) => r.subject === 'SLOW').every((r) => r.sequence === slow.get('SLOW')![0]), 'the second SLOW message waits for the first');

  slowSubjectFails = false;
  await eventually(async () => (await summary(hub))['PUSH-R']?.delivered === 4, 5000, 'SLOW catches up');
  const slowOk = log.filter((r) => r.subject === 'SLOW' && r.status === 204).map((r) => r.sequence);
  assert.deepEqual(slowOk, slow.get('SLOW'));
  assert.deepEqual(await summary(hub), { 'PUSH-R': { delivered: 4, dead: 1 } });
});
