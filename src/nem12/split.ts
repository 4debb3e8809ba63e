// Splits a NEM12 file into one message per (NMI, datastream, 300 record = one day).
import { createHash } from 'node:crypto';
import {
  Nem12Error, parseB2bDetails, parseHeader, parseIntervalData, parseIntervalEvent, parseNmiDetails,
  splitRecords, type HeaderRecord, type NmiDetailsRecord,
} from './parse.ts';

export { Nem12Error };

export interface Nem12Reading {
  format: 'NEM12';
  header: { fileCreated: string; fromParticipant: string; toParticipant: string };
  nmi: string; nmiConfiguration: string; registerId: string; suffix: string;
  mdmDataStreamIdentifier: string; meterSerialNumber: string; uom: string;
  intervalLength: number;
  date: string;
  values: number[];
  quality: string;
  reasonCode: string | null; reasonDescription: string | null;
  updateDateTime: string | null; msatsLoadDateTime: string | null;
  events: Array<{ startInterval: number; endInterval: number; quality: string; reasonCode: string | null; reasonDescription: string | null }>;
  b2b: Array<{ transCode: string; retServiceOrder: string; readDateTime: string; indexRead: string }>;
}

export interface Nem12Message { id: string; subject: string; type: string; time: string; data: Nem12Reading }

export const NEM12_EVENT_TYPE = 'au.com.aemo.nem12.interval-data';

/** Stable content id. Every object in `data` is built with a fixed key order, so JSON.stringify is canonical. */
function messageId(data: Nem12Reading): string {
  return 'nem12-' + createHash('sha256').update(JSON.stringify(data)).digest('hex').slice(0, 32);
}

export function splitNem12(text: string): Nem12Message[] {
  const records = splitRecords(text);
  const first = records[0];
  if (!first || first.fields[0] !== '100') {
    throw new Nem12Error('file must start with a 100 header record', first?.line ?? 1);
  }
  const header: HeaderRecord = parseHeader(first.fields, first.line);
  const readings: Nem12Reading[] = [];
  let details: NmiDetailsRecord | null = null;
  let reading: Nem12Reading | null = null;   // the last 300 record, which 400/500 records apply to
  let ended = false;

  for (const { line, fields } of records.slice(1)) {
    const type = fields[0];
    if (ended) throw new Nem12Error(`record '${type}' after the 900 end record`, line);
    switch (type) {
      case '200':
        details = parseNmiDetails(fields, line);
        reading = null;
        break;
      case '300': {
        if (!details) throw new Nem12Error('300 record before any 200 record', line);
        const d = details;
        const r = parseIntervalData(fields, d.intervalLength, line);
        reading = {
          format: 'NEM12',
          header: { fileCreated: header.fileCreated, fromParticipant: header.fromParticipant, toParticipant: header.toParticipant },
          nmi: d.nmi, nmiConfiguration: d.nmiConfiguration, registerId: d.registerId, suffix: d.suffix,
          mdmDataStreamIdentifier: d.mdmDataStreamIdentifier, meterSerialNumber: d.meterSerialNumber, uom: d.uom,
          intervalLength: d.intervalLength,
          date: r.date, values: r.values, quality: r.quality,
          reasonCode: r.reasonCode, reasonDescription: r.reasonDescription,
          updateDateTime: r.updateDateTime, msatsLoadDateTime: r.msatsLoadDateTime,
          events: [], b2b: [],
        };
        readings.push(reading);
        break;
      }
      case '400':
        if (!reading) throw new Nem12Error('400 record without a preceding 300 record', line);
        reading.events.push(parseIntervalEvent(fields, reading.values.length, line));
        break;
      case '500':
        if (!reading) throw new Nem12Error('500 record without a preceding 300 record', line);
        reading.b2b.push(parseB2bDetails(fields, line));
        break;
      case '900':
        ended = true;
        break;
      case '100':
        throw new Nem12Error('second 100 header record', line);
      default:
        throw new Nem12Error(`unknown record type '${type}'`, line);
    }
  }
  if (!ended) throw new Nem12Error('missing 900 end record', (records.at(-1)?.line ?? 0) + 1);

  return readings.map((data) => ({
    id: messageId(data), subject: data.nmi, type: NEM12_EVENT_TYPE, time: `${data.date}T00:00:00+10:00`, data,
  }));
}
