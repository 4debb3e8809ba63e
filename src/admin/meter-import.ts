import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { HubError } from '../errors/hub-error.ts';
import type { Store } from '../store/store.ts';
import { chunksOf, meterRows } from './meter-csv.ts';

/**
 * Rows per store write. On SQLite each chunk is one transaction of the group commit, and the
 * event loop is held while it runs (a few ms per 1,000 rows), so chunks stay small for ingest
 * to go between them; on PostgreSQL they are statements of one transaction, and larger chunks
 * save round trips. The spool is read back in 64 KiB pieces for the same reason (each piece is
 * parsed in one go: about 1,300 rows).
 */
const CHUNK_ROWS = { sqlite: 2_000, postgres: 10_000 } as const;

/** A registry CSV whose every row was checked, spooled to a file, waiting to be applied. */
export interface CheckedImport {
  /** Data rows in the file (blank lines not counted). */
  readonly rows: number;
  /** Upserts the rows (store.importMeters), then deletes the spool; `onChunk` gets the rows applied so far. */
  apply(onChunk?: (applied: number) => void): Promise<number>;
  /** Deletes the spool without applying it. */
  discard(): Promise<void>;
}

/**
 * Reads the whole CSV, checking every row and copying the bytes to a spool file in `spoolDir`,
 * before anything is written to the registry: a bad row anywhere (line 4,000,000 as well as
 * line 2) refuses the import with its line number and leaves the registry as it was. Memory
 * stays bounded: one chunk of the upload at a time. `onRows` gets the rows checked so far.
 */
export async function checkMeterCsv(store: Store, upload: AsyncIterable<Buffer>, spoolDir: string, onRows?: (rows: number) => void): Promise<CheckedImport> {
  await mkdir(spoolDir, { recursive: true });
  const file = join(spoolDir, `meters-${process.pid}-${randomBytes(6).toString('hex')}.csv`);
  const spool = await open(file, 'wx', 0o600);
  let rows = 0;
  try {
    // Not destroyed when a bad row ends the reading early: the request's socket must stay up for the answer.
    const chunks = upload instanceof Readable ? upload.iterator({ destroyOnReturn: false }) : upload;
    async function* spooled(): AsyncGenerator<Buffer> {
      for await (const chunk of chunks) {
        await spool.write(chunk);
        yield chunk;
      }
    }
    for await (const batch of meterRows(spooled())) {
      rows += batch.length;
      onRows?.(rows);
    }
    await spool.close();
  } catch (error) {
    await spool.close().catch(() => {});
    await rm(file, { force: true });
    if (error instanceof HubError && error.code === 'invalid-csv') {
      throw new HubError('invalid-csv', `${error.message} (nothing was imported: fix the row and send the file again)`, { extra: { ...error.extra, imported: 0 } });
    }
    throw error;
  }
  const discard = () => rm(file, { force: true });
  return {
    rows,
    async apply(onChunk) {
      try {
        const batches = meterRows(createReadStream(file, { highWaterMark: 64 * 1024 }));
        return await store.importMeters(chunksOf(batches, CHUNK_ROWS[store.kind]), onChunk);
      } finally {
        await discard();
      }
    },
    discard,
  };
}
