/**
 * bullmq: the usual alternative beside the hub, in one run, at the same load. The alternative
 * (bench/alt/) is a Fastify server that adds one BullMQ job per routed receiver to a private
 * Redis and answers 202 once Redis acknowledged it, and a BullMQ Worker process that POSTs each
 * job to the receiver (undici Pool, concurrency BENCH_PUSH_INFLIGHT) with retries. Rows:
 *  - hub: the real hub (as in e2e), SQLite with fsync before each 202;
 *  - bullmq fsync=always: Redis AOF with appendfsync always (every write fsync'd before Redis
 *    answers, so a 202 means on disk: the durable comparison);
 *  - bullmq fsync=everysec: AOF fsync'd once a second (a crash can lose ~1 s of 202s).
 * Each: open loop at BENCH_RATE (1,000 msgs/s unless set) for accept→delivered p50/p99 from the
 * scheduled send time, then the e2e closed loop (BENCH_CONNECTIONS for BENCH_SECONDS) for
 * "accepted → all delivered". Same 1 KB event, same push receiver process (bench/push-receiver.ts).
 */
import { join } from 'node:path';
import { startBullmqPipeline, type BullmqPipeline } from '../alt/pipeline.ts';
import { redisServerInstalled, type AofFsync } from '../alt/redis-server.ts';
import { spawnTs } from '../lib/children.ts';
import { eventTemplate } from '../lib/event.ts';
import { deliveryCounts, startHubProcess, type HubProcess } from '../lib/hub-process.ts';
import { SENDER, SENDER_KEY, ingestHeaders, type Scenario } from '../lib/scenario.ts';
import type { BenchSettings } from '../lib/settings.ts';
import { cpuSecondsOf, fmtMs, fmtRate, round } from '../lib/stats.ts';
import { PUSH, Receiver, closedPhase, e2eHubConfig, openPhase, type ClosedFigures, type OpenFigures, type Target } from './e2e.ts';

/** The issue's offered rate for this comparison, unless BENCH_RATE says otherwise. */
const DEFAULT_RATE = 1_000;
/** The issue's target: the hub's sustained end-to-end throughput at least this times BullMQ's (durable). */
const TARGET_RATIO = 1.5;

interface SideFigures {
  open: OpenFigures;
  closed: ClosedFigures;
  /** CPU of every process of the side (hub: 1; bullmq: server, worker, redis-server) per message. */
  openPipelineCpuUsPerMsg: number | null;
  openPipelineCpuBusy: number | null;
  /** Over the whole closed phase, its warm-up included, per message accepted in it. */
  closedPipelineCpuUsPerMsg: number | null;
  /** The same, process by process. */
  closedCpuUsPerMsgByProcess: Record<string, number | null>;
}

interface Side {
  target: Target;
  /** The side's processes, by role. */
  pids: Record<string, number>;
  /** Messages accepted so far, as the side itself counts them. */
  accepted(): Promise<number>;
  /** Waits until nothing is left to deliver; answers what did not end delivered (problems). */
  settle(seconds: number): Promise<string[]>;
}

/** CPU seconds so far of each process, and their sum (null where one cannot be read). */
function cpuOf(pids: Record<string, number>): { total: number | null; each: Record<string, number | null> } {
  const each = Object.fromEntries(Object.entries(pids).map(([role, pid]) => [role, cpuSecondsOf(pid)]));
  const values = Object.values(each);
  return { total: values.includes(null) ? null : values.reduce<number>((a, b) => a + b!, 0), each };
}

const perMsg = (before: number | null, after: number | null, n: number) => (before === null || after === null || n <= 0 ? null : round(((after - before) * 1e6) / n, 1));

async function measure(s: BenchSettings, side: Side, receiver: Receiver, tag: string, problems: string[]): Promise<SideFigures> {
  await openPhase(s, side.target, receiver, `${tag}w`, s.rate, s.warmupSeconds, []);
  const cpu0 = cpuOf(side.pids);
  const wall0 = Date.now();
  const open = await openPhase(s, side.target, receiver, `${tag}o`, s.rate, s.openSeconds, problems);
  const cpu1 = cpuOf(side.pids);
  const wall = (Date.now() - wall0) / 1000;
  const accepted0 = await side.accepted();
  const closed = await closedPhase(s, side.target, receiver, `${tag}c`, ['/hook'], problems);
  problems.push(...await side.settle(s.drainSeconds));
  const cpu2 = cpuOf(side.pids);
  const accepted1 = await side.accepted();
  return {
    open, closed,
    openPipelineCpuUsPerMsg: perMsg(cpu0.total, cpu1.total, open.accepted),
    openPipelineCpuBusy: cpu0.total !== null && cpu1.total !== null ? round((cpu1.total - cpu0.total) / wall, 2) : null,
    closedPipelineCpuUsPerMsg: perMsg(cpu1.total, cpu2.total, accepted1 - accepted0),
    closedCpuUsPerMsgByProcess: Object.fromEntries(Object.keys(side.pids).map((role) => [role, perMsg(cpu1.each[role] ?? null, cpu2.each[role] ?? null, accepted1 - accepted0)])),
  };
}

function hubSide(hub: HubProcess, template: ReturnType<typeof eventTemplate>): Side {
  const total = async () => Object.values(await deliveryCounts(hub, PUSH)).reduce((a, b) => a + b, 0);
  return {
    target: { name: 'hub', url: hub.url, path: '/v1/messages', headers: ingestHeaders(SENDER_KEY), okStatus: 202, body: (id) => template.body(id), pid: hub.child.proc.pid },
    pids: { hub: hub.child.proc.pid! },
    accepted: total,
    async settle(seconds) {
      // Requests cut off when the closed loop stopped were stored too: let their deliveries end.
      let counts = await deliveryCounts(hub, PUSH);
      for (const deadline = Date.now() + seconds * 1000; (counts.pending ?? 0) + (counts.delivering ?? 0) > 0 && Date.now() < deadline;) {
        await new Promise((r) => setTimeout(r, 100));
        counts = await deliveryCounts(hub, PUSH);
      }
      const notDone = Object.entries(counts).filter(([state]) => state !== 'delivered').map(([state, n]) => `${n} ${state}`);
      return notDone.length > 0 ? [`hub: deliveries not delivered at the end: ${notDone.join(', ')}`] : [];
    },
  };
}

function bullmqSide(name: string, p: BullmqPipeline, template: ReturnType<typeof eventTemplate>): Side {
  return {
    target: { name, url: p.url, path: '/v1/messages', headers: ingestHeaders(SENDER_KEY), okStatus: 202, body: (id) => template.body(id), pid: p.serverPid },
    pids: p.pids,
    accepted: () => p.accepted(),
    async settle(seconds) {
      const open = (c: Record<string, number>) => (c.waiting ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0);
      let counts = await p.jobCounts();
      for (const deadline = Date.now() + seconds * 1000; open(counts) > 0 && Date.now() < deadline;) {
        await new Promise((r) => setTimeout(r, 100));
        counts = await p.jobCounts();
      }
      const notDone = Object.entries(counts).filter(([state, n]) => state !== 'completed' && n > 0).map(([state, n]) => `${n} ${state}`);
      return notDone.length > 0 ? [`${name}: jobs not completed at the end: ${notDone.join(', ')}`] : [];
    },
  };
}

const ratio = (a: number, b: number) => (b > 0 ? round(a / b, 2) : null);

export const bullmqScenario: Scenario = {
  name: 'bullmq',
  description: 'Fastify + BullMQ on Redis + undici worker, the usual alternative, beside the hub at the same load',
  async run(settings, workDir, log) {
    if (!redisServerInstalled()) throw new Error('redis-server is not on PATH: install it (apt install redis-server) to run the bullmq scenario');
    // One offered rate here: the first of BENCH_RATE's.
    const s: BenchSettings = { ...settings, rate: (process.env.BENCH_RATE || settings.smoke) ? settings.rate : DEFAULT_RATE };
    const problems: string[] = [];
    const tag = Date.now().toString(36);
    const template = eventTemplate(SENDER, s.bodyBytes);
    const rc = await spawnTs('receiver', 'bench/push-receiver.ts', [], { ready: /receiver listening on (\S+)/ });
    const receiver = new Receiver(rc, rc.ready[1]!);
    const config = e2eHubConfig(`${receiver.url}/hook`, s.pushInFlight);
    const rows: Array<{ name: string; durability: string; persistence?: Record<string, string>; figures: SideFigures }> = [];
    try {
      log(`bullmq: hub (child process) → push receiver, maxInFlight ${s.pushInFlight}; open loop ${s.rate} msgs/s for ${s.openSeconds}s, closed loop ${s.connections} connections for ${s.seconds}s`);
      const hub = await startHubProcess(join(workDir, 'bullmq-hub'), config, { cpuProfDir: s.cpuProfDir, name: 'bullmq-hub' });
      try {
        rows.push({ name: 'hub', durability: 'SQLite WAL, synchronous=FULL: fsync before each 202', figures: await measure(s, hubSide(hub, template), receiver, `bh${tag}`, problems) });
      } finally {
        await hub.stop();
      }
      const modes: Array<[AofFsync, string]> = [
        ['always', 'Redis AOF appendfsync always: each write fsync\'d before Redis answers, so before the 202'],
        ['everysec', 'Redis AOF appendfsync everysec: fsync once a second; a crash or power cut can lose ~1 s (up to 2 s) of 202s'],
      ];
      for (const [fsync, durability] of modes) {
        const name = `bullmq fsync=${fsync}`;
        log(`bullmq: ${name}: Fastify server + BullMQ worker (concurrency ${s.pushInFlight}) + private redis-server, each in its own process`);
        const pipeline = await startBullmqPipeline(join(workDir, `bullmq-${fsync}`), config, fsync, s.pushInFlight);
        try {
          if (pipeline.persistence.appendfsync !== fsync || pipeline.persistence.appendonly !== 'yes') problems.push(`${name}: Redis reports ${JSON.stringify(pipeline.persistence)}`);
          rows.push({ name, durability, persistence: pipeline.persistence, figures: await measure(s, bullmqSide(name, pipeline, template), receiver, `b${fsync[0]}${tag}`, problems) });
        } finally {
          await pipeline.stop();
        }
      }
    } finally {
      await rc.stop();
    }

    const [hub, always, everysec] = rows.map((r) => r.figures) as [SideFigures, SideFigures, SideFigures];
    const cpu = (v: number | null) => (v === null ? 'n/a' : `${v.toFixed(0)} µs`);
    const byProcess = (f: SideFigures) => {
      const parts = Object.entries(f.closedCpuUsPerMsgByProcess);
      return parts.length > 1 ? `: ${parts.map(([role, v]) => `${role} ${cpu(v)}`).join(', ')}` : '';
    };
    const openLine = (name: string, f: SideFigures) => `    ${name.padEnd(20)} delivered p50 ${fmtMs(f.open.p50Ms).padStart(9)}  p99 ${fmtMs(f.open.p99Ms).padStart(9)}  max ${fmtMs(f.open.maxMs).padStart(9)}   (202 p50 ${fmtMs(f.open.acceptP50Ms)}, p99 ${fmtMs(f.open.acceptP99Ms)}; ${f.open.delivered}/${f.open.sent} delivered, ${f.open.duplicates} dup; CPU ${cpu(f.openPipelineCpuUsPerMsg)}/msg, ${f.openPipelineCpuBusy === null ? 'n/a' : (f.openPipelineCpuBusy * 100).toFixed(0)}% of a core)`;
    const closedLine = (name: string, f: SideFigures) => `    ${name.padEnd(20)} delivered while loaded ${fmtRate(f.closed.deliveredPerSec).padStart(14)}   accepted ${fmtRate(f.closed.acceptedPerSec).padStart(14)}   accepted→all delivered ${fmtRate(f.closed.allDeliveredPerSec).padStart(14)} (backlog ${f.closed.backlogAtEnd} at end, drained in ${f.closed.drainSeconds}s at ${fmtRate(f.closed.drainPerSec)}; 202 p50 ${fmtMs(f.closed.acceptP50Ms)}, p99 ${fmtMs(f.closed.acceptP99Ms)}; ${f.closed.duplicates} dup; CPU ${cpu(f.closedPipelineCpuUsPerMsg)}/msg${byProcess(f)})`;
    const vs = (f: SideFigures) => ({
      allDelivered: ratio(hub.closed.allDeliveredPerSec, f.closed.allDeliveredPerSec),
      deliveredWhileLoaded: ratio(hub.closed.deliveredPerSec, f.closed.deliveredPerSec),
      accepted: ratio(hub.closed.acceptedPerSec, f.closed.acceptedPerSec),
      openP50: ratio(hub.open.p50Ms, f.open.p50Ms),
      openP99: ratio(hub.open.p99Ms, f.open.p99Ms),
      pipelineCpuPerMsg: ratio(hub.closedPipelineCpuUsPerMsg ?? 0, f.closedPipelineCpuUsPerMsg ?? 0),
    });
    const durable = vs(always);
    const fast = vs(everysec);
    const targetMet = durable.allDelivered !== null && durable.allDelivered >= TARGET_RATIO;
    const lines = [
      `bullmq — the hub vs Fastify + BullMQ on Redis + an undici worker, ${s.bodyBytes} B events, push receiver in its own process, ${s.pushInFlight} pushes in flight`,
      ...rows.map((r) => `  ${r.name}: ${r.durability}`),
      `  latency, open loop at ${s.rate} msgs/s for ${s.openSeconds}s, from the scheduled send time (CPU: all the side's processes):`,
      ...rows.map((r) => openLine(r.name, r.figures)),
      `  sustained throughput, closed loop, ${s.connections} connections for ${s.seconds}s (CPU: all the side's processes, warm-up included):`,
      ...rows.map((r) => closedLine(r.name, r.figures)),
      `  hub / bullmq fsync=always:   accepted→all delivered ${durable.allDelivered}×, delivered while loaded ${durable.deliveredWhileLoaded}×, accepted ${durable.accepted}×; open-loop p50 ${durable.openP50}×, p99 ${durable.openP99}× (lower is better); CPU/msg ${durable.pipelineCpuPerMsg}×`,
      `  hub / bullmq fsync=everysec: accepted→all delivered ${fast.allDelivered}×, delivered while loaded ${fast.deliveredWhileLoaded}×, accepted ${fast.accepted}×; open-loop p50 ${fast.openP50}×, p99 ${fast.openP99}×; CPU/msg ${fast.pipelineCpuPerMsg}×`,
      `  target: hub ≥ ${TARGET_RATIO}× bullmq fsync=always accepted→all delivered: ${targetMet ? 'met' : 'NOT met'} (${durable.allDelivered}×)`,
    ];
    return {
      lines,
      problems,
      json: {
        scenario: 'bullmq', bodyBytes: s.bodyBytes, rate: s.rate, openSeconds: s.openSeconds, connections: s.connections, seconds: s.seconds, pushInFlight: s.pushInFlight,
        hub: { ...hub, durability: rows[0]!.durability },
        bullmqAlways: { ...always, durability: rows[1]!.durability, redis: rows[1]!.persistence },
        bullmqEverysec: { ...everysec, durability: rows[2]!.durability, redis: rows[2]!.persistence },
        hubToBullmqAlways: durable, hubToBullmqEverysec: fast,
        target: { hubToBullmqAllDelivered: TARGET_RATIO, met: targetMet },
      },
    };
  },
};
