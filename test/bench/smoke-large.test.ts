import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The large-payload benchmark in smoke mode (a 2 MiB binary body and a 1 MiB JSON body): it must
 * run, deliver both bodies byte for byte (SHA-256 equal at the receiver) through the hub and the
 * floor, and print sane figures. No timing or memory targets here.
 */
test('bench/run.ts --smoke large delivers both bodies exactly through the hub and the floor, with sane figures', { timeout: 60_000 }, async () => {
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--smoke', 'large'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c; });
    child.stderr.on('data', (c: Buffer) => { stderr += c; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 55_000);
    child.once('error', reject);
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
  const output = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.code, 0, output);
  const json = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>);
  assert.equal(json.length, 1, output);
  const large = json[0]!;
  assert.equal(large.scenario, 'large');
  assert.equal(large.ok, true, JSON.stringify(large.problems));
  assert.equal(large.smoke, true);
  const positive = (v: unknown, what: string) => assert.ok(typeof v === 'number' && Number.isFinite(v) && v > 0, `${what} = ${v}\n${output}`);
  for (const side of ['hub', 'floor'] as const) {
    assert.deepEqual(large[side].map((f: any) => f.kind), ['binary', 'json']);
    for (const f of large[side]) {
      const what = `${side} ${f.kind}`;
      assert.equal(f.status, 202, what);
      assert.equal(f.sha256Match, true, what);
      assert.match(f.receivedSha256, /^[0-9a-f]{64}$/, what);
      for (const k of ['bytes', 'acceptMs', 'deliveredMs', 'mbPerSec', 'rssBeforeMiB', 'rssPeakMiB']) positive(f[k], `${what} ${k}`);
      assert.ok(f.deliveredMs >= f.acceptMs, `${what}: delivered before accepted`);
      assert.ok(f.rssGrowthMiB >= 0 && f.rssPeakMiB >= f.rssBeforeMiB, `${what}: RSS figures`);
    }
  }
  assert.equal(large.hub[0].bytes, large.binaryBytes);
  assert.equal(large.hub[1].bytes, large.jsonBytes);
  assert.match(r.stdout, /^large — /m);
});
