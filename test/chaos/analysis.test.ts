/**
 * The harness's judges (test/chaos/harness.ts), on made-up logs: a check that cannot fail
 * proves nothing, so each is shown to catch what it is for.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { orderingProblems, pullDuplicates, pushDuplicates, sequenceProblems } from './harness.ts';
import type { LoggedRequest } from './kit.ts';

const req = (webhookId: string, receivedAt: number, status: number | null, answeredAt: number | null, sequence = 1, subject = 'M'): LoggedRequest => ({
  n: 0, webhookId, ceId: 'x', ceSource: 'MDP-A', ceSubject: subject, sequence, bodySha256: '', receivedAt, status, answeredAt,
});

test('push: a 2xx then the same webhook-id again is explained by a kill only within a lease before it', () => {
  const kills = [{ at: 10_000, exitedAt: 10_005 }];
  const log = [
    req('retried', 100, 500, 110), req('retried', 300, 204, 310), // a failure then a success: no duplicate
    req('in-flight', 9_000, 204, 9_100), req('in-flight', 11_000, 204, 11_010), // answered 0.9 s before the kill: allowed
    req('late', 5_000, 204, 5_010), req('late', 11_000, 204, 11_010), // answered 5 s before the kill: its result was lost
    req('no-kill', 12_000, 204, 12_010), req('no-kill', 12_500, 204, 12_510), // sent again with no kill at all
    req('hung', 9_500, 204, null), req('hung', 11_000, 204, 11_010), // never answered (cut by the kill): not delivered
  ];
  const r = pushDuplicates([{ receiver: 'R', log }], kills, 4_000);
  assert.equal(r.total, 3);
  assert.equal(r.inFlightAtKill, 1);
  assert.equal(r.unexpected.length, 2);
  assert.match(r.unexpected.join('\n'), /webhook-id late/);
  assert.match(r.unexpected.join('\n'), /webhook-id no-kill/);
});

test('pull: a delivery leased again after its ack was answered acked is always a duplicate', () => {
  const leased = [
    { webhookId: 'a', sequence: 1, lease: 'l1', at: 100, receives: 1 },
    { webhookId: 'b', sequence: 2, lease: 'l2', at: 100, receives: 1 },
    { webhookId: 'b', sequence: 2, lease: 'l3', at: 3_000, receives: 2 }, // b's ack was lost, not answered: fine
    { webhookId: 'a', sequence: 1, lease: 'l4', at: 5_000, receives: 2 },
  ];
  const r = pullDuplicates({ leased, acked: new Map([['a', 200]]) });
  assert.equal(r.total, 1);
  assert.match(r.unexpected[0]!, /webhook-id a/);
});

test('sequences: shared ones, and per connection one lower than an earlier acknowledgement', () => {
  assert.deepEqual(sequenceProblems([{ key: 'a', sequence: 1 }, { key: 'b', sequence: 2 }], [[1, 2]]), []);
  const p = sequenceProblems([{ key: 'a', sequence: 1 }, { key: 'b', sequence: 1 }, { key: 'c', sequence: 3 }], [[3, 1]]);
  assert.equal(p.length, 2);
  assert.match(p[0]!, /sequence 1 given to a and b/);
  assert.match(p[1]!, /connection 0: sequence 1 acknowledged after 3/);
});

test('ordering: a meter\'s next delivery sent before its previous one was answered 2xx is caught; a resend of the previous one is not', () => {
  const fine = [
    req('w1', 100, 204, 150, 1), req('w1', 2_000, 204, 2_010, 1), // sent again after a kill: fine
    req('w3', 160, 204, 170, 3), // next of the meter, after sequence 1's first 2xx
    req('w2', 120, 204, 130, 2, 'OTHER'), // another meter: not held up
  ];
  assert.deepEqual(orderingProblems('R', fine), []);
  const early = [req('w1', 100, 500, 110, 1), req('w3', 120, 204, 130, 3), req('w1', 300, 204, 310, 1)];
  const p = orderingProblems('R', early);
  assert.equal(p.length, 1);
  assert.match(p[0]!, /meter M: sequence 3 sent before 1 was delivered/);
});
