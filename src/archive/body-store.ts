import type { Readable } from 'node:stream';

export interface StoredBody { key: string; size: number; sha256: string }

/**
 * Where message bodies too large to keep inline in the database are kept: files under the data
 * folder (FileBodies), an S3-compatible bucket (S3Bodies) or a PostgreSQL table (PostgresBodies).
 * A message whose `body` is `{kind: 'file', key}` has its bytes in the hub's body store under
 * `key` (the 'file' kind predates the other stores; it means "in the body store").
 *
 * Every put resolves only once the bytes are durable (files: fsync'd and renamed into place;
 * S3: the PUT or CompleteMultipartUpload answered 200; PostgreSQL: the transaction committed),
 * since the message that names the key is committed right after. A put that fails leaves nothing
 * behind. Keys are made by the store and are opaque to the rest of the hub.
 *
 * Switching a hub from one kind to another does not move existing bodies: messages accepted
 * before keep keys of the old store.
 */
export interface BodyStore {
  readonly kind: 'files' | 's3' | 'postgres';
  /**
   * Streams `source` into a new body, hashing and counting as it goes. Past `limit` bytes it
   * rejects with a 413 HubError (`payload-too-large`) and keeps nothing. Memory stays bounded
   * (a part or chunk at a time), whatever the body's size.
   */
  putStream(source: Readable, limit: number): Promise<StoredBody>;
  /** A body already in memory; resolves with its key once durable. */
  putBuffer(data: Buffer): Promise<string>;
  /** The body's bytes as a stream; rejects with BodyMissingError when there is no such body. */
  open(key: string): Promise<Readable>;
  /** The body's bytes in memory; rejects with BodyMissingError when there is no such body. */
  read(key: string): Promise<Buffer>;
  /** Removes the body; removing one that is not there is not an error. */
  remove(key: string): Promise<void>;
  /** Checks the store can be used (and prepares it: PostgreSQL's tables); called once at start. */
  init(): Promise<void>;
  close(): Promise<void>;
}

/** A read of a body that is not in the store (never written, removed, or a key of another store). */
export class BodyMissingError extends Error {
  readonly code = 'EBODYMISSING';
  constructor(readonly key: string, where: string) {
    super(`body '${key.slice(0, 200)}' is not in ${where}`);
    this.name = 'BodyMissingError';
  }
}
