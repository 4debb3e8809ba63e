import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, METERHUB_LOG_LEVEL: 'warn' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c; });
    child.stderr.on('data', (c: Buffer) => { stderr += c; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

const demoFolders = () => new Set(readdirSync(tmpdir()).filter((f) => f.startsWith('meterhub-demo-')));

test('npm run demo delivers every message to every receiver and says so', { timeout: 90_000 }, async () => {
  const before = demoFolders();
  const started = Date.now();
  const r = await run(['--import', 'tsx', 'demo/run.ts'], 80_000);
  const output = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.code, 0, output);
  assert.ok(Date.now() - started < 60_000, `the demo took ${Date.now() - started} ms`);

  for (const file of ['nem12_multiple_meters.csv', 'nem12_nemmco_scenario10_powermdp.csv', 'nem12_month_solar_5min.csv']) {
    assert.match(r.stdout, new RegExp(`sent samples/${file.replace(/\./g, '\\.')}: \\d+ messages: [1-9]\\d* accepted`), output);
  }
  const all = /ALL DELIVERED: (\d+) deliveries to 3 receivers/.exec(r.stdout);
  assert.ok(all, output);
  const expected = Number(/\((\d+) messages × 3 receivers = (\d+) expected\)/.exec(r.stdout)?.[2]);
  assert.equal(Number(all[1]), expected);
  for (const receiver of ['RETAILER-A', 'NETWORK-B', 'METER-COORD']) {
    assert.match(r.stdout, new RegExp(`^  ${receiver} +${expected / 3} delivered `, 'm'), output);
  }
  // NETWORK-B refused at first, so the hub retried.
  assert.match(r.stdout, /NETWORK-B answered 503 to [1-9]\d* request/, output);
  assert.match(r.stdout, /NETWORK-B +\d+ delivered +\d+ attempt\(s\), [1-9]\d* retries/, output);
  assert.match(r.stdout, /METER-COORD polled \d+ time\(s\), received \d+, acked \d+/, output);
  assert.match(r.stdout, /time taken: \d+\.\ds/, output);
  assert.doesNotMatch(r.stdout, /NOT ALL DELIVERED/);

  // Its temp folder is gone.
  const left = [...demoFolders()].filter((f) => !before.has(f) && existsSync(`${tmpdir()}/${f}`));
  assert.deepEqual(left, []);
});
