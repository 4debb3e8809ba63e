import pg from 'pg';

/** How the PostgreSQL store connects. Every field but `url` has a default. */
export interface PostgresOptions {
  /** postgres:// or postgresql:// URL. Query parameters `schema` and `pool_size` are read here (and removed before connecting). */
  url: string;
  /** The schema holding the hub's tables (created when missing); default: the URL's `schema`, else the server's search_path (usually public). */
  schema?: string;
  /** Connections in the pool (one carries the group commit, the others reads); default: the URL's `pool_size`, else 10. */
  poolSize?: number;
  /** How long to wait for a connection before a write fails with StorageUnavailableError (default 5 s). */
  connectTimeoutMs?: number;
  /**
   * How long a statement waits for a lock another session holds (default 10 s). Past it the write
   * fails with StorageUnavailableError (503) rather than hanging: e.g. another hub stopped
   * (SIGSTOP) while holding the sequence row.
   */
  lockTimeoutMs?: number;
  /** The server ends a session left idle inside a transaction this long (a hung hub), releasing its locks (default 60 s). */
  idleInTransactionTimeoutMs?: number;
  /** Shown in pg_stat_activity (default `meterhub`). */
  applicationName?: string;
  /** Extra server settings for every pooled session (not the migrating one), e.g. `{ default_transaction_read_only: 'on' }` (tests). */
  settings?: Record<string, string>;
}

export interface ResolvedOptions {
  connectionString: string;
  schema: string | null;
  poolSize: number;
  connectTimeoutMs: number;
  lockTimeoutMs: number;
  idleInTransactionTimeoutMs: number;
  applicationName: string;
  settings: Record<string, string>;
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const SETTING_NAME = /^[a-z_][a-z0-9_.]*$/;

export function resolveOptions(o: PostgresOptions): ResolvedOptions {
  if (!isPostgresUrl(o.url)) throw new Error('the PostgreSQL store needs a postgres:// or postgresql:// URL');
  const url = new URL(o.url);
  const schema = o.schema ?? url.searchParams.get('schema') ?? null;
  const poolParam = url.searchParams.get('pool_size');
  url.searchParams.delete('schema');
  url.searchParams.delete('pool_size');
  const poolSize = o.poolSize ?? (poolParam === null ? 10 : Number(poolParam));
  if (!Number.isInteger(poolSize) || poolSize < 2 || poolSize > 1000) throw new Error(`pool size must be an integer from 2 to 1000, not ${poolParam ?? o.poolSize}`);
  if (schema !== null && !SCHEMA_NAME.test(schema)) throw new Error(`not a plain schema name: ${schema}`);
  const settings = o.settings ?? {};
  for (const [k, v] of Object.entries(settings)) {
    if (!SETTING_NAME.test(k) || !/^[A-Za-z0-9_.:,-]*$/.test(v)) throw new Error(`not a plain setting: ${k}=${v}`);
  }
  return {
    connectionString: url.toString(), schema, poolSize,
    connectTimeoutMs: o.connectTimeoutMs ?? 5_000,
    lockTimeoutMs: o.lockTimeoutMs ?? 10_000,
    idleInTransactionTimeoutMs: o.idleInTransactionTimeoutMs ?? 60_000,
    applicationName: o.applicationName ?? 'meterhub',
    settings,
  };
}

// int8 (OID 20) as a JS number: sequences, ids, epoch-ms times and counts all stay far below 2^53.
// Per pool, not pg.types.setTypeParser, so as not to change other users of the pg module.
const INT8 = 20;
function parseInt8(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`int8 ${value} does not fit a JS number`);
  return n;
}
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8 && format !== 'binary' ? parseInt8 : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser,
};

/** Server settings every session of the store starts with (startup `options`). */
function startupOptions(r: ResolvedOptions, extra: Record<string, string>): string | undefined {
  const all: Record<string, string> = { ...extra };
  if (r.schema !== null) all.search_path = r.schema;
  const parts = Object.entries(all).map(([k, v]) => `-c ${k}=${v}`);
  return parts.length > 0 ? parts.join(' ') : undefined;
}

export function createPool(r: ResolvedOptions, extra: Record<string, string> = {}): pg.Pool {
  const options = startupOptions(r, { ...extra, ...r.settings });
  const pool = new pg.Pool({
    connectionString: r.connectionString,
    max: r.poolSize,
    connectionTimeoutMillis: r.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: r.applicationName,
    lock_timeout: r.lockTimeoutMs,
    idle_in_transaction_session_timeout: r.idleInTransactionTimeoutMs,
    types,
    ...(options ? { options } : {}),
  });
  // An idle connection that the server drops (restart, failover) must not crash the process: the
  // pool discards it, and the next query opens a new one (or fails with StorageUnavailableError).
  pool.on('error', () => {});
  // A connection lost while checked out (between two statements of a group) emits 'error' on the
  // client, which pg-pool does not listen to then: without this it would crash the process. The
  // next statement on it fails instead (a storage fault), and the connection is destroyed.
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

/** A single connection for setup work (migrations), outside the pool. */
export function createClient(r: ResolvedOptions): pg.Client {
  const options = startupOptions(r, {});
  const client = new pg.Client({
    connectionString: r.connectionString,
    connectionTimeoutMillis: r.connectTimeoutMs,
    application_name: `${r.applicationName}-migrate`,
    types,
    ...(options ? { options } : {}),
  });
  client.on('error', () => {});
  return client;
}
