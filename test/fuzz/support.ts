// Shared pieces of the fuzz suites (test/fuzz/*): raw HTTP over net sockets (for input an HTTP
// client would refuse to send), a small deterministic PRNG, and the "still healthy" check every
// suite ends with.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { request } from 'undici';
import type { HubConfigInput } from '../../src/config/hub-config.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';
import { assertProblem, envelope, STRUCTURED, type Answer } from '../api/helpers.ts';

export { assertProblem, envelope, STRUCTURED };
export const BATCH = 'application/cloudevents-batch+json';

/** A raw HTTP exchange: what came back (maybe nothing) and how the connection ended. */
export interface RawAnswer extends Answer {
  /** 0 when the connection ended before a whole status line and header block came. */
  status: number;
  complete: boolean;
  /** The hub closed (or reset) the connection. */
  closed: boolean;
  /** Nothing ended the exchange within the bound: a hang. */
  timedOut: boolean;
  elapsedMs: number;
  raw: Buffer;
}

/** A piece of a raw request: bytes, or a pause (slow clients). */
export type Piece = Buffer | string | { pauseMs: number };

/** Parses one HTTP/1.1 response at the start of `buf` (after any 1xx interim ones); null while incomplete. */
export function parseResponse(buf: Buffer, isHead = false): { status: number; headers: Record<string, string>; body: Buffer } | null {
  while (/^HTTP\/1\.[01] 1\d\d/.test(buf.toString('latin1', 0, 12))) {
    const interim = buf.indexOf('\r\n\r\n');
    if (interim < 0) return null;
    buf = buf.subarray(interim + 4);
  }
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const head = buf.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0]!);
  if (!m) throw new Error(`not an HTTP response: ${JSON.stringify(head[0]!.slice(0, 80))}`);
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const rest = buf.subarray(end + 4);
  const status = Number(m[1]);
  if (isHead || status === 204 || status === 304) return { status, headers, body: Buffer.alloc(0) };
  if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
    const parts: Buffer[] = [];
    let i = 0;
    for (;;) {
      const nl = rest.indexOf('\r\n', i);
      if (nl < 0) return null;
      const size = parseInt(rest.subarray(i, nl).toString('latin1'), 16);
      if (!Number.isFinite(size)) throw new Error('bad chunk size in the response');
      if (size === 0) return rest.length >= nl + 4 ? { status, headers, body: Buffer.concat(parts) } : null;
      if (rest.length < nl + 2 + size + 2) return null;
      parts.push(rest.subarray(nl + 2, nl + 2 + size));
      i = nl + 2 + size + 2;
    }
  }
  const length = headers['content-length'] !== undefined ? Number(headers['content-length']) : null;
  if (length === null) return null; // read to close
  return rest.length >= length ? { status, headers, body: rest.subarray(0, length) } : null;
}

/**
 * Writes `pieces` to a fresh connection and reads one response. Resolves when a whole response
 * came (the connection is then dropped), when the hub closed the connection, or after `timeoutMs`
 * (timedOut: a hang, unless the test wanted exactly that). Write errors (the hub closed while we
 * were still sending) are not failures: what matters is what came back.
 */
export function rawExchange(url: string, pieces: Piece[] | Piece, opts: { timeoutMs?: number; halfClose?: boolean; head?: boolean } = {}): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const list = Array.isArray(pieces) ? pieces : [pieces];
  const started = Date.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let done = false;
    let closed = false;
    const socket: Socket = connect({ host: hostname, port: Number(port) });
    const finish = (timedOut: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const raw = Buffer.concat(chunks);
      let parsed: ReturnType<typeof parseResponse> = null;
      try { parsed = parseResponse(raw, opts.head); } catch { parsed = null; }
      if (!parsed && raw.length > 0) {
        // A response read to the close (no length): take everything after the head.
        const end = raw.indexOf('\r\n\r\n');
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw.toString('latin1', 0, 20));
        if (end >= 0 && m) {
          const headers: Record<string, string> = {};
          for (const line of raw.subarray(0, end).toString('latin1').split('\r\n').slice(1)) {
            const i = line.indexOf(':');
            headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
          }
          parsed = { status: Number(m[1]), headers, body: raw.subarray(end + 4) };
        }
      }
      const text = parsed ? parsed.body.toString('utf8') : '';
      let json: unknown;
      try { json = JSON.parse(text); } catch { /* not JSON */ }
      resolve({
        status: parsed?.status ?? 0, headers: parsed?.headers ?? {}, text, json, raw,
        complete: parsed !== null, closed, timedOut, elapsedMs: Date.now() - started,
      });
    };
    const timer = setTimeout(() => finish(true), timeoutMs);
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      let parsed = null;
      try { parsed = parseResponse(Buffer.concat(chunks), opts.head); } catch { /* read on */ }
      if (parsed) finish(false);
    });
    socket.on('error', () => { closed = true; finish(false); });
    socket.on('close', () => { closed = true; finish(false); });
    socket.on('connect', async () => {
      for (const p of list) {
        if (done || socket.destroyed) return;
        if (typeof p === 'object' && !Buffer.isBuffer(p)) { await new Promise((r) => setTimeout(r, p.pauseMs)); continue; }
        const ok = socket.write(p);
        if (!ok) await new Promise<void>((r) => { socket.once('drain', () => r()); socket.once('close', () => r()); });
      }
      if (opts.halfClose && !socket.destroyed) socket.end();
    });
  });
}

/** Builds a raw request: request line, headers (in order, duplicates kept) and body. */
export function rawRequest(method: string, path: string, headers: Array<[string, string]> | Record<string, string>, body: Buffer | string = Buffer.alloc(0), opts: { contentLength?: boolean; host?: string } = {}): Buffer {
  const list = Array.isArray(headers) ? [...headers] : Object.entries(headers);
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  if (!list.some(([k]) => k.toLowerCase() === 'host')) list.unshift(['host', opts.host ?? 'localhost']);
  if (opts.contentLength !== false && !list.some(([k]) => k.toLowerCase() === 'content-length' || k.toLowerCase() === 'transfer-encoding')) list.push(['content-length', String(b.length)]);
  const head = `${method} ${path} HTTP/1.1\r\n${list.map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), b]);
}

/**
 * A problem answer as the spec promises it (problem+json, type/title/status/detail, the code),
 * from a raw exchange that must have completed.
 */
export function assertRawProblem(res: RawAnswer, status: number, code?: string, what = ''): any {
  assert.ok(!res.timedOut, `${what}: no answer within the bound (a hang)`);
  assert.ok(res.complete, `${what}: the connection ended without a whole answer (${res.raw.length} bytes: ${JSON.stringify(res.raw.toString('latin1').slice(0, 200))})`);
  return assertProblem(res, status, code);
}

/** Mulberry32: a tiny deterministic PRNG, so that a failing case can be run again from its seed. */
export function prng(seed: number): { next(): number; int(n: number): number; pick<T>(xs: readonly T[]): T; chance(p: number): boolean } {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (xs) => xs[Math.floor(next() * xs.length)]!,
    chance: (p) => next() < p,
  };
}

export interface FuzzWorld {
  hub: TestHub;
  /** The sender MDP-A's key. */
  key: string;
  /** A valid event for MDP-A, unique per call. */
  validEvent(): string;
  close(): Promise<void>;
}

let counter = 0;

/** A hub with sender MDP-A, pull receiver RETAILER-A, and one rule routing everything to it. */
export async function fuzzWorld(overrides: HubConfigInput = {}): Promise<FuzzWorld> {
  const hub = await startTestHub({
    ...overrides,
    // Thousands of requests from one key: the rate limit is tested on its own (test/security/limits).
    server: { ingestRateLimit: { eventsPerSecond: null }, ...overrides.server },
  });
  const { key } = await hub.participant('MDP-A');
  await hub.participant('RETAILER-A', { mode: 'pull' });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }]);
  return {
    hub, key,
    validEvent: () => envelope({ id: `ok-${process.pid}-${++counter}-${Date.now()}`, source: 'MDP-A' }, '{"kwh":1.5}'),
    close: () => hub.close(),
  };
}

/** The hub still answers /healthz, and still accepts a valid event with 202 (nothing crashed or wedged). */
export async function assertHealthy(w: FuzzWorld, what = ''): Promise<void> {
  const bound = AbortSignal.timeout(5000);
  const health = await request(`${w.hub.url}/healthz`, { signal: bound });
  assert.equal(health.statusCode, 200, `${what}: /healthz`);
  await health.body.text();
  const res = await request(`${w.hub.url}/v1/messages`, {
    method: 'POST', signal: bound,
    headers: { authorization: `Bearer ${w.key}`, 'content-type': STRUCTURED },
    body: w.validEvent(),
  });
  const text = await res.body.text();
  assert.equal(res.statusCode, 202, `${what}: a valid event after the fuzzing: ${text.slice(0, 300)}`);
}

/** POST /v1/messages over undici (keep-alive), bounded in time. */
export async function postMessage(w: FuzzWorld, body: Buffer | string, headers: Record<string, string>, timeoutMs = 10_000): Promise<Answer & { raw: Buffer }> {
  const res = await request(`${w.hub.url}/v1/messages`, {
    method: 'POST', headers: { authorization: `Bearer ${w.key}`, ...headers }, body, signal: AbortSignal.timeout(timeoutMs),
  });
  const raw = Buffer.from(await res.body.arrayBuffer());
  const text = raw.toString('utf8');
  let json: unknown;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.statusCode, headers: res.headers as Record<string, unknown>, text, json, raw };
}
