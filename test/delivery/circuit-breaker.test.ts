import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CLOSED, breakerPermits, breakerSignal, stepBreaker,
  type BreakerConfig, type BreakerEvent, type BreakerSignal, type BreakerState,
} from '../../src/delivery/circuit-breaker.ts';
import type { DeliveryOutcome } from '../../src/delivery/outcome.ts';

const C: BreakerConfig = { failureThreshold: 3, cooldownMs: 1_000, maxCooldownMs: 5_000 };

const fail = (now: number, probe = false): BreakerEvent => ({ type: 'result', signal: 'failure', probe, now });
const ok = (now: number, probe = false): BreakerEvent => ({ type: 'result', signal: 'success', probe, now });
const neutral = (now: number, probe = false): BreakerEvent => ({ type: 'result', signal: 'neutral', probe, now });
const clock = (now: number): BreakerEvent => ({ type: 'clock', now });
const probe: BreakerEvent = { type: 'probe-started' };

const closed = (consecutiveFailures: number): BreakerState => ({ state: 'closed', consecutiveFailures });
const open = (consecutiveFailures: number, openUntil: number, cooldownMs: number): BreakerState => ({ state: 'open', consecutiveFailures, openUntil, cooldownMs });
const half = (consecutiveFailures: number, cooldownMs: number, probing: boolean): BreakerState => ({ state: 'half-open', consecutiveFailures, cooldownMs, probing });

// ---- one step: state × event → state ----------------------------------------

const steps: Array<[string, BreakerState, BreakerEvent, BreakerState]> = [
  ['closed: a failure counts', CLOSED, fail(0), closed(1)],
  ['closed: a success ends the streak', closed(2), ok(0), CLOSED],
  ['closed: a neutral result (410, hub refusal) changes nothing', closed(2), neutral(0), closed(2)],
  ['closed: the threshold-th failure opens it for cooldownMs', closed(2), fail(500), open(3, 1_500, 1_000)],
  ['closed: the clock changes nothing', closed(1), clock(99_999), closed(1)],
  ['closed: probe-started changes nothing', closed(0), probe, CLOSED],
  ['open: before openUntil it stays open', open(3, 1_500, 1_000), clock(1_499), open(3, 1_500, 1_000)],
  ['open: at openUntil it turns half-open', open(3, 1_500, 1_000), clock(1_500), half(3, 1_000, false)],
  ['open: a late failure (started before it opened) changes nothing', open(3, 1_500, 1_000), fail(1_400), open(3, 1_500, 1_000)],
  ['open: a late success changes nothing either (only a probe decides)', open(3, 1_500, 1_000), ok(1_400), open(3, 1_500, 1_000)],
  ['half-open: the probe starts', half(3, 1_000, false), probe, half(3, 1_000, true)],
  ['half-open: the probe succeeds → closed, streak over', half(3, 1_000, true), ok(2_000, true), CLOSED],
  ['half-open: the probe fails → open again, cooldown doubled', half(3, 1_000, true), fail(2_000, true), open(4, 4_000, 2_000)],
  ['half-open: doubling stops at maxCooldownMs', half(6, 4_000, true), fail(10_000, true), open(7, 15_000, 5_000)],
  ['half-open: at the cap it stays at the cap', half(7, 5_000, true), fail(10_000, true), open(8, 15_000, 5_000)],
  ['half-open: a neutral probe lets another probe go', half(3, 1_000, true), neutral(2_000, true), half(3, 1_000, false)],
  ['half-open: a non-probe result (left over from before) changes nothing', half(3, 1_000, true), fail(2_000, false), half(3, 1_000, true)],
  ['half-open: nor does a non-probe success', half(3, 1_000, true), ok(2_000, false), half(3, 1_000, true)],
  ['half-open: the clock changes nothing', half(3, 1_000, false), clock(99_999), half(3, 1_000, false)],
];
for (const [name, from, event, to] of steps) {
  test(`stepBreaker: ${name}`, () => assert.deepEqual(stepBreaker(from, event, C), to));
}

test('stepBreaker: threshold 1 opens on the first failure', () => {
  assert.deepEqual(stepBreaker(CLOSED, fail(10), { ...C, failureThreshold: 1 }), open(1, 1_010, 1_000));
});

test('stepBreaker: a cooldown above the cap starts at the cap', () => {
  assert.deepEqual(stepBreaker(closed(2), fail(0), { ...C, cooldownMs: 9_000 }), open(3, 5_000, 5_000));
});

// ---- permits: state × in flight → how many may start -------------------------

const permits: Array<[string, BreakerState, number, number]> = [
  ['closed, no failures: no limit of its own', CLOSED, 10, Infinity],
  ['closed, a streak begun: only what could still reach the threshold', closed(1), 0, 2],
  ['closed, streak, requests in flight count against it', closed(1), 1, 1],
  ['closed, streak, enough in flight to reach the threshold', closed(1), 2, 0],
  ['closed, streak, more in flight than that', closed(2), 5, 0],
  ['open: none', open(3, 1_500, 1_000), 0, 0],
  ['half-open, idle: exactly one (the probe)', half(3, 1_000, false), 0, 1],
  ['half-open, probe out: none', half(3, 1_000, true), 1, 0],
  ['half-open, old requests still in flight: none until they end', half(3, 1_000, false), 2, 0],
];
for (const [name, s, inFlight, expected] of permits) {
  test(`breakerPermits: ${name}`, () => assert.equal(breakerPermits(s, inFlight, C), expected));
}

// ---- a whole story, as a receiver sees it ------------------------------------

test('story: fail ×3 → open 1 s → probe fails → open 2 s → probe fails → 4 s → probe ok → closed', () => {
  let s: BreakerState = CLOSED;
  const step = (e: BreakerEvent) => { s = stepBreaker(s, e, C); return s; };
  for (const t of [0, 10, 20]) step(fail(t));
  assert.equal(s.state, 'open');
  assert.equal(breakerPermits(s, 0, C), 0);
  const timeline: Array<[number, BreakerState['state'], number]> = [];
  for (let t = 20; t <= 8_000; t += 10) {
    step(clock(t));
    if (breakerPermits(s, 0, C) === 1) {
      step(probe);
      timeline.push([t, s.state, s.consecutiveFailures]);
      step(timeline.length < 3 ? fail(t, true) : ok(t, true));
    }
  }
  assert.deepEqual(timeline.map(([t]) => t), [1_020, 3_020, 7_020]);
  assert.deepEqual(s, CLOSED);
});

// ---- which outcomes count ----------------------------------------------------

const signals: Array<[string, DeliveryOutcome, BreakerSignal]> = [
  ['2xx', { kind: 'delivered', status: 204 }, 'success'],
  ['410 Gone: the receiver is healthy, the message is gone', { kind: 'gone', status: 410 }, 'neutral'],
  ['500', { kind: 'http', status: 500, retryAfterMs: null, bodySnippet: '' }, 'failure'],
  ['429 (overloaded counts)', { kind: 'http', status: 429, retryAfterMs: 1_000, bodySnippet: '' }, 'failure'],
  ['400', { kind: 'http', status: 400, retryAfterMs: null, bodySnippet: '' }, 'failure'],
  ['redirect', { kind: 'redirect', status: 302, location: null }, 'failure'],
  ['timeout', { kind: 'timeout', phase: 'deadline', message: '' }, 'failure'],
  ['connection refused', { kind: 'network', code: 'ECONNREFUSED', message: '' }, 'failure'],
  ['DNS failure', { kind: 'network', code: 'ENOTFOUND', message: '' }, 'failure'],
  ['reset', { kind: 'network', code: 'UND_ERR_SOCKET', message: '' }, 'failure'],
  ['the hub refused an unsafe target (nothing was sent)', { kind: 'network', code: 'EUNSAFETARGET', message: '' }, 'neutral'],
  ['the hub lost the message (nothing was sent)', { kind: 'network', code: 'ENOMESSAGE', message: '' }, 'neutral'],
];
for (const [name, outcome, expected] of signals) {
  test(`breakerSignal: ${name} → ${expected}`, () => assert.equal(breakerSignal(outcome), expected));
}
