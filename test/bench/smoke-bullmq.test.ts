import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runBench } from './run-bench.ts';
import { redisServerInstalled } from '../../bench/alt/redis-server.ts';

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
  const r = await runBench(['--smoke', 'bullmq'], 80_000);
  const { output, positive } = r;
  assert.equal(r.code, 0, output);

  assert.equal(r.json[0]?.scenario, 'bullmq', output);
  const json = r.scenario('bullmq');
  assert.equal(json.smoke, true);

  for (const side of ['hub', 'bullmqAlways', 'bullmqEverysec']) {
    const o: Record<string, any> = json[side].open;
    for (const f of ['p50Ms', 'p99Ms', 'acceptP50Ms', 'delivered']) positive(o[f], `${side}.open.${f}`);
    assert.ok(o.p99Ms >= o.p50Ms, `${side}.open p99 < p50`);
    assert.equal(o.missing, 0);
    assert.equal(o.delivered, o.sent);
    const c: Record<string, any> = json[side].closed;
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
