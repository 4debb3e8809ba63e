/**
 * Runs a storage-fault scenario (test/faults/scenarios/*.ts) inside a private mount namespace
 * with a small tmpfs mounted on its data folder, the way test/store/fixtures/disk-full.ts is
 * run: the scenario, the hub it starts as a child process and the receivers all live in that
 * namespace, so the tmpfs is theirs alone and goes away with them; nothing is left mounted.
 * `unshare --mount` as root, or with `--user --map-root-user` otherwise. The scenario prints one
 * `RESULT {json}` line.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const CANNOT_MOUNT = 97;

export interface ScenarioResult { ok: boolean; error?: string; figures: Record<string, unknown> }

export async function runScenario(t: TestContext, scenario: string, opts: { tmpfsMb: number; timeoutMs?: number }): Promise<ScenarioResult | null> {
  const base = mkdtempSync(join(tmpdir(), `meterhub-fault-${scenario}-`));
  const dataDir = join(base, 'data');
  mkdirSync(dataDir);
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const script = fileURLToPath(new URL(`./scenarios/${scenario}.ts`, import.meta.url));
  const asRoot = process.getuid?.() === 0;
  const args = [
    ...(asRoot ? [] : ['--user', '--map-root-user']),
    '--mount', '--propagation', 'private',
    'sh', '-c', `mount -t tmpfs -o size=${opts.tmpfsMb}m meterhub-fault "$0" || exit ${CANNOT_MOUNT}; exec "$1" --import tsx "$2" "$3"`,
    dataDir, process.execPath, script, base,
  ];
  const child = spawn('unshare', args, { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  const timer = setTimeout(() => child.kill('SIGTERM'), opts.timeoutMs ?? 120_000);
  const code = await new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(CANNOT_MOUNT));
    child.once('exit', (c) => resolve(c));
  });
  clearTimeout(timer);
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) {
    if (code === CANNOT_MOUNT || /unshare: |mount: |Operation not permitted/i.test(stderr)) {
      t.skip(`cannot mount a private tmpfs here (needs root, or unprivileged user namespaces): ${stderr.trim().slice(0, 300)}`);
      return null;
    }
    throw new Error(`the ${scenario} scenario ended (${code}) without a result\nstdout: ${stdout.slice(-4000)}\nstderr: ${stderr.slice(-4000)}`);
  }
  const result = JSON.parse(line.slice('RESULT '.length)) as ScenarioResult;
  if (!result.ok) result.error = `${result.error}\n--- scenario stderr (last 3000 chars) ---\n${stderr.slice(-3000)}`;
  return result;
}
