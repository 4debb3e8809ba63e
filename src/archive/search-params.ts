import { z } from 'zod';
import { participantIdSchema } from '../config/receiver-schema.ts';
import { HubError } from '../errors/hub-error.ts';

/*
 * Query parameters and cursors shared by the archive search, the dead-letter queue and replay:
 * each malformed value is a 400 `malformed-request` naming the parameter.
 */

const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/** An ISO 8601 date (UTC midnight) or date-time with an offset, as epoch ms; null when not one. */
export function parseIsoTime(raw: string): number | null {
  if (!ISO_TIME.test(raw)) return null;
  const t = Date.parse(raw);
  return Number.isFinite(t) ? t : null;
}

/** For JSON bodies: an ISO time string, turned into epoch ms. */
export const isoTimeSchema = z.string().max(40).transform((s, ctx) => {
  const t = parseIsoTime(s);
  if (t === null) {
    ctx.addIssue({ code: 'custom', message: 'must be an ISO 8601 date or date-time with an offset (2024-05-01T00:00:00Z)' });
    return z.NEVER;
  }
  return t;
});

/** One optional string query parameter (a repeated one is refused). */
export function textParam(query: Record<string, unknown>, name: string, maxLength = 256): string | undefined {
  const raw = query[name];
  if (raw === undefined || raw === '') return undefined;
  if (typeof raw !== 'string' || raw.length > maxLength) throw new HubError('malformed-request', `${name} must be one value of at most ${maxLength} characters`);
  return raw;
}

export function participantParam(query: Record<string, unknown>, name: string): string | undefined {
  const raw = textParam(query, name, 64);
  if (raw !== undefined && !participantIdSchema.safeParse(raw).success) throw new HubError('malformed-request', `${name} must be a participant ID`);
  return raw;
}

export function timeParam(query: Record<string, unknown>, name: string): number | undefined {
  const raw = textParam(query, name, 40);
  if (raw === undefined) return undefined;
  const t = parseIsoTime(raw);
  if (t === null) throw new HubError('malformed-request', `${name} must be an ISO 8601 date or date-time with an offset (2024-05-01T00:00:00Z)`);
  return t;
}

/** A from/to pair: from inclusive, to exclusive, from not after to. */
export function timeRange(query: Record<string, unknown>): { from?: number; to?: number } {
  const from = timeParam(query, 'from');
  const to = timeParam(query, 'to');
  if (from !== undefined && to !== undefined && from > to) throw new HubError('malformed-request', 'from must not be after to');
  return { ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) };
}

export function limitParam(query: Record<string, unknown>, fallback = 100, max = 1000): number {
  const raw = textParam(query, 'limit', 10);
  if (raw === undefined) return fallback;
  const n = /^[0-9]{1,7}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > max) throw new HubError('malformed-request', `limit must be an integer from 1 to ${max}`);
  return n;
}

export function enumParam<T extends string>(query: Record<string, unknown>, name: string, values: readonly T[]): T | undefined {
  const raw = textParam(query, name, 32);
  if (raw === undefined) return undefined;
  if (!(values as readonly string[]).includes(raw)) throw new HubError('malformed-request', `${name} must be one of ${values.join(', ')}`);
  return raw as T;
}

/*
 * Cursors are opaque to clients: base64url of a kind tag and non-negative integers. A cursor of
 * another kind, or not one at all, is refused rather than read as "from the start".
 */

export function encodeCursor(kind: string, parts: number[]): string {
  return Buffer.from(`${kind}:${parts.join('.')}`, 'utf8').toString('base64url');
}

export function cursorParam(query: Record<string, unknown>, kind: string, count: number): number[] | undefined {
  const raw = textParam(query, 'after', 200);
  if (raw === undefined) return undefined;
  const bad = new HubError('malformed-request', 'after must be a cursor from an earlier answer (next)');
  if (!/^[A-Za-z0-9_-]+$/.test(raw)) throw bad;
  const text = Buffer.from(raw, 'base64url').toString('utf8');
  const m = new RegExp(`^${kind}:(\\d{1,16}(?:\\.\\d{1,16})*)$`).exec(text);
  if (!m) throw bad;
  const parts = m[1]!.split('.').map(Number);
  if (parts.length !== count || !parts.every(Number.isSafeInteger)) throw bad;
  return parts;
}
