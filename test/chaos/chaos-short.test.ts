/**
 * The crash-consistency harness (test/chaos/harness.ts), short: 3 SIGKILLs of the hub under mixed
 * load (ingest in the three modes, push to healthy, flaky and slow receivers, a pull receiver,
 * DLQ redrives), then a final drain and the checks. `npm run chaos` runs 20.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { passed, runChaos, summaryLine } from './harness.ts';

test('3 kills -9 under mixed load: nothing acknowledged lost or changed, every delivery ends, duplicates only from in-flight deliveries', async (t) => {
  const report = await runChaos({ kills: 3, lifeMs: [1_000, 2_200], log: (l) => t.diagnostic(l) });
  t.diagnostic(summaryLine(report));
  t.diagnostic(JSON.stringify(report));
  assert.equal(report.killsSurvived, 3, 'the hub started again after every kill');
  assert.ok(report.messagesAcknowledged > 50, `load ran (${report.messagesAcknowledged} acknowledged)`);
  assert.deepEqual(report.violations, []);
  assert.ok(passed(report), summaryLine(report));
});
