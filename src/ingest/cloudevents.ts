import { HubError } from '../errors/hub-error.ts';
import type { EventAttributes } from '../store/types.ts';
import { hasLoneSurrogate, isJsonMediaType, validateAttributes } from './attributes.ts';
import { partsFromBytes, partsFromObject, type EventParts } from './event-parts.ts';
import { arrayElements, dataMember, JsonShapeError, objectMembers, type Span } from './json-spans.ts';

/** One decoded event: its attributes and the exact bytes of its data. */
export interface ParsedEvent {
  attributes: EventAttributes;
  contentType: string;
  body: Buffer;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The byte offset past a leading UTF-8 BOM. */
function bomLength(raw: Buffer): number {
  return raw.length >= 3 && raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf ? 3 : 0;
}

/** Parses a JSON document from bytes: UTF-8 only, a leading BOM tolerated. Returns the parsed value and the byte offset past the BOM. */
function parseJsonBytes(raw: Buffer, maxDepth: number): { value: unknown; offset: number } {
  const offset = bomLength(raw);
  let text: string;
  try {
    text = utf8.decode(offset ? raw.subarray(offset) : raw);
  } catch {
    throw new HubError('malformed-json', 'the body is not valid UTF-8');
  }
  if (text.trim().length === 0) throw new HubError('malformed-json', 'the body is empty');
  try {
    return { value: JSON.parse(text), offset };
  } catch (e) {
    if (e instanceof RangeError) throw new HubError('malformed-json', `the JSON is nested deeper than ${maxDepth} levels`);
    throw new HubError('malformed-json', `the body is not valid JSON: ${(e as Error).message.slice(0, 200)}`);
  }
}

/** Structured mode: one event as application/cloudevents+json. */
export function parseStructured(raw: Buffer, maxDepth: number): ParsedEvent {
  // Valid events are read straight from the bytes; anything else goes through JSON.parse, whose
  // answer (and error message) is the one the hub has always given.
  const fast = partsFromBytes(raw, bomLength(raw), maxDepth);
  if (fast) return eventFromParts(raw, fast);
  const { value, offset } = parseJsonBytes(raw, maxDepth);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HubError('invalid-event', 'a structured CloudEvent is a JSON object');
  }
  return eventFromObject(raw, { start: offset, end: raw.length }, value as Record<string, unknown>, maxDepth);
}

/** Batch mode: an array of events; each is parsed (and may fail) on its own. */
export function parseBatch(raw: Buffer, maxDepth: number, maxEvents: number): Array<ParsedEvent | HubError> {
  const { value, offset } = parseJsonBytes(raw, maxDepth);
  if (!Array.isArray(value)) throw new HubError('invalid-event', 'a CloudEvents batch is a JSON array');
  if (value.length === 0) throw new HubError('invalid-event', 'the batch is empty');
  if (value.length > maxEvents) throw new HubError('payload-too-large', `a batch holds at most ${maxEvents} events; this one has ${value.length}`);
  let spans: Span[];
  try {
    spans = arrayElements(raw, { start: offset, end: raw.length }, maxDepth);
  } catch (e) {
    throw shapeError(e);
  }
  return value.map((item, i) => {
    try {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new HubError('invalid-event', 'each batch item is a JSON object');
      return eventFromObject(raw, spans[i]!, item as Record<string, unknown>, maxDepth - 1);
    } catch (e) {
      if (e instanceof HubError) return e;
      throw e;
    }
  });
}

function shapeError(e: unknown): HubError {
  if (e instanceof JsonShapeError) return new HubError('malformed-json', e.message);
  throw e;
}

/** The exact bytes of the event's `data` member (null: none), after its members are checked (no repeated name, nesting). */
function dataSpan(raw: Buffer, span: Span, obj: Record<string, unknown>, maxDepth: number): Span | null {
  const fast = dataMember(raw, span, maxDepth, Object.keys(obj).length);
  if (fast !== undefined) return fast;
  try {
    return objectMembers(raw, span, maxDepth).find((m) => m.key === 'data')?.value ?? null;
  } catch (e) {
    throw shapeError(e);
  }
}

function eventFromObject(raw: Buffer, span: Span, obj: Record<string, unknown>, maxDepth: number): ParsedEvent {
  const member = dataSpan(raw, span, obj, maxDepth);
  return eventFromParts(raw, partsFromObject(obj, member));
}

function eventFromParts(raw: Buffer, { rest, data, dataBase64 }: EventParts): ParsedEvent {
  const attributes = validateAttributes(rest);
  const declared = typeof attributes.datacontenttype === 'string' ? attributes.datacontenttype : undefined;
  if (data !== null && dataBase64 !== undefined) throw new HubError('invalid-event', 'an event carries data or data_base64, not both');
  if (dataBase64 !== undefined) {
    if (typeof dataBase64 !== 'string' || !/^[A-Za-z0-9+/\r\n]*={0,2}$/.test(dataBase64)) throw new HubError('invalid-event', 'data_base64 must be a base64 string');
    return { attributes, contentType: declared ?? 'application/octet-stream', body: Buffer.from(dataBase64, 'base64') };
  }
  if (data === null || data.isNull) {
    return { attributes, contentType: declared ?? 'application/json', body: data === null ? Buffer.alloc(0) : Buffer.from('null') };
  }
  const contentType = declared ?? 'application/json';
  if (!isJsonMediaType(contentType)) {
    if (!data.isString) throw new HubError('invalid-event', `data of type ${contentType} must be a JSON string (or use data_base64)`);
    const text = data.text ?? (JSON.parse(raw.toString('utf8', data.span.start, data.span.end)) as string);
    // A lone surrogate has no UTF-8 form: the archived bytes would not be what was sent.
    if (hasLoneSurrogate(text)) throw new HubError('invalid-event', 'the data string holds a lone UTF-16 surrogate (\\uD800-\\uDFFF), which has no UTF-8 form; send the bytes as data_base64');
    return { attributes, contentType, body: Buffer.from(text, 'utf8') };
  }
  // A view, not a copy: the request's bytes are kept only as long as the event is.
  return { attributes, contentType, body: raw.subarray(data.span.start, data.span.end) };
}

/**
 * What Node's header object hides, checked on the raw header list: a ce- header or Content-Type
 * given twice (Node joins the one with ', ' and keeps the first of the other, so the event would
 * be one the sender did not write), and ce- values that are not printable ASCII (the CloudEvents
 * HTTP binding has other characters percent-encoded; raw bytes would arrive as Latin-1 mojibake).
 */
export function checkRawHeaders(rawHeaders: string[]): void {
  const seen = new Set<string>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    const isCe = name.startsWith('ce-');
    if (!isCe && name !== 'content-type') continue;
    if (seen.has(name)) {
      if (isCe) throw new HubError('invalid-event', `the header '${name.slice(0, 40)}' is given more than once`, { extra: { attribute: name.slice(3, 43) } });
      throw new HubError('malformed-request', 'the Content-Type header is given more than once');
    }
    seen.add(name);
    if (isCe && !/^[\x20-\x7e]*$/.test(rawHeaders[i + 1]!)) {
      throw new HubError('invalid-event', `the header '${name.slice(0, 40)}' holds characters other than printable ASCII: percent-encode them (CloudEvents HTTP binding)`, { extra: { attribute: name.slice(3, 43) } });
    }
  }
}

/** Binary mode: attributes from ce-* headers (percent-decoded), data = the body as sent. */
export function attributesFromHeaders(headers: Record<string, string | string[] | undefined>, contentType: string | undefined): Record<string, unknown> {
  // No prototype: a 'ce-__proto__' header becomes an attribute (and is refused as a bad name), not a prototype change.
  const raw: Record<string, unknown> = Object.create(null);
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith('ce-') || value === undefined) continue;
    const attr = name.slice(3);
    if (Array.isArray(value)) throw new HubError('invalid-event', `the header '${name}' is given more than once`);
    try {
      raw[attr] = decodeURIComponent(value);
    } catch {
      throw new HubError('invalid-event', `the header '${name}' is not valid percent-encoded UTF-8`);
    }
  }
  if (raw.datacontenttype !== undefined) throw new HubError('invalid-event', 'in binary mode the data content type is the Content-Type header, not ce-datacontenttype');
  if (contentType) raw.datacontenttype = contentType;
  return raw;
}
