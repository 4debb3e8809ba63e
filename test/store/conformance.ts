/**
 * The Store conformance suite: every storage adapter (SQLite now, PostgreSQL next) runs this same
 * set of cases, like river's riverdriver/riverdrivertest. An adapter's test file calls
 * `runStoreConformance('MyStore', open)` where `open` makes a fresh, empty store for one case and
 * `cleanup` closes it and removes everything it wrote.
 *
 * The cases assume nothing about how an adapter numbers things (sequences, delivery ids): only
 * what the Store interface documents. All times are explicit epoch milliseconds; nothing here
 * reads the clock or sleeps.
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { StorageUnavailableError } from '../../src/store/storage-error.ts';
import { webhookIdFor } from '../../src/store/webhook-id.ts';
import type { ClaimedDelivery, MessageRecord, RouteRule } from '../../src/store/types.ts';
import {
  MIN, T0, attemptsOf, commitOne, dead, delivered, delivery, key, msg, oneDelivery, pullReceiver, pushReceiver, retry, sortedIds,
  storeCase, uid, type OpenStore,
} from './builders.ts';
import { deadLetterCases } from './conformance-dead-letters.ts';
import { orderingCases } from './conformance-ordering.ts';
import { resendCases } from './conformance-resends.ts';
import { searchCases } from './conformance-search.ts';

export type { OpenStore };

// ---------------------------------------------------------------------------------------------

export function runStoreConformance(name: string, open: OpenStore): void {
  const test = storeCase(open);

  describe(name, () => {
    // -----------------------------------------------------------------------------------------
    describe('commitMessages', () => {
      test('accepts a new message and returns its record and receivers', async (store) => {
        const m = msg({ to: ['RETAILER-A', ['RETAILER-B', 'pull']], time: '2024-01-01T00:00:00Z', extra: { nemversion: 'NEM12', priority: 3, test: true } });
        const r = (await store.commitMessages([m]))[0]!;
        assert.equal(r.kind, 'accepted');
        if (r.kind !== 'accepted') return;
        assert.deepEqual(r.receivers, ['RETAILER-A', 'RETAILER-B']);
        const rec = r.message;
        assert.ok(Number.isSafeInteger(rec.sequence) && rec.sequence > 0);
        const expected: MessageRecord = {
          sequence: rec.sequence, source: m.source, id: m.id, type: m.type, subject: m.subject, time: '2024-01-01T00:00:00Z',
          attributes: m.attributes, contentType: m.contentType, size: m.size, sha256: m.sha256, fingerprint: m.fingerprint,
          receivedAt: m.receivedAt, body: { kind: 'inline' },
        };
        assert.deepEqual(rec, expected);
        assert.deepEqual(await store.getMessage(rec.sequence), expected);
      });

      test('an empty call commits nothing', async (store) => {
        assert.deepEqual(await store.commitMessages([]), []);
        assert.deepEqual(await store.countDeliveriesByState(), []);
      });

      test('sequences are unique and increase in commit order (and in order within one call)', async (store) => {
        const seqs: number[] = [];
        for (let i = 0; i < 5; i++) seqs.push((await commitOne(store, msg())).sequence);
        const batch = await store.commitMessages([msg(), msg(), msg()]);
        for (const r of batch) seqs.push(r.message.sequence);
        seqs.push((await commitOne(store, msg())).sequence);
        for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!, `sequence ${seqs[i]} after ${seqs[i - 1]}`);
      });

      test('concurrent calls in the same tick get distinct sequences', async (store) => {
        const results = await Promise.all(Array.from({ length: 40 }, () => store.commitMessages([msg(), msg()])));
        const seqs = results.flat().map((r) => { assert.equal(r.kind, 'accepted'); return r.message.sequence; });
        assert.equal(new Set(seqs).size, 80);
        // Each call's own messages stay in order.
        for (const [a, b] of results) assert.ok(b!.message.sequence > a!.message.sequence);
        const after = await commitOne(store, msg());
        assert.ok(after.sequence > Math.max(...seqs), 'a later commit numbers after all of them');
      });

      test('the same (source, id) and content again is a duplicate with the first receipt; nothing new is delivered', async (store) => {
        const m = msg({ to: ['RETAILER-A', 'RETAILER-B'] });
        const first = await commitOne(store, m);
        // Same content, later receipt time, different routing: still the first receipt.
        const again = { ...m, receivedAt: T0 + MIN, receivers: [{ receiver: 'RETAILER-C', mode: 'push' as const }] };
        const r = (await store.commitMessages([again]))[0]!;
        assert.equal(r.kind, 'duplicate');
        if (r.kind !== 'duplicate') return;
        assert.deepEqual(r.message, first);
        assert.deepEqual(r.receivers, ['RETAILER-A', 'RETAILER-B']);
        assert.deepEqual((await store.getDeliveries(first.sequence)).map((d) => d.receiver), ['RETAILER-A', 'RETAILER-B']);
        assert.deepEqual(await store.countDeliveriesByState(), [
          { receiver: 'RETAILER-A', state: 'pending', count: 1 },
          { receiver: 'RETAILER-B', state: 'pending', count: 1 },
        ]);
      });

      test('the same (source, id) with different content is a conflict; the first stays unchanged', async (store) => {
        const m = msg();
        const first = await commitOne(store, m);
        const changed = msg({ id: m.id, source: m.source, body: Buffer.from('{"reading":"other"}'), to: ['RETAILER-C'] });
        assert.notEqual(changed.fingerprint, m.fingerprint);
        const r = (await store.commitMessages([changed]))[0]!;
        assert.equal(r.kind, 'conflict');
        assert.deepEqual(r.message, first);
        assert.deepEqual(await store.readInlineBody(first.sequence), m.inlineBody);
        assert.deepEqual((await store.getDeliveries(first.sequence)).map((d) => d.receiver), ['RETAILER-A']);
        assert.deepEqual((await store.countDeliveriesByState()).map((c) => c.receiver), ['RETAILER-A']);
      });

      test('the same id from another source is another message', async (store) => {
        const a = await commitOne(store, msg({ source: 'MDP-A', id: 'same' }));
        const b = await commitOne(store, msg({ source: 'MDP-B', id: 'same' }));
        assert.notEqual(a.sequence, b.sequence);
      });

      test('duplicates and conflicts within one call are judged against the earlier messages of the call', async (store) => {
        const m = msg();
        const other = msg({ id: m.id, body: Buffer.from('"different"') });
        const results = await store.commitMessages([m, { ...m }, other, msg()]);
        assert.deepEqual(results.map((r) => r.kind), ['accepted', 'duplicate', 'conflict', 'accepted']);
        assert.equal(results[1]!.message.sequence, results[0]!.message.sequence);
        assert.equal(results[2]!.message.sequence, results[0]!.message.sequence);
        assert.equal((await store.getDeliveries(results[0]!.message.sequence)).length, 1);
      });

      test('the same (source, id) from concurrent calls in one tick is accepted exactly once', async (store) => {
        const m = msg({ to: ['RETAILER-A', 'RETAILER-B'] });
        const other = msg({ id: m.id, body: Buffer.from('"different"') });
        const calls = [
          ...Array.from({ length: 5 }, () => store.commitMessages([{ ...m }])),
          store.commitMessages([other]),
        ];
        const results = (await Promise.all(calls)).flat();
        const kinds = results.map((r) => r.kind);
        assert.equal(kinds.filter((k) => k === 'accepted').length, 1, `kinds: ${kinds}`);
        const seq = results.find((r) => r.kind === 'accepted')!.message.sequence;
        for (const r of results) assert.equal(r.message.sequence, seq);
        // Whichever came first, the other content is a conflict (or the others are duplicates of it).
        const acceptedOther = results[5]!.kind === 'accepted';
        if (acceptedOther) assert.ok(results.slice(0, 5).every((r) => r.kind === 'conflict'));
        else { assert.equal(results[5]!.kind, 'conflict'); assert.ok(results.slice(0, 5).every((r) => r.kind !== 'conflict')); }
        const deliveries = (await store.countDeliveriesByState()).reduce((n, c) => n + c.count, 0);
        assert.equal(deliveries, acceptedOther ? 1 : 2);
      });

      test('creates one pending delivery per receiver, with its mode and a webhook id per (sequence, receiver)', async (store) => {
        const m = msg({ to: ['RETAILER-A', ['RETAILER-B', 'pull'], 'LNSP-C'], subject: 'NMI42', receivedAt: T0 + 123 });
        const rec = await commitOne(store, m);
        const ds = await store.getDeliveries(rec.sequence);
        assert.deepEqual(ds.map((d) => [d.receiver, d.mode]), [['RETAILER-A', 'push'], ['RETAILER-B', 'pull'], ['LNSP-C', 'push']]);
        for (const d of ds) {
          assert.deepEqual({ ...d, id: 0 }, {
            id: 0, sequence: rec.sequence, receiver: d.receiver, mode: d.mode, subject: 'NMI42', state: 'pending', attempts: 0,
            receives: 0, createdAt: T0 + 123, firstCreatedAt: T0 + 123, nextAttemptAt: T0 + 123, leaseUntil: null, leaseToken: null, lastAttemptAt: null,
            lastStatus: null, lastError: null, deliveredAt: null, deadAt: null, resendOf: null, webhookId: webhookIdFor(rec.sequence, d.receiver),
          });
          assert.deepEqual(await store.getDelivery(d.id), d);
        }
        assert.equal(new Set(ds.map((d) => d.id)).size, 3);
        assert.equal(new Set(ds.map((d) => d.webhookId)).size, 3, 'webhook ids differ per receiver');
        const rec2 = await commitOne(store, msg({ to: ['RETAILER-A'] }));
        const [d2] = await store.getDeliveries(rec2.sequence);
        assert.notEqual(d2!.webhookId, ds[0]!.webhookId, 'webhook ids differ per message');
      });

      test('a receiver named twice in one message gets one delivery', async (store) => {
        const m = msg({ to: ['RETAILER-A', 'RETAILER-B', 'RETAILER-A'] });
        const r = (await store.commitMessages([m]))[0]!;
        assert.equal(r.kind, 'accepted');
        if (r.kind !== 'accepted') return;
        assert.deepEqual(r.receivers, ['RETAILER-A', 'RETAILER-B']);
        assert.deepEqual((await store.getDeliveries(r.message.sequence)).map((d) => d.receiver), ['RETAILER-A', 'RETAILER-B']);
      });

      test('the webhook id of a delivery stays the same across retries', async (store) => {
        const d = await oneDelivery(store, 'RETAILER-A', 'push');
        const [c1] = await store.claimPush('RETAILER-A', 10, T0, T0 + MIN, 'tok');
        await store.recordPushResults([{ delivery: c1!, result: retry(T0, T0 + 1000) }]);
        const [c2] = await store.claimPush('RETAILER-A', 10, T0 + 1000, T0 + 2 * MIN, 'tok');
        assert.equal(c2!.id, d.id);
        assert.equal(c1!.webhookId, d.webhookId);
        assert.equal(c2!.webhookId, d.webhookId);
      });

      test('an inline body reads back byte-exact', async (store) => {
        const bytes = Buffer.concat([Buffer.from([0, 0xff, 0xfe, 0x80, 0x00, 0x0a, 0x0d]), randomBytes(70_000), Buffer.from([0])]);
        const rec = await commitOne(store, msg({ body: bytes, contentType: 'application/octet-stream' }));
        const back = await store.readInlineBody(rec.sequence);
        assert.ok(Buffer.isBuffer(back));
        assert.equal(back.length, bytes.length);
        assert.ok(back.equals(bytes));
        assert.equal(rec.size, bytes.length);
        assert.equal(rec.sha256, createHash('sha256').update(back).digest('hex'));
        const text = Buffer.from('NMI,2024,1.5\r\nä€😀\n', 'utf8');
        const rec2 = await commitOne(store, msg({ body: text, contentType: 'text/csv' }));
        assert.ok((await store.readInlineBody(rec2.sequence))!.equals(text));
      });

      test('an empty inline body reads back empty, not missing', async (store) => {
        const rec = await commitOne(store, msg({ body: Buffer.alloc(0) }));
        const back = await store.readInlineBody(rec.sequence);
        assert.ok(back !== null);
        assert.equal(back.length, 0);
      });

      test('a file body keeps its key and has no inline bytes', async (store) => {
        const rec = await commitOne(store, msg({ fileKey: 'bodies/ab/cd/123' }));
        assert.deepEqual(rec.body, { kind: 'file', key: 'bodies/ab/cd/123' });
        assert.deepEqual((await store.getMessage(rec.sequence))!.body, { kind: 'file', key: 'bodies/ab/cd/123' });
        assert.equal(await store.readInlineBody(rec.sequence), null);
      });

      test('a call is atomic: when one of its messages fails, none of them is stored', async (store) => {
        const good = msg({ to: ['RETAILER-A'] });
        const bad = msg({ to: ['RETAILER-A'] });
        (bad.attributes as Record<string, unknown>).broken = 10n; // cannot be serialised
        await assert.rejects(store.commitMessages([good, bad]));
        assert.deepEqual(await store.countDeliveriesByState(), []);
        const [again] = await store.commitMessages([good]);
        assert.equal(again!.kind, 'accepted', 'the good message was not kept from the failed call');
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('message reads', () => {
      test('unknown sequences read as null or empty', async (store) => {
        assert.equal(await store.getMessage(987654), null);
        assert.equal(await store.readInlineBody(987654), null);
        assert.deepEqual(await store.getDeliveries(987654), []);
        assert.deepEqual(await store.getAttempts(987654), []);
        assert.equal(await store.getDelivery(987654), null);
      });

      test('getDeliveries lists only that message\'s deliveries, in creation order', async (store) => {
        const a = await commitOne(store, msg({ to: ['R-3', 'R-1', 'R-2'] }));
        const b = await commitOne(store, msg({ to: ['R-1'] }));
        const da = await store.getDeliveries(a.sequence);
        assert.deepEqual(da.map((d) => d.receiver), ['R-3', 'R-1', 'R-2']);
        assert.ok(da[0]!.id < da[1]!.id && da[1]!.id < da[2]!.id);
        assert.ok(da.every((d) => d.sequence === a.sequence));
        assert.deepEqual((await store.getDeliveries(b.sequence)).map((d) => d.receiver), ['R-1']);
      });

      test('getAttempts lists every attempt of a message\'s deliveries in the order they were made', async (store) => {
        const rec = await commitOne(store, msg({ to: ['RETAILER-A', 'RETAILER-B'] }));
        const [a, b] = await store.getDeliveries(rec.sequence);
        const [ca] = await store.claimPush('RETAILER-A', 1, T0, T0 + MIN, 'tok');
        await store.recordPushResults([{ delivery: ca!, result: { kind: 'retry', status: 503, latencyMs: 42, at: T0 + 1, error: 'HTTP 503', nextAttemptAt: T0 + 1000 } }]);
        const [cb] = await store.claimPush('RETAILER-B', 1, T0 + 2, T0 + MIN, 'tok');
        await store.recordPushResults([{ delivery: cb!, result: { kind: 'delivered', status: 204, latencyMs: 7, at: T0 + 3 } }]);
        const [ca2] = await store.claimPush('RETAILER-A', 1, T0 + 1000, T0 + MIN, 'tok');
        await store.recordPushResults([{ delivery: ca2!, result: { kind: 'dead', status: null, latencyMs: 10_000, at: T0 + 1000, error: 'timeout; retry budget spent' } }]);
        assert.deepEqual(await store.getAttempts(rec.sequence), [
          { deliveryId: a!.id, receiver: 'RETAILER-A', startedAt: T0 + 1, outcome: 'failed', status: 503, latencyMs: 42, error: 'HTTP 503' },
          { deliveryId: b!.id, receiver: 'RETAILER-B', startedAt: T0 + 3, outcome: 'delivered', status: 204, latencyMs: 7, error: null },
          { deliveryId: a!.id, receiver: 'RETAILER-A', startedAt: T0 + 1000, outcome: 'dead', status: null, latencyMs: 10_000, error: 'timeout; retry budget spent' },
        ]);
        const other = await commitOne(store, msg());
        assert.deepEqual(await store.getAttempts(other.sequence), []);
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('participants', () => {
      test('upsert creates, then replaces; get returns the stored record with its receiver settings', async (store) => {
        const push = pushReceiver();
        const first = await store.upsertParticipant('RETAILER-A', 'Retailer A', push, T0);
        assert.equal(first.created, true);
        assert.deepEqual(first.record, { id: 'RETAILER-A', name: 'Retailer A', receiver: push, createdAt: T0, updatedAt: T0, deletedAt: null });
        assert.deepEqual(await store.getParticipant('RETAILER-A'), first.record);

        const pull = pullReceiver(3);
        const second = await store.upsertParticipant('RETAILER-A', 'Retailer A Ltd', pull, T0 + MIN);
        assert.equal(second.created, false);
        assert.deepEqual(second.record, { id: 'RETAILER-A', name: 'Retailer A Ltd', receiver: pull, createdAt: T0, updatedAt: T0 + MIN, deletedAt: null });
        assert.deepEqual(await store.getParticipant('RETAILER-A'), second.record);

        const sender = await store.upsertParticipant('MDP-A', 'Meter Data A', null, T0);
        assert.equal(sender.record.receiver, null);
        assert.equal(await store.getParticipant('NOBODY'), null);
        assert.equal(await store.getParticipant('NOBODY', true), null);
      });

      test('list returns the participants not deleted, by id', async (store) => {
        await store.upsertParticipant('b', 'B', null, T0);
        await store.upsertParticipant('a', 'A', pullReceiver(), T0);
        await store.upsertParticipant('c', 'C', pushReceiver(), T0);
        await store.deleteParticipant('c', T0 + 1);
        assert.deepEqual((await store.listParticipants()).map((p) => p.id), ['a', 'b']);
        assert.deepEqual(await store.listParticipants(), [await store.getParticipant('a'), await store.getParticipant('b')]);
      });

      test('delete is soft: keys are revoked, the record stays readable with includeDeleted, deliveries go on', async (store) => {
        await store.upsertParticipant('RETAILER-A', 'Retailer A', pushReceiver(), T0);
        const k1 = key({ participant: 'RETAILER-A' });
        const k2 = key({ participant: 'RETAILER-A' });
        const other = key({ participant: 'RETAILER-B' });
        for (const k of [k1, k2, other]) await store.insertKey(k);
        const d = await oneDelivery(store, 'RETAILER-A', 'push');

        assert.equal(await store.deleteParticipant('RETAILER-A', T0 + MIN), true);
        assert.equal(await store.getParticipant('RETAILER-A'), null);
        const gone = await store.getParticipant('RETAILER-A', true);
        assert.ok(gone);
        assert.equal(gone.deletedAt, T0 + MIN);
        assert.deepEqual(gone.receiver, pushReceiver(), 'the settings are kept for the deliveries already accepted');
        assert.deepEqual(await store.listParticipants(), []);
        for (const k of [k1, k2]) assert.equal((await store.findKeyByHash(k.hash))!.revokedAt, T0 + MIN);
        assert.equal((await store.findKeyByHash(other.hash))!.revokedAt, null, 'other participants\' keys are untouched');
        assert.deepEqual(await delivery(store, d.id), d, 'accepted deliveries are not dropped');
        assert.deepEqual(await store.receiversWithDuePush(T0, 10), ['RETAILER-A']);

        assert.equal(await store.deleteParticipant('RETAILER-A', T0 + 2 * MIN), false, 'deleting again');
        assert.equal((await store.getParticipant('RETAILER-A', true))!.deletedAt, T0 + MIN);
        assert.equal(await store.deleteParticipant('NOBODY', T0), false);
      });

      test('delete dead-letters the pull deliveries not yet acked (nobody can poll them any more); push and delivered ones are untouched', async (store) => {
        await store.upsertParticipant('INBOX-A', 'Inbox A', pullReceiver(), T0);
        const pending = await oneDelivery(store, 'INBOX-A', 'pull');
        const leasedOne = await oneDelivery(store, 'INBOX-A', 'pull');
        const acked = await oneDelivery(store, 'INBOX-A', 'pull');
        const leased = await store.leasePull('INBOX-A', 2, T0 + 1, T0 + 10 * MIN, 10);
        assert.deepEqual(leased.map((l) => l.id).sort(), [pending.id, leasedOne.id].sort());
        const [ackable] = await store.leasePull('INBOX-A', 1, T0 + 2, T0 + 10 * MIN, 10);
        assert.equal(ackable!.id, acked.id);
        assert.deepEqual((await store.ackPull('INBOX-A', [ackable!.leaseToken], T0 + 3)).map((r) => r.result), ['acked']);
        // One of the two stays leased, the other goes back to pending before the delete.
        await store.nackPull('INBOX-A', [leased.find((l) => l.id === pending.id)!.leaseToken], T0 + 4, T0 + 4);
        const pendingIds = [pending.id, leasedOne.id, acked.id];

        assert.equal(await store.deleteParticipant('INBOX-A', T0 + MIN), true);
        for (const id of pendingIds) {
          const d = await delivery(store, id);
          if (id === acked.id) assert.equal(d.state, 'delivered');
          else {
            assert.equal(d.state, 'dead', `delivery ${id} goes dead`);
            assert.equal(d.deadAt, T0 + MIN);
            assert.match(d.lastError ?? '', /deleted/);
            assert.equal(d.leaseToken, null);
          }
        }
      });

      test('a PUT after delete restores the participant as new; its old keys stay revoked', async (store) => {
        await store.upsertParticipant('RETAILER-A', 'Retailer A', null, T0);
        const k = key({ participant: 'RETAILER-A' });
        await store.insertKey(k);
        await store.deleteParticipant('RETAILER-A', T0 + MIN);
        const back = await store.upsertParticipant('RETAILER-A', 'Retailer A again', pullReceiver(), T0 + 2 * MIN);
        assert.equal(back.created, true);
        assert.deepEqual(back.record, { id: 'RETAILER-A', name: 'Retailer A again', receiver: pullReceiver(), createdAt: T0 + 2 * MIN, updatedAt: T0 + 2 * MIN, deletedAt: null });
        assert.deepEqual(await store.getParticipant('RETAILER-A'), back.record);
        assert.deepEqual((await store.listParticipants()).map((p) => p.id), ['RETAILER-A']);
        assert.equal((await store.findKeyByHash(k.hash))!.revokedAt, T0 + MIN);
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('keys', () => {
      test('insert, find by hash, list by participant', async (store) => {
        const a1 = key({ participant: 'A', createdAt: T0 });
        const a2 = key({ participant: 'A', createdAt: T0 + 1 });
        const b = key({ participant: 'B' });
        const admin = key({ participant: null, role: 'admin' });
        for (const k of [a2, b, admin, a1]) await store.insertKey(k);
        assert.deepEqual(await store.findKeyByHash(a1.hash), a1);
        assert.deepEqual(await store.findKeyByHash(admin.hash), admin);
        assert.equal(await store.findKeyByHash(randomBytes(32).toString('hex')), null);
        assert.deepEqual(await store.listKeys('A'), [a1, a2]);
        assert.deepEqual(await store.listKeys('B'), [b]);
        assert.deepEqual(await store.listKeys('C'), []);
      });

      test('a revoked key is still found, with revokedAt set; revoking needs the right participant', async (store) => {
        const k = key({ participant: 'A' });
        await store.insertKey(k);
        assert.equal(await store.revokeKey('B', k.id, T0 + 5), false, 'another participant cannot revoke it');
        assert.equal(await store.revokeKey(null, k.id, T0 + 5), false, 'null names admin keys only');
        assert.equal((await store.findKeyByHash(k.hash))!.revokedAt, null);
        assert.equal(await store.revokeKey('A', 'no-such-key', T0 + 5), false);
        assert.equal(await store.revokeKey('A', k.id, T0 + 6), true);
        assert.deepEqual(await store.findKeyByHash(k.hash), { ...k, revokedAt: T0 + 6 });
        assert.deepEqual(await store.listKeys('A'), [{ ...k, revokedAt: T0 + 6 }]);
        assert.equal(await store.revokeKey('A', k.id, T0 + 7), false, 'already revoked');
        assert.equal((await store.findKeyByHash(k.hash))!.revokedAt, T0 + 6, 'the first revocation time stays');
      });

      test('admin keys: counted while not revoked, revoked with a null participant', async (store) => {
        assert.equal(await store.countAdminKeys(), 0);
        const a = key({ participant: null, role: 'admin' });
        const b = key({ participant: null, role: 'admin' });
        await store.insertKey(a);
        await store.insertKey(b);
        await store.insertKey(key({ participant: 'A' }));
        assert.equal(await store.countAdminKeys(), 2);
        assert.equal(await store.revokeKey('A', a.id, T0), false);
        assert.equal(await store.revokeKey(null, a.id, T0), true);
        assert.equal(await store.countAdminKeys(), 1);
      });

      test('a second key with the same hash is refused', async (store) => {
        const k = key();
        await store.insertKey(k);
        await assert.rejects(store.insertKey({ ...k, id: uid('key') }));
        await assert.rejects(store.insertKey({ ...key(), id: k.id }), 'the same key id is refused too');
        assert.deepEqual(await store.listKeys(k.participant!), [k]);
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('routes', () => {
      test('start empty at version 0; each set makes a new version and get returns the latest', async (store) => {
        assert.deepEqual(await store.getRoutes(), { rules: [], version: 0 });
        const v1: RouteRule[] = [{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }];
        const v2: RouteRule[] = [
          { name: 'nem12', match: { type: ['au.nem12.interval', 'au.nem12.basic'], subject: { prefix: 'NMI' }, extensions: { nemversion: 'NEM12' } }, to: { roles: ['FRMP', 'LNSP'] }, validateSubject: 'nmi' },
          { name: 'copy', match: { source: 'MDP-A' }, to: { participants: ['AUDIT'], roles: ['MDP'] } },
        ];
        const a = await store.setRoutes(v1, T0);
        assert.ok(a > 0);
        assert.deepEqual(await store.getRoutes(), { rules: v1, version: a });
        const b = await store.setRoutes(v2, T0 + 1);
        assert.ok(b > a);
        assert.deepEqual(await store.getRoutes(), { rules: v2, version: b });
        const c = await store.setRoutes([], T0 + 2);
        assert.ok(c > b);
        assert.deepEqual(await store.getRoutes(), { rules: [], version: c });
      });

      test('sets in one tick get distinct versions, the last one wins', async (store) => {
        const sets = Array.from({ length: 5 }, (_, i) => store.setRoutes([{ name: `r${i}`, match: {}, to: { participants: [`P${i}`] } }], T0));
        const versions = await Promise.all(sets);
        assert.equal(new Set(versions).size, 5);
        const latest = await store.getRoutes();
        assert.equal(latest.version, Math.max(...versions));
        assert.equal(latest.rules[0]!.name, `r${versions.indexOf(latest.version)}`);
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('meter registry', () => {
      test('upsert returns how many; the same (meter, role, validFrom) replaces the entry', async (store) => {
        const n = await store.upsertMeters([
          { meter: 'NMI1', role: 'FRMP', participant: 'RETAILER-A', validFrom: null, validTo: T0 },
          { meter: 'NMI1', role: 'FRMP', participant: 'RETAILER-B', validFrom: T0, validTo: null },
          { meter: 'NMI1', role: 'LNSP', participant: 'LNSP-A', validFrom: null, validTo: null },
          { meter: 'NMI2', role: 'FRMP', participant: 'RETAILER-A', validFrom: null, validTo: null },
        ]);
        assert.equal(n, 4);
        assert.equal(await store.upsertMeters([{ meter: 'NMI1', role: 'FRMP', participant: 'RETAILER-C', validFrom: T0, validTo: T0 + MIN }]), 1);
        assert.deepEqual(await store.getMeterEntries('NMI1', null), [
          { meter: 'NMI1', role: 'FRMP', participant: 'RETAILER-A', validFrom: null, validTo: T0 },
          { meter: 'NMI1', role: 'FRMP', participant: 'RETAILER-C', validFrom: T0, validTo: T0 + MIN },
          { meter: 'NMI1', role: 'LNSP', participant: 'LNSP-A', validFrom: null, validTo: null },
        ]);
        assert.deepEqual(await store.getMeterEntries('NMI3', null), []);
        assert.equal(await store.upsertMeters([]), 0);
      });

      test('entries at a time: validFrom inclusive, validTo exclusive, null is open-ended', async (store) => {
        await store.upsertMeters([
          { meter: 'NMI1', role: 'FRMP', participant: 'OLD', validFrom: null, validTo: T0 },
          { meter: 'NMI1', role: 'FRMP', participant: 'NEW', validFrom: T0, validTo: null },
          { meter: 'NMI1', role: 'LNSP', participant: 'WINDOW', validFrom: T0 + 10, validTo: T0 + 20 },
          { meter: 'NMI2', role: 'FRMP', participant: 'OTHER', validFrom: null, validTo: null },
        ]);
        const at = async (t: number) => (await store.getMeterEntries('NMI1', t)).map((e) => `${e.role}:${e.participant}`).sort();
        assert.deepEqual(await at(T0 - 1), ['FRMP:OLD']);
        assert.deepEqual(await at(T0), ['FRMP:NEW'], 'validTo exclusive, validFrom inclusive');
        assert.deepEqual(await at(T0 + 9), ['FRMP:NEW']);
        assert.deepEqual(await at(T0 + 10), ['FRMP:NEW', 'LNSP:WINDOW']);
        assert.deepEqual(await at(T0 + 19), ['FRMP:NEW', 'LNSP:WINDOW']);
        assert.deepEqual(await at(T0 + 20), ['FRMP:NEW']);
        assert.deepEqual(await at(0), ['FRMP:OLD']);
        const full = await store.getMeterEntries('NMI1', T0 + 15);
        assert.deepEqual(full.find((e) => e.role === 'LNSP'), { meter: 'NMI1', role: 'LNSP', participant: 'WINDOW', validFrom: T0 + 10, validTo: T0 + 20 });
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('push delivery', () => {
      test('receiversWithDuePush names only receivers with due pending push deliveries', async (store) => {
        await oneDelivery(store, 'DUE-1', 'push', { receivedAt: T0 });
        await oneDelivery(store, 'DUE-1', 'push', { receivedAt: T0 - 5 });
        await oneDelivery(store, 'DUE-2', 'push', { receivedAt: T0 });
        await oneDelivery(store, 'LATER', 'push', { receivedAt: T0 + MIN });
        await oneDelivery(store, 'PULL', 'pull', { receivedAt: T0 });
        await oneDelivery(store, 'LEASED', 'push', { receivedAt: T0 });
        await store.claimPush('LEASED', 10, T0, T0 + MIN, 'tok');
        await oneDelivery(store, 'DONE', 'push', { receivedAt: T0 });
        const [c] = await store.claimPush('DONE', 10, T0, T0 + MIN, 'tok');
        await store.recordPushResults([{ delivery: c!, result: delivered(T0) }]);
        await oneDelivery(store, 'DEAD', 'push', { receivedAt: T0 });
        const [c2] = await store.claimPush('DEAD', 10, T0, T0 + MIN, 'tok');
        await store.recordPushResults([{ delivery: c2!, result: dead(T0) }]);

        assert.deepEqual((await store.receiversWithDuePush(T0, 100)).sort(), ['DUE-1', 'DUE-2']);
        assert.deepEqual((await store.receiversWithDuePush(T0 + MIN, 100)).sort(), ['DUE-1', 'DUE-2', 'LATER']);
        assert.deepEqual(await store.receiversWithDuePush(T0 - 100, 100), []);
        const limited = await store.receiversWithDuePush(T0 + MIN, 2);
        assert.equal(limited.length, 2);
        assert.equal(new Set(limited).size, 2);
      });

      test('claimPush leases due deliveries: limit, state, lease, token, attempt count', async (store) => {
        const made = [];
        for (let i = 0; i < 5; i++) made.push(await oneDelivery(store, 'RETAILER-A', 'push', { receivedAt: T0 + i }));
        const claimed = await store.claimPush('RETAILER-A', 3, T0 + 100, T0 + MIN, 'proc-1');
        assert.equal(claimed.length, 3);
        assert.deepEqual(sortedIds(claimed), sortedIds(made.slice(0, 3)));
        for (const c of claimed) {
          assert.equal(c.state, 'delivering');
          assert.equal(c.leaseUntil, T0 + MIN);
          assert.equal(typeof c.leaseToken, 'string');
          assert.ok(c.leaseToken.length > 0);
          assert.equal(c.attempts, 1);
          assert.equal(c.lastAttemptAt, T0 + 100);
          assert.deepEqual(await delivery(store, c.id), c, 'the claim is what is stored');
        }
        assert.equal(new Set(claimed.map((c) => c.leaseToken)).size, 3, 'a lease token per delivery');
        for (let i = 1; i < claimed.length; i++) assert.ok(claimed[i]!.sequence > claimed[i - 1]!.sequence, 'returned in sequence order');
        const rest = await store.claimPush('RETAILER-A', 10, T0 + 100, T0 + MIN, 'proc-2');
        assert.deepEqual(sortedIds(rest), sortedIds(made.slice(3)), 'a claimed delivery is not claimed again');
        assert.deepEqual(await store.claimPush('RETAILER-A', 10, T0 + 200, T0 + MIN, 'proc-3'), []);
      });

      test('claimPush takes nothing not yet due, nothing of other receivers, nothing pull, and nothing for a limit of 0', async (store) => {
        const later = await oneDelivery(store, 'RETAILER-A', 'push', { receivedAt: T0 + MIN });
        await oneDelivery(store, 'RETAILER-B', 'push', { receivedAt: T0 });
        await oneDelivery(store, 'RETAILER-A', 'pull', { receivedAt: T0 });
        assert.deepEqual(await store.claimPush('RETAILER-A', 10, T0, T0 + MIN, 'tok'), []);
        assert.deepEqual(await store.claimPush('RETAILER-A', 0, T0 + MIN, T0 + 2 * MIN, 'tok'), []);
        assert.deepEqual(await store.claimPush('RETAILER-A', -1, T0 + MIN, T0 + 2 * MIN, 'tok'), [], 'a negative limit is not "no limit"');
        assert.deepEqual(await store.receiversWithDuePush(T0 + MIN, 0), []);
        const [c] = await store.claimPush('RETAILER-A', 10, T0 + MIN, T0 + 2 * MIN, 'tok');
        assert.equal(c!.id, later.id, 'due at its next attempt time exactly');
      });

      test('claimPush takes the oldest due first', async (store) => {
        // Committed in one order, due in another: due time decides, then creation.
        const d30 = await oneDelivery(store, 'RETAILER-A', 'push', { receivedAt: T0 + 30 });
        const d10 = await oneDelivery(store, 'RETAILER-A', 'push', { receivedAt: T0 + 10 });
        const d20 = await oneDelivery(store, 'RETAILER-A', 'push', { receivedAt: T0 + 20 });
        const d10b = await oneDelivery(store, 'RETAILER-A', 'push', { receivedAt: T0 + 10 });
        const first = await store.claimPush('RETAILER-A', 2, T0 + 100, T0 + MIN, 'tok');
        assert.deepEqual(sortedIds(first), sortedIds([d10, d10b]));
        const second = await store.claimPush('RETAILER-A', 1, T0 + 100, T0 + MIN, 'tok');
        assert.deepEqual(second.map((d) => d.id), [d20.id]);
        const third = await store.claimPush('RETAILER-A', 1, T0 + 100, T0 + MIN, 'tok');
        assert.deepEqual(third.map((d) => d.id), [d30.id]);
      });

      test('concurrent claims in one tick never share a delivery', async (store) => {
        for (let i = 0; i < 20; i++) await oneDelivery(store, 'RETAILER-A', 'push', { receivedAt: T0 });
        const claims = await Promise.all(Array.from({ length: 6 }, (_, i) => store.claimPush('RETAILER-A', 5, T0, T0 + MIN, `proc-${i}`)));
        const ids = claims.flat().map((c) => c.id);
        assert.equal(ids.length, 20);
        assert.equal(new Set(ids).size, 20);
      });

      test('recordPushResults: delivered', async (store) => {
        const d = await oneDelivery(store, 'RETAILER-A', 'push');
        const [c] = await store.claimPush('RETAILER-A', 1, T0, T0 + MIN, 'tok');
        assert.deepEqual(await store.recordPushResults([{ delivery: c!, result: { kind: 'delivered', status: 202, latencyMs: 12, at: T0 + 1 } }]), [true]);
        const after = await delivery(store, d.id);
        assert.equal(after.state, 'delivered');
        assert.equal(after.lastStatus, 202);
        assert.equal(after.lastError, null);
        assert.ok(after.deliveredAt !== null && after.deliveredAt >= T0 + 1 && after.deliveredAt <= T0 + 13, 'delivered at the end of the attempt');
        assert.equal(after.leaseToken, null);
        assert.equal(after.leaseUntil, null);
        assert.equal(after.attempts, 1);
        assert.equal(after.deadAt, null);
        assert.deepEqual(await attemptsOf(store, d), [{ deliveryId: d.id, receiver: 'RETAILER-A', startedAt: T0 + 1, outcome: 'delivered', status: 202, latencyMs: 12, error: null }]);
        assert.deepEqual(await store.receiversWithDuePush(T0 + MIN, 10), []);
        assert.deepEqual(await store.claimPush('RETAILER-A', 10, T0 + 10 * MIN, T0 + 11 * MIN, 'tok'), [], 'delivered is done');
      });

      test('recordPushResults: retry goes back to pending until its next attempt time', async (store) => {
        const d = await oneDelivery(store, 'RETAILER-A', 'push');
        const [c] = await store.claimPush('RETAILER-A', 1, T0, T0 + MIN, 'tok');
        assert.deepEqual(await store.recordPushResults([{ delivery: c!, result: retry(T0, T0 + 30_000, 503) }]), [true]);
        const after = await delivery(store, d.id);
        assert.equal(after.state, 'pending');
        assert.equal(after.nextAttemptAt, T0 + 30_000);
        assert.equal(after.lastStatus, 503);
        assert.equal(after.lastError, 'HTTP 503');
        assert.equal(after.leaseToken, null);
        assert.equal(after.leaseUntil, null);
        assert.equal(after.deliveredAt, null);
        assert.equal(await store.nextPushDueAt(), T0 + 30_000);
        assert.deepEqual(await store.receiversWithDuePush(T0 + 29_999, 10), []);
        assert.deepEqual(await store.claimPush('RETAILER-A', 1, T0 + 29_999, T0 + MIN, 'tok'), []);
        const [again] = await store.claimPush('RETAILER-A', 1, T0 + 30_000, T0 + 2 * MIN, 'tok');
        assert.equal(again!.id, d.id);
        assert.equal(again!.attempts, 2);
        assert.notEqual(again!.leaseToken, c!.leaseToken, 'a new lease, a new token');
        const attempts = await attemptsOf(store, d);
        assert.deepEqual(attempts.map((a) => [a.outcome, a.status, a.error]), [['failed', 503, 'HTTP 503']]);
        const noStatus = await store.recordPushResults([{ delivery: again!, result: retry(T0 + 30_000, T0 + 90_000, null) }]);
        assert.deepEqual(noStatus, [true]);
        assert.equal((await delivery(store, d.id)).lastStatus, null);
      });

      test('recordPushResults: dead', async (store) => {
        const d = await oneDelivery(store, 'RETAILER-A', 'push');
        const [c] = await store.claimPush('RETAILER-A', 1, T0, T0 + MIN, 'tok');
        assert.deepEqual(await store.recordPushResults([{ delivery: c!, result: { kind: 'dead', status: 410, latencyMs: 3, at: T0 + 1, error: 'HTTP 410 Gone' } }]), [true]);
        const after = await delivery(store, d.id);
        assert.equal(after.state, 'dead');
        assert.ok(after.deadAt !== null && after.deadAt >= T0 + 1 && after.deadAt <= T0 + 4);
        assert.equal(after.lastStatus, 410);
        assert.equal(after.lastError, 'HTTP 410 Gone');
        assert.equal(after.leaseToken, null);
        assert.equal(after.deliveredAt, null);
        assert.deepEqual((await attemptsOf(store, d)).map((a) => a.outcome), ['dead']);
        assert.equal(await store.nextPushDueAt(), null);
        assert.deepEqual(await store.claimPush('RETAILER-A', 10, T0 + 10 * MIN, T0 + 11 * MIN, 'tok'), []);
      });

      test('recordPushResults: a result on a lost lease is ignored and reported false', async (store) => {
        const d = await oneDelivery(store, 'RETAILER-A', 'push');
        const [first] = await store.claimPush('RETAILER-A', 1, T0, T0 + 1000, 'proc-1');
        // The lease expires, is rescued and claimed again by the same process (same token argument).
        assert.equal(await store.rescueExpiredPush(T0 + 1000), 1);
        const [second] = await store.claimPush('RETAILER-A', 1, T0 + 1000, T0 + MIN, 'proc-1');
        assert.equal(second!.id, d.id);
        assert.notEqual(second!.leaseToken, first!.leaseToken, 'every claim has its own lease token');
        assert.deepEqual(await store.recordPushResults([{ delivery: first!, result: delivered(T0 + 500) }]), [false]);
        const still = await delivery(store, d.id);
        assert.equal(still.state, 'delivering', 'the stale result changed nothing');
        assert.equal(still.leaseToken, second!.leaseToken);
        assert.equal(still.deliveredAt, null);
        // A mixed batch: per-item answers; the good one is recorded.
        const other = await oneDelivery(store, 'RETAILER-A', 'push', { receivedAt: T0 + 1000 });
        const [third] = await store.claimPush('RETAILER-A', 1, T0 + 1000, T0 + MIN, 'proc-2');
        assert.equal(third!.id, other.id);
        const forged: ClaimedDelivery = { ...third!, leaseToken: `${third!.leaseToken}x` };
        assert.deepEqual(await store.recordPushResults([
          { delivery: second!, result: retry(T0 + 1000, T0 + 5000) },
          { delivery: first!, result: dead(T0 + 1000) },
          { delivery: forged, result: delivered(T0 + 1000) },
          { delivery: third!, result: delivered(T0 + 1001) },
        ]), [true, false, false, true]);
        assert.equal((await delivery(store, d.id)).state, 'pending');
        assert.equal((await delivery(store, other.id)).state, 'delivered');
        // Recording the same lease twice: the second is stale.
        assert.deepEqual(await store.recordPushResults([{ delivery: third!, result: dead(T0 + 2000) }]), [false]);
        assert.equal((await delivery(store, other.id)).state, 'delivered');
        // One attempt row per claim: the rescued claim as lease-lost, stale results add none.
        assert.deepEqual((await attemptsOf(store, d)).map((a) => a.outcome), ['lease-lost', 'failed']);
        assert.deepEqual((await attemptsOf(store, other)).map((a) => a.outcome), ['delivered']);
        assert.equal((await delivery(store, d.id)).attempts, 2);
      });

      test('releasePushClaims gives back claims not attempted: pending, due as before, the attempt uncounted; stale claims are left alone', async (store) => {
        const a = await oneDelivery(store, 'RETAILER-A', 'push', { receivedAt: T0 });
        const b = await oneDelivery(store, 'RETAILER-A', 'push', { receivedAt: T0 + 1 });
        const c = await oneDelivery(store, 'RETAILER-A', 'push', { receivedAt: T0 + 2 });
        const [ca, cb, cc] = await store.claimPush('RETAILER-A', 3, T0 + 100, T0 + MIN, 'proc-1');
        assert.deepEqual([ca!.id, cb!.id, cc!.id], [a.id, b.id, c.id]);
        await store.recordPushResults([{ delivery: cc!, result: delivered(T0 + 100) }]);
        const forged: ClaimedDelivery = { ...cb!, leaseToken: `${cb!.leaseToken}x` };
        assert.equal(await store.releasePushClaims([ca!, forged, cc!]), 1, 'only the live claim is given back');
        const ra = await delivery(store, a.id);
        assert.equal(ra.state, 'pending');
        assert.equal(ra.attempts, 0, 'the claim no longer counts as an attempt');
        assert.equal(ra.leaseToken, null);
        assert.equal(ra.leaseUntil, null);
        assert.equal(ra.nextAttemptAt, T0, 'due when it was');
        assert.deepEqual(await attemptsOf(store, a), [], 'no attempt row');
        assert.equal((await delivery(store, b.id)).state, 'delivering', 'a wrong token gives back nothing');
        assert.equal((await delivery(store, c.id)).state, 'delivered', 'a recorded claim is not given back');
        assert.equal(await store.releasePushClaims([ca!]), 0, 'nothing twice');
        assert.equal(await store.releasePushClaims([]), 0);
        const [again] = await store.claimPush('RETAILER-A', 1, T0 + 200, T0 + MIN, 'proc-1');
        assert.equal(again!.id, a.id, 'claimable again at once');
        assert.equal(again!.attempts, 1);
      });

      test('nextPushDueAt is the earliest pending push delivery\'s next attempt time', async (store) => {
        assert.equal(await store.nextPushDueAt(), null);
        await oneDelivery(store, 'RETAILER-A', 'pull', { receivedAt: T0 - 50 });
        assert.equal(await store.nextPushDueAt(), null, 'pull deliveries do not count');
        await oneDelivery(store, 'RETAILER-A', 'push', { receivedAt: T0 + 20 });
        await oneDelivery(store, 'RETAILER-B', 'push', { receivedAt: T0 + 10 });
        assert.equal(await store.nextPushDueAt(), T0 + 10);
        await store.claimPush('RETAILER-B', 1, T0 + 10, T0 + MIN, 'tok');
        assert.equal(await store.nextPushDueAt(), T0 + 20, 'leased deliveries do not count');
      });

      test('rescueExpiredPush returns expired push leases to pending and leaves the others', async (store) => {
        const a = await oneDelivery(store, 'RETAILER-A', 'push');
        const b = await oneDelivery(store, 'RETAILER-B', 'push');
        const p = await oneDelivery(store, 'RETAILER-C', 'pull');
        await store.claimPush('RETAILER-A', 1, T0, T0 + 1000, 'tok');
        const [cb] = await store.claimPush('RETAILER-B', 1, T0, T0 + 5000, 'tok');
        await store.leasePull('RETAILER-C', 1, T0, T0 + 1000, 10);
        assert.equal(await store.rescueExpiredPush(T0 + 999), 0, 'not yet expired');
        assert.equal(await store.rescueExpiredPush(T0 + 1000), 1, 'expired at leaseUntil');
        const ra = await delivery(store, a.id);
        assert.equal(ra.state, 'pending');
        assert.equal(ra.leaseToken, null);
        assert.equal(ra.leaseUntil, null);
        assert.ok(ra.nextAttemptAt <= T0 + 1000, 'due again at once');
        assert.equal(ra.attempts, 1, 'the lost attempt still counts');
        assert.deepEqual((await attemptsOf(store, a)).map((x) => [x.outcome, x.startedAt]), [['lease-lost', T0 + 1000]]);
        assert.deepEqual(await delivery(store, b.id), cb, 'unexpired lease untouched');
        assert.equal((await delivery(store, p.id)).state, 'delivering', 'pull leases are not push leases');
        assert.deepEqual(await store.receiversWithDuePush(T0 + 1000, 10), ['RETAILER-A']);
        assert.equal(await store.rescueExpiredPush(T0 + 1000), 0, 'nothing twice');
      });

      test('releaseAllPushLeases returns every push lease to pending, expired or not', async (store) => {
        const a = await oneDelivery(store, 'RETAILER-A', 'push');
        const b = await oneDelivery(store, 'RETAILER-A', 'push');
        const p = await oneDelivery(store, 'RETAILER-C', 'pull');
        const done = await oneDelivery(store, 'RETAILER-D', 'push');
        await store.claimPush('RETAILER-A', 2, T0, T0 + 10 * MIN, 'tok');
        await store.leasePull('RETAILER-C', 1, T0, T0 + 10 * MIN, 10);
        const [cd] = await store.claimPush('RETAILER-D', 1, T0, T0 + 10 * MIN, 'tok');
        await store.recordPushResults([{ delivery: cd!, result: delivered(T0) }]);
        assert.equal(await store.releaseAllPushLeases(T0 + 1), 2);
        for (const id of [a.id, b.id]) {
          const d = await delivery(store, id);
          assert.equal(d.state, 'pending');
          assert.equal(d.leaseToken, null);
          assert.equal(d.leaseUntil, null);
          assert.ok(d.nextAttemptAt <= T0 + 1);
          assert.deepEqual((await attemptsOf(store, d)).map((x) => x.outcome), ['lease-lost']);
        }
        assert.equal((await delivery(store, p.id)).state, 'delivering');
        assert.equal((await delivery(store, done.id)).state, 'delivered');
        assert.equal(await store.releaseAllPushLeases(T0 + 2), 0);
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('pull inbox', () => {
      test('leasePull leases up to max due pull deliveries with unique, unguessable tokens', async (store) => {
        const made = [];
        for (let i = 0; i < 6; i++) made.push(await oneDelivery(store, 'RETAILER-A', 'pull', { receivedAt: T0 + i }));
        await oneDelivery(store, 'RETAILER-A', 'push', { receivedAt: T0 });
        await oneDelivery(store, 'RETAILER-B', 'pull', { receivedAt: T0 });
        await oneDelivery(store, 'RETAILER-A', 'pull', { receivedAt: T0 + MIN });
        const leased = await store.leasePull('RETAILER-A', 4, T0 + 100, T0 + 30_000, 10);
        assert.deepEqual(sortedIds(leased), sortedIds(made.slice(0, 4)), 'oldest first, max honoured');
        for (let i = 1; i < leased.length; i++) assert.ok(leased[i]!.sequence > leased[i - 1]!.sequence, 'returned in sequence order');
        for (const d of leased) {
          assert.equal(d.state, 'delivering');
          assert.equal(d.receives, 1);
          assert.equal(d.attempts, 1);
          assert.equal(d.leaseUntil, T0 + 30_000);
          assert.equal(d.lastAttemptAt, T0 + 100);
          assert.deepEqual(await delivery(store, d.id), d);
          assert.deepEqual((await attemptsOf(store, d)).map((a) => [a.outcome, a.startedAt]), [['leased', T0 + 100]]);
        }
        const tokens = leased.map((d) => d.leaseToken);
        assert.equal(new Set(tokens).size, tokens.length);
        // Unguessable: beyond what all tokens share, each has at least 128 bits' worth of its own.
        let prefix = 0;
        while (tokens.every((t) => t[prefix] === tokens[0]![prefix]) && prefix < tokens[0]!.length) prefix++;
        let suffix = 0;
        while (tokens.every((t) => t.at(-1 - suffix) === tokens[0]!.at(-1 - suffix)) && suffix < tokens[0]!.length) suffix++;
        for (const t of tokens) assert.ok(t.length - prefix - suffix >= 21, `token ${t} has too little of its own (want ~128 random bits)`);

        const rest = await store.leasePull('RETAILER-A', 10, T0 + 100, T0 + 30_000, 10);
        assert.deepEqual(sortedIds(rest), sortedIds(made.slice(4)), 'leased deliveries are invisible');
        assert.deepEqual(await store.leasePull('RETAILER-A', 10, T0 + 100, T0 + 30_000, 10), []);
        assert.deepEqual(await store.leasePull('RETAILER-A', 0, T0 + MIN, T0 + 2 * MIN, 10), [], 'max 0 leases nothing');
        assert.deepEqual(await store.leasePull('RETAILER-A', -1, T0 + MIN, T0 + 2 * MIN, 10), [], 'a negative max is not "no limit"');
        assert.equal(new Set([...tokens, ...rest.map((d) => d.leaseToken)]).size, 6);
      });

      test('ackPull marks delivered; unknown, repeated, wrong receiver or expired leases answer expired', async (store) => {
        const a = await oneDelivery(store, 'RETAILER-A', 'pull');
        const b = await oneDelivery(store, 'RETAILER-A', 'pull');
        const [la, lb] = await store.leasePull('RETAILER-A', 2, T0, T0 + 30_000, 10);
        assert.deepEqual(await store.ackPull('RETAILER-B', [la!.leaseToken], T0 + 1), [{ lease: la!.leaseToken, result: 'expired' }], 'another receiver');
        assert.equal((await delivery(store, la!.id)).state, 'delivering');
        assert.deepEqual(await store.ackPull('RETAILER-A', [la!.leaseToken, 'nonsense', la!.leaseToken], T0 + 2), [
          { lease: la!.leaseToken, result: 'acked' },
          { lease: 'nonsense', result: 'expired' },
          { lease: la!.leaseToken, result: 'expired' },
        ]);
        const ackedA = await delivery(store, a.id);
        assert.equal(ackedA.state, 'delivered');
        assert.equal(ackedA.deliveredAt, T0 + 2);
        assert.equal(ackedA.leaseToken, null);
        assert.deepEqual((await attemptsOf(store, ackedA)).map((x) => [x.outcome, x.startedAt]), [['leased', T0], ['acked', T0 + 2]]);
        assert.deepEqual(await store.ackPull('RETAILER-A', [lb!.leaseToken], T0 + 30_000), [{ lease: lb!.leaseToken, result: 'expired' }], 'expired at leaseUntil');
        assert.equal((await delivery(store, b.id)).state, 'delivering', 'an expired ack changes nothing (the keeper releases it)');
        assert.deepEqual(await store.ackPull('RETAILER-A', [], T0), []);
      });

      test('nackPull puts the delivery back to pending at the given time', async (store) => {
        const a = await oneDelivery(store, 'RETAILER-A', 'pull');
        const [la] = await store.leasePull('RETAILER-A', 1, T0, T0 + 30_000, 10);
        assert.deepEqual(await store.nackPull('RETAILER-B', [la!.leaseToken], T0 + 1, T0 + 1), [{ lease: la!.leaseToken, result: 'expired' }]);
        assert.deepEqual(await store.nackPull('RETAILER-A', [la!.leaseToken, 'nonsense'], T0 + 1, T0 + 10_000), [
          { lease: la!.leaseToken, result: 'acked' }, { lease: 'nonsense', result: 'expired' },
        ]);
        const after = await delivery(store, a.id);
        assert.equal(after.state, 'pending');
        assert.equal(after.nextAttemptAt, T0 + 10_000);
        assert.equal(after.leaseToken, null);
        assert.equal(after.deliveredAt, null);
        assert.deepEqual((await attemptsOf(store, after)).map((x) => x.outcome), ['leased', 'nacked']);
        assert.deepEqual(await store.leasePull('RETAILER-A', 1, T0 + 9_999, T0 + 40_000, 10), []);
        const [again] = await store.leasePull('RETAILER-A', 1, T0 + 10_000, T0 + 40_000, 10);
        assert.equal(again!.id, a.id);
        assert.equal(again!.receives, 2);
        assert.notEqual(again!.leaseToken, la!.leaseToken);
        assert.deepEqual(await store.nackPull('RETAILER-A', [la!.leaseToken], T0 + 10_001, T0 + 10_001), [{ lease: la!.leaseToken, result: 'expired' }], 'the old lease is gone');
        assert.deepEqual(await store.nackPull('RETAILER-A', [again!.leaseToken], T0 + 40_000, T0 + 40_000), [{ lease: again!.leaseToken, result: 'expired' }], 'expired at leaseUntil');
      });

      test('expirePullLeases: back to pending, or dead at the receive limit, with attempt rows', async (store) => {
        const a = await oneDelivery(store, 'RETAILER-A', 'pull');
        const b = await oneDelivery(store, 'RETAILER-B', 'pull');
        const c = await oneDelivery(store, 'RETAILER-A', 'pull', { receivedAt: T0 + 1 });
        const push = await oneDelivery(store, 'RETAILER-P', 'push');
        await store.leasePull('RETAILER-A', 1, T0, T0 + 1000, 2);
        await store.leasePull('RETAILER-B', 1, T0, T0 + 1000, 1);
        await store.leasePull('RETAILER-A', 1, T0 + 1, T0 + 5000, 2);
        await store.claimPush('RETAILER-P', 1, T0, T0 + 1000, 'tok');
        const asked: string[] = [];
        const limits = (r: string) => { asked.push(r); return r === 'RETAILER-B' ? 1 : 2; };

        assert.deepEqual(await store.expirePullLeases(T0 + 999, limits), { released: 0, dead: [] });
        const first = await store.expirePullLeases(T0 + 1000, limits);
        assert.equal(first.released, 1);
        assert.equal(first.dead.length, 1);
        assert.ok(asked.includes('RETAILER-A') && asked.includes('RETAILER-B'));
        const deadB = first.dead[0]!;
        assert.equal(deadB.id, b.id);
        assert.equal(deadB.state, 'dead');
        assert.equal(deadB.deadAt, T0 + 1000);
        assert.equal(deadB.leaseToken, null);
        assert.ok(deadB.lastError);
        assert.deepEqual(await delivery(store, b.id), deadB);
        assert.deepEqual((await attemptsOf(store, b)).map((x) => x.outcome), ['leased', 'dead']);

        const ra = await delivery(store, a.id);
        assert.equal(ra.state, 'pending');
        assert.equal(ra.leaseToken, null);
        assert.ok(ra.nextAttemptAt <= T0 + 1000);
        assert.ok(ra.lastError);
        assert.deepEqual((await attemptsOf(store, a)).map((x) => x.outcome), ['leased', 'expired']);
        assert.equal((await delivery(store, c.id)).state, 'delivering', 'unexpired lease untouched');
        assert.equal((await delivery(store, push.id)).state, 'delivering', 'push leases untouched');

        // Second lease of a reaches the limit of 2; when it expires too, a goes dead.
        const [again] = await store.leasePull('RETAILER-A', 1, T0 + 1000, T0 + 2000, 2);
        assert.equal(again!.id, a.id);
        assert.equal(again!.receives, 2);
        const second = await store.expirePullLeases(T0 + 2000, limits);
        assert.deepEqual(second.dead.map((d) => d.id), [a.id]);
        assert.equal(second.released, 0);
        assert.equal((await delivery(store, a.id)).state, 'dead');
        assert.deepEqual(await store.expirePullLeases(T0 + 2000, limits), { released: 0, dead: [] });
      });

      test('a delivery nacked at its receive limit is not leased again: it goes dead', async (store) => {
        const a = await oneDelivery(store, 'RETAILER-A', 'pull');
        const b = await oneDelivery(store, 'RETAILER-A', 'pull', { receivedAt: T0 + 30 });
        for (let i = 1; i <= 2; i++) {
          const leased = await store.leasePull('RETAILER-A', 1, T0 + i * 10, T0 + MIN, 2);
          assert.deepEqual(leased.map((d) => [d.id, d.receives]), [[a.id, i]]);
          await store.nackPull('RETAILER-A', [leased[0]!.leaseToken], T0 + i * 10, T0 + i * 10);
        }
        const third = await store.leasePull('RETAILER-A', 1, T0 + 30, T0 + MIN, 2);
        assert.deepEqual(third.map((d) => d.id), [b.id], 'the exhausted one is skipped, the next one served');
        const da = await delivery(store, a.id);
        assert.equal(da.state, 'dead');
        assert.equal(da.receives, 2, 'never leased more than the limit');
        assert.equal(da.deadAt, T0 + 30);
        assert.ok(da.lastError);
        assert.deepEqual((await attemptsOf(store, da)).map((x) => x.outcome), ['leased', 'nacked', 'leased', 'nacked', 'dead']);
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('maintenance and counts', () => {
      test('setPendingMode switches only the receiver\'s pending deliveries', async (store) => {
        const p1 = await oneDelivery(store, 'RETAILER-A', 'push');
        const p2 = await oneDelivery(store, 'RETAILER-A', 'push');
        const leased = await oneDelivery(store, 'RETAILER-A', 'push', { receivedAt: T0 - 1 });
        const other = await oneDelivery(store, 'RETAILER-B', 'push');
        await store.claimPush('RETAILER-A', 1, T0 - 1, T0 + MIN, 'tok');
        assert.equal(await store.setPendingMode('RETAILER-A', 'pull'), 2);
        assert.equal((await delivery(store, p1.id)).mode, 'pull');
        assert.equal((await delivery(store, p2.id)).mode, 'pull');
        assert.equal((await delivery(store, leased.id)).mode, 'push', 'in flight: left alone');
        assert.equal((await delivery(store, other.id)).mode, 'push');
        assert.deepEqual(await store.receiversWithDuePush(T0, 10), ['RETAILER-B']);
        assert.equal((await store.leasePull('RETAILER-A', 10, T0, T0 + MIN, 10)).length, 2);
        assert.equal(await store.setPendingMode('RETAILER-A', 'push'), 0, 'nothing pending any more');
        assert.equal(await store.setPendingMode('RETAILER-B', 'push'), 0, 'already in that mode: nothing to switch');
      });

      test('countDeliveriesByState counts per receiver and state', async (store) => {
        for (let i = 0; i < 3; i++) await oneDelivery(store, 'RETAILER-A', 'push');
        await oneDelivery(store, 'RETAILER-B', 'pull');
        const [c1, c2] = await store.claimPush('RETAILER-A', 2, T0, T0 + MIN, 'tok');
        await store.recordPushResults([{ delivery: c1!, result: delivered(T0) }, { delivery: c2!, result: dead(T0) }]);
        await oneDelivery(store, 'RETAILER-A', 'push');
        await store.claimPush('RETAILER-A', 1, T0, T0 + MIN, 'tok');
        const counts = await store.countDeliveriesByState();
        const sorted = [...counts].sort((x, y) => x.receiver.localeCompare(y.receiver) || x.state.localeCompare(y.state));
        assert.deepEqual(sorted, [
          { receiver: 'RETAILER-A', state: 'dead', count: 1 },
          { receiver: 'RETAILER-A', state: 'delivered', count: 1 },
          { receiver: 'RETAILER-A', state: 'delivering', count: 1 },
          { receiver: 'RETAILER-A', state: 'pending', count: 1 },
          { receiver: 'RETAILER-B', state: 'pending', count: 1 },
        ]);
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('concurrent writes', () => {
      test('writes issued in one tick all succeed', async (store) => {
        const writes: Array<Promise<unknown>> = [];
        const messages = Array.from({ length: 100 }, () => msg({ to: ['RETAILER-A', ['RETAILER-B', 'pull']] }));
        for (const m of messages) writes.push(store.commitMessages([m]));
        const keys = Array.from({ length: 10 }, () => key());
        for (const k of keys) writes.push(store.insertKey(k));
        for (let i = 0; i < 10; i++) writes.push(store.upsertParticipant(`P-${i}`, `P ${i}`, null, T0));
        writes.push(store.setRoutes([{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }], T0));
        writes.push(store.upsertMeters([{ meter: 'NMI1', role: 'FRMP', participant: 'RETAILER-A', validFrom: null, validTo: null }]));
        const settled = await Promise.allSettled(writes);
        assert.deepEqual(settled.filter((s) => s.status === 'rejected'), []);
        assert.equal((await store.listParticipants()).length, 10);
        for (const k of keys) assert.ok(await store.findKeyByHash(k.hash));
        assert.equal((await store.getRoutes()).rules.length, 1);
        assert.equal((await store.getMeterEntries('NMI1', null)).length, 1);
        const counts = await store.countDeliveriesByState();
        assert.deepEqual(counts.map((c) => [c.receiver, c.state, c.count]).sort(), [['RETAILER-A', 'pending', 100], ['RETAILER-B', 'pending', 100]]);
        assert.equal((await store.claimPush('RETAILER-A', 1000, T0, T0 + MIN, 'tok')).length, 100);
      });

      test('a write that throws fails alone; the others of the same tick succeed', async (store) => {
        const taken = key();
        await store.insertKey(taken);
        const m1 = msg();
        const m2 = msg();
        const bad = msg();
        (bad.attributes as Record<string, unknown>).broken = 10n;
        const before = store.insertKey(key());
        const results = await Promise.allSettled([
          store.commitMessages([m1]),
          store.insertKey({ ...key(), hash: taken.hash }), // unique hash violated
          store.upsertParticipant('RETAILER-A', 'Retailer A', null, T0),
          store.commitMessages([bad]),
          store.commitMessages([m2]),
          before,
        ]);
        assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
        for (const i of [1, 3]) {
          const reason = (results[i] as PromiseRejectedResult).reason;
          assert.ok(!(reason instanceof StorageUnavailableError), `a bad write is not a storage outage: ${reason}`);
        }
        const [r1] = await store.commitMessages([m1]);
        const [r2] = await store.commitMessages([m2]);
        assert.equal(r1!.kind, 'duplicate');
        assert.equal(r2!.kind, 'duplicate');
        assert.ok(await store.getParticipant('RETAILER-A'));
        assert.equal(await store.countAdminKeys(), 0);
        assert.equal((await store.countDeliveriesByState()).reduce((n, c) => n + c.count, 0), 2, 'the failed message left nothing');
      });
    });

    describe('ordering: subject', () => orderingCases(test));
    describe('dead-letter queue', () => deadLetterCases(test));
    describe('resend and replay', () => resendCases(test));
    describe('archive search', () => searchCases(test));
  });
}
