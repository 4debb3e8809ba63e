/**
 * registry: the meter registry at scale.
 *
 *  - import: a CSV of BENCH_REGISTRY_ROWS rows (5,000,000; smoke 20,000) of valid NMIs (with
 *    their checksum digit), an FRMP row for every meter and an LNSP row for every other one,
 *    imported through the real CLI (`meterhub meters import FILE`, progress on) into a real hub
 *    child process on its SQLite file: rows/s, the file size, the hub's peak RSS (VmHWM), and a
 *    light open-loop ingest (BENCH_REGISTRY_PROBE_RATE msgs/s, routed by participant) sent all
 *    through the import: its latency while the hub checks the upload and while it applies the
 *    rows (split where the CLI's progress turns to `importing`), beside the same load on the
 *    idle hub afterwards.
 *  - lookup: the cost of routing by role, against a 1,000-meter registry (the baseline, a hub
 *    of its own) and against the big one, in the same run: closed-loop ingest whose only route
 *    is `to: {roles: [FRMP]}`, subjects spread over the whole registry (msgs/s, p50/p99, hub CPU
 *    µs/msg), the two hubs in alternating phases so that other load on the machine weighs on
 *    both alike; and a direct timing of store.getMeterEntries (the router's one registry read
 *    per message) on each file, in this process, once the hubs have stopped.
 *  - PostgreSQL, when it answers (BENCH_DATABASE_URL, else METERHUB_TEST_DATABASE_URL, else the
 *    local default): the same import through the CLI into a hub on a fresh schema, and the same
 *    direct lookup timing against it and a 1,000-meter schema. Schemas are dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import pg from 'pg';
import { nmiChecksum } from '../../src/routing/meter-ids.ts';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../../src/store/store.ts';
import { spawn } from 'node:child_process';
import { REPO_ROOT } from '../lib/children.ts';
import { BENCH_EVENT_TYPE, BENCH_SUBJECT, eventTemplate, idMaker } from '../lib/event.ts';
import { ADMIN_KEY, deliveryCounts, startHubProcess, type HubProcess } from '../lib/hub-process.ts';
import { closedLoop, openLoop } from '../lib/load.ts';
import { SENDER, SENDER_KEY, ingestHeaders, unexpectedStatuses, type Scenario } from '../lib/scenario.ts';
import { positiveSetting, type BenchSettings } from '../lib/settings.ts';
import { cpuSecondsOf, fmtMs, fmtRate, nowUs, percentile, round } from '../lib/stats.ts';
import { benchDatabaseUrl } from './postgres.ts';

const RETAILERS = ['RETAILER-A', 'RETAILER-B', 'RETAILER-C', 'RETAILER-D'];
const NETWORKS = ['LNSP-A', 'LNSP-B'];
const PROBE = 'BENCH-PROBE';
const PROBE_TYPE = 'bench.registry.probe';
/** The event time: inside every FRMP row's validity (from 2020-01-01, open-ended). */
const EVENT_TIME = Date.parse('2024-01-01T00:00:00+10:00');
const BASELINE_METERS = 1_000;

const num = (name: string, fallback: number) => positiveSetting(process.env, name, fallback);

/** The i-th benchmark NMI: 'QB', 8 digits, and the AEMO checksum digit (11 characters). */
export function benchNmi(i: number): string {
  const body = `QB${String(i).padStart(8, '0')}`;
  return body + nmiChecksum(body);
}

/** Meters needed for `rows` rows (an FRMP row each, an LNSP row for the even ones). */
function metersFor(rows: number): number {
  return Math.ceil((rows * 2) / 3);
}

/** Writes the registry CSV of exactly `rows` data rows; returns the number of meters in it. */
export async function writeRegistryCsv(file: string, rows: number): Promise<number> {
  const out = createWriteStream(file);
  let block = 'meter,role,participant,validFrom,validTo\n';
  let written = 0;
  let meter = 0;
  while (written < rows) {
    const nmi = benchNmi(meter);
    block += `${nmi},FRMP,${RETAILERS[meter % RETAILERS.length]},2020-01-01,\n`;
    written++;
    if (meter % 2 === 0 && written < rows) {
      block += `${nmi},LNSP,${NETWORKS[(meter / 2) % NETWORKS.length]},,\n`;
      written++;
    }
    meter++;
    if (block.length > 1 << 20) {
      if (!out.write(block)) await once(out, 'drain');
      block = '';
    }
  }
  out.end(block);
  await once(out, 'finish');
  return meter;
}

function hubConfig(): Record<string, unknown> {
  const pull = { receiver: { mode: 'pull' } };
  return {
    participants: {
      [SENDER]: { name: 'Benchmark sender', keys: [SENDER_KEY] },
      [PROBE]: { name: 'Probe receiver (never polled)', ...pull },
      ...Object.fromEntries([...RETAILERS, ...NETWORKS].map((id) => [id, { name: id, ...pull }])),
    },
    routes: [
      { name: 'readings to the meter\'s FRMP', match: { type: BENCH_EVENT_TYPE }, to: { roles: ['FRMP'] } },
      { name: 'probes to one receiver', match: { type: PROBE_TYPE }, to: { participants: [PROBE] } },
    ],
  };
}

/** Peak resident set of a process so far (VmHWM), in MiB; null without /proc. */
function peakRssMiB(pid: number | undefined): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? round(Number(m[1]) / 1024, 1) : null;
  } catch {
    return null;
  }
}

interface ImportFigures { rows: number; seconds: number; rowsPerSec: number; cliRowsPerSec: number | null; checkSeconds: number | null; fileMiB: number; hubPeakRssMiB: number | null; hubRssBeforeMiB: number | null }

/** Runs the CLI to completion, noting (monotonic µs) when its progress first says `importing`: the hub has checked every row. */
function runImportCli(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string; applyStartUs: number | null }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const kill = () => proc.kill('SIGKILL');
  process.once('exit', kill);
  let stdout = '';
  let stderr = '';
  let applyStartUs: number | null = null;
  proc.stdout!.on('data', (c: Buffer) => { stdout += c.toString('utf8'); });
  proc.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
    if (applyStartUs === null && stderr.includes('importing')) applyStartUs = nowUs();
    if (stderr.length > 1 << 20) stderr = stderr.slice(-(1 << 16));
  });
  const timer = setTimeout(kill, timeoutMs);
  return new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      process.removeListener('exit', kill);
      resolve({ code: code ?? (signal ? 128 : null), stdout, stderr, applyStartUs });
    });
  });
}

/** `meterhub meters import FILE` against the hub, progress on (it is part of what is measured). */
async function importThroughCli(hub: HubProcess, file: string, rows: number, problems: string[], what: string, phases?: { applyStartUs: number | null }): Promise<ImportFigures> {
  const pid = hub.child.proc.pid;
  const before = peakRssMiB(pid);
  const startUs = nowUs();
  const r = await runImportCli(['meters', 'import', file, '--url', hub.url, '--key', ADMIN_KEY], 1_800_000);
  const seconds = (nowUs() - startUs) / 1e6;
  if (phases) phases.applyStartUs = r.applyStartUs;
  const m = /imported (\d+) rows in [\d.]+ s \((\d+) rows\/s\)/.exec(r.stdout);
  if (r.code !== 0 || !m) problems.push(`${what}: the CLI exited ${r.code}: ${(r.stderr || r.stdout).slice(-400)}`);
  else if (Number(m[1]) !== rows) problems.push(`${what}: the CLI imported ${m[1]} rows, the file has ${rows}`);
  if (r.code === 0 && !/importing \[#+\] 100%/.test(r.stderr)) problems.push(`${what}: the CLI's progress did not reach 100%`);
  return {
    rows, seconds: round(seconds, 2), rowsPerSec: round(rows / seconds), cliRowsPerSec: m ? Number(m[2]) : null,
    checkSeconds: r.applyStartUs === null ? null : round((r.applyStartUs - startUs) / 1e6, 2),
    fileMiB: round(statSync(file).size / 1048576, 1), hubPeakRssMiB: peakRssMiB(pid), hubRssBeforeMiB: before,
  };
}

/** Checks one meter of the file through the admin API. */
async function spotCheck(hub: HubProcess, meter: number, problems: string[], what: string): Promise<void> {
  const nmi = benchNmi(meter);
  try {
    const m = await hub.admin(`/v1/admin/meters/${nmi}`) as { roles: Array<{ role: string; participant: string }> };
    const frmp = m.roles.find((r) => r.role === 'FRMP');
    if (frmp?.participant !== RETAILERS[meter % RETAILERS.length]) problems.push(`${what}: meter ${nmi} has FRMP ${frmp?.participant}`);
  } catch (error) {
    problems.push(`${what}: meter ${nmi}: ${(error as Error).message}`);
  }
}

interface ProbeFigures { sent: number; ok: number; p50Ms: number; p99Ms: number; maxMs: number }

function probeFigures(latencies: number[], sent: number): ProbeFigures {
  return { sent, ok: latencies.length, p50Ms: round(percentile(latencies, 50), 2), p99Ms: round(percentile(latencies, 99), 2), maxMs: round(latencies.reduce((a, b) => Math.max(a, b), 0), 1) };
}

/**
 * Open-loop probe ingest in 1 s slices until `until` settles (at least one slice): latency from
 * each message's due time, so a hub that stalls during the import shows it in full. Split at
 * `splitAt()` (µs, monotonic; null: not split): before it, and from it on.
 */
async function probeWhile(url: string, rate: number, until: Promise<unknown>, tag: string, problems: string[], what: string, splitAt: () => number | null = () => null): Promise<{ all: ProbeFigures; before: ProbeFigures; after: ProbeFigures }> {
  const template = eventTemplate(SENDER, 1024);
  const nextId = idMaker(tag);
  let done = false;
  void until.finally(() => { done = true; });
  const sent: Array<{ at: number; ms: number | null }> = [];
  const statuses: Record<string, number> = {};
  do {
    const r = await openLoop({
      url, path: '/v1/messages', headers: ingestHeaders(SENDER_KEY), rate, seconds: 1, okStatus: 202,
      body: () => template.body(nextId()).replace(BENCH_EVENT_TYPE, PROBE_TYPE),
    });
    for (let i = 0; i < r.count; i++) {
      statuses[r.status[i]!] = (statuses[r.status[i]!] ?? 0) + 1;
      sent.push({ at: r.scheduledUs[i]!, ms: r.status[i] === 202 ? (r.answeredUs[i]! - r.scheduledUs[i]!) / 1000 : null });
    }
  } while (!done);
  const bad = unexpectedStatuses(statuses, 202);
  if (bad) problems.push(`${what}: probe ingest answered ${bad}`);
  const split = splitAt() ?? Number.POSITIVE_INFINITY;
  const of = (list: typeof sent) => probeFigures(list.flatMap((x) => (x.ms === null ? [] : [x.ms])), list.length);
  return { all: of(sent), before: of(sent.filter((x) => x.at < split)), after: of(sent.filter((x) => x.at >= split)) };
}

interface LookupRun { msgsPerSec: number; p50Ms: number; p99Ms: number; accepted: number; cpuUsPerMsg: number | null; rounds: number }

/** Closed-loop ingest routed by role, subjects spread over `meters` meters; one phase of `seconds`. */
function routedLoad(s: BenchSettings, hub: HubProcess, meters: number, tag: string) {
  const template = eventTemplate(SENDER, s.bodyBytes);
  const nextId = idMaker(tag);
  // A multiplicative walk over the meters: every subject a different one, spread over the registry.
  const stride = 2_654_435_761 % meters || 1;
  let k = 0;
  const body = () => template.body(nextId()).replaceAll(BENCH_SUBJECT, benchNmi((k++ * stride) % meters));
  const common = { url: hub.url, path: '/v1/messages', headers: ingestHeaders(SENDER_KEY), body, connections: s.connections, okStatus: 202 };
  const pid = hub.child.proc.pid;
  return async (seconds: number) => {
    const cpuBefore = cpuSecondsOf(pid);
    const r = await closedLoop({ ...common, seconds });
    return { r, cpu: cpuBefore === null ? null : cpuSecondsOf(pid)! - cpuBefore };
  };
}

/**
 * The two hubs under the same routed load, in alternating phases (baseline, big, baseline, big,
 * …: `rounds` of each, s.seconds in all for each), so that other work coming and going on the
 * machine weighs on both alike. Then every 202 is checked against the deliveries stored.
 */
async function routedIngestAB(s: BenchSettings, hubs: Array<{ hub: HubProcess; meters: number; what: string }>, tag: string, problems: string[]): Promise<LookupRun[]> {
  const rounds = s.smoke ? 1 : 4;
  const loads = hubs.map((h, i) => routedLoad(s, h.hub, h.meters, `${tag}${i}`));
  const acc = hubs.map(() => ({ answered: 0, ok: 0, seconds: 0, cpu: 0 as number | null, phases: [] as Array<{ p50: number; p99: number }>, statuses: {} as Record<string, number> }));
  for (const [i, load] of loads.entries()) acc[i]!.answered += (await load(s.warmupSeconds)).r.ok;
  for (let round = 0; round < rounds; round++) {
    for (const [i, load] of loads.entries()) {
      const { r, cpu } = await load(s.seconds / rounds);
      const a = acc[i]!;
      a.answered += r.ok;
      a.ok += r.ok;
      a.seconds += r.seconds;
      a.cpu = a.cpu === null || cpu === null ? null : a.cpu + cpu;
      a.phases.push({ p50: r.latency.p50Ms, p99: r.latency.p99Ms });
      for (const [st, n] of Object.entries(r.statuses)) a.statuses[st] = (a.statuses[st] ?? 0) + n;
    }
  }
  const out: LookupRun[] = [];
  for (const [i, h] of hubs.entries()) {
    const a = acc[i]!;
    const bad = unexpectedStatuses(a.statuses, 202);
    if (bad) problems.push(`${h.what}: ingest answered ${bad}`);
    let stored = 0;
    for (const r of RETAILERS) stored += (await deliveryCounts(h.hub, r)).pending ?? 0;
    if (stored < a.answered) problems.push(`${h.what}: ${a.answered} messages answered 202 but only ${stored} deliveries to the FRMPs are stored`);
    out.push({
      msgsPerSec: round(a.ok / a.seconds), accepted: a.ok, rounds,
      // Each the median over the rounds of the phase's p50 (p99).
      p50Ms: round(percentile(a.phases.map((x) => x.p50), 50), 2), p99Ms: round(percentile(a.phases.map((x) => x.p99), 50), 2),
      cpuUsPerMsg: a.cpu === null || a.ok === 0 ? null : round((a.cpu * 1e6) / a.ok, 1),
    });
  }
  return out;
}

interface DirectLookup { lookups: number; usPerLookup: number; p50Us: number; p99Us: number }

/** The router's registry read, timed directly: getMeterEntries(random meter, event time). */
async function timeLookups(store: Store, meters: number, lookups: number): Promise<DirectLookup> {
  const each = new Float64Array(lookups);
  let found = 0;
  for (let i = 0; i < Math.min(1000, lookups); i++) await store.getMeterEntries(benchNmi(Math.floor(Math.random() * meters)), EVENT_TIME);
  const started = process.hrtime.bigint();
  for (let i = 0; i < lookups; i++) {
    const nmi = benchNmi(Math.floor(Math.random() * meters));
    const t = process.hrtime.bigint();
    found += (await store.getMeterEntries(nmi, EVENT_TIME)).length > 0 ? 1 : 0;
    each[i] = Number(process.hrtime.bigint() - t) / 1000;
  }
  const total = Number(process.hrtime.bigint() - started) / 1000;
  if (found !== lookups) throw new Error(`${lookups - found} lookups found no entry`);
  return { lookups, usPerLookup: round(total / lookups, 2), p50Us: round(percentile(each, 50), 1), p99Us: round(percentile(each, 99), 1) };
}

async function sqliteLookups(file: string, meters: number, lookups: number): Promise<DirectLookup> {
  const store = new SqliteStore(file);
  try {
    return await timeLookups(store, meters, lookups);
  } finally {
    await store.close();
  }
}

interface PgFigures { import: ImportFigures; baselineImportRowsPerSec: number; lookupBaseline: DirectLookup; lookupBig: DirectLookup }

async function reachable(url: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    return null;
  } catch (error) {
    return (error as Error).message;
  } finally {
    await client.end().catch(() => {});
  }
}

async function dropSchemas(url: string, schemas: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end().catch(() => {});
  }
}

async function onPostgres(url: string, workDir: string, files: { big: string; small: string; rows: number; smallRows: number; meters: number }, lookups: number, problems: string[], log: (l: string) => void): Promise<PgFigures> {
  const tag = randomBytes(4).toString('hex');
  const schemas = [`mh_bench_reg_${tag}_big`, `mh_bench_reg_${tag}_base`];
  const withSchema = (schema: string) => { const u = new URL(url); u.searchParams.set('schema', schema); return u.toString(); };
  try {
    const run = async (schema: string, file: string, rows: number, name: string) => {
      const hub = await startHubProcess(join(workDir, `registry-${name}`), { ...hubConfig(), storage: { databaseUrl: withSchema(schema) } }, { name });
      try {
        const f = await importThroughCli(hub, file, rows, problems, `postgres ${name}`);
        await spotCheck(hub, Math.floor(rows / 3), problems, `postgres ${name}`);
        return f;
      } finally {
        await hub.stop();
      }
    };
    log(`registry: PostgreSQL, ${files.rows.toLocaleString('en-US')} rows through the CLI`);
    const big = await run(schemas[0]!, files.big, files.rows, 'pg-big');
    const base = await run(schemas[1]!, files.small, files.smallRows, 'pg-base');
    const time = async (schema: string, meters: number) => {
      const store = await PostgresStore.open({ url, schema, poolSize: 2 });
      try { return await timeLookups(store, meters, lookups); } finally { await store.close(); }
    };
    return { import: big, baselineImportRowsPerSec: base.rowsPerSec, lookupBaseline: await time(schemas[1]!, BASELINE_METERS), lookupBig: await time(schemas[0]!, files.meters) };
  } finally {
    await dropSchemas(url, schemas).catch((e: Error) => log(`registry: could not drop ${schemas.join(', ')}: ${e.message}`));
  }
}

export const registryScenario: Scenario = {
  name: 'registry',
  description: '5,000,000 meters imported through the CLI (rows/s); routing lookup cost vs a 1,000-meter registry',
  async run(s, workDir, log) {
    const problems: string[] = [];
    const rows = Math.round(num('BENCH_REGISTRY_ROWS', s.smoke ? 20_000 : 5_000_000));
    const probeRate = num('BENCH_REGISTRY_PROBE_RATE', s.smoke ? 50 : 100);
    const lookups = Math.round(num('BENCH_REGISTRY_LOOKUPS', s.smoke ? 5_000 : 100_000));
    const tag = Date.now().toString(36);
    const big = join(workDir, 'registry-big.csv');
    const small = join(workDir, 'registry-1k.csv');
    const smallRows = Math.ceil((BASELINE_METERS * 3) / 2);
    log(`registry: writing ${rows.toLocaleString('en-US')} rows`);
    const meters = await writeRegistryCsv(big, rows);
    if (await writeRegistryCsv(small, smallRows) !== BASELINE_METERS) throw new Error('the baseline file does not have 1,000 meters');

    log(`registry: importing through the CLI into a hub (SQLite), probe ingest at ${probeRate} msgs/s meanwhile`);
    const hubBig = await startHubProcess(join(workDir, 'registry-big'), hubConfig(), { cpuProfDir: s.cpuProfDir, name: 'registry-big' });
    let hubBase: HubProcess | null = null;
    let imp: ImportFigures;
    let probe: Awaited<ReturnType<typeof probeWhile>>;
    let idle: ProbeFigures;
    let baseImport: ImportFigures;
    let baseRun: LookupRun;
    let bigRun: LookupRun;
    try {
      const phases = { applyStartUs: null as number | null };
      const importing = importThroughCli(hubBig, big, rows, problems, 'sqlite import', phases);
      probe = await probeWhile(hubBig.url, probeRate, importing, `rd${tag}`, problems, 'during the import', () => phases.applyStartUs);
      imp = await importing;
      idle = (await probeWhile(hubBig.url, probeRate, new Promise((r) => setTimeout(r, Math.min(10_000, imp.seconds * 1000))), `ri${tag}`, problems, 'idle')).all;
      await spotCheck(hubBig, meters - 1, problems, 'sqlite import');

      hubBase = await startHubProcess(join(workDir, 'registry-base'), hubConfig(), { name: 'registry-base' });
      baseImport = await importThroughCli(hubBase, small, smallRows, problems, 'baseline import');
      log(`registry: routed ingest, ${BASELINE_METERS} meters (baseline) and ${meters.toLocaleString('en-US')} meters in alternating phases`);
      [baseRun, bigRun] = await routedIngestAB(s, [
        { hub: hubBase, meters: BASELINE_METERS, what: `${BASELINE_METERS} meters` },
        { hub: hubBig, meters, what: `${meters} meters` },
      ], `rr${tag}`, problems) as [LookupRun, LookupRun];
    } finally {
      await hubBig.stop();
      await hubBase?.stop();
    }

    log(`registry: direct lookups (${lookups.toLocaleString('en-US')} each)`);
    const directBase = await sqliteLookups(join(workDir, 'registry-base', 'data', 'meterhub.db'), BASELINE_METERS, lookups);
    const directBig = await sqliteLookups(join(workDir, 'registry-big', 'data', 'meterhub.db'), meters, lookups);

    const pgUrl = benchDatabaseUrl();
    const pgDown = await reachable(pgUrl);
    let pgFigures: PgFigures | null = null;
    if (pgDown === null) {
      try {
        pgFigures = await onPostgres(pgUrl, workDir, { big, small, rows, smallRows, meters }, lookups, problems, log);
      } catch (error) {
        problems.push(`postgres: ${(error as Error).message}`);
      }
    } else {
      log(`registry: PostgreSQL at ${pgUrl.replace(/\/\/[^@]*@/, '//')} does not answer (${pgDown}); its part is left out`);
    }

    const n = (x: number) => x.toLocaleString('en-US');
    const cpu = (r: LookupRun) => (r.cpuUsPerMsg === null ? '' : `   hub CPU ${r.cpuUsPerMsg.toFixed(0)} µs/msg`);
    const lines = [
      `registry — ${n(rows)} rows (${n(meters)} meters, ${imp.fileMiB} MiB) imported through the CLI; routing by role against ${n(meters)} vs ${n(BASELINE_METERS)} meters`,
      `  import (SQLite)   ${n(imp.rowsPerSec).padStart(9)} rows/s   ${imp.seconds} s (checked in ${imp.checkSeconds ?? '?'} s, then applied)   hub peak RSS ${imp.hubPeakRssMiB ?? '?'} MiB (${imp.hubRssBeforeMiB ?? '?'} before)   1,000-meter file: ${baseImport.seconds} s`,
      `  probe ingest ${probeRate} msgs/s   while checking p50 ${fmtMs(probe.before.p50Ms)} p99 ${fmtMs(probe.before.p99Ms)}   while applying p50 ${fmtMs(probe.after.p50Ms)} p99 ${fmtMs(probe.after.p99Ms)} max ${fmtMs(probe.after.maxMs)}   idle p50 ${fmtMs(idle.p50Ms)} p99 ${fmtMs(idle.p99Ms)}   (${probe.all.ok}/${probe.all.sent} accepted)`,
      `  routed ingest, ${baseRun.rounds} alternating phases each, p50/p99 the median over them`,
      `  routed ingest  ${n(BASELINE_METERS).padStart(9)} meters ${fmtRate(baseRun.msgsPerSec).padStart(14)}   p99 ${fmtMs(baseRun.p99Ms).padStart(9)}${cpu(baseRun)}`,
      `  routed ingest  ${n(meters).padStart(9)} meters ${fmtRate(bigRun.msgsPerSec).padStart(14)}   p99 ${fmtMs(bigRun.p99Ms).padStart(9)}${cpu(bigRun)}`,
      `  direct lookup (SQLite)   ${n(BASELINE_METERS)} meters mean ${directBase.usPerLookup} µs (p50 ${directBase.p50Us}, p99 ${directBase.p99Us})   ${n(meters)} meters mean ${directBig.usPerLookup} µs (p50 ${directBig.p50Us}, p99 ${directBig.p99Us})`,
      pgFigures
        ? `  PostgreSQL   import ${n(pgFigures.import.rowsPerSec)} rows/s (${pgFigures.import.seconds} s, checked in ${pgFigures.import.checkSeconds ?? '?'} s, hub peak RSS ${pgFigures.import.hubPeakRssMiB ?? '?'} MiB)   lookup ${n(BASELINE_METERS)} meters p50 ${pgFigures.lookupBaseline.p50Us} µs, ${n(meters)} meters p50 ${pgFigures.lookupBig.p50Us} µs`
        : '  PostgreSQL   not reachable: left out',
    ];
    return {
      lines,
      problems,
      json: {
        scenario: 'registry', rows, meters, fileMiB: imp.fileMiB, sqlite: { import: imp, baselineImport: baseImport, probe: { rate: probeRate, duringImport: probe.all, whileChecking: probe.before, whileApplying: probe.after, idle } },
        lookup: { baselineMeters: BASELINE_METERS, meters, ingestBaseline: baseRun, ingestBig: bigRun, directBaseline: directBase, directBig: directBig,
          cpuRatio: baseRun.cpuUsPerMsg && bigRun.cpuUsPerMsg ? round(bigRun.cpuUsPerMsg / baseRun.cpuUsPerMsg, 2) : null,
          directRatio: round(directBig.usPerLookup / directBase.usPerLookup, 2) },
        postgres: pgFigures,
      },
    };
  },
};
