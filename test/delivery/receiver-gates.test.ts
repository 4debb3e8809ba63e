import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReceiverGates } from '../../src/delivery/receiver-gates.ts';

const B = { failureThreshold: 2, cooldownMs: 1_000, maxCooldownMs: 4_000 };
const S = { url: 'https://a.example/hook', ratePerSecond: null };

test('ReceiverGates: no rate limit and a closed breaker set no limit', () => {
  const g = new ReceiverGates(B);
  assert.deepEqual(g.allowance('A', S, 0, 0), { limit: Infinity, probe: false, wakeAt: null });
});

test('ReceiverGates: the rate limit, and when its next token comes', () => {
  const g = new ReceiverGates(B);
  const s = { ...S, ratePerSecond: 4 };
  assert.equal(g.allowance('A', s, 0, 0).limit, 4);
  g.started('A', 4, false, 0);
  assert.deepEqual(g.allowance('A', s, 4, 0), { limit: 0, probe: false, wakeAt: 250 });
  assert.equal(g.allowance('A', s, 4, 250).limit, 1);
  // A slower rate from new settings applies at once.
  assert.equal(g.allowance('A', { ...s, ratePerSecond: 1 }, 4, 250).limit, 1);
  g.started('A', 1, false, 250);
  assert.equal(g.allowance('A', { ...s, ratePerSecond: 1 }, 4, 250).wakeAt, 1_250);
  // Removing the limit lifts it.
  assert.equal(g.allowance('A', S, 4, 250).limit, Infinity);
});

test('ReceiverGates: open → wakeAt is the end of the cooldown; half-open → one probe; states() reports it', () => {
  const g = new ReceiverGates(B);
  g.allowance('A', S, 0, 0);
  g.finished('A', 'failure', false, 10);
  assert.equal(g.allowance('A', S, 0, 10).limit, 1, 'a streak has begun: one more may go');
  g.finished('A', 'failure', false, 20);
  assert.deepEqual(g.allowance('A', S, 0, 500), { limit: 0, probe: false, wakeAt: 1_020 });
  assert.deepEqual(g.states(500), [{ receiver: 'A', state: 'open', consecutiveFailures: 2, openUntil: 1_020 }]);
  assert.deepEqual(g.states(1_020), [{ receiver: 'A', state: 'half-open', consecutiveFailures: 2, openUntil: null }]);
  assert.deepEqual(g.allowance('A', S, 0, 1_020), { limit: 1, probe: true, wakeAt: null });
  g.started('A', 1, true, 1_020);
  assert.deepEqual(g.allowance('A', S, 1, 1_030), { limit: 0, probe: false, wakeAt: null });
  g.finished('A', 'failure', true, 1_040);
  assert.deepEqual(g.states(1_040), [{ receiver: 'A', state: 'open', consecutiveFailures: 3, openUntil: 3_040 }]);
  g.allowance('A', S, 0, 3_040);
  g.started('A', 1, true, 3_040);
  g.finished('A', 'success', true, 3_050);
  assert.deepEqual(g.states(3_050), [{ receiver: 'A', state: 'closed', consecutiveFailures: 0, openUntil: null }]);
  assert.equal(g.allowance('A', S, 0, 3_050).limit, Infinity);
});

test('ReceiverGates: a probe also waits for a rate token', () => {
  const g = new ReceiverGates({ ...B, failureThreshold: 1 });
  const s = { ...S, ratePerSecond: 1 };
  g.allowance('A', s, 0, 0);
  g.started('A', 1, false, 0);
  g.finished('A', 'failure', false, 0);
  // Cooldown ends at 1000 and a token comes at 1000 too; at 1000 the probe may go.
  assert.equal(g.allowance('A', s, 0, 999).wakeAt, 1_000);
  assert.deepEqual(g.allowance('A', s, 0, 1_000), { limit: 1, probe: true, wakeAt: null });
});

test('ReceiverGates: a new URL starts with a closed breaker; other receivers are apart', () => {
  const g = new ReceiverGates(B);
  g.allowance('A', S, 0, 0);
  g.allowance('B', S, 0, 0);
  g.finished('A', 'failure', false, 0);
  g.finished('A', 'failure', false, 0);
  assert.equal(g.allowance('A', S, 0, 1).limit, 0);
  assert.equal(g.allowance('B', S, 0, 1).limit, Infinity, 'B is not affected by A');
  assert.equal(g.allowance('A', { ...S, url: 'https://a.example/new' }, 0, 1).limit, Infinity);
});
