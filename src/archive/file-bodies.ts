import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { HubError } from '../errors/hub-error.ts';
import { BodyMissingError, type BodyStore, type StoredBody } from './body-store.ts';

export type { StoredBody } from './body-store.ts';

/**
 * Message bodies too large to keep in the database, one file each under `dir`, written
 * durably (data fsync'd, renamed into place, folder fsync'd) before the message is committed.
 * Local to one machine: hubs sharing a PostgreSQL store on several machines need S3 or
 * PostgreSQL bodies instead.
 */
export class FileBodies implements BodyStore {
  readonly kind = 'files';
  private readonly tmpDir: string;

  constructor(private readonly dir: string) {
    this.tmpDir = join(dir, 'tmp');
    mkdirSync(this.tmpDir, { recursive: true });
  }

  async init(): Promise<void> { /* the folders are made by the constructor */ }
  async close(): Promise<void> { /* nothing held open */ }

  /** Streams `source` to a new body file, hashing as it goes; rejects with 413 past `limit` bytes. */
  async putStream(source: Readable, limit: number, prefix?: Buffer): Promise<StoredBody> {
    const id = randomUUID();
    const tmp = join(this.tmpDir, id);
    const hash = createHash('sha256');
    const handle = await fsp.open(tmp, 'wx');
    let size = 0;
    try {
      if (prefix && prefix.length > 0) {
        size += prefix.length;
        if (size > limit) throw tooLarge(limit);
        hash.update(prefix);
        await writeFully(handle, prefix);
      }
      for await (const chunk of source) {
        const buf = chunk as Buffer;
        size += buf.length;
        if (size > limit) throw tooLarge(limit);
        hash.update(buf);
        await writeFully(handle, buf);
      }
      await handle.sync();
    } catch (e) {
      await handle.close().catch(() => {});
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    await handle.close();
    const key = await this.publish(tmp, id);
    return { key, size, sha256: hash.digest('hex') };
  }

  async putBuffer(data: Buffer): Promise<string> {
    const id = randomUUID();
    const tmp = join(this.tmpDir, id);
    const handle = await fsp.open(tmp, 'wx');
    try {
      await writeFully(handle, data);
      await handle.sync();
    } catch (e) {
      await handle.close().catch(() => {});
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    await handle.close();
    return this.publish(tmp, id);
  }

  private async publish(tmp: string, id: string): Promise<string> {
    const key = `${id.slice(0, 2)}/${id}`;
    const folder = join(this.dir, id.slice(0, 2));
    try {
      await fsp.mkdir(folder, { recursive: true });
      await fsp.rename(tmp, join(this.dir, key));
      await syncDir(folder);
    } catch (e) {
      // Not published (a full or read-only disk): leave nothing behind taking space.
      await fsp.rm(tmp, { force: true }).catch(() => {});
      await fsp.rm(join(this.dir, key), { force: true }).catch(() => {});
      throw e;
    }
    return key;
  }


  /** Opens the file first, so that a missing body rejects here rather than as a stream error. */
  async open(key: string, start?: number): Promise<Readable> {
    const handle = await fsp.open(this.pathOf(key), 'r').catch((e) => { throw this.missing(e, key); });
    return handle.createReadStream(start === undefined ? {} : { start });
  }

  async read(key: string): Promise<Buffer> {
    return fsp.readFile(this.pathOf(key)).catch((e) => { throw this.missing(e, key); });
  }

  async remove(key: string): Promise<void> {
    await fsp.rm(this.pathOf(key), { force: true });
  }

  private missing(e: unknown, key: string): unknown {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? new BodyMissingError(key, `the body files under ${this.dir}`) : e;
  }

  private pathOf(key: string): string {
    if (!/^[0-9a-f]{2}\/[0-9a-f-]{36}$/.test(key)) throw new BodyMissingError(key, `the body files (not a file body key)`);
    return join(this.dir, key);
  }
}

function tooLarge(limit: number): HubError {
  return new HubError('payload-too-large', `the body is over the limit of ${limit} bytes`);
}

/**
 * FileHandle.write may write less than it was given (the disk filling up mid-write) and says so
 * only in bytesWritten: a body kept short would be acknowledged as whole. Writes every byte; the
 * write that finds no room left throws (ENOSPC).
 */
async function writeFully(handle: FileHandle, data: Buffer): Promise<void> {
  for (let offset = 0; offset < data.length;) {
    const { bytesWritten } = await handle.write(data, offset, data.length - offset);
    if (bytesWritten <= 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    offset += bytesWritten;
  }
}

async function syncDir(dir: string): Promise<void> {
  const h = await fsp.open(dir, 'r');
  try { await h.sync(); } finally { await h.close(); }
}
