/** Conformance: the dead-letter queue (listDead, redriveDead). */
import assert from 'node:assert/strict';
import type { Store } from '../../src/store/store.ts';
import type { DeliveryRecord } from '../../src/store/types.ts';
import { MIN, T0, attemptsOf, dead, delivered, delivery, oneDelivery, retry, type MsgOpts, type StoreCase } from './builders.ts';

const ids = (ds: Array<{ id: number }>) => ds.map((d) => d.id);

/** One push delivery to `receiver`, claimed and answered dead at `at` (deadAt = at + 5 ms latency). */
async function deadPush(store: Store, receiver: string, at: number, o: MsgOpts = {}): Promise<DeliveryRecord> {
  const d = await oneDelivery(store, receiver, 'push', { receivedAt: at, ...o });
  const [c] = await store.claimPush(receiver, 1, at, at + MIN, 'tok');
  assert.equal(c!.id, d.id);
  await store.recordPushResults([{ delivery: c!, result: dead(at) }]);
  return delivery(store, d.id);
}

export function deadLetterCases(test: StoreCase): void {
  test('listDead: oldest dead first, with the message type and source, by receiver and time range', async (store) => {
    const d1 = await deadPush(store, 'R1', T0 + 30, { type: 'x.one', source: 'MDP-Z' });
    const d2 = await deadPush(store, 'R1', T0 + 10);
    const d3 = await deadPush(store, 'R2', T0 + 20);
    const d4 = await deadPush(store, 'R1', T0 + 20);
    await oneDelivery(store, 'R1', 'push', { receivedAt: T0 + MIN }); // pending (not due yet): not listed
    const ok = await oneDelivery(store, 'R1', 'push', { receivedAt: T0 + 200 });
    const [c] = await store.claimPush('R1', 1, T0 + 200, T0 + MIN, 'tok');
    assert.equal(c!.id, ok.id);
    await store.recordPushResults([{ delivery: c!, result: delivered(T0 + 200) }]);

    const all = await store.listDead({}, null, 100);
    assert.deepEqual(ids(all), [d2.id, d3.id, d4.id, d1.id], 'by deadAt, then id');
    const one = all.find((d) => d.id === d1.id)!;
    assert.deepEqual(one, { ...d1, type: 'x.one', source: 'MDP-Z' }, 'the delivery and its message type and source');
    assert.equal(one.deadAt, T0 + 35);
    assert.equal(one.lastStatus, 410);
    assert.equal(one.attempts, 1);
    assert.ok(one.lastError);

    assert.deepEqual(ids(await store.listDead({ receiver: 'R1' }, null, 100)), [d2.id, d4.id, d1.id]);
    assert.deepEqual(ids(await store.listDead({ from: T0 + 25, to: T0 + 35 }, null, 100)), [d3.id, d4.id], 'from inclusive, to exclusive');
    assert.deepEqual(ids(await store.listDead({ receiver: 'R1', from: T0 + 25 }, null, 100)), [d4.id, d1.id]);
    assert.deepEqual(await store.listDead({ receiver: 'NOBODY' }, null, 100), []);
    assert.deepEqual(await store.listDead({}, null, 0), []);
    assert.deepEqual(await store.listDead({}, null, -1), []);
  });

  test('listDead pages with the (deadAt, id) cursor without gaps or repeats', async (store) => {
    const made: DeliveryRecord[] = [];
    for (let i = 0; i < 7; i++) made.push(await deadPush(store, 'R1', T0 + (i % 3) * 10)); // equal deadAts on purpose
    const seen: number[] = [];
    let after: { deadAt: number; id: number } | null = null;
    for (;;) {
      const page = await store.listDead({}, after, 3);
      if (page.length === 0) break;
      assert.ok(page.length <= 3);
      seen.push(...ids(page));
      const last = page.at(-1)!;
      after = { deadAt: last.deadAt!, id: last.id };
    }
    const expected = [...made].sort((a, b) => a.deadAt! - b.deadAt! || a.id - b.id).map((d) => d.id);
    assert.deepEqual(seen, expected);
  });

  test('redriveDead by filter: back to pending with a fresh budget, a redriven attempt row, and never twice', async (store) => {
    // A push delivery that failed three times, and a pull one that hit its receive limit.
    const p = await oneDelivery(store, 'R1', 'push', { receivedAt: T0 });
    for (let i = 0; i < 2; i++) {
      const [c] = await store.claimPush('R1', 1, T0 + i, T0 + MIN, 'tok');
      await store.recordPushResults([{ delivery: c!, result: retry(T0 + i, T0 + i + 1) }]);
    }
    const [c3] = await store.claimPush('R1', 1, T0 + 2, T0 + MIN, 'tok');
    await store.recordPushResults([{ delivery: c3!, result: dead(T0 + 2, 500) }]);
    const q = await oneDelivery(store, 'R2', 'pull', { receivedAt: T0 });
    const [l] = await store.leasePull('R2', 1, T0, T0 + 10, 1);
    await store.expirePullLeases(T0 + 10, () => 1);
    const before = { p: await delivery(store, p.id), q: await delivery(store, q.id) };
    assert.equal(before.p.state, 'dead');
    assert.equal(before.p.attempts, 3);
    assert.equal(before.q.state, 'dead');
    assert.equal(before.q.receives, 1);
    void l;

    const now = T0 + MIN;
    const redriven = await store.redriveDead({ filter: {} }, now, 100);
    assert.deepEqual(redriven, [
      { id: p.id, sequence: p.sequence, receiver: 'R1', mode: 'push' },
      { id: q.id, sequence: q.sequence, receiver: 'R2', mode: 'pull' },
    ].sort((a, b) => a.id - b.id));
    for (const [was, id] of [[before.p, p.id], [before.q, q.id]] as const) {
      const after = await delivery(store, id);
      assert.deepEqual(after, {
        ...was, state: 'pending', attempts: 0, receives: 0, createdAt: now, nextAttemptAt: now, deadAt: null, leaseUntil: null, leaseToken: null,
      }, 'a fresh budget; lastError, lastStatus and firstCreatedAt kept');
      assert.equal(after.firstCreatedAt, T0);
      const attempts = await attemptsOf(store, after);
      assert.deepEqual([attempts.at(-1)!.outcome, attempts.at(-1)!.startedAt], ['redriven', now]);
    }
    assert.deepEqual(await store.redriveDead({ filter: {} }, now + 1, 100), [], 'no longer dead: a second redrive takes none');
    assert.equal((await attemptsOf(store, p)).filter((a) => a.outcome === 'redriven').length, 1, 'and writes no attempt row');
    assert.deepEqual(await store.listDead({}, null, 100), []);

    // They flow again like new ones, with their budget counted from zero.
    const [again] = await store.claimPush('R1', 1, now, now + MIN, 'tok');
    assert.equal(again!.id, p.id);
    assert.equal(again!.attempts, 1);
    const [lease] = await store.leasePull('R2', 1, now, now + MIN, 1);
    assert.equal(lease!.id, q.id);
    assert.equal(lease!.receives, 1);
    // Dead again: listed again, with its new time.
    await store.recordPushResults([{ delivery: again!, result: dead(now + 100) }]);
    assert.deepEqual((await store.listDead({}, null, 100)).map((d) => [d.id, d.deadAt]), [[p.id, now + 105]]);
  });

  test('redriveDead by filter takes only its receiver and time range, oldest dead first up to the limit', async (store) => {
    const a = await deadPush(store, 'R1', T0 + 10);
    const b = await deadPush(store, 'R1', T0 + 20);
    const c = await deadPush(store, 'R1', T0 + 30);
    const other = await deadPush(store, 'R2', T0 + 20);
    assert.deepEqual(ids(await store.redriveDead({ filter: { receiver: 'R1', from: T0 + 20, to: T0 + 35 } }, T0 + MIN, 1)), [b.id], 'the oldest dead of the range, limit 1');
    assert.deepEqual(await store.redriveDead({ filter: { receiver: 'R1', from: T0 + 20, to: T0 + 35 } }, T0 + MIN, 10), [], 'to is exclusive: c died at +35');
    assert.deepEqual(ids(await store.redriveDead({ filter: { receiver: 'R1', from: T0 + 20, to: T0 + 36 } }, T0 + MIN, 10)), [c.id]);
    assert.deepEqual(await store.redriveDead({ filter: { receiver: 'R1' } }, T0 + MIN, 0), [], 'limit 0 takes none');
    assert.deepEqual(ids(await store.listDead({}, null, 10)), [a.id, other.id]);
    assert.deepEqual(ids(await store.redriveDead({ filter: { to: T0 + 20 } }, T0 + MIN, 10)), [a.id]);
    assert.deepEqual(ids(await store.listDead({}, null, 10)), [other.id], 'the other receiver is untouched');
  });

  test('redriveDead by ids takes the dead ones named and skips the others', async (store) => {
    const d1 = await deadPush(store, 'R1', T0);
    const d2 = await deadPush(store, 'R2', T0);
    const keep = await deadPush(store, 'R1', T0);
    const pending = await oneDelivery(store, 'R1', 'push');
    const done = await oneDelivery(store, 'R3', 'push');
    const [c] = await store.claimPush('R3', 1, T0, T0 + MIN, 'tok');
    await store.recordPushResults([{ delivery: c!, result: delivered(T0) }]);
    const got = await store.redriveDead({ ids: [d2.id, pending.id, done.id, 987_654, d1.id, d1.id] }, T0 + MIN, 100);
    assert.deepEqual(ids(got), [d1.id, d2.id].sort((a, b) => a - b), 'by id, each once');
    assert.deepEqual(await delivery(store, pending.id), pending, 'a pending one is not touched');
    assert.equal((await delivery(store, done.id)).state, 'delivered', 'a delivered one stays delivered');
    assert.equal((await delivery(store, keep.id)).state, 'dead');
    assert.deepEqual(await store.redriveDead({ ids: [] }, T0 + MIN, 100), []);
    assert.deepEqual(await store.redriveDead({ ids: [d1.id] }, T0 + MIN, 100), [], 'not twice');
  });
}
