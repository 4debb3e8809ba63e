import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { Pool } from 'undici';
import type { Archive } from '../archive/archive.ts';
import type { PushReceiverSettings } from '../config/receiver-schema.ts';
import type { ParticipantDirectory } from '../participants/directory.ts';
import { isStorageFault } from '../store/storage-error.ts';
import type { Store } from '../store/store.ts';
import type { AttemptResult, ClaimedDelivery, DeliveryRecord, MessageRecord, StoredReceiver } from '../store/types.ts';
import { breakerSignal, type BreakerConfig } from './circuit-breaker.ts';
import { withDeadline } from './deadline.ts';
import { classifyError, classifyResponse, describeOutcome, type DeliveryOutcome } from './outcome.ts';
import { cloudEventHeaders } from './push-request.ts';
import { ReceiverGates, type BreakerView } from './receiver-gates.ts';
import { decideRetry, type RetryPolicy } from './retry-policy.ts';
import { safeConnector } from './safe-connect.ts';
import { createSigner, signatureHeader } from './signing.ts';
import type { TargetGuard } from './target-guard.ts';

export interface PushDispatcherOptions {
  pollIntervalMs: number;
  leaseMarginMs: number;
  maxInFlight: number;
  defaultRetry: RetryPolicy;
  /** Per-receiver circuit breaker (docs/configuration.md, delivery.breaker). */
  breaker: BreakerConfig;
}

export interface PushDispatcherDeps {
  store: Store;
  directory: ParticipantDirectory;
  archive: Archive;
  guard: TargetGuard;
  logger: Logger;
  onAttempt?: (receiver: string, result: AttemptResult) => void;
  onDead?: (delivery: DeliveryRecord, reason: string) => void;
}

type PushSettings = PushReceiverSettings & { secrets?: string[] };

/** A delivery claimed ahead of a free slot of its receiver, with the settings it was claimed under. */
interface ReadyDelivery { delivery: ClaimedDelivery; settings: PushSettings; claimedAt: number }

const SNIPPET_BYTES = 512;
/**
 * Retries recorded here that come due within this horizon get a scheduler pass of their own at
 * their due time (at most this many at once); later ones, and others' (another process's, or
 * from before a restart), are found by the poll.
 */
const RETRY_WAKE_HORIZON_MS = 30_000;
const RETRY_WAKES_MAX = 10_000;
/**
 * Longest a delivery claimed ahead waits for a slot before it is given back (capped by
 * delivery.leaseMarginMs). A claim with some taken ahead leases them all this much longer, so
 * that the attempt and its record still have the whole margin.
 */
const AHEAD_WAIT_MS = 1_000;
/**
 * Results of an unordered receiver's attempts wait this long (or for RECORD_BATCH of them) to be
 * recorded together: with slots freed at the answer, completions come one by one, and each
 * record alone would be a commit (an fsync) of its own. The slot is already free; only the
 * record waits. An ordered receiver's result is recorded at once (its subject waits for it).
 */
const RECORD_WINDOW_MS = 4;
const RECORD_BATCH = 64;
/** undici's headers and body timers are coarse (fast timers, ~1 s resolution): set them this far past the deadline. */
const UNDICI_TIMER_SLACK_MS = 1_000;

/**
 * Claims due push deliveries receiver by receiver, each up to its own free slots, so that a
 * receiver with a deep backlog or a hanging endpoint cannot take the capacity of the others.
 * Each receiver's claims are also held to its rate limit and its circuit breaker
 * (receiver-gates.ts): a shut gate leaves its deliveries pending, untouched.
 * Woken by ingest and by freed slots, by itself when a rate token or a breaker cooldown comes
 * back, and polls at `pollIntervalMs` for retries that come due.
 *
 * A slot is freed when the receiver answers, not when the result is committed: the lease covers
 * the record, and per-subject order still holds because the claim query does not take a
 * subject's next delivery while this one is `delivering`, which it stays until recorded. For a
 * healthy receiver with a backlog (breaker closed with no failures, no rate limit) the pass
 * claims up to one more round of its slots ahead, so that a freed slot starts the next delivery
 * at once rather than after a claim's commit turn; a claim given no slot within AHEAD_WAIT_MS,
 * or when the receiver's gate shuts or the dispatcher stops, is given back.
 */
export class PushDispatcher {
  private running = false;
  private timer: { cancel(): void } | null = null;
  private timerAt = 0;
  private ticking = false;
  private again = false;
  private readonly inFlightBy = new Map<string, number>();
  private inFlight = 0;
  private readonly sends = new Set<Promise<void>>();
  /** Per receiver, deliveries claimed ahead of a free slot, in claim (sequence) order. */
  private readonly ready = new Map<string, ReadyDelivery[]>();
  /** The latest pass's share of the hub-wide cap per receiver (a freed slot is refilled within it). */
  private fairShare = 1;
  /**
   * The latest pass left due work for want of a slot (or may have: a claim took all it asked
   * for). Only then does a freed slot call for a pass: new work wakes the dispatcher by itself.
   */
  private starved = true;
  /** One connection pool per receiver (never per origin: two receivers on one origin have their own settings). */
  private readonly pools = new Map<string, { key: string; pool: Pool }>();
  /** Pools replaced after a receiver's settings changed, closing once their requests finish. */
  private readonly retiring = new Set<Promise<void>>();
  private readonly token = randomBytes(6).toString('hex');
  private readonly gates: ReceiverGates;
  /** Due times of retries this process recorded and no pass has reached yet (see RETRY_WAKE_HORIZON_MS). */
  private retryWakes: number[] = [];
  /** The `now` of the latest pass: deliveries due by then were claimable in it. */
  private rotation = 0;
  private lastPassAt = 0;
  /** Results waiting for their batch to be recorded (RECORD_WINDOW_MS). */
  private toRecord: Array<{ delivery: ClaimedDelivery; result: AttemptResult; resolve: (recorded: boolean) => void; reject: (err: unknown) => void }> = [];
  private recordTimer: NodeJS.Timeout | null = null;
  /** Results of finished attempts the store could not take (a storage fault), recorded when it can. */
  private readonly unrecorded: Array<{ delivery: ClaimedDelivery; result: AttemptResult }> = [];
  /** Aborted by abort(): cuts every push request in flight (shutdown past its grace period). */
  private readonly halt = new AbortController();

  constructor(private readonly deps: PushDispatcherDeps, private readonly opts: PushDispatcherOptions) {
    this.gates = new ReceiverGates(opts.breaker);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** Stops claiming, waits for the requests in flight (each bounded by its receiver's timeout), closes connections. */
  async stop(): Promise<void> {
    if (!this.running && this.sends.size === 0 && this.pools.size === 0 && this.retiring.size === 0) return;
    this.running = false;
    this.timer?.cancel();
    this.timer = null;
    // A pass under way may still start sends (and claim ahead): let it end first, so that
    // every send it started is waited for below and every claim ahead is given back.
    await this.current;
    await this.giveBackAll();
    await Promise.allSettled([...this.sends]);
    // What still cannot be recorded is sent again after the restart (its lease is released then).
    await this.retryUnrecorded();
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.allSettled([...pools.map((p) => p.pool.close()), ...this.retiring]);
  }

  /**
   * Cuts every push request in flight now (and claims nothing more): for a shutdown whose grace
   * period is over. The failed attempts this causes are not recorded (a delivery must not use up
   * its retry budget, or go dead, because the hub stopped); the caller puts their deliveries back
   * to pending (Store.releaseAllPushLeases) once stop() has settled. A 2xx already received is
   * still recorded as delivered.
   */
  abort(): void {
    this.running = false;
    this.halt.abort(new Error('the hub is shutting down'));
  }

  /** New deliveries were committed, or a slot freed: look again soon. */
  wake(): void {
    if (this.running) this.schedule(0, true);
  }

  /** One scheduling pass and every send it started, for tests and tools. Returns deliveries attempted. */
  async runOnce(): Promise<number> {
    const started = await this.tick();
    await Promise.allSettled([...this.sends]);
    return started;
  }

  get inFlightCount(): number { return this.inFlight; }

  private get aheadWaitMs(): number { return Math.min(AHEAD_WAIT_MS, this.opts.leaseMarginMs); }

  /** Push requests in flight to one receiver from this process (never more than its maxInFlight). */
  inFlightOf(receiver: string): number { return this.inFlightBy.get(receiver) ?? 0; }

  /** The circuit breaker of every receiver this process has sent to (receivers not listed are closed). */
  breakerStates(): BreakerView[] {
    return this.gates.states(Date.now());
  }

  /**
   * Runs a pass after `delayMs`, unless one is already due sooner. `now`: at the end of this
   * turn (setImmediate) rather than on a timer, which is at least 1 ms away (wake-ups only: a
   * pass asking for itself again waits for a timer, so that it cannot spin).
   */
  private schedule(delayMs: number, now = false): void {
    const at = Date.now() + Math.max(0, delayMs);
    if (this.timer) {
      if (this.timerAt <= at) return;
      this.timer.cancel();
    }
    this.timerAt = at;
    const run = () => {
      this.timer = null;
      void this.loop();
    };
    if (now && delayMs <= 0) {
      const h = setImmediate(run);
      this.timer = { cancel: () => clearImmediate(h) };
    } else {
      const h = setTimeout(run, Math.max(0, delayMs));
      this.timer = { cancel: () => clearTimeout(h) };
    }
  }

  /** The passes running now (loop), awaited by stop() so that no send starts after it looked. */
  private current: Promise<void> | null = null;

  private loop(): Promise<void> {
    if (this.ticking) { this.again = true; return this.current ?? Promise.resolve(); }
    const passes = this.passes().finally(() => { if (this.current === passes) this.current = null; });
    this.current = passes;
    return passes;
  }

  private async passes(): Promise<void> {
    this.ticking = true;
    try {
      do {
        this.again = false;
        await this.tick();
      } while (this.again && this.running);
    } catch (err) {
      this.deps.logger.error({ err }, 'push scheduler pass failed; retrying');
    } finally {
      this.ticking = false;
      if (this.running) this.schedule(Math.min(this.opts.pollIntervalMs, this.nextRetryWake() - Date.now()));
    }
  }

  /**
   * A retry was recorded, due at `at`: run a pass then, rather than leave it to the next poll
   * (up to pollIntervalMs late, at every retry of a delivery).
   */
  private retryAt(at: number): void {
    if (!this.running || at - Date.now() > RETRY_WAKE_HORIZON_MS || this.retryWakes.length >= RETRY_WAKES_MAX) return;
    this.retryWakes.push(at);
    this.schedule(at - Date.now());
  }

  /** The earliest retry wake no pass has reached yet (Infinity: none); forgets those reached. */
  private nextRetryWake(): number {
    let next = Infinity;
    const keep: number[] = [];
    for (const at of this.retryWakes) {
      if (at <= this.lastPassAt) continue;
      keep.push(at);
      if (at < next) next = at;
    }
    this.retryWakes = keep;
    return next;
  }

  private async tick(): Promise<number> {
    const { store, directory } = this.deps;
    // Until this pass is over, a freed slot calls for another.
    this.starved = true;
    // Claims ahead that waited too long go back whether or not this pass gets to their receiver
    // (a full hub-wide cap returns early, a pass may break before it): else they would sit
    // `delivering` until their lease ran out and be rescued as lost attempts.
    this.returnStaleAhead(Date.now());
    if (this.inFlight >= this.opts.maxInFlight || this.halt.signal.aborted) return 0;
    let starved = false;
    await this.retryUnrecorded();
    const now = Date.now();
    this.lastPassAt = now;
    await directory.refreshIfStale();
    let started = 0;
    let wakeAt = Infinity;
    const withDue = await store.receiversWithDuePush(now, 10_000);
    // Receivers with deliveries claimed ahead are visited too, with or without more due.
    const listed = new Set(withDue);
    const due = [...withDue, ...[...this.ready.keys()].filter((r) => !listed.has(r))];
    // A fair share of the hub-wide cap per receiver with work, counting one more receiver than
    // there are so that slots stay free for one that turns up next, and a rotating start: so
    // receivers hanging until their timeout cannot take every slot from the others.
    const fairShare = this.fairShare = Math.max(1, Math.floor(this.opts.maxInFlight / (due.length + 1)));
    const offset = due.length > 0 ? this.rotation++ % due.length : 0;
    for (let i = 0; i < due.length; i++) {
      const receiver = due[(i + offset) % due.length]!;
      if (this.inFlight >= this.opts.maxInFlight) { starved = true; break; }
      const settings = await this.settingsOf(receiver);
      if (!settings) {
        await this.giveBack(receiver);
        await this.notPush(receiver, now);
        continue;
      }
      started += this.startReady(receiver, Date.now());
      const globalFree = this.opts.maxInFlight - this.inFlight;
      const busy = this.inFlightBy.get(receiver) ?? 0;
      const gate = this.gates.allowance(receiver, settings, busy, now);
      if (gate.wakeAt !== null) wakeAt = Math.min(wakeAt, gate.wakeAt);
      const free = Math.max(0, Math.min(Math.min(settings.maxInFlight, fairShare) - busy, globalFree, gate.limit));
      const ahead = this.running && gate.limit === Infinity && !gate.probe && this.gates.healthy(receiver)
        ? Math.max(0, settings.maxInFlight - (this.ready.get(receiver)?.length ?? 0))
        : 0;
      if (free + ahead <= 0) {
        if (gate.limit > 0 && listed.has(receiver)) starved = true;
        continue;
      }
      const leaseUntil = now + settings.timeoutMs + this.opts.leaseMarginMs + (ahead > 0 ? this.aheadWaitMs : 0);
      const claimed = await store.claimPush(receiver, free + ahead, now, leaseUntil, this.token, settings.ordering === 'subject');
      // All it asked for: more may be due.
      if (claimed.length === free + ahead) starved = true;
      // Slots freed meanwhile may have been taken by other receivers' claims ahead (slotFreed):
      // start no more than are free now, and queue the rest.
      const freeNow = Math.max(0, Math.min(free, Math.min(settings.maxInFlight, fairShare) - (this.inFlightBy.get(receiver) ?? 0), this.opts.maxInFlight - this.inFlight));
      const toStart = claimed.slice(0, freeNow);
      this.gates.started(receiver, toStart.length, gate.probe, now);
      for (const d of toStart) this.track(d, settings, gate.probe);
      started += toStart.length;
      if (claimed.length > freeNow) {
        const queue = this.ready.get(receiver) ?? [];
        // Their leases run from `now`, so their wait does too.
        for (const d of claimed.slice(freeNow)) queue.push({ delivery: d, settings, claimedAt: now });
        this.ready.set(receiver, queue);
        // Slots may have freed while the claim committed.
        started += this.startReady(receiver, Date.now());
      }
    }
    this.starved = starved;
    // A receiver held back by its rate limit or breaker cooldown: come back when it may go again.
    if (this.running && wakeAt !== Infinity) this.schedule(wakeAt - Date.now());
    return started;
  }

  private async settingsOf(receiver: string): Promise<PushSettings | null> {
    const p = await this.deps.directory.any(receiver);
    const r = p?.receiver as StoredReceiver | null | undefined;
    return r && r.mode === 'push' ? (r as PushSettings) : null;
  }

  /**
   * Due push deliveries of a receiver whose settings (in the store, not this process's cached
   * copy) are not push. A receiver switched to pull takes them with it: a push attempt that was
   * in flight at the switch comes back as pending push, and is moved to the inbox here. Only a
   * participant with no receiver settings at all (or one deleted as a pull receiver, whose inbox
   * nobody can poll any more) ends them dead, never silently kept.
   */
  private async notPush(receiver: string, now: number): Promise<void> {
    this.dropPool(receiver);
    const p = await this.deps.store.getParticipant(receiver, true);
    if (p?.receiver?.mode === 'push') { await this.deps.directory.reload(); return; }
    if (p?.receiver?.mode === 'pull' && p.deletedAt === null) {
      // Switch, then read the settings again: an admin switching back to push at the same time
      // stores its settings before it switches the pending deliveries (admin-service.ts), so
      // the mode read after our write is the one to leave them in.
      let mode: 'push' | 'pull' = 'pull';
      for (let i = 0; i < 5; i++) {
        await this.deps.store.setPendingMode(receiver, mode);
        const again = (await this.deps.store.getParticipant(receiver, true))?.receiver?.mode;
        if (again === undefined || again === mode) break;
        mode = again;
      }
      if (mode === 'push') await this.deps.directory.reload();
      else this.deps.logger.info({ receiver }, 'push deliveries of a receiver now in pull mode moved to its inbox');
      return;
    }
    const why = p?.receiver?.mode === 'pull'
      ? `receiver '${receiver}' was deleted as a pull receiver; redrive once it is back`
      : `receiver '${receiver}' has no receiver settings any more`;
    const claimed = await this.deps.store.claimPush(receiver, 1000, now, now + 60_000, this.token);
    const results = claimed.map((delivery) => ({ delivery, result: { kind: 'dead', status: null, latencyMs: 0, at: now, error: why } as AttemptResult }));
    const recorded = await this.deps.store.recordPushResults(results);
    results.forEach(({ delivery }, i) => { if (recorded[i]) this.deps.onDead?.(delivery, why); });
  }

  private track(d: ClaimedDelivery, settings: PushSettings, probe: boolean): void {
    this.inFlight++;
    this.inFlightBy.set(d.receiver, (this.inFlightBy.get(d.receiver) ?? 0) + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.inFlight--;
      this.inFlightBy.set(d.receiver, (this.inFlightBy.get(d.receiver) ?? 1) - 1);
      this.slotFreed(d.receiver);
    };
    const p = this.deliver(d, settings, probe, release)
      .catch((err) => this.deps.logger.error({ err, delivery: d.id }, 'recording a push attempt failed; its lease will expire and it will be retried'))
      .finally(() => {
        release();
        this.sends.delete(p);
        // Recorded: the subject's next delivery may be claimed now.
        if (settings.ordering === 'subject') this.wake();
      });
    this.sends.add(p);
  }

  /**
   * A slot of `receiver` freed: the next delivery claimed ahead for it starts in it at once;
   * a pass runs when none did and the latest one left work for want of slots, or when its
   * claimed-ahead deliveries run low.
   */
  private slotFreed(receiver: string): void {
    const queue = this.ready.get(receiver);
    if (!queue || queue.length === 0) {
      if (this.starved) this.wake();
      return;
    }
    const started = this.startReady(receiver, Date.now());
    const left = this.ready.get(receiver)?.length ?? 0;
    if (started === 0 || left * 2 < (queue[0]?.settings.maxInFlight ?? 1)) this.wake();
  }

  /**
   * Starts deliveries claimed ahead for `receiver` in its free slots (its own limit, its fair
   * share, the hub-wide cap and its gates). Gives them back when the dispatcher stopped or the
   * gate shut, and those at the front that waited longer than aheadWaitMs. Returns how many it
   * started.
   */
  private startReady(receiver: string, now: number): number {
    const queue = this.ready.get(receiver);
    if (!queue || queue.length === 0) return 0;
    const settings = queue[0]!.settings;
    const busy = this.inFlightBy.get(receiver) ?? 0;
    const gate = this.gates.allowance(receiver, settings, busy, now);
    if (!this.running || this.halt.signal.aborted || gate.probe || gate.limit === 0) {
      void this.giveBack(receiver);
      return 0;
    }
    this.dropStale(receiver, queue, now);
    if (queue.length === 0) return 0;
    const free = Math.min(Math.min(settings.maxInFlight, this.fairShare) - busy, this.opts.maxInFlight - this.inFlight, gate.limit, queue.length);
    if (free <= 0) return 0;
    const starting = queue.splice(0, free);
    if (queue.length === 0) this.ready.delete(receiver);
    this.gates.started(receiver, starting.length, false, now);
    for (const r of starting) this.track(r.delivery, r.settings, false);
    return starting.length;
  }

  private returnStaleAhead(now: number): void {
    for (const [receiver, queue] of this.ready) this.dropStale(receiver, queue, now);
  }

  /** Gives back the claims at the front of `receiver`'s queue that waited longer than aheadWaitMs; forgets the queue once empty. */
  private dropStale(receiver: string, queue: ReadyDelivery[], now: number): void {
    const stale: ClaimedDelivery[] = [];
    while (queue.length > 0 && now - queue[0]!.claimedAt > this.aheadWaitMs) stale.push(queue.shift()!.delivery);
    if (queue.length === 0) this.ready.delete(receiver);
    if (stale.length > 0) void this.returnClaims(stale);
  }

  /** Gives back the deliveries claimed ahead for `receiver` (giveBackAll: for every receiver). */
  private giveBack(receiver: string): Promise<void> {
    const queue = this.ready.get(receiver);
    this.ready.delete(receiver);
    return queue && queue.length > 0 ? this.returnClaims(queue.map((r) => r.delivery)) : Promise.resolve();
  }

  private giveBackAll(): Promise<void> {
    return Promise.all([...this.ready.keys()].map((r) => this.giveBack(r))).then(() => {});
  }

  private async returnClaims(claims: ClaimedDelivery[]): Promise<void> {
    try {
      await this.deps.store.releasePushClaims(claims);
    } catch (err) {
      // Their leases expire and they are sent then (the lease keeper); nothing is lost.
      this.deps.logger.warn({ err, deliveries: claims.map((d) => d.id) }, 'could not give back push claims; they are sent once their leases expire');
    }
    this.wake();
  }

  private async deliver(d: ClaimedDelivery, settings: PushSettings, probe: boolean, release: () => void): Promise<void> {
    const startedAt = Date.now();
    const outcome = await this.attempt(d, settings);
    // Cut by abort(): not the receiver's failure; the lease is released by the caller.
    if (this.halt.signal.aborted && outcome.kind !== 'delivered') return;
    const latencyMs = Date.now() - startedAt;
    this.gates.finished(d.receiver, breakerSignal(outcome), probe, startedAt + latencyMs);
    // The receiver has answered: its slot is free while the result is recorded (see the class comment).
    release();
    const result = this.resultOf(d, settings, outcome, startedAt, latencyMs);
    let recorded: boolean | undefined;
    try {
      recorded = settings.ordering === 'subject'
        ? (await this.deps.store.recordPushResults([{ delivery: d, result }]))[0]
        : await this.recordSoon(d, result);
    } catch (err) {
      if (!isStorageFault(err)) throw err;
      // The store cannot take it now (disk full, read-only): keep the result and record it as soon
      // as it can, before its lease is rescued, so that a receiver that answered 2xx is not sent
      // the message again because of the hub's storage trouble.
      this.unrecorded.push({ delivery: d, result });
      this.deps.logger.warn({ err, delivery: d.id }, 'push result not recorded (storage unavailable); kept to record when the store is back');
      return;
    }
    this.afterRecorded(d, result, recorded === true);
  }

  /** Queues a result for the next batch (see RECORD_WINDOW_MS); resolves true when it was recorded. */
  private recordSoon(delivery: ClaimedDelivery, result: AttemptResult): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.toRecord.push({ delivery, result, resolve, reject });
      if (this.toRecord.length >= RECORD_BATCH) this.flushRecords();
      else this.recordTimer ??= setTimeout(() => this.flushRecords(), RECORD_WINDOW_MS);
    });
  }

  /** Issues the waiting results' write now (synchronously: a write issued next is queued behind it). */
  private flushRecords(): void {
    if (this.recordTimer) clearTimeout(this.recordTimer);
    this.recordTimer = null;
    if (this.toRecord.length === 0) return;
    const batch = this.toRecord.splice(0);
    this.deps.store.recordPushResults(batch.map(({ delivery, result }) => ({ delivery, result }))).then(
      (recorded) => batch.forEach((b, i) => b.resolve(recorded[i] === true)),
      (err) => {
        if (isStorageFault(err) || batch.length === 1) {
          batch.forEach((b) => b.reject(err));
          return;
        }
        // Not the storage: one result the store refused must not fail the others of its batch
        // (they would be sent again once their leases expire). The batch was rolled back as a
        // whole, so each is recorded again on its own.
        for (const b of batch) {
          this.deps.store.recordPushResults([{ delivery: b.delivery, result: b.result }]).then((r) => b.resolve(r[0] === true), b.reject);
        }
      },
    );
  }

  private afterRecorded(d: ClaimedDelivery, result: AttemptResult, recorded: boolean): void {
    this.deps.onAttempt?.(d.receiver, result);
    if (recorded && result.kind === 'dead') this.deps.onDead?.(d, result.error);
    if (recorded && result.kind === 'retry') this.retryAt(result.nextAttemptAt);
  }

  /**
   * Records the push results the store refused (a storage fault), oldest first. Issues its write
   * at once (synchronously), so that a caller that writes next, such as the lease keeper's
   * rescue of expired leases, is queued behind it. Results it still cannot record are kept.
   */
  retryUnrecorded(): Promise<void> {
    this.flushRecords();
    if (this.unrecorded.length === 0) return Promise.resolve();
    const batch = this.unrecorded.splice(0);
    return this.deps.store.recordPushResults(batch).then((recorded) => {
      batch.forEach(({ delivery, result }, i) => this.afterRecorded(delivery, result, recorded[i] === true));
    }, (err) => {
      if (isStorageFault(err)) { this.unrecorded.unshift(...batch); return; }
      // Not the storage: give up on them; their leases expire and they are sent again.
      this.deps.logger.error({ err, deliveries: batch.map((b) => b.delivery.id) }, 'recording kept push results failed; they will be retried when their leases expire');
    });
  }

  private resultOf(d: ClaimedDelivery, settings: PushSettings, outcome: DeliveryOutcome, at: number, latencyMs: number): AttemptResult {
    const status = 'status' in outcome ? outcome.status : null;
    if (outcome.kind === 'delivered') return { kind: 'delivered', status: outcome.status, latencyMs, at };
    const policy: RetryPolicy = { ...this.opts.defaultRetry, ...settings.retry };
    const decision = decideRetry(policy, d.attempts, at + latencyMs - d.createdAt, outcome, Math.random());
    const error = describeOutcome(outcome);
    if (decision.kind === 'dead') return { kind: 'dead', status, latencyMs, at, error: `${error}; ${decision.reason}` };
    return { kind: 'retry', status, latencyMs, at, error, nextAttemptAt: at + latencyMs + decision.delayMs };
  }

  /**
   * One try. `timeoutMs` bounds the whole of it from the pre-flight check on: DNS, connect, sending,
   * the response headers and reading the response body (a receiver trickling bytes included).
   */
  private async attempt(d: ClaimedDelivery, settings: PushSettings): Promise<DeliveryOutcome> {
    let body: Buffer | Readable | undefined;
    try {
      const message = await this.deps.store.getMessage(d.sequence);
      if (!message) return { kind: 'network', code: 'ENOMESSAGE', message: `message ${d.sequence} is missing from the archive` };
      const url = new URL(settings.url);
      const headers = cloudEventHeaders(message, d.resendOf !== null);
      const timestamp = Math.floor(Date.now() / 1000);
      const secrets = settings.secrets ?? [];
      headers['webhook-id'] = d.webhookId;
      headers['webhook-timestamp'] = String(timestamp);
      const payload = body = await this.bodyAndSignature(message, secrets, d.webhookId, timestamp, headers);
      return await withDeadline(settings.timeoutMs, async (deadline): Promise<DeliveryOutcome> => {
        const signal = AbortSignal.any([deadline, this.halt.signal]);
        const refusal = await this.deps.guard.refusal(settings.url);
        if (refusal) return { kind: 'network', code: 'EUNSAFETARGET', message: refusal };
        signal.throwIfAborted();
        const res = await this.pool(d.receiver, url.origin, settings).request({
          method: 'POST',
          path: url.pathname + url.search,
          headers,
          body: payload,
          // undici's own timers tick at ~0.5 s resolution and could end an attempt that early; they
          // are only a backstop behind the exact deadline.
          headersTimeout: settings.timeoutMs + UNDICI_TIMER_SLACK_MS,
          bodyTimeout: settings.timeoutMs + UNDICI_TIMER_SLACK_MS,
          signal,
        });
        const snippet = await readSnippet(res.body, signal);
        return classifyResponse(res.statusCode, res.headers, snippet, new Date());
      });
    } catch (err) {
      return classifyError(err);
    } finally {
      // A file stream not sent in full (refused, timed out, failed) is closed here.
      if (body instanceof Readable) body.destroy();
    }
  }

  /** Small bodies are signed from memory; file bodies are streamed once to sign and once to send. */
  private async bodyAndSignature(message: MessageRecord, secrets: string[], id: string, ts: number, headers: Record<string, string>) {
    if (message.body.kind === 'inline') {
      const data = await this.deps.archive.read(message);
      if (secrets.length > 0) headers['webhook-signature'] = signatureHeader(secrets, id, ts, data);
      return data;
    }
    if (secrets.length > 0) {
      const signer = createSigner(secrets, id, ts);
      for await (const chunk of await this.deps.archive.stream(message)) signer.update(chunk as Buffer);
      headers['webhook-signature'] = signer.digest();
    }
    return this.deps.archive.stream(message);
  }

  /**
   * The receiver's own pool, made again when its origin or connection settings changed (the old
   * one closes once its requests have finished, each bounded by its deadline).
   */
  private pool(receiver: string, origin: string, settings: PushSettings): Pool {
    const connections = Math.max(settings.maxInFlight, 4);
    const connectTimeoutMs = Math.min(settings.timeoutMs, 10_000);
    const key = `${origin} ${connections} ${connectTimeoutMs} ${this.deps.guard.allowPrivate}`;
    const have = this.pools.get(receiver);
    if (have?.key === key) return have.pool;
    if (have) this.dropPool(receiver);
    const pool = new Pool(origin, {
      connections,
      // Checks the address connected to, whatever DNS said at the pre-flight check.
      connect: safeConnector({ allowPrivate: this.deps.guard.allowPrivate, timeoutMs: connectTimeoutMs }),
      keepAliveTimeout: 30_000,
      pipelining: 1,
    });
    this.pools.set(receiver, { key, pool });
    return pool;
  }

  private dropPool(receiver: string): void {
    const have = this.pools.get(receiver);
    if (!have) return;
    this.pools.delete(receiver);
    const closing: Promise<void> = have.pool.close().catch(() => {}).finally(() => this.retiring.delete(closing));
    this.retiring.add(closing);
  }
}

/** The start of the response body, read under the attempt's deadline (undici ends the stream when `signal` aborts). */
async function readSnippet(body: AsyncIterable<Buffer>, signal: AbortSignal): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    signal.throwIfAborted();
    if (size < SNIPPET_BYTES) chunks.push(chunk);
    size += chunk.length;
    if (size > 64 * 1024) break;
  }
  return Buffer.concat(chunks).subarray(0, SNIPPET_BYTES).toString('utf8');
}
