/**
 * postgres: end-to-end throughput on PostgreSQL, one hub process and two, beside the embedded
 * store in the same run. Closed loop (`connections` senders as fast as answered, split evenly
 * between the hub processes), every message routed to one push receiver in its own process
 * (bench/push-receiver.ts); a message counts once the receiver has it (accept → delivered).
 *
 *  - sqlite: one hub on its SQLite file (the default store): the baseline;
 *  - postgres ×1: one hub on PostgreSQL (a fresh schema);
 *  - postgres ×2: two hub processes (own data folders and ports) on one schema, sharing the work:
 *    each claims deliveries with FOR UPDATE SKIP LOCKED; the receiver's maxInFlight is per
 *    process, so two processes may have twice as many pushes in flight.
 * Bodies are 1 KB, inline in the database. Duplicates at the receiver are counted and are a
 * problem: there is no crash here, so none is allowed.
 *
 * PostgreSQL is BENCH_DATABASE_URL, else METERHUB_TEST_DATABASE_URL, else the local default
 * (postgres://postgres@127.0.0.1:5432/postgres); the schema is dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { request } from 'undici';
import { spawnTs } from '../lib/children.ts';
import { eventTemplate, idMaker } from '../lib/event.ts';
import { deliveryCounts, startHubProcess, type HubProcess } from '../lib/hub-process.ts';
import { closedLoop, type ClosedLoopResult } from '../lib/load.ts';
import { SENDER, SENDER_KEY, ingestHeaders, unexpectedStatuses, type Scenario } from '../lib/scenario.ts';
import type { BenchSettings } from '../lib/settings.ts';
import { cpuSecondsOf, fmtMs, fmtRate, round } from '../lib/stats.ts';
import { e2eHubConfig } from './e2e.ts';

const PUSH = 'BENCH-PUSH';
const DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export function benchDatabaseUrl(env: NodeJS.ProcessEnv = process.env): string {
  return env.BENCH_DATABASE_URL || env.METERHUB_TEST_DATABASE_URL || DEFAULT_URL;
}

/** The push receiver's control endpoints. */
class Receiver {
  constructor(readonly url: string) {}
  private async get(path: string): Promise<any> {
    const res = await request(this.url + path);
    return res.body.json();
  }
  reset(): Promise<unknown> { return this.get('/_reset'); }
  async count(prefix: string): Promise<number> { return (await this.get(`/_count?prefix=${encodeURIComponent(prefix)}`) as { count: number }).count; }
  async arrivals(): Promise<Array<[string, number]>> { return ((await this.get('/_arrivals')) as { arrivals: Array<[string, number]> }).arrivals; }
  async waitFor(n: number, seconds: number, prefix: string): Promise<number> {
    const deadline = Date.now() + seconds * 1000;
    for (;;) {
      const c = await this.count(prefix);
      if (c >= n || Date.now() > deadline) return c;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

interface Setup { name: string; store: 'sqlite' | 'postgres'; processes: number }

export interface PgFigures {
  setup: string; processes: number;
  acceptedPerSec: number; deliveredPerSec: number; allDeliveredPerSec: number;
  accepted: number; deliveredInWindow: number; backlogAtEnd: number; drainSeconds: number;
  acceptP50Ms: number; acceptP99Ms: number; duplicates: number;
  /** CPU of the hub processes together, per message accepted and delivered (µs). */
  hubCpuUsPerMsg: number | null;
  /** CPU of the PostgreSQL server processes (all of them, from /proc), per message (µs); null for sqlite or without /proc. */
  pgCpuUsPerMsg: number | null;
  perProcessAccepted: number[];
}

/** CPU seconds of every `postgres` process on this machine (the local server), or null. */
function postgresCpuSeconds(): number | null {
  try {
    let total = 0;
    let found = false;
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      let stat: string;
      try { stat = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { continue; }
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (name !== 'postgres' && !name.startsWith('postgres:')) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / 100;
      found = true;
    }
    return found ? total : null;
  } catch {
    return null;
  }
}

async function runSetup(s: BenchSettings, setup: Setup, dir: string, receiver: Receiver, hook: string, databaseUrl: string | null, tag: string, problems: string[], log: (l: string) => void): Promise<PgFigures> {
  const config = e2eHubConfig(hook, s.pushInFlight);
  if (databaseUrl) (config as Record<string, unknown>).storage = { databaseUrl };
  const hubs: HubProcess[] = [];
  try {
    // One after the other: each applies the config file (participants, key, routes) at start.
    for (let i = 0; i < setup.processes; i++) hubs.push(await startHubProcess(join(dir, `${setup.name}-${i}`), config, { cpuProfDir: s.cpuProfDir, name: `${setup.name}-${i}` }));
    const template = eventTemplate(SENDER, s.bodyBytes);
    const perHub = Math.max(1, Math.round(s.connections / hubs.length));
    const loops = (ids: () => string, seconds: number): Promise<ClosedLoopResult[]> => Promise.all(hubs.map((h) => closedLoop({
      url: h.url, path: '/v1/messages', headers: ingestHeaders(SENDER_KEY), connections: perHub, okStatus: 202, seconds, body: () => template.body(ids()),
    })));
    const warmIds = idMaker(`${tag}w`);
    const mainIds = idMaker(`${tag}m`);
    const mainPrefix = mainIds().slice(0, -10);
    const warmPrefix = warmIds().slice(0, -10);
    log(`postgres: ${setup.name}: ${hubs.length} hub process(es), ${perHub} connections each, ${s.warmupSeconds}s warm-up + ${s.seconds}s`);

    await receiver.reset();
    const warm = await loops(warmIds, s.warmupSeconds);
    const warmOk = warm.reduce((a, r) => a + r.ok, 0);
    if ((await receiver.waitFor(warmOk, s.drainSeconds, warmPrefix)) < warmOk) problems.push(`${setup.name}: the warm-up's deliveries did not drain in ${s.drainSeconds}s`);
    await receiver.reset();

    const cpu0 = hubs.map((h) => cpuSecondsOf(h.child.proc.pid));
    const pg0 = databaseUrl ? postgresCpuSeconds() : null;
    const main = await loops(mainIds, s.seconds);
    const accepted = main.reduce((a, r) => a + r.ok, 0);
    const startUs = Math.min(...main.map((r) => r.startUs));
    const endUs = Math.max(...main.map((r) => r.endUs));
    const seconds = (endUs - startUs) / 1e6;
    const atEnd = await receiver.count(mainPrefix);
    const seen = await receiver.waitFor(accepted, s.drainSeconds, mainPrefix);
    const cpu1 = hubs.map((h) => cpuSecondsOf(h.child.proc.pid));
    const pg1 = databaseUrl ? postgresCpuSeconds() : null;

    const first = new Map<string, number>();
    let duplicates = 0;
    for (const [id, t] of await receiver.arrivals()) {
      if (!id.startsWith(mainPrefix)) continue;
      if (first.has(id)) duplicates++;
      else first.set(id, t);
    }
    let inWindow = 0;
    let last = endUs;
    for (const t of first.values()) {
      if (t <= endUs) inWindow++;
      last = Math.max(last, t);
    }
    if (seen < accepted) problems.push(`${setup.name}: ${accepted - seen} of ${accepted} accepted messages not delivered within ${s.drainSeconds}s`);
    if (duplicates > 0) problems.push(`${setup.name}: ${duplicates} messages delivered twice with no crash`);
    const statuses: Record<string, number> = {};
    for (const r of main) for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
    const bad = unexpectedStatuses(statuses, 202);
    if (bad) problems.push(`${setup.name}: answered ${bad}`);

    // Requests cut off when the load stopped were stored too: let every delivery end.
    let counts = await deliveryCounts(hubs[0]!, PUSH);
    for (const deadline = Date.now() + s.drainSeconds * 1000; (counts.pending ?? 0) + (counts.delivering ?? 0) > 0 && Date.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 100));
      counts = await deliveryCounts(hubs[0]!, PUSH);
    }
    const notDone = Object.entries(counts).filter(([state]) => state !== 'delivered').map(([state, n]) => `${n} ${state}`);
    if (notDone.length > 0) problems.push(`${setup.name}: deliveries not delivered at the end: ${notDone.join(', ')}`);

    const drainSeconds = (last - endUs) / 1e6;
    const done = Math.min(seen, accepted);
    const hubCpu = cpu0.every((c) => c !== null) && cpu1.every((c) => c !== null)
      ? cpu1.reduce((a, c, i) => a + c! - cpu0[i]!, 0) : null;
    // Latency percentiles of the accepts: the loops' own (their p50s and p99s, the worst of them).
    return {
      setup: setup.name, processes: hubs.length,
      acceptedPerSec: round(accepted / seconds), deliveredPerSec: round(inWindow / seconds),
      allDeliveredPerSec: round(done / (seconds + Math.max(0, drainSeconds))),
      accepted, deliveredInWindow: inWindow, backlogAtEnd: Math.max(0, accepted - atEnd), drainSeconds: round(drainSeconds, 2),
      acceptP50Ms: Math.max(...main.map((r) => r.latency.p50Ms)), acceptP99Ms: Math.max(...main.map((r) => r.latency.p99Ms)), duplicates,
      hubCpuUsPerMsg: hubCpu !== null && done > 0 ? round((hubCpu * 1e6) / done, 1) : null,
      pgCpuUsPerMsg: pg0 !== null && pg1 !== null && done > 0 ? round(((pg1 - pg0) * 1e6) / done, 1) : null,
      perProcessAccepted: main.map((r) => r.ok),
    };
  } finally {
    for (const h of hubs.reverse()) await h.stop();
  }
}

async function withSchema<T>(url: string, fn: (schemaUrl: string) => Promise<T>): Promise<T> {
  const schema = `mh_bench_${randomBytes(5).toString('hex')}`;
  const u = new URL(url);
  u.searchParams.set('schema', schema);
  try {
    return await fn(u.toString());
  } finally {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    } catch { /* best effort */ } finally {
      await client.end().catch(() => {});
    }
  }
}

async function reachable(url: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{ v: string; mc: string }>("SELECT current_setting('server_version') AS v, current_setting('max_connections') AS mc");
    return `PostgreSQL ${rows[0]!.v}, max_connections ${rows[0]!.mc}`;
  } catch (e) {
    throw new Error(`PostgreSQL is not reachable at ${url.replace(/\/\/[^@]*@/, '//…@')} (${(e as Error).message}): set BENCH_DATABASE_URL, or start it (pg_ctlcluster --skip-systemctl-redirect 15 main start)`);
  } finally {
    await client.end().catch(() => {});
  }
}

export const postgresScenario: Scenario = {
  name: 'postgres',
  description: 'accept→delivered msgs/s (closed loop, push receiver) with one and two hub processes on PostgreSQL, vs one on SQLite',
  async run(s, workDir, log) {
    const problems: string[] = [];
    const url = benchDatabaseUrl();
    const server = await reachable(url);
    log(`postgres: ${server}`);
    const tag = Date.now().toString(36).slice(-6);
    const rc = await spawnTs('receiver', 'bench/push-receiver.ts', [], { ready: /receiver listening on (\S+)/ });
    const receiver = new Receiver(rc.ready[1]!);
    const hook = `${receiver.url}/hook`;
    const figures: PgFigures[] = [];
    try {
      figures.push(await runSetup(s, { name: 'sqlite', store: 'sqlite', processes: 1 }, join(workDir, 'pg-bench'), receiver, hook, null, `ps${tag}`, problems, log));
      figures.push(await withSchema(url, (u) => runSetup(s, { name: 'postgres-1', store: 'postgres', processes: 1 }, join(workDir, 'pg-bench'), receiver, hook, u, `p1${tag}`, problems, log)));
      figures.push(await withSchema(url, (u) => runSetup(s, { name: 'postgres-2', store: 'postgres', processes: 2 }, join(workDir, 'pg-bench'), receiver, hook, u, `p2${tag}`, problems, log)));
    } finally {
      await rc.stop();
    }
    const [lite, one, two] = figures as [PgFigures, PgFigures, PgFigures];
    const cpu = (f: PgFigures) => `hub CPU ${f.hubCpuUsPerMsg ?? 'n/a'} µs/msg${f.pgCpuUsPerMsg !== null ? `, PostgreSQL CPU ${f.pgCpuUsPerMsg} µs/msg` : ''}`;
    const row = (label: string, f: PgFigures) => `    ${label.padEnd(14)} delivered while loaded ${fmtRate(f.deliveredPerSec).padStart(13)}   accepted ${fmtRate(f.acceptedPerSec).padStart(13)}   accepted→all delivered ${fmtRate(f.allDeliveredPerSec).padStart(13)}   (202 p50 ${fmtMs(f.acceptP50Ms)}, p99 ${fmtMs(f.acceptP99Ms)}; backlog ${f.backlogAtEnd}, drained in ${f.drainSeconds}s; ${cpu(f)}${f.processes > 1 ? `; accepted per process ${f.perProcessAccepted.join(' + ')}` : ''})`;
    const pct = (a: number, b: number) => (b > 0 ? `${((a / b) * 100).toFixed(0)}%` : 'n/a');
    const lines = [
      `postgres — accept → delivered to a push receiver (own process), ${s.bodyBytes} B events, closed loop, ${s.connections} connections for ${s.seconds}s, push maxInFlight ${s.pushInFlight} per process`,
      row('sqlite ×1', lite),
      row('postgres ×1', one),
      row('postgres ×2', two),
      `  postgres ×1 / sqlite: ${pct(one.allDeliveredPerSec, lite.allDeliveredPerSec)}; postgres ×2 / ×1: ${pct(two.allDeliveredPerSec, one.allDeliveredPerSec)} (accepted→all delivered)`,
    ];
    return {
      lines, problems,
      json: {
        scenario: 'postgres', server, bodyBytes: s.bodyBytes, connections: s.connections, seconds: s.seconds, pushInFlight: s.pushInFlight,
        sqlite: lite, postgres1: one, postgres2: two,
        postgres1ToSqlite: lite.allDeliveredPerSec > 0 ? round(one.allDeliveredPerSec / lite.allDeliveredPerSec, 3) : 0,
        postgres2ToPostgres1: one.allDeliveredPerSec > 0 ? round(two.allDeliveredPerSec / one.allDeliveredPerSec, 3) : 0,
      },
    };
  },
};
