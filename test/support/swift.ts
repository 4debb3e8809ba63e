/**
 * The S3-compatible server the S3 body store tests run against: OpenStack Swift with its S3 API,
 * started by `bash scripts/ci/start-swift.sh` (http://127.0.0.1:18090, access key `test:tester`,
 * secret `testing`). Any other S3 server works too: set the variables below.
 *
 *   METERHUB_TEST_S3_ENDPOINT            e.g. http://127.0.0.1:18090 (unset and not CI: the S3 tests are skipped)
 *   METERHUB_TEST_S3_REGION              default us-east-1
 *   METERHUB_TEST_S3_BUCKET              default meterhub-test (made if missing)
 *   METERHUB_TEST_S3_ACCESS_KEY_ID       default test:tester
 *   METERHUB_TEST_S3_SECRET_ACCESS_KEY   default testing
 *
 * With CI=true the tests always run (endpoint default http://127.0.0.1:18090) and fail when the
 * server does not answer: a CI run must not pass by skipping them.
 */
import { randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand, CreateBucketCommand, DeleteObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command,
  S3Client, S3ServiceException,
} from '@aws-sdk/client-s3';
import type { S3BodiesOptions } from '../../src/archive/s3-bodies.ts';

export const SWIFT_DEFAULT_ENDPOINT = 'http://127.0.0.1:18090';

export interface S3TestTarget {
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** The S3 server to test against, or why the S3 tests are skipped. */
export function s3TestTarget(env: NodeJS.ProcessEnv = process.env): { target: S3TestTarget; skip: false } | { target: null; skip: string } {
  const ci = env.CI === 'true' || env.CI === '1';
  const endpoint = env.METERHUB_TEST_S3_ENDPOINT || (ci ? SWIFT_DEFAULT_ENDPOINT : '');
  if (!endpoint) {
    return {
      target: null,
      skip: 'S3 body store tests skipped: set METERHUB_TEST_S3_ENDPOINT (run `bash scripts/ci/start-swift.sh`, then METERHUB_TEST_S3_ENDPOINT=http://127.0.0.1:18090), or CI=true',
    };
  }
  return {
    skip: false,
    target: {
      endpoint,
      region: env.METERHUB_TEST_S3_REGION || 'us-east-1',
      bucket: env.METERHUB_TEST_S3_BUCKET || 'meterhub-test',
      accessKeyId: env.METERHUB_TEST_S3_ACCESS_KEY_ID || 'test:tester',
      secretAccessKey: env.METERHUB_TEST_S3_SECRET_ACCESS_KEY || 'testing',
    },
  };
}

/** A client of its own for the tests' checks (what is really in the bucket), independent of S3Bodies. */
export function testS3Client(t: S3TestTarget, secretAccessKey = t.secretAccessKey): S3Client {
  return new S3Client({
    endpoint: t.endpoint, region: t.region, forcePathStyle: true,
    credentials: { accessKeyId: t.accessKeyId, secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
  });
}

/** S3Bodies options for `t`, under a prefix of their own. */
export function s3BodiesOptions(t: S3TestTarget, prefix: string, overrides: Partial<S3BodiesOptions> = {}): S3BodiesOptions {
  return {
    endpoint: t.endpoint, region: t.region, bucket: t.bucket, accessKeyId: t.accessKeyId, secretAccessKey: t.secretAccessKey,
    forcePathStyle: true, prefix, partSizeBytes: 5 * 1024 * 1024, queueSize: 1, requestTimeoutMs: 30_000, ...overrides,
  };
}

/** Makes the bucket if missing; fails with a clear message when the server does not answer. */
export async function ensureBucket(t: S3TestTarget): Promise<void> {
  const client = testS3Client(t);
  try {
    await client.send(new CreateBucketCommand({ Bucket: t.bucket }));
  } catch (e) {
    if (e instanceof S3ServiceException && (e.name === 'BucketAlreadyOwnedByYou' || e.name === 'BucketAlreadyExists')) return;
    const cause = e instanceof Error ? `${(e as NodeJS.ErrnoException).code ?? e.name}: ${e.message}` : String(e);
    throw new Error(`the S3 server at ${t.endpoint} (bucket ${t.bucket}) is not usable: ${cause}. Start it with \`bash scripts/ci/start-swift.sh\``, { cause: e });
  } finally {
    client.destroy();
  }
}

export function uniquePrefix(what: string): string {
  return `test-${what}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}/`;
}

/** Everything in the bucket under `prefix`: objects, and multipart uploads not completed nor aborted. */
export async function holdingsUnder(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) out.push(`object ${o.Key} (${o.Size} bytes)`);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  for (const u of uploads.Uploads ?? []) out.push(`multipart upload ${u.Key} (${u.UploadId})`);
  return out.sort();
}

/** Removes everything under `prefix` (objects and unfinished uploads). */
export async function clearPrefix(client: S3Client, bucket: string, prefix: string): Promise<void> {
  const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  for (const u of uploads.Uploads ?? []) await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
  // One by one: DeleteObjects needs a Content-MD5 that not every S3-compatible server takes in another form.
  for (;;) {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    const keys = (page.Contents ?? []).map((o) => o.Key!);
    if (keys.length === 0) break;
    for (const Key of keys) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key }));
  }
}
