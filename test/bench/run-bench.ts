import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface BenchRun {
  code: number | null;
  stdout: string;
  /** stdout and stderr, for assertion messages. */
  output: string;
  /** The JSON lines the run printed, in order. */
  json: Array<Record<string, any>>;
  /** Asserts that `v` is a finite number above 0, naming it and showing the output otherwise. */
  positive(v: unknown, what: string): void;
  /** The JSON line of scenario `name`, asserted present and `ok` (its problems shown otherwise). */
  scenario(name: string): Record<string, any>;
}

/**
 * `node --import tsx bench/run.ts ARGS` from the repository root. Past `killAfterMs` it gets
 * SIGTERM (bench/run.ts then stops the hubs and servers it started) and, 5 s later, SIGKILL.
 */
export async function runBench(args: string[], killAfterMs: number): Promise<BenchRun> {
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c; });
    child.stderr.on('data', (c: Buffer) => { stderr += c; });
    const timer = setTimeout(() => { child.kill('SIGTERM'); setTimeout(() => child.kill('SIGKILL'), 5_000).unref(); }, killAfterMs);
    child.once('error', reject);
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
  const output = `${r.stdout}\n${r.stderr}`;
  const json = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>);
  return {
    code: r.code,
    stdout: r.stdout,
    output,
    json,
    positive: (v, what) => assert.ok(typeof v === 'number' && Number.isFinite(v) && v > 0, `${what} = ${v}\n${output}`),
    scenario(name) {
      const line = json.find((l) => l.scenario === name);
      assert.ok(line, `no JSON line for scenario '${name}'\n${output}`);
      assert.equal(line.ok, true, JSON.stringify(line.problems));
      return line;
    },
  };
}
