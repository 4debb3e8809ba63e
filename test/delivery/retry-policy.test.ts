import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  backoffDelayMs,
  decideRetry,
  DEFAULT_RETRY_POLICY,
  type RetryDecision,
  type RetryPolicy,
} from '../../src/delivery/retry-policy.ts';
import type { DeliveryOutcome } from '../../src/delivery/outcome.ts';

const P: RetryPolicy = {
  maxAttempts: 5,
  maxAgeSeconds: 100,
  initialDelayMs: 1_000,
  maxDelayMs: 10_000,
  multiplier: 2,
  retryAfterCapMs: 30_000,
};

const http = (status: number, retryAfterMs: number | null = null): DeliveryOutcome => ({
  kind: 'http',
  status,
  retryAfterMs,
  bodySnippet: '',
});
const H500 = http(500);
const TIMEOUT: DeliveryOutcome = { kind: 'timeout', phase: 'headers', message: 'Headers Timeout Error' };
const NET: DeliveryOutcome = { kind: 'network', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:9' };
const REDIRECT: DeliveryOutcome = { kind: 'redirect', status: 301, location: 'https://x.test/' };
const GONE: DeliveryOutcome = { kind: 'gone', status: 410 };

// ---- backoffDelayMs --------------------------------------------------------

const backoffCases: Array<[string, number, number, number]> = [
  // name, attemptsMade, random, expected
  ['attempt 1, random 0 → d/2', 1, 0, 500],
  ['attempt 1, random 0.5 → 3d/4', 1, 0.5, 750],
  ['attempt 1, random 0.999 → ≈d', 1, 0.999, 1_000], // 999.5 rounds to 1000
  ['attempt 2 doubles', 2, 0, 1_000],
  ['attempt 3', 3, 0.999, 3_998],
  ['attempt 4 (8 s, under cap)', 4, 0, 4_000],
  ['attempt 5 hits cap (16 s → 10 s)', 5, 0, 5_000],
  ['attempt 5 capped, random 0.999', 5, 0.999, 9_995],
  ['attempt 2000 overflows to Infinity, still capped', 2_000, 0.999, 9_995],
];
for (const [name, attempts, random, expected] of backoffCases) {
  test(`backoffDelayMs: ${name}`, () => {
    assert.equal(backoffDelayMs(P, attempts, random), expected);
  });
}

test('backoffDelayMs: jitter stays within [d/2, d] and is an integer', () => {
  for (let attempts = 1; attempts <= 40; attempts++) {
    const d = Math.min(P.maxDelayMs, P.initialDelayMs * 2 ** (attempts - 1));
    for (const r of [0, 0.001, 0.25, 0.5, 0.75, 0.999, 0.9999999]) {
      const v = backoffDelayMs(P, attempts, r);
      assert.ok(Number.isInteger(v));
      assert.ok(v >= d / 2 && v <= d, `attempt ${attempts} r ${r}: ${v} not in [${d / 2}, ${d}]`);
    }
  }
});

test('backoffDelayMs: rejects bad arguments', () => {
  for (const a of [0, -1, 1.5, Number.NaN]) assert.throws(() => backoffDelayMs(P, a, 0), RangeError);
  for (const r of [-0.1, 1, 2, Number.NaN]) assert.throws(() => backoffDelayMs(P, 1, r), RangeError);
});

// ---- decideRetry -----------------------------------------------------------

const decideCases: Array<[string, number, number, DeliveryOutcome, number, RetryDecision]> = [
  // name, attemptsMade, ageMs, outcome, random, expected
  ['500 after first attempt → backoff', 1, 0, H500, 0, { kind: 'retry', delayMs: 500 }],
  ['timeout → backoff', 2, 0, TIMEOUT, 0.999, { kind: 'retry', delayMs: 1_999 }],
  ['network error → backoff', 3, 0, NET, 0, { kind: 'retry', delayMs: 2_000 }],
  ['redirect (not followed) → backoff', 1, 0, REDIRECT, 0, { kind: 'retry', delayMs: 500 }],
  ['410 gone → dead at once', 1, 0, GONE, 0, { kind: 'dead', reason: 'receiver answered 410 Gone' }],
  ['410 gone wins over max attempts', 5, 0, GONE, 0, { kind: 'dead', reason: 'receiver answered 410 Gone' }],
  // attempt limit boundary: maxAttempts = 5
  ['attempts = maxAttempts - 1 → retry', 4, 0, H500, 0, { kind: 'retry', delayMs: 4_000 }],
  ['attempts = maxAttempts → dead', 5, 0, H500, 0, { kind: 'dead', reason: 'max attempts reached' }],
  ['attempts > maxAttempts → dead', 6, 0, H500, 0, { kind: 'dead', reason: 'max attempts reached' }],
  // age limit boundary: maxAge = 100 000 ms, delay = 500 ms
  ['age + delay = maxAge exactly → retry', 1, 99_500, H500, 0, { kind: 'retry', delayMs: 500 }],
  ['age + delay = maxAge + 1 → dead', 1, 99_501, H500, 0, { kind: 'dead', reason: 'max age reached' }],
  ['age already beyond maxAge → dead', 1, 200_000, NET, 0, { kind: 'dead', reason: 'max age reached' }],
  // Retry-After
  ['429 with Retry-After → exactly that, no jitter', 1, 0, http(429, 7_000), 0.999, { kind: 'retry', delayMs: 7_000 }],
  ['503 with Retry-After → exactly that', 3, 0, http(503, 1_234), 0, { kind: 'retry', delayMs: 1_234 }],
  ['Retry-After 0 → 0', 1, 0, http(503, 0), 0.5, { kind: 'retry', delayMs: 0 }],
  ['Retry-After below backoff is honoured', 4, 0, http(429, 10), 0, { kind: 'retry', delayMs: 10 }],
  ['Retry-After at the cap', 1, 0, http(429, 30_000), 0, { kind: 'retry', delayMs: 30_000 }],
  ['Retry-After over the cap → capped', 1, 0, http(429, 30_001), 0, { kind: 'retry', delayMs: 30_000 }],
  ['huge Retry-After → capped', 1, 0, http(429, Number.MAX_SAFE_INTEGER), 0, { kind: 'retry', delayMs: 30_000 }],
  ['negative Retry-After (defensive) → 0', 1, 0, http(429, -5), 0, { kind: 'retry', delayMs: 0 }],
  ['429 without Retry-After → backoff', 1, 0, http(429, null), 0, { kind: 'retry', delayMs: 500 }],
  ['500 carrying retryAfterMs → ignored, backoff', 1, 0, http(500, 7_000), 0, { kind: 'retry', delayMs: 500 }],
  ['Retry-After pushing past maxAge → dead', 1, 80_000, http(429, 20_001), 0, { kind: 'dead', reason: 'max age reached' }],
  ['Retry-After landing exactly on maxAge → retry', 1, 80_000, http(429, 20_000), 0, { kind: 'retry', delayMs: 20_000 }],
  ['Retry-After does not bypass max attempts', 5, 0, http(429, 1_000), 0, { kind: 'dead', reason: 'max attempts reached' }],
];
for (const [name, attempts, ageMs, outcome, random, expected] of decideCases) {
  test(`decideRetry: ${name}`, () => {
    assert.deepEqual(decideRetry(P, attempts, ageMs, outcome, random), expected);
  });
}

test('decideRetry: delivered outcome is a programming error', () => {
  assert.throws(() => decideRetry(P, 1, 0, { kind: 'delivered', status: 200 }, 0), RangeError);
});

test('decideRetry: attemptsMade < 1 is a programming error', () => {
  assert.throws(() => decideRetry(P, 0, 0, H500, 0), RangeError);
});

// ---- DEFAULT_RETRY_POLICY --------------------------------------------------

test('DEFAULT_RETRY_POLICY: values as documented', () => {
  assert.deepEqual({ ...DEFAULT_RETRY_POLICY }, {
    maxAttempts: 30,
    maxAgeSeconds: 86_400,
    initialDelayMs: 2_000,
    maxDelayMs: 3_600_000,
    multiplier: 2,
    retryAfterCapMs: 3_600_000,
  });
  assert.ok(Object.isFrozen(DEFAULT_RETRY_POLICY));
});

test('DEFAULT_RETRY_POLICY: schedule as documented (2s, 4s, … 2048s, then hourly; ≈19 h max)', () => {
  const P0 = DEFAULT_RETRY_POLICY;
  const nominal = (a: number) => backoffDelayMs(P0, a, 0) * 2; // random 0 → d/2
  assert.deepEqual(
    Array.from({ length: 13 }, (_, i) => nominal(i + 1) / 1000),
    [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3600, 3600],
  );
  // Walk the whole schedule with the maximum jitter: every failure retried until attempt 30.
  let age = 0;
  let attempts = 1;
  for (;;) {
    const d = decideRetry(P0, attempts, age, H500, 0.9999999);
    if (d.kind === 'dead') {
      assert.equal(d.reason, 'max attempts reached');
      break;
    }
    age += d.delayMs;
    attempts++;
  }
  assert.equal(attempts, 30);
  assert.ok(age > 19 * 3_600_000 && age < 19.2 * 3_600_000, `total ${age / 3_600_000} h`);
});
