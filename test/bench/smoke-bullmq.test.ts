import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { redisServerInstalled } from '../../bench/alt/redis-server.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HOW = 'redis-server is not on PATH: `apt install redis-server`, then `npm run bench -- --smoke bullmq`';

/**
 * The bullmq scenario in smoke mode (tiny sizes, about 20 s: a hub and two BullMQ pipelines,
 * each with its own redis-server): it must run, find every message delivered, and print sane
 * figures. Never a timing target.
 */
test('bench/run.ts --smoke bullmq runs the hub and both BullMQ pipelines and prints positive figures', { timeout: 90_000 }, async (t) => {
  if (!redisServerInstalled()) {
    if (process.env.CI === 'true') assert.fail(HOW);
    t.skip(HOW);
    return;
  }
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--smoke', 'bullmq'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c; });
    child.stderr.on('data', (c: Buffer) => { stderr += c; });
    // SIGTERM first: bench/run.ts then stops its hub, pipelines and redis-servers on the way out.
    const timer = setTimeout(() => { child.kill('SIGTERM'); setTimeout(() => child.kill('SIGKILL'), 5_000).unref(); }, 80_000);
    child.once('error', reject);
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
  const output = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.code, 0, output);

  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  assert.ok(line, output);
  const json = JSON.parse(line) as Record<string, any>;
  assert.equal(json.scenario, 'bullmq');
  assert.equal(json.smoke, true);
  assert.equal(json.ok, true, JSON.stringify(json.problems));
  const positive = (v: unknown, what: string) => assert.ok(typeof v === 'number' && Number.isFinite(v) && v > 0, `${what} = ${v}\n${output}`);

  for (const side of ['hub', 'bullmqAlways', 'bullmqEverysec']) {
    const o = json[side].open;
    for (const f of ['p50Ms', 'p99Ms', 'acceptP50Ms', 'delivered']) positive(o[f], `${side}.open.${f}`);
    assert.ok(o.p99Ms >= o.p50Ms, `${side}.open p99 < p50`);
    assert.equal(o.missing, 0);
    assert.equal(o.delivered, o.sent);
    const c = json[side].closed;
    for (const f of ['acceptedPerSec', 'allDeliveredPerSec', 'accepted']) positive(c[f], `${side}.closed.${f}`);
    assert.ok(c.allDeliveredPerSec <= c.acceptedPerSec + 1, `${side}: more delivered than accepted per second`);
    assert.equal(typeof json[side].durability, 'string');
  }
  // The durability stated is the one Redis really ran with.
  assert.deepEqual(json.bullmqAlways.redis, { appendonly: 'yes', appendfsync: 'always', save: '' });
  assert.deepEqual(json.bullmqEverysec.redis, { appendonly: 'yes', appendfsync: 'everysec', save: '' });
  positive(json.hubToBullmqAlways.allDelivered, 'hubToBullmqAlways.allDelivered');
  assert.equal(typeof json.target.met, 'boolean');
  assert.match(r.stdout, /^bullmq — /m);
  assert.match(r.stdout, /^ {2}target: hub ≥ 1\.5× bullmq fsync=always/m);
});
