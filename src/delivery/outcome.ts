/**
 * What happened when we tried to deliver one message: a discriminated union
 * built from either a received HTTP response (`classifyResponse`) or a thrown
 * error (`classifyError`). The retry policy and lastError text work from this.
 */
import { parseRetryAfter } from './retry-after.ts';

export type DeliveryOutcome =
  | { kind: 'delivered'; status: number }
  | { kind: 'gone'; status: 410 }
  | { kind: 'redirect'; status: number; location: string | null }
  | { kind: 'http'; status: number; retryAfterMs: number | null; bodySnippet: string }
  | { kind: 'timeout'; phase: 'connect' | 'headers' | 'body' | 'deadline'; message: string }
  | { kind: 'network'; code: string; message: string };

export type ResponseHeaders = Record<string, string | string[] | undefined>;

/**
 * 2xx is delivered, 410 is gone, 300–399 is a redirect (never followed), and
 * anything else is an `http` failure. `Retry-After` is read only for 429 and 503.
 */
export function classifyResponse(status: number, headers: ResponseHeaders, bodySnippet: string, now: Date): DeliveryOutcome {
  if (status >= 200 && status <= 299) return { kind: 'delivered', status };
  if (status === 410) return { kind: 'gone', status: 410 };
  if (status >= 300 && status <= 399) {
    return { kind: 'redirect', status, location: first(header(headers, 'location')) ?? null };
  }
  const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(header(headers, 'retry-after'), now) : null;
  return { kind: 'http', status, retryAfterMs, bodySnippet };
}

const TIMEOUT_CODES: Record<string, 'connect' | 'headers' | 'body'> = {
  UND_ERR_CONNECT_TIMEOUT: 'connect',
  UND_ERR_HEADERS_TIMEOUT: 'headers',
  UND_ERR_BODY_TIMEOUT: 'body',
};

/**
 * Map an error thrown by undici (or by an AbortSignal) to an outcome.
 *  - UND_ERR_CONNECT_TIMEOUT / _HEADERS_TIMEOUT / _BODY_TIMEOUT → timeout connect / headers / body
 *  - name AbortError or TimeoutError (AbortSignal.timeout, or undici's
 *    RequestAbortedError) → timeout deadline
 *  - any other `code` (checked on the error, then `cause`, then the first error
 *    of an AggregateError) → network, e.g. ECONNREFUSED, UND_ERR_SOCKET
 *  - nothing recognisable → network with code 'UNKNOWN'
 */
export function classifyError(err: unknown): DeliveryOutcome {
  const chain = errorChain(err);
  for (const e of chain) {
    const phase = typeof e.code === 'string' ? TIMEOUT_CODES[e.code] : undefined;
    if (phase) return { kind: 'timeout', phase, message: messageOf(e) };
  }
  for (const e of chain) {
    if (e.name === 'TimeoutError' || e.name === 'AbortError') {
      return { kind: 'timeout', phase: 'deadline', message: messageOf(e) };
    }
  }
  for (const e of chain) {
    if (typeof e.code === 'string' && e.code !== '') return { kind: 'network', code: e.code, message: messageOf(e) };
  }
  const top = chain[0];
  return { kind: 'network', code: 'UNKNOWN', message: top ? messageOf(top) : String(err) };
}

const SNIPPET_MAX = 200;

/** Short human text for a delivery's lastError. Secrets and URL credentials are redacted. */
export function describeOutcome(o: DeliveryOutcome): string {
  switch (o.kind) {
    case 'delivered':
      return `HTTP ${o.status}`;
    case 'gone':
      return 'HTTP 410 Gone';
    case 'redirect':
      return `HTTP ${o.status} redirect${o.location ? ` to ${redactUrl(o.location)}` : ''} (not followed)`;
    case 'http': {
      const snippet = o.bodySnippet.replace(/\s+/g, ' ').trim();
      const short = snippet.length > SNIPPET_MAX ? `${snippet.slice(0, SNIPPET_MAX)}…` : snippet;
      return redact(short ? `HTTP ${o.status}: ${short}` : `HTTP ${o.status}`);
    }
    case 'timeout':
      return `timeout (${o.phase})`;
    case 'network':
      return redact(o.message ? `${o.code}: ${o.message}` : o.code);
  }
}

export function isSuccess(o: DeliveryOutcome): o is { kind: 'delivered'; status: number } {
  return o.kind === 'delivered';
}

// ---- helpers ---------------------------------------------------------------

interface ErrorLike {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  cause?: unknown;
  errors?: unknown;
}

/** The error, its causes, and the first inner error of any AggregateError, at most 5 deep. */
function errorChain(err: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  let cur: unknown = err;
  while (cur !== null && typeof cur === 'object' && out.length < 5 && !out.includes(cur as ErrorLike)) {
    const e = cur as ErrorLike;
    out.push(e);
    cur = e.cause ?? (Array.isArray(e.errors) ? e.errors[0] : undefined);
  }
  return out;
}

function messageOf(e: ErrorLike): string {
  if (typeof e.message === 'string' && e.message !== '') return e.message;
  // AggregateError (happy eyeballs) often has an empty message; use the first inner one.
  if (Array.isArray(e.errors) && e.errors.length > 0) {
    const inner = e.errors[0] as ErrorLike | undefined;
    if (inner && typeof inner.message === 'string') return inner.message;
  }
  return typeof e.name === 'string' ? e.name : 'error';
}

function header(headers: ResponseHeaders, name: string): string | string[] | undefined {
  if (headers[name] !== undefined) return headers[name];
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Remove what could be a credential: webhook secrets, URL user-info, query strings of URLs. */
function redact(s: string): string {
  return s
    .replace(/whsec_[A-Za-z0-9+/=]+/g, 'whsec_***')
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s@]*@/gi, '$1***@');
}

function redactUrl(location: string): string {
  const noQuery = location.replace(/[?#].*$/, (m) => (m.length > 1 ? `${m[0]}…` : m));
  return redact(noQuery);
}
