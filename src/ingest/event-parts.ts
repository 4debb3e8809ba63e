import { isUtf8 } from 'node:buffer';
import { scanObject, type TopMember } from './json-scan.ts';
import { isDataKey, type Span } from './json-spans.ts';

/**
 * A structured event split into what the hub checks: every attribute (all members but `data`
 * and `data_base64`, as JSON.parse would give them, in the same order), `data_base64`'s value,
 * and `data` by reference: its exact bytes, and its value only if asked for.
 */
export interface EventParts {
  rest: Record<string, unknown>;
  dataBase64: unknown;
  /** null: the event has no `data` member. */
  data: DataRef | null;
}

export interface DataRef {
  span: Span;
  isNull: boolean;
  isString: boolean;
  /** The string's value when it is a string and already decoded; else null (decode it from the span). */
  text: string | null;
}

/** From an object JSON.parse made, and the `data` member's span. */
export function partsFromObject(obj: Record<string, unknown>, dataSpan: Span | null): EventParts {
  const { data, data_base64: dataBase64, ...rest } = obj;
  if (data === undefined || dataSpan === null) return { rest, dataBase64, data: null };
  const isString = typeof data === 'string';
  return { rest, dataBase64, data: { span: dataSpan, isNull: data === null, isString, text: isString ? data : null } };
}

/**
 * The fast path of a structured event: straight from the bytes, without building `data`. The
 * scan checks the whole text is valid JSON; JSON.parse then reads the envelope alone (`data`'s
 * value replaced by 0), so every attribute is exactly what it would give. Null whenever the
 * slow path could answer anything but success with these same parts (not UTF-8, not valid
 * JSON, not an object, nested too deep, a member name repeated): the caller then takes the
 * slow path, which refuses it as it always did.
 */
export function partsFromBytes(raw: Buffer, offset: number, maxDepth: number): EventParts | null {
  if (!isUtf8(offset ? raw.subarray(offset) : raw)) return null;
  const members = scanObject(raw, offset, maxDepth);
  if (!members) return null;
  let dataMember: TopMember | null = null;
  for (const m of members) {
    if (!isDataKey(raw, m.keyStart, m.keyEnd)) continue;
    if (dataMember) return null; // twice
    dataMember = m;
  }
  const envelope = dataMember
    ? `${raw.toString('utf8', offset, dataMember.valueStart)}0${raw.toString('utf8', dataMember.valueEnd)}`
    : raw.toString('utf8', offset);
  const obj = JSON.parse(envelope) as Record<string, unknown>;
  // JSON.parse keeps one member of each name: fewer keys than members means a name was repeated.
  if (Object.keys(obj).length !== members.length) return null;
  const { data: _placeholder, data_base64: dataBase64, ...rest } = obj;
  return { rest, dataBase64, data: dataMember ? dataRef(raw, dataMember) : null };
}

function dataRef(raw: Buffer, m: TopMember): DataRef {
  const first = raw[m.valueStart];
  return {
    span: { start: m.valueStart, end: m.valueEnd },
    isNull: first === 0x6e, // n: the literal null
    isString: first === 0x22,
    text: null,
  };
}
