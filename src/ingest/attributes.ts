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

/** The date and clock parts exist (Date.parse rolls 2024-02-30 over to March rather than refusing it). */
function isCalendarDate(time: string): boolean {
  const [y, m, d, hh, mm, ss] = [time.slice(0, 4), time.slice(5, 7), time.slice(8, 10), time.slice(11, 13), time.slice(14, 16), time.slice(17, 19)].map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(y, m, 0)).getUTCDate();
  if (m < 1 || m > 12 || d < 1 || d > daysInMonth || hh > 23 || mm > 59 || ss > 60) return false;
  const offset = /([+-])(\d{2}):(\d{2})$/.exec(time);
  return !offset || (Number(offset[2]) <= 23 && Number(offset[3]) <= 59);
}

export function isJsonMediaType(contentType: string): boolean {
  const base = contentType.split(';', 1)[0]!.trim().toLowerCase();
  return base === 'application/json' || base === 'text/json' || base.endsWith('+json');
}
