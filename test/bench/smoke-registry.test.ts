import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runBench } from './run-bench.ts';


/**
 * The registry benchmark in smoke mode (20,000 rows): it must run through the real CLI and hub,
 * and print sane figures with no problems. Its PostgreSQL part runs when the server answers.
 */
test('bench/run.ts --smoke registry imports through the CLI and times the routing lookups', { timeout: 150_000 }, async () => {
  const r = await runBench(['--smoke', 'registry'], 140_000);
  const { output, positive } = r;
  assert.equal(r.code, 0, output);
  const json = r.scenario('registry');
  assert.equal(json.smoke, true);
  assert.equal(json.rows, 20_000);
  const imp = json.sqlite.import;
  for (const f of ['rowsPerSec', 'seconds', 'fileMiB', 'hubPeakRssMiB']) positive(imp[f], `sqlite.import.${f}`);
  assert.equal(imp.rows, 20_000);
  assert.ok(imp.hubPeakRssMiB >= imp.hubRssBeforeMiB);
  assert.equal(json.sqlite.probe.duringImport.ok, json.sqlite.probe.duringImport.sent);
  for (const side of ['ingestBaseline', 'ingestBig']) for (const f of ['msgsPerSec', 'p50Ms', 'accepted']) positive(json.lookup[side][f], `lookup.${side}.${f}`);
  for (const side of ['directBaseline', 'directBig']) positive(json.lookup[side].usPerLookup, `lookup.${side}.usPerLookup`);
  if (json.postgres) {
    positive(json.postgres.import.rowsPerSec, 'postgres.import.rowsPerSec');
    positive(json.postgres.lookupBig.usPerLookup, 'postgres.lookupBig.usPerLookup');
  }
  assert.match(r.stdout, /^registry — /m);
});
