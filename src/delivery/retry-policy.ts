/**
 * When to try a failed delivery again, as a pure function (like svix's
 * `calculate_retry_delay`). No clock and no randomness inside: the caller
 * passes the message age and a random number in [0, 1).
 */
import type { DeliveryOutcome } from './outcome.ts';

export interface RetryPolicy {
  /** Total attempts, counting the first. */
  maxAttempts: number;
  /** No new attempt is scheduled later than createdAt + maxAge. */
  maxAgeSeconds: number;
  /** Delay after the first failure. */
  initialDelayMs: number;
  /** Cap of the exponential delay. */
  maxDelayMs: number;
  /** Growth factor. */
  multiplier: number;
  /** The longest a receiver's Retry-After can delay us. */
  retryAfterCapMs: number;
}

/**
 * Defaults: exponential backoff from 2 s, doubling, capped at 1 h. Fast early
 * retries ride out short blips such as deploys, and hourly retries cover a
 * receiver that is down overnight, while meter data stays fresh. Nominal
 * delays: 2s, 4s, 8s, …, 2048s (≈34 min, ≈68 min in all), then 18 × 1h. Over 30
 * attempts that is ≈19 h at most; with equal jitter (each delay drawn from
 * [d/2, d]) the expected total is ≈14 h. The 24 h maxAge is the hard backstop,
 * mainly against long Retry-After values. Peers: Standard Webhooks/svix use
 * 5s, 5m, 30m, 2h, 5h, 10h, 10h (≈1.1 days), GitHub does not retry, and Stripe
 * retries for up to ~3 days.
 */
export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxAttempts: 30,
  maxAgeSeconds: 86_400,
  initialDelayMs: 2_000,
  maxDelayMs: 3_600_000,
  multiplier: 2,
  retryAfterCapMs: 3_600_000,
});

export type RetryDecision = { kind: 'retry'; delayMs: number } | { kind: 'dead'; reason: string };

/**
 * Decide what happens after a failed attempt.
 * @param attemptsMade attempts already made, counting the one that just failed (>= 1)
 * @param ageMs now - delivery createdAt
 * @param outcome the failed attempt's outcome. Its `retryAfterMs` (http 429/503) is used if set.
 * @param random in [0, 1), for jitter
 * @throws RangeError if `outcome` is `delivered` or `attemptsMade` < 1
 */
export function decideRetry(
  p: RetryPolicy,
  attemptsMade: number,
  ageMs: number,
  outcome: DeliveryOutcome,
  random: number,
): RetryDecision {
  if (outcome.kind === 'delivered') throw new RangeError('decideRetry called with a delivered outcome');
  checkAttempts(attemptsMade);

  if (outcome.kind === 'gone') return { kind: 'dead', reason: 'receiver answered 410 Gone' };
  if (attemptsMade >= p.maxAttempts) return { kind: 'dead', reason: 'max attempts reached' };

  const delayMs =
    outcome.kind === 'http' && (outcome.status === 429 || outcome.status === 503) && typeof outcome.retryAfterMs === 'number'
      ? Math.max(0, Math.min(outcome.retryAfterMs, p.retryAfterCapMs))
      : backoffDelayMs(p, attemptsMade, random);

  if (ageMs + delayMs > p.maxAgeSeconds * 1000) return { kind: 'dead', reason: 'max age reached' };
  return { kind: 'retry', delayMs };
}

/**
 * Exponential backoff with "equal jitter": d = min(maxDelay, initial * multiplier^(attemptsMade-1)),
 * result = round(d/2 + random * d/2), so a value in [d/2, d].
 */
export function backoffDelayMs(p: RetryPolicy, attemptsMade: number, random: number): number {
  checkAttempts(attemptsMade);
  if (!(random >= 0 && random < 1)) throw new RangeError(`random must be in [0, 1), got ${random}`);
  // multiplier^n overflows to Infinity for large n, and the min() turns that into maxDelayMs.
  const d = Math.min(p.maxDelayMs, p.initialDelayMs * p.multiplier ** (attemptsMade - 1));
  return Math.round(d / 2 + (random * d) / 2);
}

function checkAttempts(attemptsMade: number): void {
  if (!Number.isInteger(attemptsMade) || attemptsMade < 1) {
    throw new RangeError(`attemptsMade must be an integer >= 1, got ${attemptsMade}`);
  }
}
