import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runBench } from './run-bench.ts';


/**
 * The large-payload benchmark in smoke mode (a 2 MiB binary body and a 1 MiB JSON body): it must
 * run, deliver both bodies byte for byte (SHA-256 equal at the receiver) through the hub and the
 * floor, and print sane figures. No timing or memory targets here.
 */
test('bench/run.ts --smoke large delivers both bodies exactly through the hub and the floor, with sane figures', { timeout: 60_000 }, async () => {
  const r = await runBench(['--smoke', 'large'], 55_000);
  const { output, positive } = r;
  assert.equal(r.code, 0, output);
  assert.equal(r.json.length, 1, output);
  const large = r.scenario('large');
  assert.equal(large.smoke, true);
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
