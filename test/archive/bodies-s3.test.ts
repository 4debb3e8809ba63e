/**
 * S3Bodies against a real S3-compatible server (OpenStack Swift's s3api, from
 * scripts/ci/start-swift.sh; see test/support/swift.ts for the variables). Skipped with a message
 * unless METERHUB_TEST_S3_ENDPOINT is set or CI=true; in CI it fails when the server is not up.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GetObjectCommand, HeadObjectCommand, S3ServiceException } from '@aws-sdk/client-s3';
import { request } from 'undici';
import { BodyMissingError } from '../../src/archive/body-store.ts';
import { S3Bodies } from '../../src/archive/s3-bodies.ts';
import { toHubError } from '../../src/http/errors.ts';
import { StorageUnavailableError } from '../../src/store/storage-error.ts';
import {
  clearPrefix, ensureBucket, holdingsUnder, s3BodiesOptions, s3TestTarget, testS3Client, uniquePrefix, type S3TestTarget,
} from '../support/swift.ts';
import { MIB, bodyOf, bodyStream, runBodyStoreConformance, shaOf } from './bodies-conformance.ts';

const { target, skip } = s3TestTarget();
let bucketReady: Promise<void> | null = null;

/** A store of its own, under a fresh prefix, and a check client independent of it. */
async function openS3(t: S3TestTarget, what: string) {
  bucketReady ??= ensureBucket(t);
  await bucketReady;
  const prefix = uniquePrefix(what);
  const store = new S3Bodies(s3BodiesOptions(t, prefix));
  await store.init();
  const check = testS3Client(t);
  return {
    store, prefix, check,
    holdings: () => holdingsUnder(check, t.bucket, prefix),
    cleanup: async () => {
      try { await clearPrefix(check, t.bucket, prefix); } finally { check.destroy(); await store.close(); }
    },
  };
}

runBodyStoreConformance('S3Bodies (OpenStack Swift s3api)', () => openS3(target!, 'conf'), {
  skip,
  unitBytes: 5 * MIB,
  // Part size 5 MiB, one part in flight: two part buffers (the one sending, the one filling).
  maxGrowthBytes: 16 * MIB,
});

describe('S3Bodies (S3 only)', { skip }, () => {
  const withStore = (title: string, fn: (s: Awaited<ReturnType<typeof openS3>>) => Promise<void>) =>
    it(title, { timeout: 60_000 }, async () => {
      const s = await openS3(target!, 'only');
      try { await fn(s); } finally { await s.cleanup(); }
    });

  withStore('requests are really signed: the server refuses a wrong secret (403), an unknown key, and no signature at all', async (s) => {
    const t = target!;
    const key = await s.store.putBuffer(Buffer.from('signed body'));
    const wrong = new S3Bodies(s3BodiesOptions(t, s.prefix, { secretAccessKey: 'not-the-secret' }));
    const unknown = new S3Bodies(s3BodiesOptions(t, s.prefix, { accessKeyId: 'nobody:nobody', secretAccessKey: 'testing' }));
    try {
      const refused = (what: string, names: string[]) => (e: unknown) => {
        assert.ok(e instanceof StorageUnavailableError, `${what}: StorageUnavailableError, not ${String(e)}`);
        const cause = e.cause;
        assert.ok(cause instanceof S3ServiceException, `${what}: caused by the server's answer, not ${String(cause)}`);
        assert.equal(cause.$metadata.httpStatusCode, 403, what);
        assert.ok(names.includes(cause.name), `${what}: ${cause.name}`);
        return true;
      };
      await assert.rejects(wrong.putBuffer(Buffer.from('x')), refused('put with a wrong secret', ['SignatureDoesNotMatch']));
      await assert.rejects(wrong.putStream(bodyStream('wrong', 6 * MIB), 10 * MIB), refused('multipart put with a wrong secret', ['SignatureDoesNotMatch']));
      await assert.rejects(wrong.read(key), refused('read with a wrong secret', ['SignatureDoesNotMatch']));
      await assert.rejects(unknown.putBuffer(Buffer.from('x')), refused('put with an unknown access key', ['InvalidAccessKeyId', 'AccessDenied', 'SignatureDoesNotMatch']));
      await assert.rejects(wrong.init(), /cannot be used for message bodies/);
      // With no signature at all the object is not served either (Swift answers 400 or 401: not an
      // S3 request, and not a valid Swift one without a token).
      const anonymous = await request(`${t.endpoint}/${t.bucket}/${key}`);
      const text = await anonymous.body.text();
      assert.ok(anonymous.statusCode >= 400 && anonymous.statusCode < 500, `unsigned GET answered ${anonymous.statusCode}`);
      assert.ok(!text.includes('signed body'));
      // Only the one object put with the right secret is there.
      assert.deepEqual(await s.holdings(), [`object ${key} (11 bytes)`]);
    } finally {
      await wrong.close();
      await unknown.close();
    }
  });

  withStore('bodies are objects {prefix}xx/uuid in the bucket, readable with any S3 client', async (s) => {
    const t = target!;
    const small = bodyOf('visible-small', 1234);
    const key = await s.store.putBuffer(small);
    assert.match(key, new RegExp(`^${s.prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[0-9a-f]{2}/[0-9a-f-]{36}$`));
    assert.equal(key.slice(s.prefix.length, s.prefix.length + 2), key.slice(s.prefix.length + 3, s.prefix.length + 5));
    const got = await s.check.send(new GetObjectCommand({ Bucket: t.bucket, Key: key }));
    assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(small));
    // A multipart one (three parts) is one object of the whole size.
    const big = await s.store.putStream(bodyStream('visible-big', 12 * MIB + 7), 20 * MIB);
    const head = await s.check.send(new HeadObjectCommand({ Bucket: t.bucket, Key: big.key }));
    assert.equal(head.ContentLength, 12 * MIB + 7);
    assert.equal(big.sha256, shaOf('visible-big', 12 * MIB + 7));
  });

  withStore('a body put before the prefix was changed is still read (keys are whole object keys)', async (s) => {
    const key = await s.store.putBuffer(Buffer.from('before the change'));
    const renamed = new S3Bodies(s3BodiesOptions(target!, `${s.prefix}renamed/`));
    try {
      assert.equal((await renamed.read(key)).toString(), 'before the change');
      const newer = await renamed.putBuffer(Buffer.from('after'));
      assert.ok(newer.startsWith(`${s.prefix}renamed/`));
      assert.equal((await s.store.read(newer)).toString(), 'after');
    } finally {
      await renamed.close();
    }
  });

  it('a bucket that is not there: init says so, naming it', { timeout: 30_000 }, async () => {
    const t = target!;
    bucketReady ??= ensureBucket(t);
    await bucketReady;
    const store = new S3Bodies({ ...s3BodiesOptions(t, 'x/'), bucket: `meterhub-missing-${Date.now()}` });
    try {
      await assert.rejects(store.init(), /meterhub-missing-\d+.*cannot be used for message bodies/);
    } finally {
      await store.close();
    }
  });

  it('S3 not answering: puts and reads fail as storage unavailable (503 with Retry-After), never as a crash', { timeout: 30_000 }, async () => {
    const t = target!;
    const store = new S3Bodies({ ...s3BodiesOptions(t, 'down/'), endpoint: 'http://127.0.0.1:9', requestTimeoutMs: 2000 });
    try {
      for (const op of [
        () => store.putBuffer(Buffer.from('x')),
        () => store.putStream(bodyStream('down', 100), 1000),
        () => store.read('down/00/00000000-0000-0000-0000-000000000000'),
      ]) {
        await assert.rejects(op(), (e: unknown) => {
          assert.ok(e instanceof StorageUnavailableError, String(e));
          const answer = toHubError(e);
          assert.equal(answer.status, 503);
          assert.equal(answer.retryAfterSeconds, 5);
          assert.ok(!answer.message.includes('127.0.0.1'), 'the endpoint is not told to the client');
          return true;
        });
      }
      await assert.rejects(store.read('not/a/body/key'), BodyMissingError);
    } finally {
      await store.close();
    }
  });
});
