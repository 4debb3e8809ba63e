/**
 * ingest: durable ingest throughput and latency of POST /v1/messages (1 KB structured
 * CloudEvent, closed loop), routed to a pull receiver that nobody polls so that delivery does
 * not compete; beside the FLOOR (bench/floor-server.ts: Fastify + SQLite WAL synchronous=FULL,
 * same group commit, nothing else), measured with the same load generator and settings.
 */
import { join } from 'node:path';
import { request } from 'undici';
import { spawnTs } from '../lib/children.ts';
import { eventTemplate, idMaker } from '../lib/event.ts';
import { deliveryCounts, startHubProcess } from '../lib/hub-process.ts';
import { closedLoop, type ClosedLoopResult } from '../lib/load.ts';
import { SENDER, SENDER_KEY, ingestHeaders, unexpectedStatuses, type Scenario } from '../lib/scenario.ts';
import type { BenchSettings } from '../lib/settings.ts';
import { cpuSecondsOf, cpuUsPer, fmtMs, fmtRate, round } from '../lib/stats.ts';

const PULL = 'BENCH-PULL';

export function ingestHubConfig(): Record<string, unknown> {
  return {
    participants: {
      [SENDER]: { name: 'Benchmark sender', keys: [SENDER_KEY] },
      [PULL]: { name: 'Benchmark pull receiver (never polled)', receiver: { mode: 'pull' } },
    },
    routes: [{ name: 'everything to the pull receiver', match: {}, to: { participants: [PULL] } }],
  };
}

async function measure(s: BenchSettings, url: string, key: string | null, tag: string, pid: number | undefined): Promise<{ warm: ClosedLoopResult; main: ClosedLoopResult; cpuUsPerMsg: number | null; cpuBusy: number | null }> {
  const template = eventTemplate(SENDER, s.bodyBytes);
  const nextId = idMaker(tag);
  const common = { url, path: '/v1/messages', headers: ingestHeaders(key), body: () => template.body(nextId()), connections: s.connections, okStatus: 202 };
  const warm = await closedLoop({ ...common, seconds: s.warmupSeconds });
  const cpuBefore = cpuSecondsOf(pid);
  const main = await closedLoop({ ...common, seconds: s.seconds });
  const cpuAfter = cpuSecondsOf(pid);
  const cpuBusy = cpuBefore !== null && cpuAfter !== null ? round((cpuAfter - cpuBefore) / main.seconds, 2) : null;
  return { warm, main, cpuUsPerMsg: cpuUsPer(cpuBefore, cpuAfter, main.ok), cpuBusy };
}

/**
 * Every 202 must be stored. A few more may be: the requests in flight when a load phase stops
 * (at most one per connection, two phases) were stored but their answers were not counted.
 */
function storedProblem(name: string, answered: number, stored: number, connections: number): string | null {
  if (stored < answered) return `${name}: ${answered} messages answered 202 but only ${stored} are stored`;
  if (stored > answered + 2 * connections) return `${name}: ${stored} messages stored, more than the ${answered} answered 202 and the ${2 * connections} that may have been cut off`;
  return null;
}

function figures(run: Awaited<ReturnType<typeof measure>>) {
  const r = run.main;
  return {
    msgsPerSec: round(r.okPerSec), p50Ms: r.latency.p50Ms, p99Ms: r.latency.p99Ms, maxMs: r.latency.maxMs, accepted: r.ok, seconds: round(r.seconds, 2), errors: r.errors + r.timeouts,
    /** CPU the server process used per accepted message, and its CPU use (1 = one core busy). */
    cpuUsPerMsg: run.cpuUsPerMsg, cpuBusy: run.cpuBusy,
  };
}

export const ingestScenario: Scenario = {
  name: 'ingest',
  description: 'durable ingest msgs/s and latency (1 KB structured CloudEvent, closed loop) vs the Fastify+SQLite floor',
  async run(s, workDir, log) {
    const problems: string[] = [];
    const tag = Date.now().toString(36);

    log(`ingest: hub (child process), ${s.connections} connections, ${s.warmupSeconds}s warm-up + ${s.seconds}s`);
    const hub = await startHubProcess(join(workDir, 'ingest-hub'), ingestHubConfig(), { cpuProfDir: s.cpuProfDir, name: 'ingest' });
    let hubRun: Awaited<ReturnType<typeof measure>>;
    try {
      hubRun = await measure(s, hub.url, SENDER_KEY, `ih${tag}`, hub.child.proc.pid);
      const counts = await deliveryCounts(hub, PULL);
      const stored = counts.pending ?? 0;
      const problem = storedProblem('hub', hubRun.warm.ok + hubRun.main.ok, stored, s.connections);
      if (problem) problems.push(problem);
    } finally {
      await hub.stop();
    }
    const bad = unexpectedStatuses(hubRun.main.statuses, 202);
    if (bad) problems.push(`hub answered ${bad}`);

    log(`ingest: floor (child process), same load`);
    const floor = await spawnTs('floor', 'bench/floor-server.ts', [], { env: { FLOOR_DB: join(workDir, 'ingest-floor.db') }, ready: /floor listening on (\S+)/ });
    let floorRun: Awaited<ReturnType<typeof measure>>;
    try {
      floorRun = await measure(s, floor.ready[1]!, null, `if${tag}`, floor.proc.pid);
      const res = await request(`${floor.ready[1]}/_count`);
      const { n } = await res.body.json() as { n: number };
      const problem = storedProblem('floor', floorRun.warm.ok + floorRun.main.ok, n, s.connections);
      if (problem) problems.push(problem);
    } finally {
      await floor.stop();
    }
    const badFloor = unexpectedStatuses(floorRun.main.statuses, 202);
    if (badFloor) problems.push(`floor answered ${badFloor}`);

    const h = figures(hubRun);
    const f = figures(floorRun);
    const ratio = f.msgsPerSec > 0 ? round(h.msgsPerSec / f.msgsPerSec, 3) : 0;
    const cpu = (x: typeof h) => (x.cpuUsPerMsg === null ? '' : `   CPU ${x.cpuUsPerMsg.toFixed(0)} µs/msg, ${(x.cpuBusy! * 100).toFixed(0)}% of a core`);
    const lines = [
      `ingest — ${s.bodyBytes} B structured CloudEvent, ${s.connections} connections, closed loop, ${s.seconds}s after ${s.warmupSeconds}s warm-up`,
      `  hub    ${fmtRate(h.msgsPerSec).padStart(16)}   p50 ${fmtMs(h.p50Ms).padStart(9)}   p99 ${fmtMs(h.p99Ms).padStart(9)}   (${h.accepted} accepted, all stored as deliveries)${cpu(h)}`,
      `  floor  ${fmtRate(f.msgsPerSec).padStart(16)}   p50 ${fmtMs(f.p50Ms).padStart(9)}   p99 ${fmtMs(f.p99Ms).padStart(9)}   (Fastify + SQLite WAL synchronous=FULL, group commit)${cpu(f)}`,
      `  hub/floor throughput ${(ratio * 100).toFixed(1)}%${h.cpuUsPerMsg && f.cpuUsPerMsg ? `; CPU per message hub/floor ${(h.cpuUsPerMsg / f.cpuUsPerMsg).toFixed(2)}×` : ''}`,
    ];
    return {
      lines,
      problems,
      json: { scenario: 'ingest', bodyBytes: s.bodyBytes, connections: s.connections, seconds: s.seconds, warmupSeconds: s.warmupSeconds, hub: h, floor: f, hubToFloor: ratio },
    };
  },
};
