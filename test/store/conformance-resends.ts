/** Conformance: resend and replayChunk. */
import assert from 'node:assert/strict';
import type { Store } from '../../src/store/store.ts';
import type { DeliveryMode, MessageRecord } from '../../src/store/types.ts';
import { MIN, T0, commitOne, delivered, delivery, msg, type MsgOpts, type StoreCase } from './builders.ts';

/** Resends of message `m` (as [receiver, mode] pairs, in creation order). */
async function resendsOf(store: Store, m: MessageRecord): Promise<Array<[string, DeliveryMode]>> {
  return (await store.getDeliveries(m.sequence)).filter((d) => d.resendOf !== null).map((d) => [d.receiver, d.mode]);
}

export function resendCases(test: StoreCase): void {
  test('resend makes a new pending delivery of the original: same webhook id, fresh budget, marked by resendOf', async (store) => {
    const m = await commitOne(store, msg({ to: ['R1', ['R2', 'pull']], subject: 'NMI9', receivedAt: T0 }));
    const [o1, o2] = await store.getDeliveries(m.sequence);
    const [c] = await store.claimPush('R1', 1, T0, T0 + MIN, 'tok');
    await store.recordPushResults([{ delivery: c!, result: delivered(T0) }]);
    const original1 = await delivery(store, o1!.id);

    const now = T0 + MIN;
    const made = await store.resend([
      { sequence: m.sequence, receiver: 'R1', mode: 'push' },
      { sequence: m.sequence, receiver: 'R2', mode: 'push' }, // R2 receives by push now
      { sequence: m.sequence, receiver: 'NOBODY', mode: 'push' }, // never routed: skipped
      { sequence: 987_654, receiver: 'R1', mode: 'push' }, // no such message: skipped
    ], now);
    assert.equal(made.length, 2);
    assert.ok(made[0]!.id < made[1]!.id, 'by id');
    for (const [d, original, mode] of [[made[0]!, o1!, 'push'], [made[1]!, o2!, 'push']] as const) {
      assert.ok(d.id !== original.id);
      assert.deepEqual({ ...d, id: 0 }, {
        id: 0, sequence: m.sequence, receiver: original.receiver, mode, subject: 'NMI9', state: 'pending', attempts: 0, receives: 0,
        createdAt: now, firstCreatedAt: now, nextAttemptAt: now, leaseUntil: null, leaseToken: null, lastAttemptAt: null,
        lastStatus: null, lastError: null, deliveredAt: null, deadAt: null, resendOf: original.id, webhookId: original.webhookId,
      });
      assert.deepEqual(await store.getDelivery(d.id), d);
    }
    assert.deepEqual(await delivery(store, o1!.id), original1, 'the original is untouched (delivered stays delivered)');
    assert.deepEqual((await store.getDeliveries(m.sequence)).map((d) => d.id), [o1!.id, o2!.id, made[0]!.id, made[1]!.id]);

    // It flows like any delivery; a resend of a resend points at the original too.
    const [claimed] = await store.claimPush('R1', 10, now, now + MIN, 'tok');
    assert.equal(claimed!.id, made[0]!.id);
    const [second] = await store.resend([{ sequence: m.sequence, receiver: 'R1', mode: 'pull' }], now + 1);
    assert.equal(second!.resendOf, o1!.id);
    assert.equal(second!.mode, 'pull');
    assert.deepEqual(await store.resend([], now), []);
    // A duplicate message commit still reports the original receivers only.
    const [dup] = await store.commitMessages([msg({ id: m.id, subject: 'NMI9', to: ['R1', ['R2', 'pull']], receivedAt: T0 })]);
    assert.equal(dup!.kind, 'duplicate');
    if (dup!.kind === 'duplicate') assert.deepEqual(dup!.receivers, ['R1', 'R2']);
  });

  test('replayChunk resends the matching messages to their original receivers among the targets, chunk by chunk', async (store) => {
    const send = (o: MsgOpts) => commitOne(store, msg(o));
    const m1 = await send({ subject: 'S1', type: 'T1', source: 'A', receivedAt: T0, to: ['R1', ['R2', 'pull']] });
    const m2 = await send({ subject: 'S2', type: 'T1', source: 'B', receivedAt: T0 + 10, to: ['R1'] });
    const m3 = await send({ subject: 'S1', type: 'T2', source: 'A', receivedAt: T0 + 20, to: [['R2', 'pull']] });
    const m4 = await send({ subject: 'S1', type: 'T1', source: 'A', receivedAt: T0 + 30, to: ['R1'] });
    await store.resend([{ sequence: m1.sequence, receiver: 'R1', mode: 'push' }], T0 + 40); // an earlier resend is not replayed again
    const targets = [{ receiver: 'R1', mode: 'push' as const }, { receiver: 'R2', mode: 'push' as const }];
    const now = T0 + MIN;

    const first = await store.replayChunk({ filter: { subject: 'S1' }, targets, afterSequence: 0, limit: 2, now });
    assert.deepEqual([first.matched, first.lastSequence, first.messages, first.deliveries], [2, m3.sequence, 2, 3]);
    assert.deepEqual([...first.receivers].sort((a, b) => a.receiver.localeCompare(b.receiver)), targets);
    assert.deepEqual(await resendsOf(store, m1), [['R1', 'push'], ['R1', 'push'], ['R2', 'push']], 'the mode of the target, not of the original');
    assert.deepEqual(await resendsOf(store, m3), [['R2', 'push']]);
    const resent = (await store.getDeliveries(m3.sequence)).at(-1)!;
    const original = (await store.getDeliveries(m3.sequence))[0]!;
    assert.deepEqual([resent.resendOf, resent.webhookId, resent.state, resent.createdAt], [original.id, original.webhookId, 'pending', now]);

    const second = await store.replayChunk({ filter: { subject: 'S1' }, targets, afterSequence: first.lastSequence!, limit: 2, now });
    assert.deepEqual([second.matched, second.lastSequence, second.messages, second.deliveries], [1, m4.sequence, 1, 1]);
    const third = await store.replayChunk({ filter: { subject: 'S1' }, targets, afterSequence: second.lastSequence!, limit: 2, now });
    assert.deepEqual(third, { matched: 0, lastSequence: null, messages: 0, deliveries: 0, receivers: [] });
    assert.deepEqual(await resendsOf(store, m2), [], 'another subject is not replayed');
  });

  test('replayChunk filters by receiver, type, source and received time, and resends only to targets', async (store) => {
    const send = (o: MsgOpts) => commitOne(store, msg(o));
    const m1 = await send({ type: 'T1', source: 'A', receivedAt: T0, to: ['R1', 'R2'] });
    const m2 = await send({ type: 'T1', source: 'B', receivedAt: T0 + 10, to: ['R1'] });
    const m3 = await send({ type: 'T2', source: 'A', receivedAt: T0 + 20, to: ['R2'] });
    const targets = [{ receiver: 'R1', mode: 'push' as const }, { receiver: 'R2', mode: 'push' as const }];
    const replay = (filter: object, t = targets) => store.replayChunk({ filter, targets: t, afterSequence: 0, limit: 100, now: T0 + MIN });

    const byReceiver = await replay({ receiver: 'R2' });
    assert.deepEqual([byReceiver.matched, byReceiver.messages, byReceiver.deliveries], [2, 2, 2], 'm1 and m3, to R2 only');
    assert.deepEqual(await resendsOf(store, m1), [['R2', 'push']]);
    assert.deepEqual(await resendsOf(store, m3), [['R2', 'push']]);

    const onlyR1 = await replay({ type: 'T1' }, [targets[0]!]);
    assert.deepEqual([onlyR1.matched, onlyR1.messages, onlyR1.deliveries], [2, 2, 2], 'm1 and m2, to R1 (R2 is no target)');
    assert.deepEqual(await resendsOf(store, m1), [['R2', 'push'], ['R1', 'push']]);

    const none = await replay({ source: 'A', from: T0 + 20 }, [targets[0]!]);
    assert.deepEqual([none.matched, none.lastSequence, none.messages, none.deliveries], [1, m3.sequence, 0, 0], 'matched, but its only receiver is no target');

    const window = await replay({ from: T0 + 10, to: T0 + 20 });
    assert.deepEqual([window.matched, window.lastSequence, window.deliveries], [1, m2.sequence, 1], 'from inclusive, to exclusive');
    assert.deepEqual(await resendsOf(store, m2), [['R1', 'push'], ['R1', 'push']]);
    assert.deepEqual(await store.replayChunk({ filter: {}, targets, afterSequence: 0, limit: 0, now: T0 }), { matched: 0, lastSequence: null, messages: 0, deliveries: 0, receivers: [] });
  });
}
