// Line-level parsing of AEMO NEM12 (MDFF) records. Grouping into messages is in split.ts.

export class Nem12Error extends Error {
  line: number;
  constructor(message: string, line: number) {
    super(`NEM12 line ${line}: ${message}`);
    this.name = 'Nem12Error';
    this.line = line;
  }
}

export interface RawRecord { line: number; fields: string[] }

export interface HeaderRecord { fileCreated: string; fromParticipant: string; toParticipant: string }

export interface NmiDetailsRecord {
  nmi: string; nmiConfiguration: string; registerId: string; suffix: string;
  mdmDataStreamIdentifier: string; meterSerialNumber: string; uom: string; intervalLength: number;
}

export interface IntervalDataRecord {
  date: string; values: number[]; quality: string;
  reasonCode: string | null; reasonDescription: string | null;
  updateDateTime: string | null; msatsLoadDateTime: string | null;
}

export interface IntervalEventRecord {
  startInterval: number; endInterval: number; quality: string;
  reasonCode: string | null; reasonDescription: string | null;
}

export interface B2bDetailsRecord { transCode: string; retServiceOrder: string; readDateTime: string; indexRead: string }

const QUALITY = /^[AEFNSV](\d{2})?$/;   // quality flag, optionally followed by a 2-digit method
const DECIMAL = /^-?(\d+(\.\d*)?|\.\d+)$/;
const INTEGER = /^\d+$/;

/** Splits text into non-blank records with 1-based line numbers; handles a BOM and LF/CRLF/CR. */
export function splitRecords(text: string): RawRecord[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\n|\r/);
  const records: RawRecord[] = [];
  lines.forEach((content, i) => {
    if (content.trim() !== '') records.push({ line: i + 1, fields: content.split(',') });
  });
  return records;
}

const field = (fields: string[], i: number): string => fields[i] ?? '';
const orNull = (s: string): string | null => (s === '' ? null : s);

/** Fails if there are non-empty fields beyond `count` (a trailing empty field is allowed). */
function checkNoExtra(fields: string[], count: number, line: number): void {
  if (fields.slice(count).some((f) => f !== '')) {
    throw new Nem12Error(`record ${fields[0]} has ${fields.length} fields, expected at most ${count}`, line);
  }
}

export function parseHeader(fields: string[], line: number): HeaderRecord {
  if (field(fields, 1) !== 'NEM12') {
    throw new Nem12Error(`not a NEM12 file (100 record version is '${field(fields, 1)}')`, line);
  }
  checkNoExtra(fields, 5, line);
  return { fileCreated: field(fields, 2), fromParticipant: field(fields, 3), toParticipant: field(fields, 4) };
}

export function parseNmiDetails(fields: string[], line: number): NmiDetailsRecord {
  checkNoExtra(fields, 10, line);
  const nmi = field(fields, 1);
  if (nmi === '') throw new Nem12Error('200 record has an empty NMI', line);
  const lengthText = field(fields, 8);
  const intervalLength = Number(lengthText);
  if (!INTEGER.test(lengthText) || intervalLength === 0 || 1440 % intervalLength !== 0) {
    throw new Nem12Error(`invalid IntervalLength '${lengthText}'`, line);
  }
  return {
    nmi, nmiConfiguration: field(fields, 2), registerId: field(fields, 3), suffix: field(fields, 4),
    mdmDataStreamIdentifier: field(fields, 5), meterSerialNumber: field(fields, 6), uom: field(fields, 7),
    intervalLength,
  };
}

function parseDate(text: string, line: number): string {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(text);
  const iso = m ? `${m[1]}-${m[2]}-${m[3]}` : '';
  const d = new Date(`${iso}T00:00:00Z`);
  if (!m || Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== iso) {
    throw new Nem12Error(`invalid IntervalDate '${text}'`, line);
  }
  return iso;
}

export function parseIntervalData(fields: string[], intervalLength: number, line: number): IntervalDataRecord {
  const count = 1440 / intervalLength;
  const date = parseDate(field(fields, 1), line);
  const quality = field(fields, 2 + count);
  if (!QUALITY.test(quality)) {
    const found = fields.slice(2).findIndex((f) => QUALITY.test(f));
    const got = found < 0 ? 'no QualityMethod after the values' : `${found} values`;
    throw new Nem12Error(`expected ${count} interval values for IntervalLength ${intervalLength}, got ${got}`, line);
  }
  const values = fields.slice(2, 2 + count).map((v, i) => {
    if (!DECIMAL.test(v)) throw new Nem12Error(`interval ${i + 1}: invalid value '${v}'`, line);
    return Number(v);
  });
  checkNoExtra(fields, count + 7, line);
  const rest = (i: number) => orNull(field(fields, 3 + count + i));
  return {
    date, values, quality,
    reasonCode: rest(0), reasonDescription: rest(1), updateDateTime: rest(2), msatsLoadDateTime: rest(3),
  };
}

export function parseIntervalEvent(fields: string[], intervalCount: number, line: number): IntervalEventRecord {
  checkNoExtra(fields, 6, line);
  const [startText, endText] = [field(fields, 1), field(fields, 2)];
  const [start, end] = [Number(startText), Number(endText)];
  if (!INTEGER.test(startText) || !INTEGER.test(endText) || start < 1 || start > end || end > intervalCount) {
    throw new Nem12Error(`invalid interval range '${startText}'-'${endText}' (1..${intervalCount})`, line);
  }
  const quality = field(fields, 3);
  if (!QUALITY.test(quality)) throw new Nem12Error(`invalid QualityMethod '${quality}'`, line);
  return {
    startInterval: start, endInterval: end, quality,
    reasonCode: orNull(field(fields, 4)), reasonDescription: orNull(field(fields, 5)),
  };
}

export function parseB2bDetails(fields: string[], line: number): B2bDetailsRecord {
  checkNoExtra(fields, 5, line);
  const transCode = field(fields, 1);
  if (transCode === '') throw new Nem12Error('500 record has an empty TransCode', line);
  return { transCode, retServiceOrder: field(fields, 2), readDateTime: field(fields, 3), indexRead: field(fields, 4) };
}
