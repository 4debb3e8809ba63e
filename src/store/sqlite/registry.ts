import type Database from 'better-sqlite3';
import type { MeterEntry } from '../types.ts';
import { toMeter, type MeterRow } from './rows.ts';

/* The meter registry of the SQLite store: one statement per function, run inside the caller's write. */

export function prepareRegistryStatements(db: Database.Database) {
  const p = (sql: string) => db.prepare(sql);
  return {
    upsertMeter: p(`INSERT INTO meters (meter, role, participant, valid_from, valid_to) VALUES (@meter, @role, @participant, @valid_from, @valid_to)
      ON CONFLICT (meter, role, valid_from) DO UPDATE SET participant = excluded.participant, valid_to = excluded.valid_to`),
    meterAll: p('SELECT * FROM meters WHERE meter = @meter ORDER BY role, valid_from'),
    meterAt: p('SELECT * FROM meters WHERE meter = @meter AND valid_from <= @at AND (valid_to IS NULL OR valid_to > @at) ORDER BY role, valid_from'),
  };
}

export type RegistryStatements = ReturnType<typeof prepareRegistryStatements>;

/** Inserts or replaces by (meter, role, validFrom), in order: a key named twice keeps its last entry. */
export function upsertMeters(sql: RegistryStatements, entries: MeterEntry[]): number {
  for (const e of entries) {
    sql.upsertMeter.run({ meter: e.meter, role: e.role, participant: e.participant, valid_from: e.validFrom ?? 0, valid_to: e.validTo });
  }
  return entries.length;
}

export function getMeterEntries(sql: RegistryStatements, meter: string, at: number | null): MeterEntry[] {
  const rows = (at === null ? sql.meterAll.all({ meter }) : sql.meterAt.all({ meter, at })) as MeterRow[];
  return rows.map(toMeter);
}

/**
 * An import on the embedded store: each chunk one upsertMeters write (one short transaction
 * through the group commit, so the ingest writes queued meanwhile go between chunks).
 */
export async function importInChunks(upsert: (chunk: MeterEntry[]) => Promise<number>, chunks: AsyncIterable<MeterEntry[]>, onChunk?: (applied: number) => void): Promise<number> {
  let applied = 0;
  for await (const chunk of chunks) {
    applied += await upsert(chunk);
    onChunk?.(applied);
  }
  return applied;
}
