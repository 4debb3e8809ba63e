import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from '../../src/delivery/token-bucket.ts';

/**
 * Each case: a rate, then steps at given timestamps (ms), each either taking `take` tokens
 * (expecting `got`) or asking when the next token comes (`next`). The bucket starts full at t=0.
 */
type Step = { at: number; take: number; got: number } | { at: number; next: number } | { at: number; available: number };
const cases: Array<[string, number, Step[]]> = [
  ['starts full: a burst of `rate`', 5, [{ at: 0, take: 10, got: 5 }, { at: 0, take: 1, got: 0 }]],
  ['refills at the rate: one token every 200 ms at 5/s', 5, [
    { at: 0, take: 5, got: 5 }, { at: 0, next: 200 }, { at: 199, take: 1, got: 0 }, { at: 200, take: 1, got: 1 },
    { at: 300, take: 1, got: 0 }, { at: 400, take: 2, got: 1 },
  ]],
  ['never more than capacity, however long idle', 5, [{ at: 0, take: 5, got: 5 }, { at: 1_000_000, available: 5 }, { at: 1_000_000, take: 9, got: 5 }]],
  ['rate below 1: capacity 1, one every 1/rate s', 0.5, [
    { at: 0, take: 3, got: 1 }, { at: 0, next: 2_000 }, { at: 1_999, take: 1, got: 0 }, { at: 2_000, take: 1, got: 1 },
  ]],
  ['fractional tokens add up (3/s: a token at 334 ms, rounded up)', 3, [
    { at: 0, take: 3, got: 3 }, { at: 0, next: 334 }, { at: 333, take: 1, got: 0 }, { at: 334, take: 1, got: 1 },
    { at: 667, take: 1, got: 1 },
  ]],
  ['ten 100 ms steps at 1/s make exactly one token (float slack)', 1, [
    { at: 0, take: 1, got: 1 }, ...Array.from({ length: 9 }, (_, i) => ({ at: (i + 1) * 100, available: 0 })), { at: 1_000, take: 1, got: 1 },
  ]],
  ['next is now when a token is there', 2, [{ at: 50, next: 50 }, { at: 50, take: 2, got: 2 }, { at: 50, next: 550 }]],
  ['a clock going back adds nothing and takes nothing away', 10, [
    { at: 1_000, take: 10, got: 10 }, { at: 500, take: 1, got: 0 }, { at: 1_100, take: 2, got: 1 },
  ]],
  ['take 0 or a negative count takes nothing', 4, [{ at: 0, take: 0, got: 0 }, { at: 0, take: -3, got: 0 }, { at: 0, available: 4 }]],
  ['a fractional count takes whole tokens only', 4, [{ at: 0, take: 2.7, got: 2 }, { at: 0, available: 2 }]],
  ['high rates: capacity = rate', 1000, [{ at: 0, take: 5000, got: 1000 }, { at: 1, take: 5, got: 1 }, { at: 10, take: 20, got: 9 }]],
];

for (const [name, rate, steps] of cases) {
  test(`TokenBucket: ${name}`, () => {
    const b = new TokenBucket(rate, 0);
    for (const [i, s] of steps.entries()) {
      if ('take' in s) assert.equal(b.take(s.take, s.at), s.got, `step ${i}: take ${s.take} at ${s.at}`);
      else if ('next' in s) assert.equal(b.nextTokenAt(s.at), s.next, `step ${i}: next token after ${s.at}`);
      else assert.equal(b.available(s.at), s.available, `step ${i}: available at ${s.at}`);
    }
  });
}

test('TokenBucket: over any window of T seconds, at most capacity + rate·T start (greedy taker)', () => {
  for (const rate of [0.5, 1, 3, 7.5, 20]) {
    const b = new TokenBucket(rate, 0);
    const starts: number[] = [];
    for (let t = 0; t <= 10_000; t += 7) for (let k = b.take(100, t); k > 0; k--) starts.push(t);
    const cap = Math.max(1, rate);
    for (const T of [1_000, 2_500]) {
      for (let i = 0; i < starts.length; i++) {
        const n = starts.filter((s) => s >= starts[i]! && s < starts[i]! + T).length;
        assert.ok(n <= Math.floor(cap + (rate * T) / 1000 + 1e-9), `rate ${rate}: ${n} starts in ${T} ms from ${starts[i]}`);
      }
    }
    // And the long-run rate is the rate.
    assert.ok(Math.abs(starts.length - (cap + rate * 10)) <= 1, `rate ${rate}: ${starts.length} starts in 10 s`);
  }
});

test('TokenBucket: setRate keeps tokens up to the new capacity and refills at the new rate', () => {
  const b = new TokenBucket(10, 0);
  b.setRate(2, 0);
  assert.equal(b.available(0), 2);
  assert.equal(b.take(2, 0), 2);
  assert.equal(b.nextTokenAt(0), 500);
  b.setRate(20, 100); // 0.2 tokens so far at the old rate
  assert.equal(b.nextTokenAt(100), 140);
});

test('TokenBucket: refuses a rate that is not positive and finite', () => {
  for (const r of [0, -1, NaN, Infinity]) assert.throws(() => new TokenBucket(r, 0), RangeError);
});
