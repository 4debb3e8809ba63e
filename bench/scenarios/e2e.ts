/**
 * e2e: accept → delivered, to push receivers in their own process (bench/push-receiver.ts).
 *  1. latency at fixed offered rates (BENCH_RATE, e.g. 1000,5000; open loop: send times
 *     scheduled in advance, latency from the scheduled time, so a stall is counted in full);
 *  2. sustained delivered throughput (closed loop, `connections` senders as fast as answered),
 *     at fan-out 1 (one push receiver) and fan-out 3 (three push receivers, one route to all
 *     three: a message counts once all three have it).
 * Baselines in the same run: the FLOOR relay (bench/floor-server.ts with FLOOR_FORWARD_URL: the
 * bare durable ingest, then a POST from memory to each receiver and a group-committed
 * "delivered" record), and for latency the receiver posted to directly (the HTTP hop and the
 * load generator alone).
 */
import { join } from 'node:path';
import { request } from 'undici';
import { spawnTs, type Child } from '../lib/children.ts';
import { eventTemplate, idMaker } from '../lib/event.ts';
import { deliveryCounts, startHubProcess, type HubProcess } from '../lib/hub-process.ts';
import { closedLoop, openLoop } from '../lib/load.ts';
import { SENDER, SENDER_KEY, ingestHeaders, unexpectedStatuses, type Scenario } from '../lib/scenario.ts';
import type { BenchSettings } from '../lib/settings.ts';
import { cpuSecondsOf, cpuUsPer, fmtMs, fmtRate, round, summarize } from '../lib/stats.ts';

export const PUSH = 'BENCH-PUSH';
const FANOUT = 3;

export function e2eHubConfig(receiverUrl: string, maxInFlight: number): Record<string, unknown> {
  return {
    participants: {
      [SENDER]: { name: 'Benchmark sender', keys: [SENDER_KEY] },
      [PUSH]: { name: 'Benchmark push receiver', receiver: { mode: 'push', url: receiverUrl, maxInFlight } },
    },
    routes: [{ name: 'everything to the push receiver', match: {}, to: { participants: [PUSH] } }],
  };
}

/** Push receivers `${PUSH}-1` … `${PUSH}-n`, one per URL, and one route to all of them. */
export function e2eFanoutHubConfig(receiverUrls: string[], maxInFlight: number): Record<string, unknown> {
  const names = receiverUrls.map((_, i) => `${PUSH}-${i + 1}`);
  return {
    participants: {
      [SENDER]: { name: 'Benchmark sender', keys: [SENDER_KEY] },
      ...Object.fromEntries(names.map((name, i) => [name, { name: `Benchmark push receiver ${i + 1}`, receiver: { mode: 'push', url: receiverUrls[i], maxInFlight } }])),
    },
    routes: [{ name: `everything to the ${names.length} push receivers`, match: {}, to: { participants: names } }],
  };
}

export class Receiver {
  constructor(readonly child: Child, readonly url: string) {}
  private async get(path: string): Promise<any> {
    const res = await request(this.url + path);
    return res.body.json();
  }
  private query(params: Record<string, string | undefined>): string {
    const q = Object.entries(params).filter(([, v]) => v).map(([k, v]) => `${k}=${encodeURIComponent(v!)}`).join('&');
    return q ? `?${q}` : '';
  }
  reset(): Promise<unknown> { return this.get('/_reset'); }
  /** Arrivals (with ids starting with `prefix`, at `path`: all paths when absent). */
  async count(prefix = '', path?: string): Promise<number> { return (await this.get(`/_count${this.query({ prefix, path })}`) as { count: number }).count; }
  /** First arrival of each ce-id at `path` (µs), and how many arrivals repeated an id there. */
  async arrivals(path?: string): Promise<{ first: Map<string, number>; duplicates: number }> {
    const { arrivals } = await this.get(`/_arrivals${this.query({ path })}`) as { arrivals: Array<[string, number]> };
    const first = new Map<string, number>();
    let duplicates = 0;
    for (const [id, t] of arrivals) {
      if (first.has(id)) duplicates++;
      else first.set(id, t);
    }
    return { first, duplicates };
  }
  /** Waits until at least `n` requests (with ids starting with `prefix`) arrived at each path, up to `seconds`; answers the least count seen. */
  async waitFor(n: number, seconds: number, prefix = '', paths: Array<string | undefined> = [undefined]): Promise<number> {
    const deadline = Date.now() + seconds * 1000;
    for (;;) {
      let least = Infinity;
      for (const path of paths) least = Math.min(least, await this.count(prefix, path));
      if (least >= n || Date.now() > deadline) return least;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

export interface Target {
  name: string;
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

export interface OpenFigures { offeredPerSec: number; sent: number; accepted: number; delivered: number; missing: number; duplicates: number; acceptP50Ms: number; acceptP99Ms: number; p50Ms: number; p99Ms: number; maxMs: number; worstSendLagMs: number; cpuUsPerMsg: number | null; cpuBusy: number | null }

export async function openPhase(s: BenchSettings, target: Target, receiver: Receiver, tag: string, rate: number, seconds: number, problems: string[]): Promise<OpenFigures> {
  await receiver.reset();
  const nextId = idMaker(tag);
  const ids: string[] = [];
  const idOf = (i: number) => (ids[i] ??= nextId());
  const cpuBefore = cpuSecondsOf(target.pid);
  const wallBefore = Date.now();
  const result = await openLoop({
    url: target.url, path: target.path, headers: target.headers, rate, seconds, okStatus: target.okStatus,
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
  const where = `${target.name} open loop at ${rate} msgs/s`;
  const notOk = result.count - result.ok;
  if (notOk > 0) problems.push(`${where}: ${notOk} of ${result.count} messages not answered ${target.okStatus} (${result.errors} errors)`);
  if (missing > 0) problems.push(`${where}: ${missing} accepted messages not delivered within ${s.drainSeconds}s`);
  if (duplicates > 0) problems.push(`${where}: ${duplicates} duplicate deliveries (no crash, so none is allowed)`);
  const a = summarize(accept);
  const d = summarize(delivered);
  return {
    offeredPerSec: rate, sent: result.count, accepted: result.ok, delivered: delivered.length, missing, duplicates,
    acceptP50Ms: a.p50Ms, acceptP99Ms: a.p99Ms, p50Ms: d.p50Ms, p99Ms: d.p99Ms, maxMs: d.maxMs, worstSendLagMs: round(result.worstSendLagUs / 1000, 2),
    cpuUsPerMsg: cpuUsPer(cpuBefore, cpuAfter, result.ok),
    cpuBusy: cpuBefore !== null && cpuAfter !== null ? round((cpuAfter - cpuBefore) / wall, 2) : null,
  };
}

export interface ClosedFigures {
  fanout: number;
  /** Messages accepted per second of load. */
  acceptedPerSec: number;
  /** Messages that reached every receiver during the load, per second of load. */
  deliveredPerSec: number;
  /** Single deliveries (one message to one receiver) that arrived during the load, per second. */
  deliveriesPerSec: number;
  /** Messages accepted, divided by the time until the last of their deliveries arrived. */
  allDeliveredPerSec: number;
  /** Messages fully delivered per second once the load stopped (the backlog, nothing competing). */
  drainPerSec: number;
  /** Server CPU per message accepted and delivered to every receiver (the load and the drain). */
  cpuUsPerMsg: number | null;
  accepted: number; deliveredInWindow: number; backlogAtEnd: number; drainSeconds: number; seconds: number;
  acceptP50Ms: number; acceptP99Ms: number; duplicates: number;
}

export async function closedPhase(s: BenchSettings, target: Target, receiver: Receiver, tag: string, paths: string[], problems: string[]): Promise<ClosedFigures> {
  const template = eventTemplate(SENDER, s.bodyBytes);
  const where = `${target.name} closed loop, fan-out ${paths.length}`;
  // Separate id prefixes: requests cut off when a load phase stops are stored and delivered
  // later, and must not count in the next phase.
  const warmIds = idMaker(`${tag}w`);
  const mainIds = idMaker(`${tag}m`);
  const mainPrefix = mainIds().slice(0, -10);
  const common = { url: target.url, path: target.path, headers: target.headers, connections: s.connections, okStatus: 202 };
  // Warm up, let the warm-up's deliveries drain, then measure from an empty receiver.
  await receiver.reset();
  const warm = await closedLoop({ ...common, body: () => template.body(warmIds()), seconds: s.warmupSeconds });
  const warmSeen = await receiver.waitFor(warm.ok, s.drainSeconds, '', paths);
  if (warmSeen < warm.ok) problems.push(`${where}: the warm-up's deliveries did not drain in ${s.drainSeconds}s (${warmSeen}/${warm.ok})`);
  await receiver.reset();
  const cpuBefore = cpuSecondsOf(target.pid);
  const main = await closedLoop({ ...common, body: () => template.body(mainIds()), seconds: s.seconds });
  let atEnd = Infinity;
  for (const path of paths) atEnd = Math.min(atEnd, await receiver.count(mainPrefix, path));
  const seen = await receiver.waitFor(main.ok, s.drainSeconds, mainPrefix, paths);
  const cpuAfter = cpuSecondsOf(target.pid);
  // A message is delivered when its last receiver has it.
  const complete = new Map<string, { n: number; at: number }>();
  let duplicates = 0;
  let deliveriesInWindow = 0;
  for (const path of paths) {
    const { first, duplicates: d } = await receiver.arrivals(path);
    duplicates += d;
    for (const [id, t] of first) {
      if (!id.startsWith(mainPrefix)) continue;
      if (t <= main.endUs) deliveriesInWindow++;
      const c = complete.get(id);
      if (c) { c.n++; c.at = Math.max(c.at, t); } else complete.set(id, { n: 1, at: t });
    }
  }
  let inWindow = 0;
  let last = main.endUs;
  for (const c of complete.values()) {
    if (c.n < paths.length) continue;
    if (c.at <= main.endUs) inWindow++;
    last = Math.max(last, c.at);
  }
  if (seen < main.ok) problems.push(`${where}: ${main.ok - seen} of ${main.ok} accepted messages not delivered everywhere within ${s.drainSeconds}s`);
  if (duplicates > 0) problems.push(`${where}: ${duplicates} duplicate deliveries (no crash, so none is allowed)`);
  const bad = unexpectedStatuses(main.statuses, 202);
  if (bad) problems.push(`${where} answered ${bad}`);
  const drainSeconds = (last - main.endUs) / 1e6;
  const delivered = Math.min(seen, main.ok);
  return {
    fanout: paths.length,
    acceptedPerSec: round(main.okPerSec), deliveredPerSec: round(inWindow / main.seconds), deliveriesPerSec: round(deliveriesInWindow / main.seconds),
    allDeliveredPerSec: round(delivered / (main.seconds + drainSeconds)),
    drainPerSec: drainSeconds > 0 ? round((delivered - inWindow) / drainSeconds) : 0,
    cpuUsPerMsg: cpuUsPer(cpuBefore, cpuAfter, delivered),
    accepted: main.ok, deliveredInWindow: inWindow, backlogAtEnd: Math.max(0, main.ok - atEnd), drainSeconds: round(drainSeconds, 2),
    seconds: round(main.seconds, 2), acceptP50Ms: main.latency.p50Ms, acceptP99Ms: main.latency.p99Ms, duplicates,
  };
}

/** Requests cut off when a closed loop stopped were stored too: waits for every delivery to end, and says if one did not end delivered. */
async function settle(s: BenchSettings, hub: HubProcess, receivers: string[], problems: string[]): Promise<void> {
  const open = (c: Record<string, number>) => (c.pending ?? 0) + (c.delivering ?? 0);
  for (const name of receivers) {
    let counts = await deliveryCounts(hub, name);
    for (const deadline = Date.now() + s.drainSeconds * 1000; open(counts) > 0 && Date.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 100));
      counts = await deliveryCounts(hub, name);
    }
    const notDone = Object.entries(counts).filter(([state]) => state !== 'delivered').map(([state, n]) => `${n} ${state}`);
    if (notDone.length > 0) problems.push(`hub: deliveries to ${name} not delivered at the end: ${notDone.join(', ')}`);
  }
}

/** Open loops at each rate, after one warm-up at the first rate (thrown away). */
async function openPhases(s: BenchSettings, t: Target, receiver: Receiver, tag: string, problems: string[]): Promise<OpenFigures[]> {
  await openPhase(s, t, receiver, `${tag}w`, s.rates[0]!, s.warmupSeconds, []);
  const out: OpenFigures[] = [];
  for (const [i, rate] of s.rates.entries()) out.push(await openPhase(s, t, receiver, `${tag}${i}`, rate, s.openSeconds, problems));
  return out;
}

export const e2eScenario: Scenario = {
  name: 'e2e',
  description: 'accept→delivered latency at fixed rates (open loop) and sustained delivered msgs/s at fan-out 1 and 3 (closed loop), push receivers in their own process, vs the floor relay',
  async run(s, workDir, log) {
    const problems: string[] = [];
    const tag = Date.now().toString(36);
    const template = eventTemplate(SENDER, s.bodyBytes);
    const rc = await spawnTs('receiver', 'bench/push-receiver.ts', [], { ready: /receiver listening on (\S+)/ });
    const receiver = new Receiver(rc, rc.ready[1]!);
    const hook = `${receiver.url}/hook`;
    const fanPaths = Array.from({ length: FANOUT }, (_, i) => `/hook${i + 1}`);
    const fanHooks = fanPaths.map((p) => receiver.url + p);
    const results = {
      hub: {} as { open?: OpenFigures[]; closed?: ClosedFigures; closedFanout3?: ClosedFigures },
      floor: {} as { open?: OpenFigures[]; closed?: ClosedFigures; closedFanout3?: ClosedFigures },
      direct: {} as { open?: OpenFigures[] },
    };
    const rates = s.rates.join(', ');
    try {
      // ---- hub, fan-out 1 ----
      log(`e2e: hub (child process) → push receiver (child process), maxInFlight ${s.pushInFlight}`);
      const hub = await startHubProcess(join(workDir, 'e2e-hub'), e2eHubConfig(hook, s.pushInFlight), { cpuProfDir: s.cpuProfDir, name: 'e2e' });
      try {
        const t: Target = { name: 'hub', url: hub.url, path: '/v1/messages', headers: ingestHeaders(SENDER_KEY), okStatus: 202, body: (id) => template.body(id), pid: hub.child.proc.pid };
        log(`e2e: hub open loop at ${rates} msgs/s, ${s.openSeconds}s each (after ${s.warmupSeconds}s warm-up)`);
        results.hub.open = await openPhases(s, t, receiver, `eoh${tag}`, problems);
        log(`e2e: hub closed loop, fan-out 1, ${s.connections} connections for ${s.seconds}s`);
        results.hub.closed = await closedPhase(s, t, receiver, `ech${tag}`, ['/hook'], problems);
        await settle(s, hub, [PUSH], problems);
      } finally {
        await hub.stop();
      }

      // ---- hub, fan-out 3 ----
      log(`e2e: hub closed loop, fan-out ${FANOUT} (${FANOUT} push receivers, one route), ${s.connections} connections for ${s.seconds}s`);
      const hub3 = await startHubProcess(join(workDir, 'e2e-hub-fanout'), e2eFanoutHubConfig(fanHooks, s.pushInFlight), { cpuProfDir: s.cpuProfDir, name: 'e2e-fanout' });
      try {
        const t: Target = { name: 'hub', url: hub3.url, path: '/v1/messages', headers: ingestHeaders(SENDER_KEY), okStatus: 202, body: (id) => template.body(id), pid: hub3.child.proc.pid };
        results.hub.closedFanout3 = await closedPhase(s, t, receiver, `ekh${tag}`, fanPaths, problems);
        await settle(s, hub3, fanPaths.map((_, i) => `${PUSH}-${i + 1}`), problems);
      } finally {
        await hub3.stop();
      }

      // ---- floor relay, fan-out 1 ----
      log('e2e: floor relay (child process) → the same receiver');
      const floor = await spawnTs('floor', 'bench/floor-server.ts', [], {
        env: { FLOOR_DB: join(workDir, 'e2e-floor.db'), FLOOR_FORWARD_URL: hook, FLOOR_FORWARD_INFLIGHT: String(s.pushInFlight) },
        ready: /floor listening on (\S+)/,
      });
      try {
        const t: Target = { name: 'floor', url: floor.ready[1]!, path: '/v1/messages', headers: ingestHeaders(null), okStatus: 202, body: (id) => template.body(id), pid: floor.proc.pid };
        results.floor.open = await openPhases(s, t, receiver, `eof${tag}`, problems);
        results.floor.closed = await closedPhase(s, t, receiver, `ecf${tag}`, ['/hook'], problems);
      } finally {
        await floor.stop();
      }

      // ---- floor relay, fan-out 3 ----
      log(`e2e: floor relay, fan-out ${FANOUT}`);
      const floor3 = await spawnTs('floor', 'bench/floor-server.ts', [], {
        env: { FLOOR_DB: join(workDir, 'e2e-floor-fanout.db'), FLOOR_FORWARD_URL: fanHooks.join(','), FLOOR_FORWARD_INFLIGHT: String(s.pushInFlight) },
        ready: /floor listening on (\S+)/,
      });
      try {
        const t: Target = { name: 'floor', url: floor3.ready[1]!, path: '/v1/messages', headers: ingestHeaders(null), okStatus: 202, body: (id) => template.body(id), pid: floor3.proc.pid };
        results.floor.closedFanout3 = await closedPhase(s, t, receiver, `ekf${tag}`, fanPaths, problems);
      } finally {
        await floor3.stop();
      }

      // ---- direct: the load generator straight to the receiver, binary mode ----
      log('e2e: direct to the receiver (no hub): the HTTP hop and the load generator alone');
      const direct: Target = {
        name: 'direct', url: receiver.url, path: '/hook', headers: { 'content-type': 'application/json' }, okStatus: 204,
        body: (id) => template.body(id), idHeaders: (id) => ({ 'ce-id': id }), pid: rc.proc.pid,
      };
      results.direct.open = await openPhases(s, direct, receiver, `eod${tag}`, problems);
    } finally {
      await rc.stop();
    }

    const { hub: h, floor: f, direct: d } = results;
    const busy = (o: OpenFigures) => (o.cpuBusy === null ? '' : `, server CPU ${(o.cpuBusy * 100).toFixed(0)}% of a core, ${o.cpuUsPerMsg?.toFixed(0)} µs/msg`);
    const perMsg = (c: ClosedFigures) => (c.cpuUsPerMsg === null ? '' : `; CPU ${c.cpuUsPerMsg.toFixed(0)} µs/msg`);
    const openLine = (name: string, what: string, o: OpenFigures, extra: string) =>
      `    ${name.padEnd(7)} ${what} p50 ${fmtMs(o.p50Ms).padStart(9)}  p99 ${fmtMs(o.p99Ms).padStart(9)}  max ${fmtMs(o.maxMs).padStart(9)}   ${extra}`;
    const closedLine = (name: string, c: ClosedFigures) =>
      `    ${name.padEnd(7)} delivered while loaded ${fmtRate(c.deliveredPerSec).padStart(14)}   accepted ${fmtRate(c.acceptedPerSec).padStart(14)}   accepted→all delivered ${fmtRate(c.allDeliveredPerSec).padStart(14)} (backlog ${c.backlogAtEnd} at end, drained in ${c.drainSeconds}s at ${fmtRate(c.drainPerSec)}${perMsg(c)})`;
    const ratio = (a: number, b: number) => (b > 0 ? round(a / b, 3) : 0);
    const lines = [`e2e — accept → delivered to push receivers (own process), ${s.bodyBytes} B events`];
    s.rates.forEach((rate, i) => {
      const ho = h.open![i]!; const fo = f.open![i]!; const dd = d.open![i]!;
      lines.push(
        `  latency, open loop at ${rate} msgs/s for ${s.openSeconds}s, from the scheduled send time:`,
        openLine('hub', 'delivered', ho, `(202 p50 ${fmtMs(ho.acceptP50Ms)}, p99 ${fmtMs(ho.acceptP99Ms)}; ${ho.delivered}/${ho.sent} delivered)${busy(ho)}`),
        openLine('floor', 'delivered', fo, `(202 p50 ${fmtMs(fo.acceptP50Ms)}, p99 ${fmtMs(fo.acceptP99Ms)}; ${fo.delivered}/${fo.sent} delivered)${busy(fo)}`),
        openLine('direct', 'arrived  ', dd, '(no hub: the HTTP hop and the load generator)'),
      );
    });
    for (const [label, hc, fc] of [['1', h.closed!, f.closed!], [String(FANOUT), h.closedFanout3!, f.closedFanout3!]] as const) {
      lines.push(
        `  sustained throughput, fan-out ${label}, closed loop, ${s.connections} connections for ${s.seconds}s (push maxInFlight ${s.pushInFlight} per receiver):`,
        closedLine('hub', hc), closedLine('floor', fc),
        `    hub/floor: delivered while loaded ${(ratio(hc.deliveredPerSec, fc.deliveredPerSec) * 100).toFixed(1)}%, accepted→all delivered ${(ratio(hc.allDeliveredPerSec, fc.allDeliveredPerSec) * 100).toFixed(1)}%`,
      );
    }
    return {
      lines,
      problems,
      json: {
        scenario: 'e2e', bodyBytes: s.bodyBytes, rates: s.rates, openSeconds: s.openSeconds, connections: s.connections, seconds: s.seconds, pushInFlight: s.pushInFlight, fanout: FANOUT,
        hub: h, floor: f, direct: d,
        hubToFloorDelivered: ratio(h.closed!.deliveredPerSec, f.closed!.deliveredPerSec),
        hubToFloorAllDelivered: ratio(h.closed!.allDeliveredPerSec, f.closed!.allDeliveredPerSec),
        hubToFloorAllDeliveredFanout3: ratio(h.closedFanout3!.allDeliveredPerSec, f.closedFanout3!.allDeliveredPerSec),
      },
    };
  },
};
