import { StringDecoder } from 'node:string_decoder';
import { HubError } from '../errors/hub-error.ts';
import type { MeterEntry } from '../store/types.ts';

const HEADER = ['meter', 'role', 'participant', 'validFrom', 'validTo'];
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ROLE = /^[A-Za-z0-9_-]{1,32}$/;
const DATE = /^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?)?$/;
/** No valid row comes near this; a longer line is refused before it is held in memory whole. */
export const MAX_LINE_CHARS = 4096;

function parseDate(value: string, column: string, line: number): number | null {
  if (value === '') return null;
  const t = DATE.test(value) ? Date.parse(value.length === 10 ? `${value}T00:00:00Z` : value) : NaN;
  if (!Number.isFinite(t)) throw csvError(line, `${column} '${value.slice(0, 40)}' is not an ISO 8601 date`);
  return t;
}

export function csvError(line: number, detail: string): HubError {
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
 * The lines of a byte stream (LF or CRLF; UTF-8 decoded across chunk boundaries), one array
 * per chunk read, so that a consumer awaiting each array holds one chunk at a time.
 */
export async function* lineBatches(source: AsyncIterable<Buffer | string>): AsyncGenerator<string[]> {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  let count = 0;
  for await (const chunk of source) {
    const lines = (rest + (typeof chunk === 'string' ? chunk : decoder.write(chunk))).split('\n');
    rest = lines.pop()!;
    if (rest.length > MAX_LINE_CHARS) throw csvError(count + lines.length + 1, `the line is longer than ${MAX_LINE_CHARS} characters`);
    count += lines.length;
    if (lines.length > 0) yield lines;
  }
  rest += decoder.end();
  if (rest !== '') yield [rest];
}

/**
 * The registry rows of a CSV byte stream, in batches (one per chunk read). The header line is
 * required; blank lines are skipped; a bad row throws `invalid-csv` with its line number.
 */
export async function* meterRows(source: AsyncIterable<Buffer | string>): AsyncGenerator<MeterEntry[]> {
  let lineNo = 0;
  for await (const lines of lineBatches(source)) {
    const rows: MeterEntry[] = [];
    for (let raw of lines) {
      lineNo++;
      if (raw.endsWith('\r')) raw = raw.slice(0, -1);
      if (lineNo === 1) {
        const header = raw.replace(/^\uFEFF/, '').split(',').map((c) => c.trim());
        if (header.length < 3 || header.some((h, i) => h !== HEADER[i])) throw csvError(1, `the header must be '${HEADER.join(',')}'`);
        continue;
      }
      if (raw.trim() === '') continue;
      rows.push(parseMeterRow(raw, lineNo));
    }
    if (rows.length > 0) yield rows;
  }
  if (lineNo === 0) throw csvError(1, `the CSV is empty; it needs the header '${HEADER.join(',')}'`);
}

/** Re-cuts batches of rows into chunks of `size` (the last one shorter). */
export async function* chunksOf<T>(batches: AsyncIterable<T[]>, size: number): AsyncGenerator<T[]> {
  let chunk: T[] = [];
  for await (const batch of batches) {
    for (const item of batch) {
      chunk.push(item);
      if (chunk.length >= size) {
        yield chunk;
        chunk = [];
      }
    }
  }
  if (chunk.length > 0) yield chunk;
}
