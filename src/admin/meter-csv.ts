import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { HubError } from '../errors/hub-error.ts';
import type { MeterEntry } from '../store/types.ts';

const HEADER = ['meter', 'role', 'participant', 'validFrom', 'validTo'];
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ROLE = /^[A-Za-z0-9_-]{1,32}$/;
const DATE = /^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?)?$/;

function parseDate(value: string, column: string, line: number): number | null {
  if (value === '') return null;
  const t = DATE.test(value) ? Date.parse(value.length === 10 ? `${value}T00:00:00Z` : value) : NaN;
  if (!Number.isFinite(t)) throw csvError(line, `${column} '${value.slice(0, 40)}' is not an ISO 8601 date`);
  return t;
}

function csvError(line: number, detail: string): HubError {
  return new HubError('invalid-csv', `line ${line}: ${detail}`, { extra: { line } });
}

/** Parses one data row of the registry CSV. */
export function parseMeterRow(text: string, line: number): MeterEntry {
  const cells = text.split(',').map((c) => c.trim());
  if (cells.length < 3 || cells.length > 5) throw csvError(line, `expected 3 to 5 columns (${HEADER.join(',')}), found ${cells.length}`);
  const [meter, role, participant, from = '', to = ''] = cells as [string, string, string, string?, string?];
  if (!ID.test(meter)) throw csvError(line, `meter '${meter.slice(0, 40)}' is not a meter ID`);
  if (!ROLE.test(role)) throw csvError(line, `role '${role.slice(0, 40)}' is not a role name`);
  if (!ID.test(participant)) throw csvError(line, `participant '${participant.slice(0, 40)}' is not a participant ID`);
  const validFrom = parseDate(from, 'validFrom', line);
  const validTo = parseDate(to, 'validTo', line);
  if (validFrom !== null && validTo !== null && validTo <= validFrom) throw csvError(line, 'validTo must be after validFrom');
  return { meter, role: role.toUpperCase(), participant, validFrom, validTo };
}

/**
 * Streams registry rows in chunks to `sink`. The header line is required. Rows before a bad
 * row are imported (an import is an idempotent upsert: fix the row and send the file again).
 */
export async function importMeterCsv(stream: Readable, sink: (rows: MeterEntry[]) => Promise<unknown>, chunkSize = 5000, onProgress?: (n: number) => void): Promise<number> {
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let lineNo = 0;
  let imported = 0;
  let chunk: MeterEntry[] = [];
  try {
    for await (const raw of lines) {
      lineNo++;
      const text = lineNo === 1 ? raw.replace(/^\uFEFF/, '') : raw;
      if (lineNo === 1) {
        const header = text.split(',').map((c) => c.trim());
        if (header.length < 3 || header.some((h, i) => h !== HEADER[i])) throw csvError(1, `the header must be '${HEADER.join(',')}'`);
        continue;
      }
      if (text.trim() === '') continue;
      chunk.push(parseMeterRow(text, lineNo));
      if (chunk.length >= chunkSize) {
        await sink(chunk);
        imported += chunk.length;
        chunk = [];
        onProgress?.(imported);
      }
    }
  } catch (e) {
    if (e instanceof HubError && e.code === 'invalid-csv') {
      if (chunk.length > 0) { await sink(chunk); imported += chunk.length; }
      throw new HubError('invalid-csv', `${e.message} (${imported} rows before it were imported)`, { extra: { ...e.extra, imported } });
    }
    throw e;
  }
  if (lineNo === 0) throw csvError(1, `the CSV is empty; it needs the header '${HEADER.join(',')}'`);
  if (chunk.length > 0) { await sink(chunk); imported += chunk.length; }
  return imported;
}
