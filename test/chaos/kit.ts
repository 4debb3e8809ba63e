/**
 * Shared pieces of the crash, shutdown and storage-fault suites (test/chaos, test/shutdown,
 * test/faults): a config file writer, deterministic events in the three ingest modes, an ingest
 * client that classifies every answer, loopback push receivers that log every request with when
 * (and whether) they answered it, a pull consumer, and admin helpers.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Client, request } from 'undici';
import { stringify as toYaml } from 'yaml';

export const ADMIN_KEY = 'chaos-admin-key-0123456789abcdefghij';
export const SENDER_KEYS: Record<string, string> = {
  'MDP-A': 'mh_chaos_sender_a_0123456789abcdefghijklmnop',
  'MDP-B': 'mh_chaos_sender_b_0123456789abcdefghijklmnop',
};
export const PULL_KEY = 'mh_chaos_pull_receiver_0123456789abcdefghij';

export const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- config

export interface ConfigOptions {
  /** Push receivers: id → URL and receiver settings overrides. */
  push?: Record<string, { url: string; timeoutMs?: number; maxInFlight?: number; ordering?: 'none' | 'subject'; retry?: Record<string, number> }>;
  /** Pull receivers: id → settings overrides. */
  pull?: Record<string, { visibilityTimeoutSeconds?: number; maxReceives?: number; ordering?: 'none' | 'subject' }>;
  routes: unknown[];
  /** Merged at the top level (server, storage, delivery, ...). */
  extra?: Record<string, unknown>;
}

export function writeConfig(dir: string, o: ConfigOptions): string {
  const participants: Record<string, unknown> = {};
  for (const [id, key] of Object.entries(SENDER_KEYS)) participants[id] = { name: `Sender ${id}`, keys: [key] };
  for (const [id, r] of Object.entries(o.push ?? {})) {
    const { url, retry, ...rest } = r;
    participants[id] = {
      name: `Push receiver ${id}`,
      receiver: { mode: 'push', url, secret: `whsec_${Buffer.from(`chaos-secret-of-${id}-0123456789`).toString('base64')}`, timeoutMs: 3_000, maxInFlight: 16, ...rest, retry: { maxAttempts: 1000, maxAgeSeconds: 3600, initialDelayMs: 50, maxDelayMs: 400, multiplier: 2, retryAfterCapMs: 400, ...retry } },
    };
  }
  for (const [id, r] of Object.entries(o.pull ?? {})) {
    participants[id] = { name: `Pull receiver ${id}`, keys: [PULL_KEY], receiver: { mode: 'pull', visibilityTimeoutSeconds: 2, maxReceives: 1000, ...r } };
  }
  const extra = o.extra ?? {};
  const config = {
    ...extra,
    delivery: { pollIntervalMs: 25, leaseMarginMs: 1_000, breaker: { failureThreshold: 5, cooldownMs: 100, maxCooldownMs: 500 }, ...(extra.delivery as object | undefined) },
    maintenance: { intervalMs: 100, ...(extra.maintenance as object | undefined) },
    participants,
    routes: o.routes,
  };
  const file = join(dir, 'meterhub.yaml');
  writeFileSync(file, `# written by test/chaos/kit.ts\n${toYaml(config)}`);
  return file;
}

// ---------------------------------------------------------------- events

export type IngestMode = 'structured' | 'binary' | 'binary-large' | 'batch';

export interface SentEvent {
  source: string;
  id: string;
  type: string;
  subject: string;
  contentType: string;
  data: Buffer;
  sha256: string;
}

/** A deterministic pseudo-random generator (mulberry32), so that a failing run can be replayed by its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One event. JSON data is written by hand (odd spacing, trailing zeros, a 20-digit integer) so
 * that only the exact bytes compare equal; `size` pads it (over inlineBodyMaxBytes: a body file).
 */
export function jsonEvent(source: string, id: string, subject: string, size = 0): SentEvent {
  const pad = size > 0 ? 'x'.repeat(size) : '';
  const text = `{"id": "${id}",  "reading": 1.50, "unit":"kWh", "big": 12345678901234567890, "pad": "${pad}"}`;
  const data = Buffer.from(text);
  return { source, id, type: 'chaos.reading', subject, contentType: 'application/json', data, sha256: sha256(data) };
}

/** NEM12-like CSV, or (large) opaque bytes: sent in binary mode. */
export function binaryEvent(source: string, id: string, subject: string, size: number, random: () => number): SentEvent {
  let data: Buffer;
  let contentType: string;
  if (size <= 2048) {
    contentType = 'text/csv';
    data = Buffer.from(`100,NEM12,202401010000,${source},RETAILER\r\n200,${subject},E1,E1,E1,N1,M1,kWh,30,\r\n300,20240101,${Array.from({ length: 48 }, (_, i) => (random() * 3).toFixed(3) + (i % 7 === 0 ? '0' : '')).join(',')},A,,,20240102000000,\r\n900\r\n<${id}>`);
  } else {
    contentType = 'application/octet-stream';
    data = Buffer.alloc(size);
    for (let i = 0; i < size; i += 4) data.writeUInt32LE((random() * 0x100000000) >>> 0, Math.min(i, size - 4));
    data.write(id, 0, 'latin1');
  }
  return { source, id, type: 'chaos.file', subject, contentType, data, sha256: sha256(data) };
}

export function structuredBody(e: SentEvent): string {
  return `{"specversion":"1.0","id":"${e.id}","source":"${e.source}","type":"${e.type}","subject":"${e.subject}","datacontenttype":"${e.contentType}","data":${e.data.toString('utf8')}}`;
}

// ---------------------------------------------------------------- ingest

export type IngestAnswer =
  | { kind: 'ack'; status: 202 | 200; sequence: number; receivers: string[] }
  | { kind: 'refused'; status: number; code: string | null; retryAfter: string | null; contentType: string | null; text: string }
  | { kind: 'transport'; error: string };

export interface IngestResult {
  /** The whole request's answer (for a batch: its own refusal or transport error, else ack with status 200). */
  request: IngestAnswer;
  /** Per event, in order (for a single event: the same as `request`). */
  items: IngestAnswer[];
}

/** Sends one request (a batch when `mode` is batch) on `client` and classifies the answer. */
export async function ingest(client: Client, key: string, mode: IngestMode, events: SentEvent[], signal?: AbortSignal): Promise<IngestResult> {
  let headers: Record<string, string>;
  let body: string | Buffer;
  if (mode === 'batch') {
    headers = { 'content-type': 'application/cloudevents-batch+json' };
    body = `[${events.map(structuredBody).join(',')}]`;
  } else if (mode === 'structured') {
    headers = { 'content-type': 'application/cloudevents+json' };
    body = structuredBody(events[0]!);
  } else {
    const e = events[0]!;
    headers = { 'content-type': e.contentType, 'ce-specversion': '1.0', 'ce-id': e.id, 'ce-source': e.source, 'ce-type': e.type, 'ce-subject': e.subject };
    body = e.data;
  }
  headers.authorization = `Bearer ${key}`;
  let status: number;
  let text: string;
  let h: Record<string, string | string[] | undefined>;
  try {
    const res = await client.request({ method: 'POST', path: '/v1/messages', headers, body, signal, headersTimeout: 20_000, bodyTimeout: 20_000 });
    status = res.statusCode;
    h = res.headers;
    text = await res.body.text();
  } catch (e) {
    const err = e as Error & { code?: string };
    const t: IngestAnswer = { kind: 'transport', error: `${err.code ?? err.name}: ${err.message}` };
    return { request: t, items: events.map(() => t) };
  }
  const refusal = (s: number, txt: string, code: string | null): IngestAnswer => ({
    kind: 'refused', status: s, code, retryAfter: header(h, 'retry-after'), contentType: header(h, 'content-type'), text: txt.slice(0, 300),
  });
  if (mode === 'batch') {
    if (status !== 200) {
      const r = refusal(status, text, problemCode(text));
      return { request: r, items: events.map(() => r) };
    }
    const json = JSON.parse(text) as { results: Array<{ status: number; sequence?: number; receivers?: string[]; problem?: { code?: string } }> };
    const items = json.results.map((r): IngestAnswer => (r.status === 202 || r.status === 200
      ? { kind: 'ack', status: r.status, sequence: r.sequence!, receivers: r.receivers ?? [] }
      : { kind: 'refused', status: r.status, code: r.problem?.code ?? null, retryAfter: null, contentType: null, text: JSON.stringify(r.problem).slice(0, 300) }));
    return { request: { kind: 'ack', status: 200, sequence: -1, receivers: [] }, items };
  }
  let a: IngestAnswer;
  if (status === 202 || status === 200) {
    const json = JSON.parse(text) as { sequence: number; receivers: string[] };
    a = { kind: 'ack', status, sequence: json.sequence, receivers: json.receivers };
  } else {
    a = refusal(status, text, problemCode(text));
  }
  return { request: a, items: [a] };
}

function header(h: Record<string, string | string[] | undefined>, name: string): string | null {
  const v = h[name];
  return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
}

function problemCode(text: string): string | null {
  try { return (JSON.parse(text) as { code?: string }).code ?? null; } catch { return null; }
}

// ---------------------------------------------------------------- receivers

export interface LoggedRequest {
  n: number;
  webhookId: string;
  ceId: string;
  ceSource: string;
  ceSubject: string;
  sequence: number;
  bodySha256: string;
  receivedAt: number;
  /** The status this receiver chose to answer. */
  status: number | null;
  /** When the answer was handed to the socket in full ('finish'); null if never (cut, reset, hung). */
  answeredAt: number | null;
}

/** What a receiver does with one request: answer `status` after `delayMs`; `hang`: never answer; `reset`: destroy the socket. */
export type Behaviour = { status: number; delayMs?: number } | { hang: true } | { reset: true };

export interface LoggingReceiver {
  id: string;
  url: string;
  log: LoggedRequest[];
  behave(b: (r: LoggedRequest) => Behaviour): void;
  /** Answers every request still hung with `status` (204 by default). */
  releaseHung(status?: number): void;
  close(): Promise<void>;
  server: Server;
}

export async function startLoggingReceiver(id: string, behaviour: (r: LoggedRequest) => Behaviour = () => ({ status: 204 })): Promise<LoggingReceiver> {
  let current = behaviour;
  const log: LoggedRequest[] = [];
  const hung = new Set<(status: number) => void>();
  const server = createServer((req, res) => {
    const hash = createHash('sha256');
    req.on('data', (c: Buffer) => hash.update(c));
    req.on('end', () => {
      const r: LoggedRequest = {
        n: log.length + 1,
        webhookId: String(req.headers['webhook-id'] ?? ''),
        ceId: String(req.headers['ce-id'] ?? ''),
        ceSource: String(req.headers['ce-source'] ?? ''),
        ceSubject: String(req.headers['ce-subject'] ?? ''),
        sequence: Number(req.headers['ce-sequence'] ?? NaN),
        bodySha256: hash.digest('hex'),
        receivedAt: Date.now(),
        status: null,
        answeredAt: null,
      };
      log.push(r);
      const b = current(r);
      const answer = (status: number) => {
        if (res.destroyed || res.writableEnded) return;
        r.status = status;
        res.once('finish', () => { r.answeredAt = Date.now(); });
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end(status < 300 ? 'ok' : 'not now');
      };
      if ('reset' in b) { req.socket.destroy(); return; }
      if ('hang' in b) {
        const release = (status: number) => { hung.delete(release); answer(status); };
        hung.add(release);
        res.once('close', () => hung.delete(release));
        return;
      }
      if (b.delayMs && b.delayMs > 0) setTimeout(() => answer(b.status), b.delayMs);
      else answer(b.status);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    id,
    url: `http://127.0.0.1:${port}/hook/${id}`,
    log,
    server,
    behave(b) { current = b; },
    releaseHung(status = 204) { for (const r of [...hung]) r(status); },
    close: () => new Promise<void>((resolve) => { for (const r of [...hung]) r(503); server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

// ---------------------------------------------------------------- admin

export interface Json { status: number; json: any; text: string; headers: Record<string, string | string[] | undefined> }

export async function call(baseUrl: string, method: string, path: string, opts: { key?: string; json?: unknown; timeoutMs?: number } = {}): Promise<Json> {
  const headers: Record<string, string> = { authorization: `Bearer ${opts.key ?? ADMIN_KEY}` };
  let body: string | undefined;
  if (opts.json !== undefined) { body = JSON.stringify(opts.json); headers['content-type'] = 'application/json'; }
  const res = await request(baseUrl + path, { method: method as 'GET', headers, body, headersTimeout: opts.timeoutMs ?? 15_000, bodyTimeout: opts.timeoutMs ?? 15_000 });
  const text = await res.body.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.statusCode, json, text, headers: res.headers };
}

/** Deliveries by state across every receiver (GET /v1/admin/deliveries/summary). */
export async function deliverySummary(baseUrl: string): Promise<Record<string, number>> {
  const r = await call(baseUrl, 'GET', '/v1/admin/deliveries/summary');
  if (r.status !== 200) throw new Error(`summary: ${r.status} ${r.text}`);
  const out: Record<string, number> = {};
  for (const d of r.json.deliveries as Array<{ state: string; count: number }>) out[d.state] = (out[d.state] ?? 0) + d.count;
  return out;
}

/** Polls `check` until it returns a truthy value; throws with `what` after `timeoutMs`. */
export async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | null | undefined | false> | T | null | undefined | false, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) { lastError = e; }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ''}`);
    await sleep(everyMs);
  }
}

/** A keep-alive client of one connection: a sender's "connection". */
export function connection(baseUrl: string): Client {
  return new Client(baseUrl, { pipelining: 1, keepAliveTimeout: 30_000, connect: { timeout: 2_000 } });
}

// ---------------------------------------------------------------- steady ingest load

export interface LoadFigures { acked: number; refused: Record<string, number>; transport: number }

/**
 * `connections` loops, each sending structured events one after another on its own connection
 * (every fifth one with a body over `largeBytes`, so a body file) until stop(). Records every
 * acknowledged event; refusals by status and code; transport errors (the hub gone).
 */
export class SteadyLoad {
  readonly acked = new Map<string, { event: SentEvent; sequence: number; status: number }>();
  readonly refusals: Array<Extract<IngestAnswer, { kind: 'refused' }>> = [];
  transport = 0;
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(private readonly baseUrl: string, private readonly opts: { connections: number; prefix: string; source?: string; largeBytes?: number; pauseMs?: number }) {}

  start(): this {
    this.running = true;
    for (let c = 0; c < this.opts.connections; c++) this.loops.push(this.loop(c));
    return this;
  }

  private async loop(c: number): Promise<void> {
    const source = this.opts.source ?? 'MDP-A';
    const client = connection(this.baseUrl);
    try {
      for (let i = 0; this.running; i++) {
        const id = `${this.opts.prefix}-c${c}-${i}`;
        const event = jsonEvent(source, id, `NMI-${c}-${i % 5}`, i % 5 === 4 ? (this.opts.largeBytes ?? 0) : 0);
        const { request: a } = await ingest(client, SENDER_KEYS[source]!, 'structured', [event]);
        if (a.kind === 'ack') this.acked.set(id, { event, sequence: a.sequence, status: a.status });
        else if (a.kind === 'refused') { this.refusals.push(a); await sleep(50); }
        else { this.transport++; await sleep(50); }
        if (this.opts.pauseMs) await sleep(this.opts.pauseMs);
      }
    } finally {
      await client.destroy().catch(() => {});
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  figures(): LoadFigures {
    const refused: Record<string, number> = {};
    for (const r of this.refusals) refused[`${r.status} ${r.code}`] = (refused[`${r.status} ${r.code}`] ?? 0) + 1;
    return { acked: this.acked.size, refused, transport: this.transport };
  }
}

/** Every acknowledged event is in the archive with its sha256 and exact bytes; returns the message views by sequence. */
export async function checkArchived(baseUrl: string, acked: Iterable<{ event: SentEvent; sequence: number }>): Promise<{ missing: string[]; wrong: string[]; views: Map<number, any> }> {
  const missing: string[] = [];
  const wrong: string[] = [];
  const views = new Map<number, any>();
  for (const { event, sequence } of acked) {
    const m = await call(baseUrl, 'GET', `/v1/messages/${sequence}`);
    if (m.status !== 200) { missing.push(`${event.source}/${event.id} (sequence ${sequence}): ${m.status}`); continue; }
    if (m.json.id !== event.id || m.json.source !== event.source) { wrong.push(`sequence ${sequence} is ${m.json.source}/${m.json.id}, not ${event.source}/${event.id}`); continue; }
    if (m.json.sha256 !== event.sha256) wrong.push(`sequence ${sequence} (${event.id}): sha256 ${m.json.sha256} != sent ${event.sha256}`);
    try {
      const res = await request(`${baseUrl}/v1/messages/${sequence}/data`, { headers: { authorization: `Bearer ${ADMIN_KEY}` }, headersTimeout: 10_000, bodyTimeout: 10_000 });
      const bytes = Buffer.from(await res.body.arrayBuffer());
      if (res.statusCode !== 200 || !bytes.equals(event.data)) wrong.push(`sequence ${sequence} (${event.id}): archived bytes differ (${res.statusCode}, ${bytes.length} vs ${event.data.length} bytes)`);
    } catch (e) {
      wrong.push(`sequence ${sequence} (${event.id}): the archived bytes cannot be read: ${(e as Error).message}`);
    }
    views.set(sequence, m.json);
  }
  return { missing, wrong, views };
}

// ---------------------------------------------------------------- pull consumer

export type PullDecision = 'ack' | 'nack' | 'ignore';

export interface PullLog {
  /** Every message leased to the consumer, in order. */
  leased: Array<{ webhookId: string; sequence: number; lease: string; at: number; receives: number }>;
  /** Acks the hub answered `acked` (durable: the delivery is delivered), by webhook-id, with when. */
  acked: Map<string, number>;
  /** Acks whose answer was lost (the hub went away): unknown outcome. */
  ackUnknown: number;
  nacked: number;
  errors: Record<string, number>;
}

/**
 * A pull receiver: long polls its inbox, then acks, nacks or ignores (lets the lease expire)
 * each message per `decide`. `baseUrl()` is asked each time (the hub may have moved).
 */
export class PullConsumer {
  readonly log: PullLog = { leased: [], acked: new Map(), ackUnknown: 0, nacked: 0, errors: {} };
  private running = false;
  private loopDone: Promise<void> | null = null;
  decide: (m: { webhookId: string; receives: number }) => PullDecision = () => 'ack';

  constructor(private readonly baseUrl: () => string, private readonly key: string, private readonly opts: { max?: number; waitSeconds?: number } = {}) {}

  start(): this {
    this.running = true;
    this.loopDone = this.loop();
    return this;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loopDone;
  }

  private count(what: string) { this.log.errors[what] = (this.log.errors[what] ?? 0) + 1; }

  private async loop(): Promise<void> {
    while (this.running) {
      let items: Array<{ lease: string; receives: number; event: { sequence: string; deliveryid: string } }>;
      try {
        const r = await call(this.baseUrl(), 'GET', `/v1/inbox?max=${this.opts.max ?? 20}&wait=${this.opts.waitSeconds ?? 1}`, { key: this.key, timeoutMs: 10_000 });
        if (r.status !== 200) { this.count(`poll ${r.status} ${r.json?.code ?? ''}`); await sleep(100); continue; }
        items = r.json.messages;
      } catch (e) {
        this.count(`poll ${(e as { code?: string }).code ?? 'error'}`);
        await sleep(100);
        continue;
      }
      const now = Date.now();
      const acks: string[] = [];
      const nacks: string[] = [];
      const webhookOf = new Map<string, string>();
      for (const it of items) {
        const webhookId = it.event.deliveryid;
        webhookOf.set(it.lease, webhookId);
        this.log.leased.push({ webhookId, sequence: Number(it.event.sequence), lease: it.lease, at: now, receives: it.receives });
        const d = this.decide({ webhookId, receives: it.receives });
        if (d === 'ack') acks.push(it.lease);
        else if (d === 'nack') nacks.push(it.lease);
      }
      if (acks.length > 0) {
        try {
          const r = await call(this.baseUrl(), 'POST', '/v1/inbox/ack', { key: this.key, json: { leases: acks } });
          if (r.status === 200) {
            for (const x of r.json.results as Array<{ lease: string; result: string }>) {
              if (x.result === 'acked') this.log.acked.set(webhookOf.get(x.lease)!, Date.now());
              else this.count(`ack ${x.result}`);
            }
          } else { this.count(`ack ${r.status} ${r.json?.code ?? ''}`); this.log.ackUnknown += acks.length; }
        } catch (e) {
          this.count(`ack ${(e as { code?: string }).code ?? 'error'}`);
          this.log.ackUnknown += acks.length;
        }
      }
      if (nacks.length > 0) {
        try {
          const r = await call(this.baseUrl(), 'POST', '/v1/inbox/nack', { key: this.key, json: { leases: nacks, delaySeconds: 0 } });
          if (r.status === 200) this.log.nacked += nacks.length; else this.count(`nack ${r.status}`);
        } catch (e) {
          this.count(`nack ${(e as { code?: string }).code ?? 'error'}`);
        }
      }
    }
  }
}
