/** Conformance: archive search (searchMessages, getDeliveriesOf). */
import assert from 'node:assert/strict';
import type { Store } from '../../src/store/store.ts';
import type { MessageRecord, MessageSearch } from '../../src/store/types.ts';
import { MIN, T0, commitOne, delivered, msg, type MsgOpts, type StoreCase } from './builders.ts';

const seqs = (ms: MessageRecord[]) => ms.map((m) => m.sequence);

function search(store: Store, s: Partial<MessageSearch> = {}): Promise<MessageRecord[]> {
  return store.searchMessages({ viewer: null, order: 'desc', limit: 100, ...s });
}

export function searchCases(test: StoreCase): void {
  test('searchMessages pages by sequence, newest or oldest first, strictly after the cursor', async (store) => {
    const made: MessageRecord[] = [];
    for (let i = 0; i < 5; i++) made.push(await commitOne(store, msg()));
    const all = seqs(made);
    const desc: number[] = [];
    let after: number | undefined;
    for (;;) {
      const page = await search(store, { limit: 2, ...(after !== undefined ? { after } : {}) });
      if (page.length === 0) break;
      desc.push(...seqs(page));
      after = page.at(-1)!.sequence;
    }
    assert.deepEqual(desc, [...all].reverse());
    assert.deepEqual(seqs(await search(store, { order: 'asc', limit: 3 })), all.slice(0, 3));
    assert.deepEqual(seqs(await search(store, { order: 'asc', after: all[2]!, limit: 3 })), all.slice(3));
    assert.deepEqual(seqs(await search(store, { order: 'desc', after: all[2]!, limit: 3 })), [all[1]!, all[0]!]);
    assert.deepEqual(await search(store, { limit: 0 }), []);
    const [first] = await search(store, { order: 'asc', limit: 1 });
    assert.deepEqual(first, made[0], 'the whole record');
  });

  test('searchMessages filters by subject, type, source and received time', async (store) => {
    const send = (o: MsgOpts) => commitOne(store, msg(o));
    const m1 = await send({ subject: 'S1', type: 'T1', source: 'A', receivedAt: T0 });
    const m2 = await send({ subject: 'S2', type: 'T1', source: 'B', receivedAt: T0 + 10 });
    const m3 = await send({ subject: 'S1', type: 'T2', source: 'A', receivedAt: T0 + 20 });
    assert.deepEqual(seqs(await search(store, { subject: 'S1' })), [m3.sequence, m1.sequence]);
    assert.deepEqual(seqs(await search(store, { type: 'T1' })), [m2.sequence, m1.sequence]);
    assert.deepEqual(seqs(await search(store, { source: 'A', type: 'T2' })), [m3.sequence]);
    assert.deepEqual(seqs(await search(store, { from: T0 + 10 })), [m3.sequence, m2.sequence]);
    assert.deepEqual(seqs(await search(store, { from: T0, to: T0 + 20 })), [m2.sequence, m1.sequence], 'to is exclusive');
    assert.deepEqual(await search(store, { subject: 'S9' }), []);
  });

  test('a viewer sees only the messages it sent or that were routed to it; receiver and state filter what it may see', async (store) => {
    const send = (o: MsgOpts) => commitOne(store, msg(o));
    const a1 = await send({ source: 'A', to: ['R1'] });
    const b1 = await send({ source: 'B', to: ['R2'] });
    const ab = await send({ source: 'A', to: ['R1', 'R2'] });
    const [c] = await store.claimPush('R1', 1, T0, T0 + MIN, 'tok');
    assert.equal(c!.sequence, a1.sequence);
    await store.recordPushResults([{ delivery: c!, result: delivered(T0) }]); // a1 -> R1 delivered; ab -> R1, R2 pending

    const as = (viewer: string | null, s: Partial<MessageSearch> = {}) => search(store, { viewer, ...s }).then(seqs);
    assert.deepEqual(await as(null), [ab.sequence, b1.sequence, a1.sequence], 'an admin sees all');
    assert.deepEqual(await as('A'), [ab.sequence, a1.sequence], 'a sender its own');
    assert.deepEqual(await as('B'), [b1.sequence]);
    assert.deepEqual(await as('R1'), [ab.sequence, a1.sequence], 'a receiver what was routed to it');
    assert.deepEqual(await as('R2'), [ab.sequence, b1.sequence]);
    assert.deepEqual(await as('NOBODY'), []);

    assert.deepEqual(await as('R1', { receiver: 'R2' }), [], "another receiver's deliveries are not R1's to see");
    assert.deepEqual(await as('A', { receiver: 'R2' }), [ab.sequence], 'the sender sees every delivery of its messages');
    assert.deepEqual(await as(null, { receiver: 'R2' }), [ab.sequence, b1.sequence]);
    assert.deepEqual(await as('R1', { source: 'B' }), []);

    assert.deepEqual(await as('R1', { state: 'delivered' }), [a1.sequence]);
    assert.deepEqual(await as('R1', { state: 'pending' }), [ab.sequence]);
    assert.deepEqual(await as('R2', { state: 'delivered' }), [], "R1's delivered delivery of ab is not R2's");
    assert.deepEqual(await as('B', { state: 'delivered' }), [], 'a sender sees the states of its own messages only');
    assert.deepEqual(await as('A', { state: 'delivered' }), [a1.sequence]);
    assert.deepEqual(await as(null, { receiver: 'R1', state: 'pending' }), [ab.sequence]);
    assert.deepEqual(await as(null, { receiver: 'R2', state: 'delivered' }), []);
    assert.deepEqual(await as(null, { state: 'dead' }), []);
  });

  test('getDeliveriesOf lists the deliveries of the given messages, resends included', async (store) => {
    const m1 = await commitOne(store, msg({ to: ['R1', 'R2'] }));
    const m2 = await commitOne(store, msg({ to: ['R3'] }));
    await commitOne(store, msg({ to: ['R4'] }));
    const [again] = await store.resend([{ sequence: m1.sequence, receiver: 'R2', mode: 'pull' }], T0 + 1);
    const got = await store.getDeliveriesOf([m2.sequence, m1.sequence, 987_654]);
    assert.deepEqual(got.map((d) => [d.sequence, d.receiver, d.resendOf !== null]), [
      [m1.sequence, 'R1', false], [m1.sequence, 'R2', false], [m1.sequence, 'R2', true], [m2.sequence, 'R3', false],
    ]);
    assert.deepEqual(got[2], again);
    assert.deepEqual(await store.getDeliveriesOf([]), []);
  });
}
