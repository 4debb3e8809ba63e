/**
 * The circuit breaker of one push receiver, as a pure state machine: `stepBreaker(state, event,
 * config)` answers the next state, `breakerPermits` how many requests may start now. No clock
 * inside; events carry the time.
 *
 *   closed ──(failureThreshold consecutive failures)──> open
 *   open ──(cooldown over)──> half-open
 *   half-open ──(the probe succeeds)──> closed          (cooldown back to the base)
 *   half-open ──(the probe fails)──> open               (cooldown doubled, up to maxCooldownMs)
 *
 * Closed lets requests start as usual, except that once a failure streak has begun it lets no
 * more start than could still be needed to reach the threshold (so a failing receiver gets
 * threshold requests, not threshold plus whatever was in flight). Open lets none start. Half-open
 * lets exactly one start (the probe) when nothing else is in flight.
 */
import type { DeliveryOutcome } from './outcome.ts';

export interface BreakerConfig {
  /** Consecutive failures that open the breaker (>= 1). */
  failureThreshold: number;
  /** How long the breaker stays open the first time. */
  cooldownMs: number;
  /** Cap of the cooldown, which doubles with every failed probe. */
  maxCooldownMs: number;
}

// maxCooldownMs: a receiver back after a long outage gets its first probe within a minute (the
// backlog bench saw a 186 s wait with a 10 min cap), at the cost of one request a minute while it is down.
export const DEFAULT_BREAKER: BreakerConfig = Object.freeze({ failureThreshold: 5, cooldownMs: 30_000, maxCooldownMs: 60_000 });

export type BreakerState =
  | { state: 'closed'; consecutiveFailures: number }
  | { state: 'open'; consecutiveFailures: number; openUntil: number; cooldownMs: number }
  | { state: 'half-open'; consecutiveFailures: number; cooldownMs: number; probing: boolean };

/** What an attempt says about the receiver's health. */
export type BreakerSignal = 'success' | 'failure' | 'neutral';

export type BreakerEvent =
  /** Time passed: an open breaker whose cooldown is over becomes half-open. */
  | { type: 'clock'; now: number }
  /** The half-open breaker's probe request was started. */
  | { type: 'probe-started' }
  /** An attempt ended. `probe`: it was the half-open breaker's probe. */
  | { type: 'result'; signal: BreakerSignal; probe: boolean; now: number };

export const CLOSED: BreakerState = Object.freeze({ state: 'closed', consecutiveFailures: 0 });

/**
 * Which outcomes count. Everything but delivered is a failure, except:
 *  - 410 Gone: the receiver answered, saying this one message is gone; it is not unhealthy.
 *  - the hub refusing to send (unsafe target, message missing): no request reached the receiver.
 * Those are neutral: they neither add to nor end a failure streak.
 */
export function breakerSignal(outcome: DeliveryOutcome): BreakerSignal {
  switch (outcome.kind) {
    case 'delivered': return 'success';
    case 'gone': return 'neutral';
    case 'network': return HUB_SIDE_CODES.has(outcome.code) ? 'neutral' : 'failure';
    default: return 'failure';
  }
}

const HUB_SIDE_CODES = new Set(['EUNSAFETARGET', 'ENOMESSAGE']);

export function stepBreaker(s: BreakerState, e: BreakerEvent, c: BreakerConfig): BreakerState {
  switch (s.state) {
    case 'closed': {
      if (e.type !== 'result' || e.signal === 'neutral') return s;
      if (e.signal === 'success') return s.consecutiveFailures === 0 ? s : CLOSED;
      const consecutiveFailures = s.consecutiveFailures + 1;
      if (consecutiveFailures < c.failureThreshold) return { state: 'closed', consecutiveFailures };
      const cooldownMs = Math.min(c.cooldownMs, c.maxCooldownMs);
      return { state: 'open', consecutiveFailures, openUntil: e.now + cooldownMs, cooldownMs };
    }
    case 'open':
      // Results of requests started before it opened change nothing: only a probe decides.
      if (e.type === 'clock' && e.now >= s.openUntil) {
        return { state: 'half-open', consecutiveFailures: s.consecutiveFailures, cooldownMs: s.cooldownMs, probing: false };
      }
      return s;
    case 'half-open': {
      if (e.type === 'probe-started') return s.probing ? s : { ...s, probing: true };
      if (e.type !== 'result' || !e.probe) return s;
      if (e.signal === 'success') return CLOSED;
      if (e.signal === 'neutral') return { ...s, probing: false };
      const cooldownMs = Math.min(s.cooldownMs * 2, c.maxCooldownMs);
      return { state: 'open', consecutiveFailures: s.consecutiveFailures + 1, openUntil: e.now + cooldownMs, cooldownMs };
    }
  }
}

/** How many new requests the breaker lets start, given those of the receiver in flight. Infinity: no limit of its own. */
export function breakerPermits(s: BreakerState, inFlight: number, c: BreakerConfig): number {
  switch (s.state) {
    case 'closed':
      return s.consecutiveFailures === 0 ? Infinity : Math.max(0, c.failureThreshold - s.consecutiveFailures - inFlight);
    case 'open':
      return 0;
    case 'half-open':
      return !s.probing && inFlight === 0 ? 1 : 0;
  }
}
