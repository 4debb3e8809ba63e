import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runBench } from './run-bench.ts';


/**
 * The benchmarks in smoke mode (tiny sizes): they must run, and print sane figures. The
 * `postgres` scenario is left out: even in smoke mode it starts four hub processes and takes
 * about 17 s on a quiet 2-core box (`npm run bench -- --smoke postgres` runs it).
 */
test('bench/run.ts --smoke runs the ingest and e2e scenarios and prints their JSON lines with positive figures', { timeout: 90_000 }, async () => {
  const r = await runBench(['--smoke', 'ingest', 'e2e'], 80_000);
  const { output, positive } = r;
  assert.equal(r.code, 0, output);

  const lines = r.json;
  const byName = new Map(lines.map((l) => [l.scenario as string, l]));
  assert.deepEqual([...byName.keys()].sort(), ['e2e', 'ingest'], output);

  const ingest = r.scenario('ingest');
  assert.equal(ingest.smoke, true);
  for (const side of ['hub', 'floor']) {
    for (const f of ['msgsPerSec', 'p50Ms', 'p99Ms', 'accepted']) positive(ingest[side][f], `ingest.${side}.${f}`);
    assert.ok(ingest[side].p99Ms >= ingest[side].p50Ms);
    assert.equal(ingest[side].errors, 0);
  }
  positive(ingest.hubToFloor, 'ingest.hubToFloor');

  const e2e = r.scenario('e2e');
  assert.ok(Array.isArray(e2e.rates) && e2e.rates.length >= 1, `e2e.rates = ${JSON.stringify(e2e.rates)}`);
  for (const side of ['hub', 'floor', 'direct']) {
    assert.equal(e2e[side].open.length, e2e.rates.length, `e2e.${side}.open: one phase per rate`);
    e2e[side].open.forEach((o: Record<string, number>, i: number) => {
      assert.equal(o.offeredPerSec, e2e.rates[i]);
      for (const f of ['p50Ms', 'p99Ms', 'delivered']) positive(o[f], `e2e.${side}.open[${i}].${f}`);
      assert.ok(o.p99Ms! >= o.p50Ms!);
      assert.equal(o.missing, 0);
      assert.equal(o.duplicates, 0);
      assert.equal(o.delivered, o.sent);
    });
  }
  for (const side of ['hub', 'floor']) {
    for (const [phase, fanout] of [['closed', 1], ['closedFanout3', 3]] as const) {
      const c = e2e[side][phase];
      assert.equal(c.fanout, fanout, `e2e.${side}.${phase}.fanout`);
      for (const f of ['deliveredPerSec', 'deliveriesPerSec', 'acceptedPerSec', 'allDeliveredPerSec', 'accepted']) positive(c[f], `e2e.${side}.${phase}.${f}`);
      assert.equal(c.duplicates, 0);
      // Both rates are rounded to whole numbers: 747 messages/s × 3 may be 2,240 deliveries/s.
      assert.ok(c.deliveriesPerSec >= c.deliveredPerSec * fanout - fanout, `e2e.${side}.${phase}: ${c.deliveriesPerSec} deliveries/s for ${c.deliveredPerSec} messages/s at fan-out ${fanout}`);
      assert.ok(c.allDeliveredPerSec <= c.acceptedPerSec * 1.01, `e2e.${side}.${phase}: all delivered cannot beat accepted`);
    }
  }
  // Human summaries too.
  assert.match(r.stdout, /^ingest — /m);
  assert.match(r.stdout, /^e2e — /m);
  assert.match(r.stdout, /sustained throughput, fan-out 3/);
});

test('bench/run.ts refuses an unknown scenario', async () => {
  const { code } = await runBench(['--smoke', 'no-such-scenario'], 30_000);
  assert.equal(code, 2);
});
