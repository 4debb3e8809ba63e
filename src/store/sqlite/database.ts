import Database from 'better-sqlite3';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

export interface OpenOptions {
  /**
   * A second connection that only reads, beside the one that writes (ThreadedSqliteStore): the
   * file is migrated already, and its page cache is smaller (what it reads is mostly recent).
   */
  reader?: boolean;
  /**
   * Page cache of this connection, MiB (default 64; a reader 4). The store's threads each have a
   * connection of their own, so the two caches add up: what they hold is mostly in the OS page
   * cache anyway, and RSS is what a 1M-delivery backlog measures (BENCHMARKS.md, backlog).
   */
  cacheMiB?: number;
}

/** Opens the SQLite file with the durability settings the hub's promises rest on. */
export function openDatabase(file: string, opts: OpenOptions = {}): Database.Database {
  const db = new Database(file);
  if (opts.reader) {
    db.pragma('busy_timeout = 5000');
    db.pragma(`cache_size = -${Math.round((opts.cacheMiB ?? 4) * 1024)}`);
    if (db.pragma('journal_mode', { simple: true }) !== 'wal') {
      db.close();
      throw new Error(`${file} is not in WAL mode: a reader connection would block the writer`);
    }
    return db;
  }
  db.pragma('journal_mode = WAL');
  // FULL: every commit fsyncs the WAL, so an acknowledged message survives a power cut.
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = OFF');
  db.pragma(`cache_size = -${Math.round((opts.cacheMiB ?? 64) * 1024)}`);
  db.pragma('wal_autocheckpoint = 4000');
  try {
    migrate(db);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/**
 * Applies the numbered migrations (`NNNN_name.sql`, forward-only: a change is a new file, never
 * an edit) not yet applied, each in its own transaction together with `user_version`, so a
 * migration is applied whole or not at all. Refuses a file written by a newer version of the
 * hub. Returns how many were applied.
 */
export function migrate(db: Database.Database, dir: string = MIGRATIONS_DIR): number {
  const files = readdirSync(dir).filter((f) => /^\d{4}_.+\.sql$/.test(f)).sort();
  const versions = files.map((f) => Number(f.slice(0, 4)));
  if (new Set(versions).size !== versions.length) throw new Error(`two migrations share a number in ${dir}`);
  const highest = versions.at(-1) ?? 0;
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > highest) {
    throw new Error(`the database is at schema version ${current}, newer than this hub knows (${highest}): upgrade the hub`);
  }
  let applied = 0;
  files.forEach((file, i) => {
    const version = versions[i]!;
    const sql = readFileSync(join(dir, file), 'utf8');
    // IMMEDIATE, and the version read again inside: two processes opening one file apply it once.
    const ran = db.transaction(() => {
      if ((db.pragma('user_version', { simple: true }) as number) >= version) return false;
      db.exec(sql);
      db.pragma(`user_version = ${version}`);
      return true;
    }).immediate();
    if (ran) applied++;
  });
  return applied;
}
