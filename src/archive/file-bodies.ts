import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, mkdirSync, promises as fsp, type ReadStream } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { HubError } from '../errors/hub-error.ts';

export interface StoredBody { key: string; size: number; sha256: string }

/**
 * Message bodies too large to keep in the database, one file each under `dir`, written
 * durably (data fsync'd, renamed into place, folder fsync'd) before the message is committed.
 */
export class FileBodies {
  private readonly tmpDir: string;

  constructor(private readonly dir: string) {
    this.tmpDir = join(dir, 'tmp');
    mkdirSync(this.tmpDir, { recursive: true });
  }

  /** Streams `source` to a new body file, hashing as it goes; rejects with 413 past `limit` bytes. */
  async putStream(source: Readable, limit: number, prefix?: Buffer): Promise<StoredBody> {
    const id = randomUUID();
    const tmp = join(this.tmpDir, id);
    const hash = createHash('sha256');
    const handle = await fsp.open(tmp, 'wx');
    let size = 0;
    try {
      if (prefix && prefix.length > 0) {
        hash.update(prefix);
        size += prefix.length;
        await handle.write(prefix);
      }
      for await (const chunk of source) {
        const buf = chunk as Buffer;
        size += buf.length;
        if (size > limit) throw new HubError('payload-too-large', `the body is over the limit of ${limit} bytes`);
        hash.update(buf);
        await handle.write(buf);
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
      await handle.write(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    return this.publish(tmp, id);
  }

  private async publish(tmp: string, id: string): Promise<string> {
    const key = `${id.slice(0, 2)}/${id}`;
    const folder = join(this.dir, id.slice(0, 2));
    await fsp.mkdir(folder, { recursive: true });
    await fsp.rename(tmp, join(this.dir, key));
    await syncDir(folder);
    return key;
  }

  open(key: string, start?: number): ReadStream {
    return createReadStream(this.pathOf(key), start === undefined ? {} : { start });
  }

  read(key: string): Promise<Buffer> {
    return fsp.readFile(this.pathOf(key));
  }

  async remove(key: string): Promise<void> {
    await fsp.rm(this.pathOf(key), { force: true });
  }

  private pathOf(key: string): string {
    if (!/^[0-9a-f]{2}\/[0-9a-f-]{36}$/.test(key)) throw new Error(`not a body key: ${key}`);
    return join(this.dir, key);
  }
}

async function syncDir(dir: string): Promise<void> {
  const h = await fsp.open(dir, 'r');
  try { await h.sync(); } finally { await h.close(); }
}
