/**
 * The ingest rate limit: one token bucket per API key, counted in events (a batch of 100 costs
 * 100), with the clock passed in so that the tests drive it with made-up timestamps.
 *
 * Each bucket holds at most `burst` tokens and gains `eventsPerSecond` a second. A request of n
 * events needs min(n, burst) tokens and then takes n, so a batch larger than the burst is not
 * starved for ever: it needs a full bucket and leaves the key in debt (tokens below zero) until
 * the rate has paid it back. Over any T seconds a key is admitted at most
 * `burst + eventsPerSecond * T + max(0, largest batch - burst)` events.
 */
export interface RateLimitSettings {
  eventsPerSecond: number;
  burst: number;
}

export type RateDecision = { ok: true } | { ok: false; retryAfterSeconds: number };

interface Bucket { tokens: number; last: number }

/** Floating-point slack, so that refills that should add up to a whole token do. */
const EPSILON = 1e-9;
/** Buckets kept before full (idle) ones are dropped: a full bucket is the same as none. */
const PRUNE_AT = 10_000;

export class KeyRateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  /** The next prune: twice what survived the last one, so that pruning stays linear in the keys seen. */
  private pruneAt = PRUNE_AT;

  constructor(private readonly settings: RateLimitSettings) {
    if (!(settings.eventsPerSecond > 0) || !Number.isFinite(settings.eventsPerSecond)) throw new RangeError(`eventsPerSecond must be a positive number, got ${settings.eventsPerSecond}`);
    if (!Number.isInteger(settings.burst) || settings.burst < 1) throw new RangeError(`burst must be a positive integer, got ${settings.burst}`);
  }

  /** Whether `key` could send `cost` events now, without taking anything (a check before reading a body). */
  peek(key: string, cost: number, now: number): RateDecision {
    return this.decide(this.bucket(key, now), cost);
  }

  /** Admits `cost` events for `key` (taking their tokens), or answers how long to wait. */
  take(key: string, cost: number, now: number): RateDecision {
    const bucket = this.bucket(key, now);
    const decision = this.decide(bucket, cost);
    if (decision.ok) bucket.tokens -= cost;
    return decision;
  }

  /** Tokens `key` has now (negative: in debt). For tests and metrics. */
  tokens(key: string, now: number): number {
    return this.bucket(key, now).tokens;
  }

  private decide(bucket: Bucket, cost: number): RateDecision {
    const need = Math.min(Math.max(1, cost), this.settings.burst);
    if (bucket.tokens + EPSILON >= need) return { ok: true };
    const waitMs = ((need - bucket.tokens) / this.settings.eventsPerSecond) * 1000;
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000 - EPSILON)) };
  }

  private bucket(key: string, now: number): Bucket {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.pruneAt) this.prune(now);
      b = { tokens: this.settings.burst, last: now };
      this.buckets.set(key, b);
      return b;
    }
    // A clock that goes back adds nothing (and does not move `last` back).
    if (now > b.last) {
      b.tokens = Math.min(this.settings.burst, b.tokens + ((now - b.last) / 1000) * this.settings.eventsPerSecond);
      b.last = now;
    }
    return b;
  }

  private prune(now: number): void {
    for (const [key, b] of this.buckets) {
      const refilled = b.tokens + ((now - b.last) / 1000) * this.settings.eventsPerSecond;
      if (refilled + EPSILON >= this.settings.burst) this.buckets.delete(key);
    }
    this.pruneAt = Math.max(PRUNE_AT, this.buckets.size * 2);
  }
}
