/**
 * Per receiver, what may start now: its rate limit (token bucket) and its circuit breaker, kept
 * in this process's memory. The dispatcher asks `allowance` before claiming, reports `started`
 * and `finished`, and sleeps until `wakeAt` when a gate is shut. The clock is passed in.
 */
import { CLOSED, breakerPermits, stepBreaker, type BreakerConfig, type BreakerSignal, type BreakerState } from './circuit-breaker.ts';
import { TokenBucket } from './token-bucket.ts';

export interface GateSettings { url: string; ratePerSecond: number | null }

export interface Allowance {
  /** Most requests that may start now (Infinity: the gates set no limit). */
  limit: number;
  /** The request started now is the half-open breaker's probe. */
  probe: boolean;
  /** When the limit is 0 because of time (cooldown, tokens): when to look again. */
  wakeAt: number | null;
}

export interface BreakerView {
  receiver: string;
  state: BreakerState['state'];
  consecutiveFailures: number;
  /** Epoch ms the open breaker lets a probe through; null unless open. */
  openUntil: number | null;
}

interface Gate { url: string; bucket: TokenBucket | null; breaker: BreakerState }

export class ReceiverGates {
  private readonly gates = new Map<string, Gate>();

  constructor(private readonly breaker: BreakerConfig) {}

  allowance(receiver: string, settings: GateSettings, inFlight: number, now: number): Allowance {
    const g = this.gate(receiver, settings, now);
    g.breaker = stepBreaker(g.breaker, { type: 'clock', now }, this.breaker);
    const byBreaker = breakerPermits(g.breaker, inFlight, this.breaker);
    if (byBreaker === 0) {
      return { limit: 0, probe: false, wakeAt: g.breaker.state === 'open' ? g.breaker.openUntil : null };
    }
    const byRate = g.bucket ? g.bucket.available(now) : Infinity;
    if (byRate === 0) return { limit: 0, probe: false, wakeAt: g.bucket!.nextTokenAt(now) };
    return { limit: Math.min(byBreaker, byRate), probe: g.breaker.state === 'half-open', wakeAt: null };
  }

  /** `n` requests were started (after `allowance`). */
  started(receiver: string, n: number, probe: boolean, now: number): void {
    const g = this.gates.get(receiver);
    if (!g || n <= 0) return;
    g.bucket?.take(n, now);
    if (probe) g.breaker = stepBreaker(g.breaker, { type: 'probe-started' }, this.breaker);
  }

  finished(receiver: string, signal: BreakerSignal, probe: boolean, now: number): void {
    const g = this.gates.get(receiver);
    if (g) g.breaker = stepBreaker(g.breaker, { type: 'result', signal, probe, now }, this.breaker);
  }

  /** The receiver's breaker is closed with no failure counted (a receiver never sent to is healthy). */
  healthy(receiver: string): boolean {
    const b = this.gates.get(receiver)?.breaker;
    return !b || (b.state === 'closed' && b.consecutiveFailures === 0);
  }

  states(now: number): BreakerView[] {
    return [...this.gates.entries()].map(([receiver, g]) => {
      const b = stepBreaker(g.breaker, { type: 'clock', now }, this.breaker);
      return { receiver, state: b.state, consecutiveFailures: b.consecutiveFailures, openUntil: b.state === 'open' ? b.openUntil : null };
    });
  }

  /** The gate of a receiver, made or brought in line with its current settings. A new URL starts a closed breaker. */
  private gate(receiver: string, settings: GateSettings, now: number): Gate {
    let g = this.gates.get(receiver);
    if (!g) {
      g = { url: settings.url, bucket: null, breaker: CLOSED };
      this.gates.set(receiver, g);
    }
    if (g.url !== settings.url) {
      g.url = settings.url;
      g.breaker = CLOSED;
    }
    const rate = settings.ratePerSecond;
    if (rate === null) g.bucket = null;
    else if (!g.bucket) g.bucket = new TokenBucket(rate, now);
    else if (g.bucket.ratePerSecond !== rate) g.bucket.setRate(rate, now);
    return g;
  }
}
