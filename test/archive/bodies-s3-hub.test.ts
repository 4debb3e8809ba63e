/**
 * End to end with S3 bodies: a hub whose storage.bodies is the S3 server (Swift's s3api, see
 * test/support/swift.ts), with a small inline threshold. A binary-mode body above it is accepted,
 * is an object in the bucket (read back with an S3 client of the test's own), is pushed
 * byte-identical (and correctly signed) to a loopback receiver, and GET /v1/messages/{seq}/data
 * answers it. Skipped with a message unless METERHUB_TEST_S3_ENDPOINT is set or CI=true.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { request } from 'undici';
import { eventually, startTestHub } from '../support/hub.ts';
import { startReceiver } from '../support/receiver.ts';
import { clearPrefix, ensureBucket, holdingsUnder, s3TestTarget, testS3Client, uniquePrefix } from '../support/swift.ts';
import { MIB, bodyOf } from './bodies-conformance.ts';

const { target, skip } = s3TestTarget();

function verifySignature(secret: string, headers: Record<string, string | string[] | undefined>, body: Buffer): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = `v1,${createHmac('sha256', key).update(`${headers['webhook-id']}.${headers['webhook-timestamp']}.`).update(body).digest('base64')}`;
  return String(headers['webhook-signature']).split(' ').includes(expected);
}

describe('a hub with S3 bodies', { skip }, () => {
  it('archives a large binary-mode body in S3, pushes it byte for byte, and serves it from /data', { timeout: 120_000 }, async (t) => {
    const s3 = target!;
    await ensureBucket(s3);
    const prefix = uniquePrefix('hub');
    const check = testS3Client(s3);
    const receiver = await startReceiver();
    const hub = await startTestHub({
      storage: {
        inlineBodyMaxBytes: 1024,
        bodies: {
          kind: 's3',
          s3: {
            endpoint: s3.endpoint, region: s3.region, bucket: s3.bucket, accessKeyId: s3.accessKeyId,
            secretAccessKey: s3.secretAccessKey, forcePathStyle: true, prefix, partSizeBytes: 5 * MIB, queueSize: 2,
          },
        },
      },
    });
    t.after(async () => {
      await hub.close();
      await receiver.close();
      await clearPrefix(check, s3.bucket, prefix).finally(() => check.destroy());
    });
    assert.equal(hub.hub.archive.bodies.kind, 's3');
    const sender = await hub.participant('MDP-A');
    const retailer = await hub.participant('RETAILER-A', { mode: 'push', url: receiver.url });
    await hub.routes([{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }]);

    // 12 MiB and 7 bytes: three parts of a multipart upload. Binary bytes, not text.
    const size = 12 * MIB + 7;
    const data = bodyOf('hub-e2e', size);
    const sha256 = createHash('sha256').update(data).digest('hex');
    const headers = {
      authorization: `Bearer ${sender.key}`, 'content-type': 'application/octet-stream',
      'ce-specversion': '1.0', 'ce-id': 'big-1', 'ce-source': 'MDP-A', 'ce-type': 'test.blob', 'ce-subject': 'NMI1',
    };
    // Sent chunked (no Content-Length), so the hub streams it to S3 as it comes.
    const chunks = Readable.from((function* () { for (let off = 0; off < size; off += 256 * 1024) yield data.subarray(off, Math.min(size, off + 256 * 1024)); })());
    const res = await request(`${hub.url}/v1/messages`, { method: 'POST', headers, body: chunks });
    const receipt = await res.body.json() as { sequence: number };
    assert.equal(res.statusCode, 202, JSON.stringify(receipt));
    const seq = receipt.sequence;

    // Archived in S3: the message names an object under the prefix, holding exactly the bytes.
    const message = await hub.hub.store.getMessage(seq);
    assert.ok(message && message.body.kind === 'file', 'the body is in the body store, not inline');
    assert.equal(message.size, size);
    assert.equal(message.sha256, sha256);
    const objectKey = message.body.key;
    assert.ok(objectKey.startsWith(prefix), objectKey);
    assert.deepEqual(await holdingsUnder(check, s3.bucket, prefix), [`object ${objectKey} (${size} bytes)`]);
    const head = await check.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: objectKey }));
    assert.equal(head.ContentLength, size);
    const object = await check.send(new GetObjectCommand({ Bucket: s3.bucket, Key: objectKey }));
    assert.ok(Buffer.from(await object.Body!.transformToByteArray()).equals(data), 'the S3 object is the body, byte for byte');

    // Pushed byte for byte, signed over those bytes.
    await eventually(() => receiver.requests.length >= 1, 30_000, 'the push');
    const pushed = receiver.requests[0]!;
    assert.equal(pushed.body.length, size);
    assert.ok(pushed.body.equals(data), 'the pushed body is the body, byte for byte');
    assert.equal(pushed.headers['ce-sequence'], String(seq));
    assert.equal(pushed.headers['content-type'], 'application/octet-stream');
    assert.ok(verifySignature(retailer.secret!, pushed.headers, pushed.body), 'webhook-signature is over the exact bytes');
    await eventually(async () => {
      const s = await hub.api('GET', `/v1/messages/${seq}`, { key: sender.key });
      return s.json.deliveries[0].state === 'delivered';
    }, 10_000, 'delivered');

    // GET /v1/messages/{seq}/data: the exact bytes, with their content type and digest.
    const got = await request(`${hub.url}/v1/messages/${seq}/data`, { headers: { authorization: `Bearer ${sender.key}` } });
    const body = Buffer.from(await got.body.arrayBuffer());
    assert.equal(got.statusCode, 200);
    assert.equal(got.headers['content-type'], 'application/octet-stream');
    assert.equal(got.headers['content-length'], String(size));
    assert.equal(got.headers.digest, `sha-256=${Buffer.from(sha256, 'hex').toString('base64')}`);
    assert.ok(body.equals(data), '/data answers the body, byte for byte');

    // A small body stays inline: nothing more in the bucket.
    const small = await hub.api('POST', '/v1/messages', { key: '', body: Buffer.from('tiny'), headers: { ...headers, 'ce-id': 'small-1' } });
    assert.equal(small.status, 202, small.text);
    assert.equal((await hub.hub.store.getMessage(small.json.sequence))!.body.kind, 'inline');
    assert.equal((await holdingsUnder(check, s3.bucket, prefix)).length, 1);
  });

  it('a hub whose S3 credentials are wrong does not start, and says why', { timeout: 60_000 }, async () => {
    const s3 = target!;
    await ensureBucket(s3);
    await assert.rejects(startTestHub({
      storage: {
        bodies: {
          kind: 's3',
          s3: { endpoint: s3.endpoint, region: s3.region, bucket: s3.bucket, accessKeyId: s3.accessKeyId, secretAccessKey: 'wrong', forcePathStyle: true },
        },
      },
    }), /S3 bucket 'meterhub-test'.*cannot be used for message bodies.*403/);
  });
});
