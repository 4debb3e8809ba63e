/**
 * A token bucket for one receiver's request rate, with the clock passed in (epoch ms), so that
 * it is a pure piece of arithmetic the tests drive with made-up timestamps.
 *
 * It holds at most `capacity = max(1, ratePerSecond)` tokens and gains `ratePerSecond` a
 * second. Each request started takes one whole token. So over any span of T seconds at most
 * `capacity + ratePerSecond * T` requests start: a burst of `capacity`, then the rate.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private rate: number;

  constructor(ratePerSecond: number, now: number) {
    checkRate(ratePerSecond);
    this.rate = ratePerSecond;
    this.tokens = this.capacity;
    this.last = now;
  }

  get ratePerSecond(): number { return this.rate; }
  get capacity(): number { return Math.max(1, this.rate); }

  /** Whole tokens available at `now`. */
  available(now: number): number {
    this.refill(now);
    return Math.floor(this.tokens + EPSILON);
  }

  /** Takes up to `n` whole tokens; answers how many it took. */
  take(n: number, now: number): number {
    const taken = Math.max(0, Math.min(Math.floor(n), this.available(now)));
    this.tokens = Math.max(0, this.tokens - taken);
    return taken;
  }

  /** The first time (epoch ms, rounded up) at which a whole token is available; `now` if one is. */
  nextTokenAt(now: number): number {
    this.refill(now);
    if (this.tokens + EPSILON >= 1) return now;
    return Math.max(now + 1, Math.ceil(this.last + ((1 - this.tokens) / this.rate) * 1000));
  }

  /** A new rate (the receiver's settings changed): tokens so far are kept, up to the new capacity. */
  setRate(ratePerSecond: number, now: number): void {
    checkRate(ratePerSecond);
    this.refill(now);
    this.rate = ratePerSecond;
    this.tokens = Math.min(this.tokens, this.capacity);
  }

  private refill(now: number): void {
    // A clock that goes back adds nothing (and does not move `last` back).
    if (now <= this.last) return;
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
  }
}

/** Floating-point slack, so that 0.1 + 0.2 + … tokens that should make 1 do. */
const EPSILON = 1e-9;

function checkRate(rate: number): void {
  if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`ratePerSecond must be a positive number, got ${rate}`);
}
