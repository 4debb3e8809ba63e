/**
 * e2e: accept → delivered, to a push receiver in its own process (bench/push-receiver.ts).
 *  1. latency at a fixed offered rate (open loop: send times scheduled in advance, latency from
 *     the scheduled time, so a stall is counted in full);
 *  2. sustained delivered throughput (closed loop, `connections` senders as fast as answered).
 * Baselines in the same run: the FLOOR relay (bench/floor-server.ts with FLOOR_FORWARD_URL: the
 * bare durable ingest, then a POST from memory and a group-committed "delivered" update), and for
 * latency the receiver posted to directly (the HTTP hop and the load generator alone).
 */
import { join } from 'node:path';
import { request } from 'undici';
import { spawnTs, type Child } from '../lib/children.ts';
import { eventTemplate, idMaker } from '../lib/event.ts';
import { deliveryCounts, startHubProcess } from '../lib/hub-process.ts';
import { closedLoop, openLoop } from '../lib/load.ts';
import { SENDER, SENDER_KEY, ingestHeaders, unexpectedStatuses, type Scenario } from '../lib/scenario.ts';
import type { BenchSettings } from '../lib/settings.ts';
import { cpuSecondsOf, cpuUsPer, fmtMs, fmtRate, round, summarize } from '../lib/stats.ts';

const PUSH = 'BENCH-PUSH';

export function e2eHubConfig(receiverUrl: string, maxInFlight: number): Record<string, unknown> {
  return {
    participants: {
      [SENDER]: { name: 'Benchmark sender', keys: [SENDER_KEY] },
      [PUSH]: { name: 'Benchmark push receiver', receiver: { mode: 'push', url: receiverUrl, maxInFlight } },
    },
    routes: [{ name: 'everything to the push receiver', match: {}, to: { participants: [PUSH] } }],
  };
}

class Receiver {
  constructor(readonly child: Child, readonly url: string) {}
  private async get(path: string): Promise<any> {
    const res = await request(this.url + path);
    return res.body.json();
  }
  reset(): Promise<unknown> { return this.get('/_reset'); }
  async count(prefix = ''): Promise<number> { return (await this.get(`/_count?prefix=${encodeURIComponent(prefix)}`) as { count: number }).count; }
  /** First arrival of each ce-id (µs), and how many arrivals repeated an id. */
  async arrivals(): Promise<{ first: Map<string, number>; duplicates: number }> {
    const { arrivals } = await this.get('/_arrivals') as { arrivals: Array<[string, number]> };
    const first = new Map<string, number>();
    let duplicates = 0;
    for (const [id, t] of arrivals) {
      if (first.has(id)) duplicates++;
      else first.set(id, t);
    }
    return { first, duplicates };
  }
  /** Waits until at least `n` requests (with ids starting with `prefix`) arrived, up to `seconds`; answers the count seen. */
  async waitFor(n: number, seconds: number, prefix = ''): Promise<number> {
    const deadline = Date.now() + seconds * 1000;
    for (;;) {
      const c = await this.count(prefix);
      if (c >= n || Date.now() > deadline) return c;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

interface Target {
  name: 'hub' | 'floor' | 'direct';
  url: string;
  path: string;
  headers: Record<string, string>;
  okStatus: number;
  body: (id: string) => string;
  /** Headers carrying the id, for binary mode (direct posts to the receiver). */
  idHeaders?: (id: string) => Record<string, string>;
  /** The server's process, for its CPU use. */
  pid?: number;
}

interface OpenFigures { offeredPerSec: number; sent: number; accepted: number; delivered: number; missing: number; duplicates: number; acceptP50Ms: number; acceptP99Ms: number; p50Ms: number; p99Ms: number; maxMs: number; worstSendLagMs: number; cpuUsPerMsg: number | null; cpuBusy: number | null }

async function openPhase(s: BenchSettings, target: Target, receiver: Receiver, tag: string, seconds: number, problems: string[]): Promise<OpenFigures> {
  await receiver.reset();
  const nextId = idMaker(tag);
  const ids: string[] = [];
  const idOf = (i: number) => (ids[i] ??= nextId());
  const cpuBefore = cpuSecondsOf(target.pid);
  const wallBefore = Date.now();
  const result = await openLoop({
    url: target.url, path: target.path, headers: target.headers, rate: s.rate, seconds, okStatus: target.okStatus,
    body: (i) => target.body(idOf(i)),
    ...(target.idHeaders ? { headersOf: (i: number) => target.idHeaders!(idOf(i)) } : {}),
  });
  await receiver.waitFor(result.ok, s.drainSeconds);
  const cpuAfter = cpuSecondsOf(target.pid);
  const wall = (Date.now() - wallBefore) / 1000;
  const { first, duplicates } = await receiver.arrivals();
  const accept: number[] = [];
  const delivered: number[] = [];
  let missing = 0;
  for (let i = 0; i < result.count; i++) {
    if (result.status[i] !== target.okStatus) continue;
    accept.push((result.answeredUs[i]! - result.scheduledUs[i]!) / 1000);
    const at = first.get(ids[i]!);
    if (at === undefined) missing++;
    else delivered.push((at - result.scheduledUs[i]!) / 1000);
  }
  const notOk = result.count - result.ok;
  if (notOk > 0) problems.push(`${target.name} open loop: ${notOk} of ${result.count} messages not answered ${target.okStatus} (${result.errors} errors)`);
  if (missing > 0) problems.push(`${target.name} open loop: ${missing} accepted messages not delivered within ${s.drainSeconds}s`);
  const a = summarize(accept);
  const d = summarize(delivered);
  return {
    offeredPerSec: s.rate, sent: result.count, accepted: result.ok, delivered: delivered.length, missing, duplicates,
    acceptP50Ms: a.p50Ms, acceptP99Ms: a.p99Ms, p50Ms: d.p50Ms, p99Ms: d.p99Ms, maxMs: d.maxMs, worstSendLagMs: round(result.worstSendLagUs / 1000, 2),
    cpuUsPerMsg: cpuUsPer(cpuBefore, cpuAfter, result.ok),
    cpuBusy: cpuBefore !== null && cpuAfter !== null ? round((cpuAfter - cpuBefore) / wall, 2) : null,
  };
}

interface ClosedFigures { acceptedPerSec: number; deliveredPerSec: number; allDeliveredPerSec: number; drainPerSec: number; cpuUsPerMsg: number | null; accepted: number; deliveredInWindow: number; backlogAtEnd: number; drainSeconds: number; seconds: number; acceptP50Ms: number; acceptP99Ms: number; duplicates: number }

async function closedPhase(s: BenchSettings, target: Target, receiver: Receiver, tag: string, problems: string[]): Promise<ClosedFigures> {
  const template = eventTemplate(SENDER, s.bodyBytes);
  // Separate id prefixes: requests cut off when a load phase stops are stored and delivered
  // later, and must not count in the next phase.
  const warmIds = idMaker(`${tag}w`);
  const mainIds = idMaker(`${tag}m`);
  const mainPrefix = mainIds().slice(0, -10);
  const common = { url: target.url, path: target.path, headers: target.headers, connections: s.connections, okStatus: 202 };
  // Warm up, let the warm-up's deliveries drain, then measure from an empty receiver.
  await receiver.reset();
  const warm = await closedLoop({ ...common, body: () => template.body(warmIds()), seconds: s.warmupSeconds });
  const warmSeen = await receiver.waitFor(warm.ok, s.drainSeconds);
  if (warmSeen < warm.ok) problems.push(`${target.name} closed loop: the warm-up's deliveries did not drain in ${s.drainSeconds}s (${warmSeen}/${warm.ok})`);
  await receiver.reset();
  const cpuBefore = cpuSecondsOf(target.pid);
  const main = await closedLoop({ ...common, body: () => template.body(mainIds()), seconds: s.seconds });
  const atEnd = await receiver.count(mainPrefix);
  const seen = await receiver.waitFor(main.ok, s.drainSeconds, mainPrefix);
  const cpuAfter = cpuSecondsOf(target.pid);
  const { first, duplicates } = await receiver.arrivals();
  let inWindow = 0;
  let last = main.endUs;
  for (const [id, t] of first) {
    if (!id.startsWith(mainPrefix)) continue;
    if (t <= main.endUs) inWindow++;
    last = Math.max(last, t);
  }
  if (seen < main.ok) problems.push(`${target.name} closed loop: ${main.ok - seen} of ${main.ok} accepted messages not delivered within ${s.drainSeconds}s`);
  const bad = unexpectedStatuses(main.statuses, 202);
  if (bad) problems.push(`${target.name} closed loop answered ${bad}`);
  const drainSeconds = (last - main.endUs) / 1e6;
  return {
    acceptedPerSec: round(main.okPerSec), deliveredPerSec: round(inWindow / main.seconds),
    allDeliveredPerSec: round(Math.min(seen, main.ok) / (main.seconds + drainSeconds)),
    // The backlog left when the load stopped, delivered with no ingest competing.
    drainPerSec: drainSeconds > 0 ? round((Math.min(seen, main.ok) - inWindow) / drainSeconds) : 0,
    // CPU per message accepted and delivered (the load and the drain).
    cpuUsPerMsg: cpuUsPer(cpuBefore, cpuAfter, Math.min(seen, main.ok)),
    accepted: main.ok, deliveredInWindow: inWindow, backlogAtEnd: Math.max(0, main.ok - atEnd), drainSeconds: round(drainSeconds, 2),
    seconds: round(main.seconds, 2), acceptP50Ms: main.latency.p50Ms, acceptP99Ms: main.latency.p99Ms, duplicates,
  };
}

export const e2eScenario: Scenario = {
  name: 'e2e',
  description: 'accept→delivered latency at a fixed rate (open loop) and sustained delivered msgs/s (closed loop), push receiver in its own process, vs the floor relay',
  async run(s, workDir, log) {
    const problems: string[] = [];
    const tag = Date.now().toString(36);
    const template = eventTemplate(SENDER, s.bodyBytes);
    const rc = await spawnTs('receiver', 'bench/push-receiver.ts', [], { ready: /receiver listening on (\S+)/ });
    const receiver = new Receiver(rc, rc.ready[1]!);
    const hook = `${receiver.url}/hook`;
    const results: Record<string, { open?: OpenFigures; closed?: ClosedFigures }> = { hub: {}, floor: {}, direct: {} };
    try {
      // ---- hub ----
      log(`e2e: hub (child process) → push receiver (child process), maxInFlight ${s.pushInFlight}`);
      const hub = await startHubProcess(join(workDir, 'e2e-hub'), e2eHubConfig(hook, s.pushInFlight), { cpuProfDir: s.cpuProfDir, name: 'e2e' });
      try {
        const t: Target = { name: 'hub', url: hub.url, path: '/v1/messages', headers: ingestHeaders(SENDER_KEY), okStatus: 202, body: (id) => template.body(id), pid: hub.child.proc.pid };
        log(`e2e: hub open loop, ${s.rate} msgs/s for ${s.openSeconds}s (after ${s.warmupSeconds}s warm-up)`);
        await openPhase(s, t, receiver, `ewh${tag}`, s.warmupSeconds, []);
        results.hub!.open = await openPhase(s, t, receiver, `eoh${tag}`, s.openSeconds, problems);
        log(`e2e: hub closed loop, ${s.connections} connections for ${s.seconds}s`);
        results.hub!.closed = await closedPhase(s, t, receiver, `ech${tag}`, problems);
        // Requests cut off when the closed loop stopped were stored too: let their deliveries end.
        let counts = await deliveryCounts(hub, PUSH);
        for (const deadline = Date.now() + s.drainSeconds * 1000; (counts.pending ?? 0) + (counts.delivering ?? 0) > 0 && Date.now() < deadline;) {
          await new Promise((r) => setTimeout(r, 100));
          counts = await deliveryCounts(hub, PUSH);
        }
        const notDone = Object.entries(counts).filter(([state]) => state !== 'delivered').map(([state, n]) => `${n} ${state}`);
        if (notDone.length > 0) problems.push(`hub: deliveries not delivered at the end: ${notDone.join(', ')}`);
      } finally {
        await hub.stop();
      }

      // ---- floor relay ----
      log('e2e: floor relay (child process) → the same receiver');
      const floor = await spawnTs('floor', 'bench/floor-server.ts', [], {
        env: { FLOOR_DB: join(workDir, 'e2e-floor.db'), FLOOR_FORWARD_URL: hook, FLOOR_FORWARD_INFLIGHT: String(s.pushInFlight) },
        ready: /floor listening on (\S+)/,
      });
      try {
        const t: Target = { name: 'floor', url: floor.ready[1]!, path: '/v1/messages', headers: ingestHeaders(null), okStatus: 202, body: (id) => template.body(id), pid: floor.proc.pid };
        await openPhase(s, t, receiver, `ewf${tag}`, s.warmupSeconds, []);
        results.floor!.open = await openPhase(s, t, receiver, `eof${tag}`, s.openSeconds, problems);
        results.floor!.closed = await closedPhase(s, t, receiver, `ecf${tag}`, problems);
      } finally {
        await floor.stop();
      }

      // ---- direct: the load generator straight to the receiver, binary mode ----
      log('e2e: direct to the receiver (no hub): the HTTP hop and the load generator alone');
      const direct: Target = {
        name: 'direct', url: receiver.url, path: '/hook', headers: { 'content-type': 'application/json' }, okStatus: 204,
        body: (id) => template.body(id), idHeaders: (id) => ({ 'ce-id': id }), pid: rc.proc.pid,
      };
      await openPhase(s, direct, receiver, `ewd${tag}`, s.warmupSeconds, []);
      results.direct!.open = await openPhase(s, direct, receiver, `eod${tag}`, s.openSeconds, problems);
    } finally {
      await rc.stop();
    }

    const ho = results.hub!.open!; const fo = results.floor!.open!; const d = results.direct!.open!;
    const hc = results.hub!.closed!; const fc = results.floor!.closed!;
    const busy = (o: OpenFigures) => (o.cpuBusy === null ? '' : `, server CPU ${(o.cpuBusy * 100).toFixed(0)}% of a core, ${o.cpuUsPerMsg?.toFixed(0)} µs/msg`);
    const perMsg = (c: ClosedFigures) => (c.cpuUsPerMsg === null ? '' : `; CPU ${c.cpuUsPerMsg.toFixed(0)} µs/msg`);
    const lines = [
      `e2e — accept → delivered to a push receiver (own process), ${s.bodyBytes} B events`,
      `  latency, open loop at ${s.rate} msgs/s for ${s.openSeconds}s, from the scheduled send time:`,
      `    hub     delivered p50 ${fmtMs(ho.p50Ms).padStart(9)}  p99 ${fmtMs(ho.p99Ms).padStart(9)}  max ${fmtMs(ho.maxMs).padStart(9)}   (202 p50 ${fmtMs(ho.acceptP50Ms)}, p99 ${fmtMs(ho.acceptP99Ms)}; ${ho.delivered}/${ho.sent} delivered)${busy(ho)}`,
      `    floor   delivered p50 ${fmtMs(fo.p50Ms).padStart(9)}  p99 ${fmtMs(fo.p99Ms).padStart(9)}  max ${fmtMs(fo.maxMs).padStart(9)}   (202 p50 ${fmtMs(fo.acceptP50Ms)}, p99 ${fmtMs(fo.acceptP99Ms)}; ${fo.delivered}/${fo.sent} delivered)${busy(fo)}`,
      `    direct  arrived   p50 ${fmtMs(d.p50Ms).padStart(9)}  p99 ${fmtMs(d.p99Ms).padStart(9)}  max ${fmtMs(d.maxMs).padStart(9)}   (no hub: the HTTP hop and the load generator)`,
      `  sustained throughput, closed loop, ${s.connections} connections for ${s.seconds}s (push maxInFlight ${s.pushInFlight}):`,
      `    hub     delivered while loaded ${fmtRate(hc.deliveredPerSec).padStart(14)}   accepted ${fmtRate(hc.acceptedPerSec).padStart(14)}   accepted→all delivered ${fmtRate(hc.allDeliveredPerSec).padStart(14)} (backlog ${hc.backlogAtEnd} at end, drained in ${hc.drainSeconds}s at ${fmtRate(hc.drainPerSec)}${perMsg(hc)})`,
      `    floor   delivered while loaded ${fmtRate(fc.deliveredPerSec).padStart(14)}   accepted ${fmtRate(fc.acceptedPerSec).padStart(14)}   accepted→all delivered ${fmtRate(fc.allDeliveredPerSec).padStart(14)} (backlog ${fc.backlogAtEnd} at end, drained in ${fc.drainSeconds}s at ${fmtRate(fc.drainPerSec)}${perMsg(fc)})`,
      `  hub/floor delivered throughput ${fc.deliveredPerSec > 0 ? ((hc.deliveredPerSec / fc.deliveredPerSec) * 100).toFixed(1) : '0'}%`,
    ];
    return {
      lines,
      problems,
      json: {
        scenario: 'e2e', bodyBytes: s.bodyBytes, rate: s.rate, openSeconds: s.openSeconds, connections: s.connections, seconds: s.seconds, pushInFlight: s.pushInFlight,
        hub: { open: ho, closed: hc }, floor: { open: fo, closed: fc }, direct: { open: d },
        hubToFloorDelivered: fc.deliveredPerSec > 0 ? round(hc.deliveredPerSec / fc.deliveredPerSec, 3) : 0,
      },
    };
  },
};
