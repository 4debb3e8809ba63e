/** Conformance: `ordering: subject` in claimPush and leasePull (the `ordered` flag). */
import assert from 'node:assert/strict';
import type { DeliveryRecord } from '../../src/store/types.ts';
import { MIN, T0, dead, delivered, delivery, oneDelivery, retry, type StoreCase } from './builders.ts';

const ids = (ds: Array<{ id: number }>) => ds.map((d) => d.id);

export function orderingCases(test: StoreCase): void {
  test('an ordered claimPush takes only the head of each subject, and a subject in sequence order', async (store) => {
    const a1 = await oneDelivery(store, 'R', 'push', { subject: 'A' });
    const b1 = await oneDelivery(store, 'R', 'push', { subject: 'B' });
    const a2 = await oneDelivery(store, 'R', 'push', { subject: 'A' });
    const b2 = await oneDelivery(store, 'R', 'push', { subject: 'B' });
    const a3 = await oneDelivery(store, 'R', 'push', { subject: 'A' });

    const first = await store.claimPush('R', 10, T0, T0 + MIN, 'tok', true);
    assert.deepEqual(ids(first), [a1.id, b1.id], 'one per subject, the earliest');
    assert.deepEqual(await store.claimPush('R', 10, T0, T0 + MIN, 'tok', true), [], 'a delivering head holds its subject back');

    await store.recordPushResults([{ delivery: first[0]!, result: delivered(T0) }, { delivery: first[1]!, result: retry(T0, T0 + 1000) }]);
    const a2claim = await store.claimPush('R', 10, T0 + 1, T0 + MIN, 'tok', true);
    assert.deepEqual(ids(a2claim), [a2.id], 'delivered: the next one of A; B waits for its retry');
    assert.deepEqual(await store.claimPush('R', 10, T0 + 999, T0 + MIN, 'tok', true), [], 'a head waiting for its retry holds its subject back');
    const [b1again] = await store.claimPush('R', 10, T0 + 1000, T0 + MIN, 'tok', true);
    assert.equal(b1again!.id, b1.id, 'the retry comes before the later one');

    await store.recordPushResults([{ delivery: a2claim[0]!, result: dead(T0 + 1000) }]);
    assert.equal((await delivery(store, a2.id)).state, 'dead');
    assert.deepEqual(ids(await store.claimPush('R', 10, T0 + 1000, T0 + MIN, 'tok', true)), [a3.id], 'a dead one does not hold the later ones back');
    await store.recordPushResults([{ delivery: b1again!, result: delivered(T0 + 1000) }]);
    assert.deepEqual(ids(await store.claimPush('R', 10, T0 + 1000, T0 + MIN, 'tok', true)), [b2.id]);
  });

  test('an ordered claim honours the limit and due order across subjects', async (store) => {
    const made: DeliveryRecord[] = [];
    for (const [subject, at] of [['A', 30], ['B', 10], ['C', 20], ['A', 0], ['B', 40]] as const) {
      made.push(await oneDelivery(store, 'R', 'push', { subject, receivedAt: T0 + at }));
    }
    // Heads: A (its first, due at +30), B (+10), C (+20); the later A (+0) and B (+40) are not.
    const two = await store.claimPush('R', 2, T0 + 100, T0 + MIN, 'tok', true);
    assert.deepEqual(ids(two).sort((x, y) => x - y), [made[1]!.id, made[2]!.id], 'the two heads due first (B, C)');
    assert.deepEqual(ids(await store.claimPush('R', 2, T0 + 100, T0 + MIN, 'tok', true)), [made[0]!.id], 'then the head of A, not the later A due sooner');
  });

  test('a blocked subject holds up neither other subjects, other receivers, nor unordered claims', async (store) => {
    const a1 = await oneDelivery(store, 'R', 'push', { subject: 'A' });
    await oneDelivery(store, 'R', 'push', { subject: 'A' });
    const [c] = await store.claimPush('R', 1, T0, T0 + MIN, 'tok', true);
    assert.equal(c!.id, a1.id);
    await store.recordPushResults([{ delivery: c!, result: retry(T0, T0 + 10 * MIN) }]);
    const b1 = await oneDelivery(store, 'R', 'push', { subject: 'B' });
    const other1 = await oneDelivery(store, 'R2', 'push', { subject: 'A' });
    const other2 = await oneDelivery(store, 'R2', 'push', { subject: 'A' });
    assert.deepEqual(ids(await store.claimPush('R', 10, T0 + 1, T0 + MIN, 'tok', true)), [b1.id], 'B flows while A waits');
    assert.deepEqual(ids(await store.claimPush('R2', 10, T0 + 1, T0 + MIN, 'tok', true)), [other1.id], 'the same subject of another receiver has its own order');
    await oneDelivery(store, 'R3', 'push', { subject: 'A' });
    await oneDelivery(store, 'R3', 'push', { subject: 'A' });
    assert.equal((await store.claimPush('R3', 10, T0 + 1, T0 + MIN, 'tok')).length, 2, 'without the flag, no ordering');
    void other2;
  });

  test('an open delivery holds its subject back whatever its mode', async (store) => {
    // The receiver switched from pull to push between two messages of one meter.
    const p1 = await oneDelivery(store, 'R', 'pull', { subject: 'A' });
    const p2 = await oneDelivery(store, 'R', 'push', { subject: 'A' });
    assert.deepEqual(await store.claimPush('R', 10, T0, T0 + MIN, 'tok', true), [], 'the pending pull one comes first');
    const leased = await store.leasePull('R', 10, T0, T0 + MIN, 10, undefined, true);
    assert.deepEqual(ids(leased), [p1.id]);
    await store.ackPull('R', [leased[0]!.leaseToken], T0 + 1);
    assert.deepEqual(ids(await store.claimPush('R', 10, T0 + 1, T0 + MIN, 'tok', true)), [p2.id]);
  });

  test('an ordered leasePull: one per subject; a nacked or expired one comes back before the later ones', async (store) => {
    const a1 = await oneDelivery(store, 'R', 'pull', { subject: 'A' });
    const a2 = await oneDelivery(store, 'R', 'pull', { subject: 'A' });
    const b1 = await oneDelivery(store, 'R', 'pull', { subject: 'B' });
    const first = await store.leasePull('R', 10, T0, T0 + 30_000, 10, undefined, true);
    assert.deepEqual(ids(first), [a1.id, b1.id]);
    assert.deepEqual(await store.leasePull('R', 10, T0, T0 + 30_000, 10, undefined, true), [], 'leased heads hold their subjects back');

    await store.nackPull('R', [first[0]!.leaseToken], T0 + 1, T0 + 100);
    assert.deepEqual(await store.leasePull('R', 10, T0 + 99, T0 + 30_000, 10, undefined, true), [], 'a nacked head waits for its time; the later one waits for it');
    const again = await store.leasePull('R', 10, T0 + 100, T0 + 30_000, 10, undefined, true);
    assert.deepEqual(ids(again), [a1.id]);
    assert.equal(again[0]!.receives, 2);
    await store.ackPull('R', [again[0]!.leaseToken], T0 + 101);
    assert.deepEqual(ids(await store.leasePull('R', 10, T0 + 101, T0 + 30_000, 10, undefined, true)), [a2.id], 'acked: the next one');

    // The leases of b1 and a2 expire: they come back, still before anything later of their subjects.
    await oneDelivery(store, 'R', 'pull', { subject: 'B' });
    await oneDelivery(store, 'R', 'pull', { subject: 'A' });
    await store.expirePullLeases(T0 + 30_000, () => 10);
    assert.deepEqual(ids(await store.leasePull('R', 10, T0 + 30_000, T0 + MIN, 10, undefined, true)), [a2.id, b1.id]);
  });

  test('a delivery going dead at the receive limit lets the next of its subject be leased in the same call', async (store) => {
    const a1 = await oneDelivery(store, 'R', 'pull', { subject: 'A' });
    const a2 = await oneDelivery(store, 'R', 'pull', { subject: 'A' });
    const [l] = await store.leasePull('R', 10, T0, T0 + MIN, 1, undefined, true);
    assert.equal(l!.id, a1.id);
    await store.nackPull('R', [l!.leaseToken], T0 + 1, T0 + 1);
    const died: DeliveryRecord[] = [];
    const next = await store.leasePull('R', 10, T0 + 1, T0 + MIN, 1, (d) => died.push(d), true);
    assert.deepEqual(ids(next), [a2.id]);
    assert.deepEqual(ids(died), [a1.id], 'the dead one is reported');
    assert.equal(died[0]!.state, 'dead');
  });

  test('a resend holds the later deliveries of its subject back as its original would', async (store) => {
    const a1 = await oneDelivery(store, 'R', 'push', { subject: 'A' });
    const [c] = await store.claimPush('R', 1, T0, T0 + MIN, 'tok', true);
    await store.recordPushResults([{ delivery: c!, result: delivered(T0) }]);
    const a2 = await oneDelivery(store, 'R', 'push', { subject: 'A', receivedAt: T0 + 1 });
    const [again] = await store.resend([{ sequence: a1.sequence, receiver: 'R', mode: 'push' }], T0 + 2);
    const claimed = await store.claimPush('R', 10, T0 + 2, T0 + MIN, 'tok', true);
    assert.deepEqual(ids(claimed), [again!.id], 'the resend of the earlier sequence goes first');
    await store.recordPushResults([{ delivery: claimed[0]!, result: delivered(T0 + 2) }]);
    assert.deepEqual(ids(await store.claimPush('R', 10, T0 + 2, T0 + MIN, 'tok', true)), [a2.id]);
  });
}
