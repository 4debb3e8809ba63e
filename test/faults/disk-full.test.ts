/**
 * The data folder fills up under the running hub (a real tmpfs in a private mount namespace,
 * filled to the last byte): ingest answers 503 with Retry-After, never 202 for what could not be
 * stored; /readyz reports not ready; nothing acknowledged is lost; once space returns (the filler
 * deleted) the hub recovers by itself, without a restart: 202 again, pending deliveries flow.
 * The scenario itself is test/faults/scenarios/disk-full.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runScenario } from './namespace.ts';

test('disk full: 503 + Retry-After, not ready, nothing acknowledged lost; recovers by itself once space returns', async (t) => {
  const result = await runScenario(t, 'disk-full', { tmpfsMb: 24, timeoutMs: 90_000 });
  if (!result) return;
  t.diagnostic(JSON.stringify(result.figures));
  assert.ok(result.ok, result.error);
});
