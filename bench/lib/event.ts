/**
 * The benchmark message: a structured CloudEvent (application/cloudevents+json) of an exact size,
 * shaped like a NEM12 interval reading. Built once as a template; each message only splices in
 * its id, which has a fixed width so every message has the same size.
 */
export const BENCH_EVENT_TYPE = 'au.com.aemo.nem12.interval-data';
export const BENCH_SUBJECT = 'NMI0000001';
export const ID_WIDTH = 24;

export interface EventTemplate {
  /** The whole event for this id (exactly `size` bytes). */
  body(id: string): string;
  size: number;
}

export function eventTemplate(source: string, size: number): EventTemplate {
  const placeholder = '\u0000'.repeat(ID_WIDTH);
  const build = (pad: string, values: number[]) => JSON.stringify({
    specversion: '1.0', id: placeholder, source, type: BENCH_EVENT_TYPE, subject: BENCH_SUBJECT,
    time: '2024-01-01T00:00:00+10:00', datacontenttype: 'application/json',
    data: { nmi: BENCH_SUBJECT, suffix: 'E1', uom: 'KWH', intervalLength: 30, date: '2024-01-01', quality: 'A', values, note: pad },
  });
  // JSON.stringify escapes \u0000 as 6 characters: measure with the real id width.
  const sizeOf = (s: string) => Buffer.byteLength(s.replace(JSON.stringify(placeholder).slice(1, -1), 'x'.repeat(ID_WIDTH)));
  const values: number[] = [];
  while (sizeOf(build('', [...values, 0.125])) <= size && values.length < 100_000) values.push(0.125);
  let pad = '';
  while (sizeOf(build(pad, values)) < size) pad += 'x';
  const text = build(pad, values);
  const escaped = JSON.stringify(placeholder).slice(1, -1);
  const at = text.indexOf(escaped);
  const head = text.slice(0, at);
  const tail = text.slice(at + escaped.length);
  const actual = sizeOf(text);
  return {
    size: actual,
    body(id: string) {
      if (id.length !== ID_WIDTH) throw new Error(`benchmark ids are ${ID_WIDTH} characters: '${id}'`);
      return head + id + tail;
    },
  };
}

/** Fixed-width unique ids: a run tag and a counter. */
export function idMaker(tag: string): () => string {
  let n = 0;
  const prefix = `${tag}-`.slice(0, ID_WIDTH - 10);
  return () => prefix + String(n++).padStart(ID_WIDTH - prefix.length, '0');
}
