/**
 * meterhub benchmarks. `npm run bench` runs every scenario; `npm run bench -- NAME...` runs
 * some; `--smoke` (or BENCH_SMOKE=1) runs tiny sizes (a few seconds each) to prove the
 * benchmarks still work. Each scenario prints a human summary and one JSON line, and measures
 * its baseline in the same run. Sizes: see bench/lib/settings.ts (BENCH_SECONDS, BENCH_RATE, …).
 * Exits 1 when a scenario failed or its figures cannot be trusted (errors, lost messages).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './lib/children.ts';
import type { Scenario } from './lib/scenario.ts';
import { settingsFrom } from './lib/settings.ts';
import { e2eScenario } from './scenarios/e2e.ts';
import { ingestScenario } from './scenarios/ingest.ts';
import { postgresScenario } from './scenarios/postgres.ts';
import { bullmqScenario } from './scenarios/bullmq.ts';
import { backlogScenario } from './scenarios/backlog.ts';
import { largeScenario } from './scenarios/large.ts';
import { registryScenario } from './scenarios/registry.ts';

const SCENARIOS: Scenario[] = [ingestScenario, e2eScenario, bullmqScenario, backlogScenario, largeScenario, registryScenario, postgresScenario];

function usage(): string {
  return [
    'usage: npm run bench -- [--smoke] [NAME...]',
    ...SCENARIOS.map((s) => `  ${s.name.padEnd(8)} ${s.description}`),
    'env: BENCH_SECONDS BENCH_WARMUP_SECONDS BENCH_CONNECTIONS BENCH_BODY_BYTES BENCH_RATE BENCH_OPEN_SECONDS',
    '     BENCH_PUSH_INFLIGHT BENCH_DRAIN_SECONDS BENCH_SMOKE=1 BENCH_CPU_PROF=<dir> (profile the hub with --cpu-prof)',
    '     BENCH_DATABASE_URL (postgres; else METERHUB_TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres)',
  ].join('\n');
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  const smoke = args.includes('--smoke') || ['1', 'true', 'yes'].includes((process.env.BENCH_SMOKE ?? '').toLowerCase());
  const names = args.filter((a) => !a.startsWith('-'));
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length > 0) {
    process.stderr.write(`unknown scenario ${unknown.join(', ')}\n${usage()}\n`);
    return 2;
  }
  const chosen = names.length > 0 ? SCENARIOS.filter((s) => names.includes(s.name)) : SCENARIOS;
  const settings = settingsFrom(process.env, smoke);

  const workDir = mkdtempSync(join(tmpdir(), 'meterhub-bench-'));
  process.on('exit', () => rmSync(workDir, { recursive: true, force: true }));
  const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
  log(`${smoke ? 'SMOKE run (tiny sizes; figures mean nothing)' : 'full run'}; node ${process.version}, ${cpus().length} CPU(s) ${cpus()[0]?.model ?? ''}; work folder ${workDir}`);

  let failed = 0;
  const all: unknown[] = [];
  for (const scenario of chosen) {
    const started = Date.now();
    const loadBefore = Math.round(loadavg()[0]! * 100) / 100;
    try {
      const result = await scenario.run(settings, workDir, log);
      const json = { ...result.json, smoke, ok: result.problems.length === 0, problems: result.problems, elapsedSeconds: Math.round((Date.now() - started) / 100) / 10, at: new Date().toISOString(),
        // The machine's 1-minute load average before and after: other work on the box skews the figures.
        loadavg1: { before: loadBefore, after: Math.round(loadavg()[0]! * 100) / 100 } };
      process.stdout.write(`\n${result.lines.join('\n')}\n`);
      for (const p of result.problems) process.stdout.write(`  PROBLEM: ${p}\n`);
      process.stdout.write(`${JSON.stringify(json)}\n`);
      all.push(json);
      if (result.problems.length > 0) failed++;
    } catch (err) {
      failed++;
      process.stdout.write(`\n${scenario.name}: FAILED\n${(err as Error).stack ?? err}\n`);
      process.stdout.write(`${JSON.stringify({ scenario: scenario.name, smoke, ok: false, error: String((err as Error).message ?? err) })}\n`);
    }
  }
  try {
    const out = join(REPO_ROOT, '.bench-out');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, smoke ? 'smoke.json' : 'last.json'), `${JSON.stringify({ settings, results: all }, null, 2)}\n`);
  } catch { /* the results are printed anyway */ }
  return failed > 0 ? 1 : 0;
}

main().then((code) => process.exit(code), (err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
