// API keys are compared in constant time: what the hub compares is the SHA-256 digest of the
// presented key against stored digests, with crypto.timingSafeEqual on two 32-byte buffers. The
// comparison is watched by replacing timingSafeEqual on node:crypto (syncBuiltinESMExports makes
// the ESM bindings see the replacement), so a refactor to `===` fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { syncBuiltinESMExports } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Authenticator } from '../../src/auth/authenticator.ts';
import { generateKey, hashesEqual, hashKey } from '../../src/auth/keys.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';

/** Runs `fn` with timingSafeEqual recorded; answers the lengths of the buffers of each call. */
async function watchingTimingSafeEqual<T>(fn: () => Promise<T> | T): Promise<{ result: T; calls: Array<[number, number]> }> {
  const real = crypto.timingSafeEqual;
  const calls: Array<[number, number]> = [];
  crypto.timingSafeEqual = ((a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
    calls.push([a.byteLength, b.byteLength]);
    return real(a, b);
  }) as typeof crypto.timingSafeEqual;
  syncBuiltinESMExports();
  try {
    return { result: await fn(), calls };
  } finally {
    crypto.timingSafeEqual = real;
    syncBuiltinESMExports();
  }
}

test('hashesEqual compares two 32-byte digests with timingSafeEqual; unequal lengths are false without throwing', async () => {
  const a = hashKey('mh_aaaaaaaaaaaa_one');
  const b = hashKey('mh_aaaaaaaaaaaa_two');
  const { result, calls } = await watchingTimingSafeEqual(() => [hashesEqual(a, a), hashesEqual(a, b), hashesEqual(a, `${a.slice(0, -1)}${a.at(-1) === '0' ? '1' : '0'}`)]);
  assert.deepEqual(result, [true, false, false]);
  assert.deepEqual(calls, [[32, 32], [32, 32], [32, 32]], 'every comparison is timingSafeEqual on equal-length digests');
  assert.equal(hashesEqual(a, a.slice(0, 10)), false);
  assert.equal(hashesEqual(a, ''), false);
  assert.equal(hashesEqual(a, 'not hex at all'), false);
  // The digest is of the whole key: keys that differ only in their last character have unrelated digests.
  assert.equal(hashKey('mh_x_abc').length, 64);
  assert.notEqual(hashKey('mh_x_abc').slice(0, 8), hashKey('mh_x_abd').slice(0, 8));
});

test('the authenticator accepts a key only after a timingSafeEqual match of its digest (bootstrap admin key and stored keys alike)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meterhub-keys-'));
  const store = new SqliteStore(join(dir, 'meterhub.db'));
  t.after(async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); });
  const adminKey = 'bootstrap-admin-key-0123456789abcdef';
  const auth = new Authenticator(store, adminKey, 0);
  await store.upsertParticipant('MDP-A', 'A', null, Date.now());
  const made = generateKey();
  await store.insertKey({ id: made.id, hash: hashKey(made.key), role: 'participant', participant: 'MDP-A', createdAt: Date.now(), revokedAt: null });

  const admin = await watchingTimingSafeEqual(() => auth.authenticate(`Bearer ${adminKey}`));
  assert.equal(admin.result.kind, 'admin');
  assert.ok(admin.calls.length >= 1 && admin.calls.every(([x, y]) => x === 32 && y === 32), `bootstrap key: ${JSON.stringify(admin.calls)}`);

  const participant = await watchingTimingSafeEqual(() => auth.authenticate(`Bearer ${made.key}`));
  assert.deepEqual(participant.result, { kind: 'participant', participant: 'MDP-A', keyId: made.id });
  assert.ok(participant.calls.length >= 1 && participant.calls.every(([x, y]) => x === 32 && y === 32), `stored key: ${JSON.stringify(participant.calls)}`);

  // A near miss (last character changed) and a key of another length are refused.
  for (const wrong of [`${made.key.slice(0, -1)}${made.key.endsWith('A') ? 'B' : 'A'}`, `${adminKey}x`, adminKey.slice(0, -1)]) {
    await assert.rejects(auth.authenticate(`Bearer ${wrong}`), (e: any) => e.code === 'unauthorized');
  }
});

test('keys are random (192 bits) and stored only as a hash', () => {
  const keys = new Set(Array.from({ length: 1000 }, () => generateKey().key));
  assert.equal(keys.size, 1000);
  for (const k of [...keys].slice(0, 10)) {
    assert.match(k, /^mh_[0-9a-f]{12}_[A-Za-z0-9_-]{32}$/);
    assert.equal(hashKey(k), crypto.createHash('sha256').update(k).digest('hex'));
  }
});
