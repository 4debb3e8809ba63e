import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, DeleteObjectCommand,
  GetObjectCommand, HeadBucketCommand, PutObjectCommand, S3Client, S3ServiceException, UploadPartCommand,
  type CompletedPart, type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { HubError } from '../errors/hub-error.ts';
import { StorageUnavailableError } from '../store/storage-error.ts';
import { BodyMissingError, type BodyStore, type StoredBody } from './body-store.ts';

export interface S3BodiesOptions {
  /** e.g. http://127.0.0.1:18090; null: AWS's own endpoint for `region`. */
  endpoint: string | null;
  region: string;
  bucket: string;
  /** Both null: the SDK's default credential chain (AWS_* environment, profile, instance or task role). */
  accessKeyId: string | null;
  secretAccessKey: string | null;
  /** Path-style URLs (http://host/bucket/key), which most S3-compatible servers need. */
  forcePathStyle: boolean;
  /** Prepended to every object key (e.g. `bodies/`). */
  prefix: string;
  /** Bodies larger than one part go up as a multipart upload of parts this size (S3's minimum is 5 MiB). */
  partSizeBytes: number;
  /** Parts uploaded at once; memory per streamed body is about (queueSize + 1) × partSizeBytes. */
  queueSize: number;
  /** One S3 request, all of it (connect, send, answer). */
  requestTimeoutMs: number;
}

const KEY_TAIL = /(^|\/)[0-9a-f]{2}\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Message bodies in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, OpenStack Swift's s3api),
 * one object each, under `{prefix}{2 hex}/{uuid}`. Small bodies are one PutObject; a streamed body
 * larger than a part goes up as a multipart upload, a part at a time, so memory stays bounded.
 * A put resolves only once S3 answered 200 to the PutObject or the CompleteMultipartUpload: from
 * then on the object is durable by S3's own guarantee. A put that fails or passes the limit
 * aborts its multipart upload, so nothing is left behind (an abort that itself fails leaves the
 * parts to the bucket's AbortIncompleteMultipartUpload lifecycle rule).
 */
export class S3Bodies implements BodyStore {
  readonly kind = 's3';
  readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(private readonly opts: S3BodiesOptions) {
    if (opts.partSizeBytes < 5 * 1024 * 1024) throw new Error('S3 part size must be at least 5 MiB');
    if ((opts.accessKeyId === null) !== (opts.secretAccessKey === null)) {
      throw new Error('S3 accessKeyId and secretAccessKey are given together, or neither (for the default credential chain)');
    }
    const config: S3ClientConfig = {
      region: opts.region,
      forcePathStyle: opts.forcePathStyle,
      // Checksums only where S3 requires them: S3-compatible servers often do not know the newer
      // x-amz-checksum-* headers and trailers. Each part is signed (SigV4) with its SHA-256.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { requestTimeout: opts.requestTimeoutMs, connectionTimeout: Math.min(opts.requestTimeoutMs, 10_000) },
    };
    if (opts.endpoint) config.endpoint = opts.endpoint;
    if (opts.accessKeyId !== null && opts.secretAccessKey !== null) {
      config.credentials = { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey };
    }
    this.client = new S3Client(config);
    this.bucket = opts.bucket;
    this.prefix = opts.prefix;
  }

  private where(): string {
    return `S3 bucket '${this.bucket}'${this.opts.endpoint ? ` at ${this.opts.endpoint}` : ''}`;
  }

  /** Checks that the bucket is there and these credentials may use it. */
  async init(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (e) {
      throw new Error(`the ${this.where()} cannot be used for message bodies: ${describe(e)}`, { cause: e });
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private newKey(): string {
    const id = randomUUID();
    return `${this.prefix}${id.slice(0, 2)}/${id}`;
  }

  /**
   * Streams the body into the bucket a part at a time. A part is sent only once a byte past it
   * arrives, so a body of up to one part is a single PutObject and the last part is never empty;
   * larger ones are a multipart upload with up to `queueSize` parts in flight while the next one
   * fills. Memory per body: (queueSize + 1) × partSizeBytes at most, whatever the body's size
   * (the part buffers are reused once their UploadPart answered).
   * (lib-storage's Upload was measured holding three to five part sizes at once, copying each part
   * out of the chunks it gathered, so the parts are cut and sent here instead.)
   */
  async putStream(source: Readable, limit: number): Promise<StoredBody> {
    const key = this.newKey();
    const partSize = this.opts.partSizeBytes;
    const hash = createHash('sha256');
    let size = 0;
    // The first part grows from 64 KiB as bytes come (most bodies are far smaller than a part).
    let current: Buffer = Buffer.allocUnsafe(Math.min(partSize, 64 * 1024));
    let fill = 0;
    let uploadId: string | undefined;
    const parts: CompletedPart[] = [];
    const inFlight: Array<Promise<void>> = [];
    // Part buffers whose UploadPart has answered, to be filled again: the SDK keeps a reference to
    // a request's body for a while after it answered, so fresh buffers would pile up.
    const spare: Buffer[] = [];
    // The first failure of S3 itself, told apart from the body's (the client's stream, or the limit).
    let storeFailure: unknown = null;
    const store = async <T>(op: () => Promise<T>): Promise<T> => {
      try { return await op(); } catch (e) { storeFailure ??= e; throw e; }
    };
    const sendPart = async (data: Buffer): Promise<void> => {
      if (uploadId === undefined) {
        const created = await store(() => this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, ContentType: 'application/octet-stream' })));
        if (!created.UploadId) throw (storeFailure = new Error('CreateMultipartUpload answered no UploadId'));
        uploadId = created.UploadId;
      }
      const PartNumber = parts.length + 1;
      parts.push({ PartNumber });
      const id = uploadId;
      // Never rejects (a rejection waiting in the queue would be unhandled): failures are kept in storeFailure.
      inFlight.push(store(() => this.client.send(new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: id, PartNumber, Body: data, ContentLength: data.length })))
        .then((r) => {
          if (!r.ETag) throw (storeFailure ??= new Error(`UploadPart ${PartNumber} answered no ETag`));
          parts[PartNumber - 1]!.ETag = r.ETag;
        })
        .catch(() => {})
        .finally(() => { if (data.length === partSize) spare.push(data); }));
      while (inFlight.length >= this.opts.queueSize) await inFlight.shift();
      if (storeFailure) throw storeFailure;
    };
    try {
      for await (const chunk of source) {
        const buf = chunk as Buffer;
        size += buf.length;
        if (size > limit) throw new HubError('payload-too-large', `the body is over the limit of ${limit} bytes`);
        hash.update(buf);
        for (let off = 0; off < buf.length;) {
          if (fill === current.length && current.length < partSize) {
            const bigger = Buffer.allocUnsafe(Math.min(partSize, current.length * 2));
            current.copy(bigger, 0, 0, fill);
            current = bigger;
          } else if (fill === current.length) {
            // The part is full and more bytes came: it is not the last part, send it.
            await sendPart(current);
            current = spare.pop() ?? Buffer.allocUnsafe(partSize);
            fill = 0;
          }
          const n = Math.min(current.length - fill, buf.length - off);
          buf.copy(current, fill, off, off + n);
          fill += n;
          off += n;
        }
      }
      const last = current.subarray(0, fill);
      if (uploadId === undefined) {
        await store(() => this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: last, ContentLength: last.length, ContentType: 'application/octet-stream' })));
      } else {
        await sendPart(last);
        await Promise.all(inFlight.splice(0));
        if (storeFailure) throw storeFailure;
        const id = uploadId;
        // The SDK turns a 200 whose body is an error (S3 may answer CompleteMultipartUpload so) into an error.
        await store(() => this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: id, MultipartUpload: { Parts: parts } })));
      }
    } catch (e) {
      await Promise.all(inFlight.splice(0));
      if (uploadId !== undefined) {
        const id = uploadId;
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: id })).catch(() => {
          /* left to the bucket's AbortIncompleteMultipartUpload lifecycle rule */
        });
      }
      if (storeFailure) throw this.unavailable('store', storeFailure);
      throw e;
    }
    return { key, size, sha256: hash.digest('hex') };
  }

  async putBuffer(data: Buffer): Promise<string> {
    const key = this.newKey();
    try {
      await this.client.send(new PutObjectCommand({
        Bucket: this.bucket, Key: key, Body: data, ContentLength: data.length, ContentType: 'application/octet-stream',
      }));
    } catch (e) {
      throw this.unavailable('store', e);
    }
    return key;
  }

  async open(key: string): Promise<Readable> {
    this.check(key);
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      const body = res.Body;
      if (!(body instanceof Readable)) throw new Error('the S3 answer has no body stream');
      return body;
    } catch (e) {
      if (isNotFound(e)) throw new BodyMissingError(key, this.where());
      throw this.unavailable('read', e);
    }
  }

  async read(key: string): Promise<Buffer> {
    const stream = await this.open(key);
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of stream) chunks.push(chunk as Buffer);
    } catch (e) {
      throw this.unavailable('read', e);
    }
    return Buffer.concat(chunks);
  }

  async remove(key: string): Promise<void> {
    this.check(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (e) {
      if (isNotFound(e)) return;
      throw this.unavailable('remove', e);
    }
  }

  /** Keys are whole object keys, so that a body put under an earlier `prefix` is still found. */
  private check(key: string): void {
    if (!KEY_TAIL.test(key) || key.startsWith('/') || key.split('/').includes('..')) throw new BodyMissingError(key, `${this.where()} (not one of its keys)`);
  }

  /** Answered 503 with Retry-After (src/http/errors.ts); the detail, with the endpoint, goes to the log only. */
  private unavailable(what: 'store' | 'read' | 'remove', e: unknown): StorageUnavailableError {
    return new StorageUnavailableError(`cannot ${what} a message body in the ${this.where()}: ${describe(e)}`, { cause: e });
  }
}

function isNotFound(e: unknown): boolean {
  if (!(e instanceof S3ServiceException)) return false;
  if (e.name === 'NoSuchBucket') return false;
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

function describe(e: unknown): string {
  if (e instanceof S3ServiceException) return `${e.name} (HTTP ${e.$metadata?.httpStatusCode ?? '?'})${e.message && e.message !== e.name ? `: ${e.message}` : ''}`;
  if (e instanceof Error) return `${(e as NodeJS.ErrnoException).code ?? e.name}: ${e.message}`;
  return String(e);
}
