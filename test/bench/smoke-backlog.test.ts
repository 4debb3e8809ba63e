import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runBench } from './run-bench.ts';


/**
 * The backlog scenario in smoke mode (~2,000 deliveries piled up for a receiver that is down,
 * then drained): it must run and print sane figures, with every delivery arriving once. Its
 * targets are not checked here (smoke figures mean nothing).
 */
test('bench/run.ts --smoke backlog piles up deliveries for a down receiver, then drains them all', { timeout: 90_000 }, async () => {
  const r = await runBench(['--smoke', 'backlog'], 80_000);
  const { output, positive } = r;
  assert.equal(r.code, 0, output);

  const line = r.scenario('backlog');
  assert.equal(line.smoke, true);

  assert.ok(line.stored >= line.backlog, `stored ${line.stored} < backlog ${line.backlog}`);
  assert.ok(line.ingest.steps.length >= 1);
  for (const step of line.ingest.steps) {
    for (const f of ['msgsPerSec', 'p50Ms', 'p99Ms', 'rssMaxMb']) positive(step[f], `step ${step.step} ${f}`);
    assert.ok(step.backlogAfter > step.backlogBefore);
    assert.ok(step.p99Ms >= step.p50Ms);
  }
  positive(line.ingest.baselineMsgsPerSec, 'ingest.baselineMsgsPerSec');
  positive(line.ingest.ratio, 'ingest.ratio');
  positive(line.peakRssMb, 'peakRssMb');
  assert.ok(line.peakRssMb < 4096, `peak RSS ${line.peakRssMb} MB`);

  const d = line.drain;
  assert.equal(d.delivered, line.stored);
  assert.equal(d.duplicates, 0);
  positive(d.deliveredPerSec, 'drain.deliveredPerSec');
  assert.ok(typeof d.firstDeliveryAfterUpSeconds === 'number' && d.firstDeliveryAfterUpSeconds >= 0, `firstDeliveryAfterUpSeconds ${d.firstDeliveryAfterUpSeconds}`);
  assert.deepEqual(Object.keys(line.attempts.byState), ['delivered']);
  assert.equal(line.attempts.byOutcome.delivered, line.stored);
  assert.match(r.stdout, /^backlog — /m);
});
