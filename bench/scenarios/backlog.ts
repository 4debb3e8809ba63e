/**
 * backlog: a push receiver is down (nothing listens on its port: connection refused) while
 * 1,000,000 deliveries pile up. Closed-loop ingest of the 1 KB structured event in steps of
 * `BENCH_SECONDS`, each the same load, reporting msgs/s, CPU per message and the hub's RSS as the
 * backlog grows; the first step (empty backlog) is the baseline. Then the receiver comes up and
 * the drain is measured at the receiver: when the first delivery came, deliveries/s until all
 * arrived, every id checked (missing, duplicates), and the hub's RSS. Last, from the hub's file:
 * what the attempts made while the receiver was down were, and whether any delivery went dead.
 * Env: BENCH_BACKLOG (deliveries to pile up; 1,000,000, smoke 2,000), BENCH_BACKLOG_DRAIN_SECONDS
 * (longest wait for the drain), BENCH_BACKLOG_KEEP=<dir> (keep the hub's folder there, to inspect),
 * BENCH_BREAKER_MAX_COOLDOWN_MS (a lower cap on the breaker's probe interval than the default 10 min).
 */
import Database from 'better-sqlite3';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { DEFAULT_BREAKER } from '../../src/delivery/circuit-breaker.ts';
import { DEFAULT_RETRY_POLICY } from '../../src/delivery/retry-policy.ts';
import { RssSampler } from '../backlog-rss.ts';
import { spawnTs, type Child } from '../lib/children.ts';
import { eventTemplate, idMaker } from '../lib/event.ts';
import { deliveryCounts, mergeIfSupported, startHubProcess, type HubProcess } from '../lib/hub-process.ts';
import { closedLoop } from '../lib/load.ts';
import { SENDER, SENDER_KEY, ingestHeaders, unexpectedStatuses, type Scenario } from '../lib/scenario.ts';
import { freePort } from '../lib/ports.ts';
import { positiveSetting, type BenchSettings } from '../lib/settings.ts';
import { cpuSecondsOf, cpuUsPer, fmtRate, nowUs, round } from '../lib/stats.ts';

const PUSH = 'BENCH-PUSH';
/** The targets of the issue. */
const TARGET_INGEST_RATIO = 0.8;
const TARGET_RSS_MB = 512;
const TARGET_DRAIN_PER_SEC = 5_000;

interface Sizes { backlog: number; stepSeconds: number; warmupSeconds: number; drainSeconds: number; keepDir: string | null; maxCooldownMs: number | null }

function sizesFrom(s: BenchSettings, env: NodeJS.ProcessEnv): Sizes {
  const num = (name: string, fallback: number) => positiveSetting(env, name, fallback);
  const backlog = Math.round(num('BENCH_BACKLOG', s.smoke ? 2_000 : 1_000_000));
  return {
    backlog,
    // autocannon runs whole seconds at least: in smoke mode ~2,000 deliveries take a step or two, and no warm-up.
    stepSeconds: s.seconds,
    warmupSeconds: s.smoke ? 0 : s.warmupSeconds,
    // The breaker may be open for up to maxCooldownMs when the receiver comes back; then the drain itself.
    drainSeconds: num('BENCH_BACKLOG_DRAIN_SECONDS', s.smoke ? 20 : DEFAULT_BREAKER.maxCooldownMs / 1000 + backlog / 1_000 + 60),
    keepDir: env.BENCH_BACKLOG_KEEP || null,
    maxCooldownMs: env.BENCH_BREAKER_MAX_COOLDOWN_MS ? Math.round(num('BENCH_BREAKER_MAX_COOLDOWN_MS', 1)) : null,
  };
}

function hubConfig(receiverUrl: string, maxInFlight: number, smoke: boolean, maxCooldownMs: number | null): Record<string, unknown> {
  const config: Record<string, unknown> = {
    participants: {
      [SENDER]: { name: 'Benchmark sender', keys: [SENDER_KEY] },
      [PUSH]: { name: 'Benchmark push receiver (down, then up)', receiver: { mode: 'push', url: receiverUrl, maxInFlight } },
    },
    routes: [{ name: 'everything to the push receiver', match: {}, to: { participants: [PUSH] } }],
  };
  // Smoke only: a short breaker cooldown, or the receiver coming back would wait 30 s for the probe.
  if (smoke) mergeIfSupported(config, { delivery: { breaker: { cooldownMs: 300, maxCooldownMs: 600 } } });
  // BENCH_BREAKER_MAX_COOLDOWN_MS: what a lower cap on the breaker's probe interval would change.
  if (maxCooldownMs !== null) {
    mergeIfSupported(config, { delivery: { breaker: { cooldownMs: Math.min(DEFAULT_BREAKER.cooldownMs, maxCooldownMs), maxCooldownMs } } });
  }
  return config;
}

interface Breaker { state: string; consecutiveFailures: number; openUntil: string | null }

async function breakerOf(hub: HubProcess): Promise<Breaker | null> {
  try {
    const { receivers } = await hub.admin('/v1/admin/receivers') as { receivers: Array<{ receiver: string; breaker: Breaker }> };
    return receivers.find((r) => r.receiver === PUSH)?.breaker ?? null;
  } catch {
    return null;
  }
}

interface Step {
  step: number; backlogBefore: number; backlogAfter: number; seconds: number; msgsPerSec: number; p50Ms: number; p99Ms: number;
  cpuUsPerMsg: number | null; rssMaxMb: number; rssEndMb: number; breaker: string; load1: number;
}

interface Stats { count: number; unique: number; duplicates: number; foreign: number; firstUs: number; lastUs: number; perSecond: Array<[number, number]> }

async function getJson(url: string): Promise<any> {
  const res = await request(url);
  return res.body.json();
}

/** Deliveries per second in each 10 s after the receiver came up, from its arrivals per second (the last 10 s: up to the last arrival). */
function drainSeries(stats: Stats, upUs: number): Array<{ fromSeconds: number; perSec: number }> {
  const upSecond = Math.floor(upUs / 1e6);
  const lastSecond = Math.floor(stats.lastUs / 1e6);
  const buckets = new Map<number, number>();
  for (const [second, n] of stats.perSecond) {
    const b = Math.floor((second - upSecond) / 10);
    buckets.set(b, (buckets.get(b) ?? 0) + n);
  }
  return [...buckets].sort((a, b) => a[0] - b[0]).map(([b, n]) => {
    const span = Math.min(10, lastSecond - (upSecond + b * 10) + 1);
    return { fromSeconds: b * 10, perSec: round(n / span) };
  });
}

/** What the hub's file says once it has stopped: attempts by outcome, retried and dead deliveries. */
function attemptFigures(dbFile: string) {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    const byOutcome = Object.fromEntries((db.prepare('SELECT outcome, count(*) AS n FROM attempts GROUP BY outcome').all() as Array<{ outcome: string; n: number }>).map((r) => [r.outcome, r.n]));
    const byState = Object.fromEntries((db.prepare('SELECT state, count(*) AS n FROM deliveries GROUP BY state').all() as Array<{ state: string; n: number }>).map((r) => [r.state, r.n]));
    const retried = db.prepare('SELECT count(*) AS n, max(attempts) AS most FROM deliveries WHERE attempts > 1').get() as { n: number; most: number | null };
    return { byOutcome, byState, deliveriesRetried: retried.n, mostAttempts: retried.most ?? 1 };
  } finally {
    db.close();
  }
}

export const backlogScenario: Scenario = {
  name: 'backlog',
  description: 'a receiver down while 1,000,000 deliveries pile up: ingest rate as the backlog grows, RSS, drain rate',
  async run(s, workDir, log) {
    const sizes = sizesFrom(s, process.env);
    const problems: string[] = [];
    const tag = `bl${Date.now().toString(36)}`;
    const nextId = idMaker(tag);
    const idPrefix = idMaker(tag)().slice(0, -10);
    let generated = 0;
    const template = eventTemplate(SENDER, s.bodyBytes);
    const port = await freePort();
    const hook = `http://127.0.0.1:${port}/hook`;
    const hubDir = sizes.keepDir ?? join(workDir, 'backlog-hub');

    log(`backlog: hub (child process), push receiver ${hook} DOWN (nothing listening); ${sizes.backlog.toLocaleString('en-US')} deliveries in ${sizes.stepSeconds}s closed-loop steps of ${s.connections} connections`);
    const hub = await startHubProcess(hubDir, hubConfig(hook, s.pushInFlight, s.smoke, sizes.maxCooldownMs), { cpuProfDir: s.cpuProfDir, name: 'backlog' });
    const pid = hub.child.proc.pid;
    const rss = new RssSampler(pid);
    let receiver: Child | null = null;
    const steps: Step[] = [];
    let accepted = 0;
    const downAtUs = nowUs();
    try {
      // ---- the backlog piles up ----
      const common = { url: hub.url, path: '/v1/messages', headers: ingestHeaders(SENDER_KEY), body: () => { generated++; return template.body(nextId()); }, connections: s.connections, okStatus: 202 };
      if (sizes.warmupSeconds > 0) {
        const warm = await closedLoop({ ...common, seconds: sizes.warmupSeconds });
        accepted += warm.ok;
        const warmBad = unexpectedStatuses(warm.statuses, 202);
        if (warmBad) problems.push(`warm-up answered ${warmBad}`);
      }
      rss.take();
      while (accepted < sizes.backlog) {
        const before = accepted;
        const cpuBefore = cpuSecondsOf(pid);
        const r = await closedLoop({ ...common, seconds: sizes.stepSeconds });
        const cpuAfter = cpuSecondsOf(pid);
        accepted += r.ok;
        const bad = unexpectedStatuses(r.statuses, 202);
        if (bad || r.errors + r.timeouts > 0) problems.push(`step ${steps.length + 1}: answered ${bad || 'only 202'}, ${r.errors} errors, ${r.timeouts} timeouts`);
        const mem = rss.take();
        const breaker = await breakerOf(hub);
        const step: Step = {
          step: steps.length + 1, backlogBefore: before, backlogAfter: accepted, seconds: round(r.seconds, 2), msgsPerSec: round(r.okPerSec),
          p50Ms: r.latency.p50Ms, p99Ms: r.latency.p99Ms, cpuUsPerMsg: cpuUsPer(cpuBefore, cpuAfter, r.ok),
          rssMaxMb: mem.maxMb, rssEndMb: mem.lastMb, breaker: breaker ? `${breaker.state}${breaker.openUntil ? ` until ${breaker.openUntil.slice(11, 19)}` : ''}` : '?',
          load1: round(loadavg()[0]!, 2),
        };
        steps.push(step);
        log(`backlog: step ${step.step}: ${before.toLocaleString('en-US')} → ${accepted.toLocaleString('en-US')} pending, ${fmtRate(step.msgsPerSec)}, CPU ${step.cpuUsPerMsg} µs/msg, RSS ${step.rssEndMb} MB (max ${step.rssMaxMb}), breaker ${step.breaker}, load ${step.load1}`);
        if (r.ok === 0) { problems.push(`step ${step.step} accepted nothing: stopped piling up`); break; }
      }

      // ---- what is stored, and the breaker, while the receiver is still down ----
      const counts = await deliveryCounts(hub, PUSH);
      const stored = Object.values(counts).reduce((a, b) => a + b, 0);
      const cutOffAllowance = s.connections * (steps.length + 1);
      if (stored < accepted) problems.push(`${accepted} messages answered 202 but only ${stored} deliveries are stored`);
      if (stored > accepted + cutOffAllowance) problems.push(`${stored} deliveries stored, more than the ${accepted} answered 202 and the ${cutOffAllowance} that may have been cut off`);
      if ((counts.dead ?? 0) > 0) problems.push(`${counts.dead} deliveries went dead while the receiver was down`);
      const breakerAtUp = await breakerOf(hub);
      const downSeconds = (nowUs() - downAtUs) / 1e6;

      // ---- the receiver comes back: the drain ----
      log(`backlog: ${stored.toLocaleString('en-US')} deliveries stored (${JSON.stringify(counts)}); receiver down for ${downSeconds.toFixed(0)}s, breaker ${JSON.stringify(breakerAtUp)}; bringing it up`);
      rss.take();
      const cpuDrainBefore = cpuSecondsOf(pid);
      receiver = await spawnTs('receiver', 'bench/backlog-receiver.ts', [], {
        env: { RECEIVER_PORT: String(port), RECEIVER_ID_PREFIX: idPrefix, RECEIVER_CAPACITY: String(Math.max(4_000_000, stored * 2)) },
        ready: /receiver listening on (\S+)/,
      });
      const upUs = nowUs();
      const stats = (): Promise<Stats> => getJson(`${receiver!.ready[1]}/_stats`);
      let st = await stats();
      const deadline = Date.now() + sizes.drainSeconds * 1000;
      let lastLog = 0;
      while (st.unique < stored && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, s.smoke ? 100 : 1000));
        st = await stats();
        if (Date.now() - lastLog >= 10_000) {
          lastLog = Date.now();
          log(`backlog: drain ${((nowUs() - upUs) / 1e6).toFixed(0)}s after up: ${st.unique.toLocaleString('en-US')}/${stored.toLocaleString('en-US')} arrived, RSS ${rss.take().lastMb} MB`);
        }
      }
      const cpuDrainAfter = cpuSecondsOf(pid);
      const drainMem = rss.take();
      const missing = await getJson(`${receiver.ready[1]}/_missing?below=${generated}`) as { missing: number; examples: number[] };
      const after = await deliveryCounts(hub, PUSH);
      if (st.unique < stored) problems.push(`${stored - st.unique} of ${stored} deliveries not delivered within ${sizes.drainSeconds}s of the receiver coming up (${JSON.stringify(after)})`);
      if (st.duplicates > 0) problems.push(`${st.duplicates} duplicate deliveries (no crash: there should be none)`);
      if (st.foreign > 0) problems.push(`${st.foreign} arrivals with ids the benchmark did not send`);
      const notDone = Object.entries(after).filter(([state]) => state !== 'delivered').map(([state, n]) => `${n} ${state}`);
      if (notDone.length > 0) problems.push(`deliveries not delivered at the end: ${notDone.join(', ')}`);

      await hub.stop();
      const attempts = attemptFigures(join(hubDir, 'data', 'meterhub.db'));

      // ---- figures ----
      const first = steps[0];
      const last = steps.at(-1);
      const firstDeliveryAfterUpSeconds = st.firstUs > 0 ? round((st.firstUs - upUs) / 1e6, 2) : null;
      const drainSecondsTaken = st.lastUs > st.firstUs ? (st.lastUs - st.firstUs) / 1e6 : 0;
      const drainPerSec = drainSecondsTaken > 0 ? round(st.unique / drainSecondsTaken) : 0;
      const ingestRatio = first && last && first.msgsPerSec > 0 ? round(last.msgsPerSec / first.msgsPerSec, 3) : 0;
      const cpuRatio = first?.cpuUsPerMsg && last?.cpuUsPerMsg ? round(last.cpuUsPerMsg / first.cpuUsPerMsg, 3) : null;
      const peakRssMb = rss.peakMb;
      const drain = {
        firstDeliveryAfterUpSeconds, seconds: round(drainSecondsTaken, 1), deliveredPerSec: drainPerSec,
        delivered: st.unique, arrivals: st.count, duplicates: st.duplicates, missingIds: missing.missing,
        cpuUsPerDelivery: cpuUsPer(cpuDrainBefore, cpuDrainAfter, st.unique), rssMaxMb: drainMem.maxMb, rssEndMb: drainMem.lastMb,
        series: drainSeries(st, upUs),
      };
      const targets = {
        ingestRatio: { target: TARGET_INGEST_RATIO, value: ingestRatio, met: ingestRatio >= TARGET_INGEST_RATIO },
        rssMb: { target: TARGET_RSS_MB, value: peakRssMb, met: peakRssMb > 0 && peakRssMb < TARGET_RSS_MB },
        drainPerSec: { target: TARGET_DRAIN_PER_SEC, value: drainPerSec, met: drainPerSec >= TARGET_DRAIN_PER_SEC },
      };
      const yes = (m: boolean) => (m ? 'met' : 'NOT met');
      const lines = [
        `backlog — push receiver down (connection refused) while ${stored.toLocaleString('en-US')} deliveries piled up; ${s.bodyBytes} B structured events, ${s.connections} connections, closed loop in ${sizes.stepSeconds}s steps`,
        '  step  pending before → after     msgs/s    p99 ms  CPU µs/msg  RSS MB (max)  breaker',
        ...steps.map((x) => `  ${String(x.step).padStart(4)}  ${x.backlogBefore.toLocaleString('en-US').padStart(9)} → ${x.backlogAfter.toLocaleString('en-US').padEnd(9)}  ${Math.round(x.msgsPerSec).toLocaleString('en-US').padStart(7)}  ${x.p99Ms.toFixed(1).padStart(8)}  ${String(x.cpuUsPerMsg ?? '').padStart(10)}  ${`${x.rssEndMb} (${x.rssMaxMb})`.padStart(12)}  ${x.breaker}  (load ${x.load1})`),
        `  ingest at ${last?.backlogBefore.toLocaleString('en-US')} pending: ${fmtRate(last?.msgsPerSec ?? 0)} = ${(ingestRatio * 100).toFixed(1)}% of the empty-backlog ${fmtRate(first?.msgsPerSec ?? 0)} (target ≥ ${TARGET_INGEST_RATIO * 100}%: ${yes(targets.ingestRatio.met)}); CPU per msg ${cpuRatio ?? '?'}× the first step's`,
        `  receiver down ${downSeconds.toFixed(0)}s; breaker when it came up: ${breakerAtUp ? `${breakerAtUp.state}${breakerAtUp.openUntil ? ` until ${breakerAtUp.openUntil}` : ''}, ${breakerAtUp.consecutiveFailures} consecutive failures` : '?'}`,
        `  drain: first delivery ${firstDeliveryAfterUpSeconds ?? 'never'} s after the receiver came up; ${st.unique.toLocaleString('en-US')} delivered in ${drain.seconds}s = ${fmtRate(drainPerSec)} (target ≥ ${TARGET_DRAIN_PER_SEC.toLocaleString('en-US')}/s: ${yes(targets.drainPerSec.met)}); CPU ${drain.cpuUsPerDelivery} µs/delivery; ${st.duplicates} duplicates, ${missing.missing} ids never arrived (sent but not stored: cut off)`,
        `  drain per 10 s after up: ${drain.series.map((b) => `${b.fromSeconds}s ${Math.round(b.perSec)}`).join(', ')}`,
        `  hub RSS: peak ${peakRssMb} MB (target < ${TARGET_RSS_MB} MB: ${yes(targets.rssMb.met)}); during the drain max ${drainMem.maxMb} MB, ${drainMem.lastMb} MB at the end`,
        `  attempts: ${JSON.stringify(attempts.byOutcome)}; ${attempts.deliveriesRetried} deliveries tried more than once (at most ${attempts.mostAttempts}); deliveries by state ${JSON.stringify(attempts.byState)}; retry maxAgeSeconds ${DEFAULT_RETRY_POLICY.maxAgeSeconds}, maxAttempts ${DEFAULT_RETRY_POLICY.maxAttempts}`,
      ];
      return {
        lines,
        problems,
        json: {
          scenario: 'backlog', backlog: sizes.backlog, breakerMaxCooldownMs: sizes.maxCooldownMs ?? (s.smoke ? 600 : DEFAULT_BREAKER.maxCooldownMs), stored, bodyBytes: s.bodyBytes, connections: s.connections, stepSeconds: sizes.stepSeconds, pushInFlight: s.pushInFlight,
          receiverDown: 'connection refused (nothing listening on its port)', downSeconds: round(downSeconds, 1),
          ingest: { baselineMsgsPerSec: first?.msgsPerSec ?? 0, atBacklogMsgsPerSec: last?.msgsPerSec ?? 0, ratio: ingestRatio, cpuRatio, steps },
          breakerAtUp, drain, peakRssMb, attempts, targets,
        },
      };
    } finally {
      rss.stop();
      await receiver?.stop();
      await hub.stop();
    }
  },
};
