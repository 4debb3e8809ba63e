/**
 * The data folder turns read-only under the running hub (a read-only bind mount in a private
 * mount namespace: EROFS for every file opened from then on): what needs a fresh file is refused
 * with 503 and Retry-After, never 202; /readyz reports not ready; nothing acknowledged is lost;
 * writable again, the hub recovers by itself. The scenario is test/faults/scenarios/read-only.ts
 * (it says why the SQLite file, opened before, cannot be made read-only under the hub).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runScenario } from './namespace.ts';

test('read-only data folder: 503 + Retry-After for what needs a new file, not ready, nothing lost; recovers by itself', async (t) => {
  const result = await runScenario(t, 'read-only', { tmpfsMb: 24, timeoutMs: 90_000 });
  if (!result) return;
  t.diagnostic(JSON.stringify(result.figures));
  assert.ok(result.ok, result.error);
});
