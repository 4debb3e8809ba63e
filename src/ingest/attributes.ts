import { HubError } from '../errors/hub-error.ts';
import type { EventAttributes } from '../store/types.ts';

/** Attributes the hub adds on delivery; a sender may not set them. */
const RESERVED = new Set(['sequence', 'sequencetype', 'data', 'data_base64']);
const NAME = /^[a-z0-9]{1,20}$/;
// RFC 3339 date-time, as CloudEvents requires for `time`.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;
const MAX_ATTRIBUTE_LENGTH = 4096;
const MAX_ATTRIBUTES = 64;

export interface AttributeLimits { maxIdLength: number }

// CloudEvents 1.0 type system: a String holds no control characters (U+0000-U+001F,
// U+007F-U+009F) and no lone surrogates. Such values could not be delivered as ce- headers either.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export function hasLoneSurrogate(s: string): boolean {
  return LONE_SURROGATE.test(s);
}

function checkString(name: string, v: string): void {
  if (CONTROL.test(v) || LONE_SURROGATE.test(v)) {
    throw new HubError('invalid-event', `the attribute '${name}' holds a control character or a lone surrogate, which a CloudEvents string may not`, { extra: { attribute: name } });
  }
}

function requiredString(raw: Record<string, unknown>, name: string, max = MAX_ATTRIBUTE_LENGTH): string {
  const v = raw[name];
  if (v === undefined || v === null) throw new HubError('invalid-event', `the required attribute '${name}' is missing`, { extra: { attribute: name } });
  if (typeof v !== 'string' || v.length === 0) throw new HubError('invalid-event', `the attribute '${name}' must be a non-empty string`, { extra: { attribute: name } });
  if (v.length > max) throw new HubError('invalid-event', `the attribute '${name}' is longer than ${max} characters`, { extra: { attribute: name } });
  checkString(name, v);
  return v;
}

/**
 * Checks the CloudEvents 1.0 context attributes (as decoded from any mode) and returns them
 * typed. `raw` holds everything but the data.
 */
export function validateAttributes(raw: Record<string, unknown>): EventAttributes {
  const names = Object.keys(raw);
  if (names.length > MAX_ATTRIBUTES) throw new HubError('invalid-event', `an event may carry at most ${MAX_ATTRIBUTES} attributes`);
  const specversion = raw.specversion;
  if (specversion !== '1.0') {
    throw new HubError('invalid-event', specversion === undefined ? "the required attribute 'specversion' is missing" : `specversion must be "1.0", not ${JSON.stringify(specversion).slice(0, 40)}`, { extra: { attribute: 'specversion' } });
  }
  const out: EventAttributes = {
    specversion: '1.0',
    id: requiredString(raw, 'id', 256),
    source: requiredString(raw, 'source', 256),
    type: requiredString(raw, 'type', 256),
    subject: requiredString(raw, 'subject', 256),
  };
  for (const name of names) {
    // Own members only: `in` would also see Object.prototype ('constructor', '__proto__') and skip them unchecked.
    if (Object.hasOwn(out, name)) continue;
    const v = raw[name];
    if (RESERVED.has(name)) throw new HubError('invalid-event', `the attribute '${name}' is reserved for the hub`, { extra: { attribute: name } });
    if (!NAME.test(name)) throw new HubError('invalid-event', `attribute names are 1-20 lower-case letters or digits: '${name.slice(0, 40)}'`, { extra: { attribute: name.slice(0, 40) } });
    if (v === null || v === undefined) continue;
    if (typeof v === 'string') {
      if (v.length > MAX_ATTRIBUTE_LENGTH) throw new HubError('invalid-event', `the attribute '${name}' is too long`, { extra: { attribute: name } });
      checkString(name, v);
    } else if (typeof v === 'number') {
      if (!Number.isSafeInteger(v) || v < -2147483648 || v > 2147483647) throw new HubError('invalid-event', `the attribute '${name}' must be a string, boolean or 32-bit integer`, { extra: { attribute: name } });
    } else if (typeof v !== 'boolean') {
      throw new HubError('invalid-event', `the attribute '${name}' must be a string, boolean or integer`, { extra: { attribute: name } });
    }
    out[name] = v;
  }
  if (out.time !== undefined) {
    if (typeof out.time !== 'string' || !RFC3339.test(out.time) || !Number.isFinite(Date.parse(out.time)) || !isCalendarDate(out.time)) {
      throw new HubError('invalid-event', "the attribute 'time' must be an RFC 3339 timestamp", { extra: { attribute: 'time' } });
    }
  }
  if (out.datacontenttype !== undefined && (typeof out.datacontenttype !== 'string' || !/^[\w.+-]+\/[\w.+-]+/.test(out.datacontenttype))) {
    throw new HubError('invalid-event', "the attribute 'datacontenttype' must be a media type", { extra: { attribute: 'datacontenttype' } });
  }
  return out;
}

function digitsAt(s: string, at: number, width: number): number {
  let v = 0;
  for (let i = at; i < at + width; i++) v = v * 10 + s.charCodeAt(i) - 48;
  return v;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * The date and clock parts exist (Date.parse rolls 2024-02-30 over to March rather than refusing
 * it). `time` has matched RFC3339, so the digits are where they are read from.
 */
function isCalendarDate(time: string): boolean {
  const y = digitsAt(time, 0, 4), m = digitsAt(time, 5, 2), d = digitsAt(time, 8, 2);
  const hh = digitsAt(time, 11, 2), mm = digitsAt(time, 14, 2), ss = digitsAt(time, 17, 2);
  if (m < 1 || m > 12 || d < 1 || hh > 23 || mm > 59 || ss > 60) return false;
  // As Date.UTC counts them: years 0-99 are 1900-1999.
  const year = y < 100 ? y + 1900 : y;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (d > (m === 2 && leap ? 29 : DAYS_IN_MONTH[m - 1]!)) return false;
  const last = time.charCodeAt(time.length - 1);
  if (last === 0x5a || last === 0x7a) return true; // Z: no offset
  return digitsAt(time, time.length - 5, 2) <= 23 && digitsAt(time, time.length - 2, 2) <= 59;
}

export function isJsonMediaType(contentType: string): boolean {
  const base = contentType.split(';', 1)[0]!.trim().toLowerCase();
  return base === 'application/json' || base === 'text/json' || base.endsWith('+json');
}
