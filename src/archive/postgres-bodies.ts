import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import pg from 'pg';
import { HubError } from '../errors/hub-error.ts';
import { StorageUnavailableError } from '../store/storage-error.ts';
import { BodyMissingError, type BodyStore, type StoredBody } from './body-store.ts';

export interface PostgresBodiesOptions {
  /** postgres:// URL of the database that keeps the bodies. */
  url: string;
  /** Schema of the two tables (made if missing); null: the connection's search_path (public). */
  schema: string | null;
  /** Bytes per chunk row: a body is written and read a chunk at a time. */
  chunkBytes: number;
  /** Connections in the pool. A streamed put holds one from its first chunk to its COMMIT. */
  poolSize: number;
  /** Longest wait for a free connection before the put or read fails (503). */
  connectTimeoutMs: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** pg_advisory_xact_lock key for making the tables (several hubs may start at once). */
const SCHEMA_LOCK = 0x6d68_626f; // "mhbo"

/**
 * Message bodies in PostgreSQL: one row per body in `meterhub_body_objects` (size, SHA-256,
 * number of chunks) and its bytes in `meterhub_body_chunks`, `chunkBytes` per row. A put is one
 * transaction: chunks are inserted as the body streams in (one chunk in memory at a time), the
 * object row last, then COMMIT, which answers once the WAL is flushed (synchronous_commit on, the
 * default): then the body is durable. A put that fails or passes the limit rolls back, leaving
 * nothing. Reads fetch one chunk row at a time, so a 50 MB body is never whole in memory.
 */
export class PostgresBodies implements BodyStore {
  readonly kind = 'postgres';
  private readonly pool: pg.Pool;
  private readonly objects: string;
  private readonly chunks: string;

  constructor(private readonly opts: PostgresBodiesOptions) {
    if (!Number.isInteger(opts.chunkBytes) || opts.chunkBytes < 1024) throw new Error('PostgreSQL body chunks must be at least 1 KiB');
    this.pool = new pg.Pool({ connectionString: opts.url, max: opts.poolSize, connectionTimeoutMillis: opts.connectTimeoutMs });
    // An idle connection that breaks (server restart) must not crash the process; the next query reconnects.
    this.pool.on('error', () => {});
    const schema = opts.schema === null ? '' : `${ident(opts.schema)}.`;
    this.objects = `${schema}meterhub_body_objects`;
    this.chunks = `${schema}meterhub_body_chunks`;
  }

  private where(): string {
    return `the PostgreSQL body tables${this.opts.schema ? ` in schema ${this.opts.schema}` : ''}`;
  }

  /** Makes the tables if they are missing (under a lock: several hubs may start at once). */
  async init(): Promise<void> {
    const client = await this.pool.connect().catch((e) => {
      throw new Error(`PostgreSQL for message bodies is not reachable: ${describe(e)}`, { cause: e });
    });
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
      if (this.opts.schema !== null) await client.query(`CREATE SCHEMA IF NOT EXISTS ${ident(this.opts.schema)}`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${this.objects} (
        key        uuid PRIMARY KEY,
        size       bigint NOT NULL CHECK (size >= 0),
        sha256     text NOT NULL,
        chunks     integer NOT NULL CHECK (chunks >= 0),
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${this.chunks} (
        key  uuid NOT NULL,
        n    integer NOT NULL CHECK (n >= 0),
        data bytea NOT NULL,
        PRIMARY KEY (key, n)
      )`);
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      throw new Error(`cannot prepare ${this.where()}: ${describe(e)}`, { cause: e });
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  async putStream(source: Readable, limit: number): Promise<StoredBody> {
    const key = randomUUID();
    const hash = createHash('sha256');
    const chunkBytes = this.opts.chunkBytes;
    let size = 0;
    let n = 0;
    let current: Buffer = Buffer.allocUnsafe(Math.min(chunkBytes, 64 * 1024));
    let fill = 0;
    let storeFailure: unknown = null;
    let client: pg.PoolClient | null = null;
    const db = async <T>(op: (c: pg.PoolClient) => Promise<T>): Promise<T> => {
      try {
        client ??= await this.begin();
        return await op(client);
      } catch (e) {
        storeFailure ??= e;
        throw e;
      }
    };
    const flush = async (data: Buffer) => {
      const i = n++;
      await db((c) => c.query(`INSERT INTO ${this.chunks} (key, n, data) VALUES ($1, $2, $3)`, [key, i, data]));
    };
    try {
      for await (const chunk of source) {
        const buf = chunk as Buffer;
        size += buf.length;
        if (size > limit) throw new HubError('payload-too-large', `the body is over the limit of ${limit} bytes`);
        hash.update(buf);
        for (let off = 0; off < buf.length;) {
          if (fill === current.length && current.length < chunkBytes) {
            const bigger = Buffer.allocUnsafe(Math.min(chunkBytes, current.length * 2));
            current.copy(bigger, 0, 0, fill);
            current = bigger;
          } else if (fill === current.length) {
            await flush(current);
            current = Buffer.allocUnsafe(chunkBytes);
            fill = 0;
          }
          const m = Math.min(current.length - fill, buf.length - off);
          buf.copy(current, fill, off, off + m);
          fill += m;
          off += m;
        }
      }
      if (fill > 0) await flush(current.subarray(0, fill));
      const sha256 = hash.digest('hex');
      await db((c) => c.query(`INSERT INTO ${this.objects} (key, size, sha256, chunks) VALUES ($1, $2, $3, $4)`, [key, size, sha256, n]));
      await db((c) => c.query('COMMIT'));
      (client as pg.PoolClient | null)?.release();
      client = null;
      return { key, size, sha256 };
    } catch (e) {
      if (client) await this.rollback(client);
      if (storeFailure) throw this.unavailable('store', storeFailure);
      throw e;
    }
  }

  async putBuffer(data: Buffer): Promise<string> {
    return (await this.putStream(Readable.from([data]), data.length)).key;
  }

  private async begin(): Promise<pg.PoolClient> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
    } catch (e) {
      client.release(true);
      throw e;
    }
    return client;
  }

  private async rollback(client: pg.PoolClient): Promise<void> {
    try {
      await client.query('ROLLBACK');
      client.release();
    } catch {
      client.release(true); // a broken connection is dropped from the pool
    }
  }

  private async header(key: string): Promise<{ size: number; chunks: number }> {
    if (!UUID.test(key)) throw new BodyMissingError(key, `${this.where()} (not one of their keys)`);
    let rows;
    try {
      ({ rows } = await this.pool.query<{ size: string; chunks: number }>(`SELECT size, chunks FROM ${this.objects} WHERE key = $1`, [key]));
    } catch (e) {
      throw this.unavailable('read', e);
    }
    if (rows.length === 0) throw new BodyMissingError(key, this.where());
    return { size: Number(rows[0]!.size), chunks: rows[0]!.chunks };
  }

  private async chunk(key: string, n: number): Promise<Buffer> {
    let rows;
    try {
      ({ rows } = await this.pool.query<{ data: Buffer }>(`SELECT data FROM ${this.chunks} WHERE key = $1 AND n = $2`, [key, n]));
    } catch (e) {
      throw this.unavailable('read', e);
    }
    if (rows.length === 0) throw new BodyMissingError(key, `${this.where()} (chunk ${n} is gone: removed while read)`);
    return rows[0]!.data;
  }

  async open(key: string): Promise<Readable> {
    const { chunks } = await this.header(key);
    const self = this;
    return Readable.from((async function* () {
      for (let n = 0; n < chunks; n++) yield await self.chunk(key, n);
    })(), { objectMode: false, highWaterMark: 1 });
  }

  async read(key: string): Promise<Buffer> {
    const { size, chunks } = await this.header(key);
    const parts: Buffer[] = [];
    for (let n = 0; n < chunks; n++) parts.push(await this.chunk(key, n));
    return Buffer.concat(parts, size);
  }

  async remove(key: string): Promise<void> {
    if (!UUID.test(key)) throw new BodyMissingError(key, `${this.where()} (not one of their keys)`);
    let client: pg.PoolClient | null = null;
    try {
      client = await this.begin();
      await client.query(`DELETE FROM ${this.objects} WHERE key = $1`, [key]);
      await client.query(`DELETE FROM ${this.chunks} WHERE key = $1`, [key]);
      await client.query('COMMIT');
      client.release();
    } catch (e) {
      if (client) await this.rollback(client);
      throw this.unavailable('remove', e);
    }
  }

  /** Answered 503 with Retry-After (src/http/errors.ts); the detail goes to the log only. */
  private unavailable(what: 'store' | 'read' | 'remove', e: unknown): StorageUnavailableError {
    return new StorageUnavailableError(`cannot ${what} a message body in ${this.where()}: ${describe(e)}`, { cause: e });
  }
}

function ident(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name)) throw new Error(`not a plain PostgreSQL identifier: ${name}`);
  return `"${name}"`;
}

function describe(e: unknown): string {
  if (e instanceof Error) return `${(e as NodeJS.ErrnoException).code ?? e.name}: ${e.message}`;
  return String(e);
}
