// The authentication and isolation matrix, shared by matrix.test.ts (which asserts every cell) and
// logs.test.ts (which runs every cell against a hub logging at trace level and scans the log).
//
// Rows are the hub's registered routes; columns are who calls: no key, a malformed Authorization,
// a wrong key, a revoked key, the message's sender, its receiver, an unrelated participant, an
// admin. Each cell names the status (and problem code) the spec allows.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { request } from 'undici';
import { buildApp } from '../../src/app.ts';
import type { HubConfigInput } from '../../src/config/hub-config.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createHub } from '../../src/hub/hub.ts';
import { ADMIN_KEY, type TestHub } from '../support/hub.ts';
import { assertProblem, envelope, STRUCTURED } from '../api/helpers.ts';

export const WHO = ['none', 'malformed', 'wrong', 'revoked', 'unrelated', 'sender', 'admin', 'receiver'] as const;
export type Who = (typeof WHO)[number];

/** A cell: the status, and for an error the problem code. */
export type Cell = number | [number, string];

export interface World {
  hub: TestHub;
  keys: { sender: string; revoked: string; receiver: string; unrelated: string };
  /** The sender's message (routed to the receiver), and the unrelated participant's own one. */
  seq: number;
  otherSeq: number;
  /** Leases the receiver holds on the two messages. */
  leases: { ack: string; nack: string };
  /** Throwaway targets of the destructive cells, one per caller. */
  spare: Record<Who, { participant: string; keyId: string; key: string; adminKeyId: string; adminKey: string }>;
  /** A unique string in every message body; it must never reach a log. */
  marker: string;
  /** Every secret the hub handed out (push secrets): none may reach a log. */
  secrets: string[];
}

export interface Row {
  method: string;
  /** The Fastify route pattern, as registered. */
  route: string;
  request(w: World, who: Who): { path: string; body?: string; contentType?: string };
  expect: Record<Who, Cell>;
  /** More checks on an allowed cell (isolation of what is listed, per-item results). */
  check?(w: World, who: Who, res: MatrixAnswer): void | Promise<void>;
}

export interface MatrixAnswer { status: number; headers: Record<string, unknown>; text: string; json: any }

const BAD: Pick<Record<Who, Cell>, 'none' | 'malformed' | 'wrong' | 'revoked'> = {
  none: [401, 'unauthorized'], malformed: [401, 'unauthorized'], wrong: [401, 'unauthorized'], revoked: [401, 'unauthorized'],
};
const PUBLIC: Record<Who, Cell> = { none: 200, malformed: 200, wrong: 200, revoked: 200, unrelated: 200, sender: 200, admin: 200, receiver: 200 };
const FORBIDDEN: [number, string] = [403, 'forbidden'];
const adminOnly = (ok: number): Record<Who, Cell> => ({ ...BAD, unrelated: FORBIDDEN, sender: FORBIDDEN, receiver: FORBIDDEN, admin: ok });
/** A message resource: its sender and receiver (and admins) see it; anyone else gets 404 as for nothing. */
const messageResource = (ok: number): Record<Who, Cell> => ({ ...BAD, unrelated: [404, 'not-found'], sender: ok, receiver: ok, admin: ok });
const json = (body: unknown) => ({ body: JSON.stringify(body), contentType: 'application/json' });

const ROUTES = [
  { name: 'from-sender', match: { source: 'SENDER-S' }, to: { participants: ['RECV-R'] } },
  { name: 'from-other', match: { source: 'OTHER-U' }, to: { participants: ['RECV-R'] } },
];

export const ROWS: Row[] = [
  { method: 'GET', route: '/healthz', request: () => ({ path: '/healthz' }), expect: PUBLIC },
  { method: 'GET', route: '/readyz', request: () => ({ path: '/readyz' }), expect: PUBLIC },
  { method: 'GET', route: '/metrics', request: () => ({ path: '/metrics' }), expect: PUBLIC },
  { method: 'GET', route: '/v1/site', request: () => ({ path: '/v1/site' }), expect: PUBLIC },
  {
    method: 'POST', route: '/v1/messages',
    // Everyone sends an event as the sender: only the sender's own key may.
    request: (w, who) => ({ path: '/v1/messages', body: envelope({ id: `matrix-${who}`, source: 'SENDER-S', type: 'meter.reading' }, `{"note":"${w.marker}"}`), contentType: STRUCTURED }),
    expect: { ...BAD, unrelated: [403, 'source-mismatch'], sender: 202, receiver: [403, 'source-mismatch'], admin: FORBIDDEN },
  },
  {
    method: 'GET', route: '/v1/messages', request: () => ({ path: '/v1/messages?limit=100' }),
    expect: { ...BAD, unrelated: 200, sender: 200, receiver: 200, admin: 200 },
    check: (w, who, res) => {
      const seqs = res.json.messages.map((m: any) => m.sequence);
      if (who === 'unrelated') assert.ok(!seqs.includes(w.seq), 'the search shows an unrelated participant nothing of the sender\'s');
      else assert.ok(seqs.includes(w.seq), `the search shows ${who} the message`);
      if (who === 'sender') assert.ok(!seqs.includes(w.otherSeq), 'nor the sender the other participant\'s');
    },
  },
  { method: 'GET', route: '/v1/messages/:sequence', request: (w) => ({ path: `/v1/messages/${w.seq}` }), expect: messageResource(200) },
  { method: 'GET', route: '/v1/messages/:sequence/attempts', request: (w) => ({ path: `/v1/messages/${w.seq}/attempts` }), expect: messageResource(200) },
  {
    method: 'GET', route: '/v1/messages/:sequence/data', request: (w) => ({ path: `/v1/messages/${w.seq}/data` }), expect: messageResource(200),
    check: (w, _who, res) => assert.ok(res.text.includes(w.marker), 'the exact body'),
  },
  {
    method: 'POST', route: '/v1/messages/:sequence/resend', request: (w) => ({ path: `/v1/messages/${w.seq}/resend`, ...json({}) }),
    // A resend is asked for by a receiver the message was routed to (or an admin): to its sender, it is 404 like to anyone else.
    expect: { ...BAD, unrelated: [404, 'not-found'], sender: [404, 'not-found'], receiver: 202, admin: 202 },
  },
  {
    method: 'GET', route: '/v1/inbox', request: () => ({ path: '/v1/inbox?max=100' }),
    expect: { ...BAD, unrelated: 200, sender: FORBIDDEN, receiver: 200, admin: FORBIDDEN },
    check: (w, who, res) => {
      if (who === 'unrelated') assert.ok(res.json.messages.every((m: any) => m.event.source !== 'SENDER-S'), 'the unrelated inbox holds nothing of the sender\'s');
      void w;
    },
  },
  {
    method: 'POST', route: '/v1/inbox/ack', request: (w) => ({ path: '/v1/inbox/ack', ...json({ leases: [w.leases.ack, 'no-such-lease'] }) }),
    expect: { ...BAD, unrelated: 200, sender: FORBIDDEN, receiver: 200, admin: FORBIDDEN },
    check: (w, who, res) => {
      const [theirs, none] = res.json.results;
      if (who === 'receiver') assert.equal(theirs.result, 'acked');
      // Another's lease is reported exactly as a lease that does not exist.
      else assert.deepEqual({ ...theirs, lease: 'x' }, { ...none, lease: 'x' }, `${who} acking the receiver's lease: ${JSON.stringify(res.json)}`);
      void w;
    },
  },
  {
    method: 'POST', route: '/v1/inbox/nack', request: (w) => ({ path: '/v1/inbox/nack', ...json({ leases: [w.leases.nack, 'no-such-lease'], delaySeconds: 0 }) }),
    expect: { ...BAD, unrelated: 200, sender: FORBIDDEN, receiver: 200, admin: FORBIDDEN },
    check: (w, who, res) => {
      const [theirs, none] = res.json.results;
      if (who === 'receiver') assert.equal(theirs.result, 'nacked');
      else assert.deepEqual({ ...theirs, lease: 'x' }, { ...none, lease: 'x' }, `${who} nacking the receiver's lease: ${JSON.stringify(res.json)}`);
      void w;
    },
  },
  { method: 'POST', route: '/v1/admin/replay', request: () => ({ path: '/v1/admin/replay', ...json({ subject: 'NO-SUCH-METER' }) }), expect: adminOnly(202) },
  { method: 'GET', route: '/v1/admin/receivers', request: () => ({ path: '/v1/admin/receivers' }), expect: adminOnly(200) },
  { method: 'GET', route: '/v1/admin/routes', request: () => ({ path: '/v1/admin/routes' }), expect: adminOnly(200) },
  { method: 'PUT', route: '/v1/admin/routes', request: () => ({ path: '/v1/admin/routes', ...json(ROUTES) }), expect: adminOnly(200) },
  { method: 'GET', route: '/v1/admin/dlq', request: () => ({ path: '/v1/admin/dlq' }), expect: adminOnly(200) },
  { method: 'POST', route: '/v1/admin/dlq/redrive', request: () => ({ path: '/v1/admin/dlq/redrive', ...json({ all: true }) }), expect: adminOnly(200) },
  { method: 'GET', route: '/v1/admin/deliveries/summary', request: () => ({ path: '/v1/admin/deliveries/summary' }), expect: adminOnly(200) },
  { method: 'GET', route: '/v1/admin/participants', request: () => ({ path: '/v1/admin/participants' }), expect: adminOnly(200) },
  { method: 'GET', route: '/v1/admin/participants/:id', request: () => ({ path: '/v1/admin/participants/SENDER-S' }), expect: adminOnly(200) },
  {
    method: 'PUT', route: '/v1/admin/participants/:id',
    request: (_w, who) => ({ path: `/v1/admin/participants/PUT-${who}`, ...json({ name: `made by ${who}`, receiver: { mode: 'push', url: 'http://127.0.0.1:9/hook' } }) }),
    expect: adminOnly(201),
  },
  { method: 'DELETE', route: '/v1/admin/participants/:id', request: (w, who) => ({ path: `/v1/admin/participants/${w.spare[who].participant}` }), expect: adminOnly(204) },
  { method: 'GET', route: '/v1/admin/participants/:id/keys', request: () => ({ path: '/v1/admin/participants/SENDER-S/keys' }), expect: adminOnly(200) },
  { method: 'POST', route: '/v1/admin/participants/:id/keys', request: () => ({ path: '/v1/admin/participants/SPARE-KEYS/keys' }), expect: adminOnly(201) },
  { method: 'DELETE', route: '/v1/admin/participants/:id/keys/:keyId', request: (w, who) => ({ path: `/v1/admin/participants/SPARE-KEYS/keys/${w.spare[who].keyId}` }), expect: adminOnly(204) },
  { method: 'POST', route: '/v1/admin/keys', request: () => ({ path: '/v1/admin/keys' }), expect: adminOnly(201) },
  { method: 'DELETE', route: '/v1/admin/keys/:keyId', request: (w, who) => ({ path: `/v1/admin/keys/${w.spare[who].adminKeyId}` }), expect: adminOnly(204) },
  { method: 'POST', route: '/v1/admin/meters', request: () => ({ path: '/v1/admin/meters', body: 'meter,role,participant,validFrom,validTo\nNCDE001111,FRMP,RECV-R,,\n', contentType: 'text/csv' }), expect: adminOnly(200) },
  { method: 'GET', route: '/v1/admin/meters/:meter', request: () => ({ path: '/v1/admin/meters/NCDE001111' }), expect: adminOnly(200) },
];

/** Every (method, route) Fastify has registered, from printRoutes (HEAD, which Fastify adds for each GET, left out). */
export function registeredRoutes(app: FastifyInstance): Set<string> {
  const out = new Set<string>();
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^([│├└─ ]*?)(\/\S*)(?: \(([^)]*)\))?\s*$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4 - 1;
    stack.length = depth;
    stack.push(m[2]!);
    const path = stack.join('');
    for (const method of (m[3] ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
      if (method !== 'HEAD') out.add(`${method} ${path}`);
    }
  }
  return out;
}

export function keyFor(w: World, who: Who): string | null {
  switch (who) {
    case 'none': return null;
    // The sender's valid key, in a header that is not "Bearer <key>".
    case 'malformed': return `Token ${w.keys.sender}`;
    // The sender's key with its last character changed.
    case 'wrong': return `Bearer ${w.keys.sender.slice(0, -1)}${w.keys.sender.endsWith('A') ? 'B' : 'A'}`;
    case 'revoked': return `Bearer ${w.keys.revoked}`;
    case 'admin': return `Bearer ${ADMIN_KEY}`;
    default: return `Bearer ${w.keys[who]}`;
  }
}

export async function callCell(w: World, row: Row, who: Who, method = row.method): Promise<MatrixAnswer> {
  const r = row.request(w, who);
  const headers: Record<string, string> = {};
  const auth = keyFor(w, who);
  if (auth) headers.authorization = auth;
  if (r.contentType) headers['content-type'] = r.contentType;
  const res = await request(w.hub.url + r.path, { method: method as 'GET', headers, body: method === 'HEAD' ? undefined : r.body, signal: AbortSignal.timeout(10_000) });
  const text = await res.body.text();
  let parsed: unknown;
  try { parsed = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.statusCode, headers: res.headers as Record<string, unknown>, text, json: parsed };
}

/** The world every cell runs in. `start` makes the hub (a logged one in logs.test.ts). */
export async function buildWorld(start: () => Promise<TestHub>): Promise<World> {
  const hub = await start();
  const marker = `MARKER-${Math.random().toString(36).slice(2)}-do-not-log`;
  const sender = await hub.participant('SENDER-S');
  const receiver = await hub.participant('RECV-R', { mode: 'pull' });
  const unrelated = await hub.participant('OTHER-U', { mode: 'pull' });
  const pushy = await hub.participant('PUSHY-P', { mode: 'push', url: 'http://127.0.0.1:9/never' });
  const revoke = await hub.api('POST', '/v1/admin/participants/SENDER-S/keys');
  assert.equal((await hub.api('DELETE', `/v1/admin/participants/SENDER-S/keys/${revoke.json.id}`)).status, 204);
  await hub.routes(ROUTES);
  await hub.meters('meter,role,participant,validFrom,validTo\nNCDE001111,FRMP,RECV-R,,\n');
  await hub.participant('SPARE-KEYS');
  const spare = {} as World['spare'];
  for (const who of WHO) {
    const p = `DEL-${who}`;
    await hub.participant(p);
    const k = await hub.api('POST', '/v1/admin/participants/SPARE-KEYS/keys');
    const a = await hub.api('POST', '/v1/admin/keys');
    assert.equal(a.status, 201, a.text);
    spare[who] = { participant: p, keyId: k.json.id, key: k.json.key, adminKeyId: a.json.id, adminKey: a.json.key };
  }
  const post = async (key: string, id: string, source: string) => {
    const res = await request(`${hub.url}/v1/messages`, {
      method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': STRUCTURED },
      body: envelope({ id, source }, `{"reading":"${marker}"}`),
    });
    const body = await res.body.json() as any;
    assert.equal(res.statusCode, 202, JSON.stringify(body));
    return body.sequence as number;
  };
  const seq = await post(sender.key, 'matrix-1', 'SENDER-S');
  const otherSeq = await post(unrelated.key, 'matrix-u', 'OTHER-U');
  const poll = await hub.api('GET', '/v1/inbox?max=10', { key: receiver.key });
  const lease = (id: string) => poll.json.messages.find((m: any) => m.event.id === id)?.lease as string;
  assert.ok(lease('matrix-1') && lease('matrix-u'), poll.text);
  return {
    hub, seq, otherSeq, marker, spare,
    keys: { sender: sender.key, revoked: revoke.json.key, receiver: receiver.key, unrelated: unrelated.key },
    leases: { ack: lease('matrix-1'), nack: lease('matrix-u') },
    secrets: [pushy.secret!],
  };
}

/** Runs every cell (and HEAD for each GET), asserting each unless `lenient`; answers every answer's text. */
export async function runMatrix(w: World, opts: { lenient?: boolean } = {}): Promise<string[]> {
  const texts: string[] = [];
  const failures: string[] = [];
  for (const row of ROWS) {
    for (const who of WHO) {
      const res = await callCell(w, row, who);
      texts.push(res.text, JSON.stringify(res.headers));
      if (opts.lenient) continue;
      const cell = row.expect[who];
      const [status, code] = typeof cell === 'number' ? [cell, undefined] : cell;
      try {
        if (status >= 400) assertProblem(res, status, code);
        else assert.equal(res.status, status, res.text.slice(0, 300));
        if (status < 400 && row.check) await row.check(w, who, res);
        if (row.method === 'GET') {
          const head = await callCell(w, row, who, 'HEAD');
          assert.equal(head.status, status, 'HEAD answers as GET');
        }
      } catch (e) {
        failures.push(`${row.method} ${row.route} as ${who}: expected ${status}${code ? ` ${code}` : ''}, got ${res.status}: ${(e as Error).message.split('\n')[0]!.slice(0, 300)}`);
      }
    }
  }
  assert.deepEqual(failures, [], `matrix cells that do not hold:\n${failures.join('\n')}`);
  return texts;
}

/**
 * A test hub like test/support/hub.ts's startTestHub (same config, same helpers), with the logger
 * given: logs.test.ts captures everything it writes.
 */
export async function startLoggedHub(logger: Logger, overrides: HubConfigInput = {}): Promise<TestHub & { close(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'meterhub-logs-'));
  const config = parseConfig({
    ...overrides, adminKey: ADMIN_KEY, allowPrivateTargets: true,
    server: { host: '127.0.0.1', port: 0, ...overrides.server },
    storage: { dataDir },
    delivery: { pollIntervalMs: 20, leaseMarginMs: 2000, ...overrides.delivery },
    maintenance: { intervalMs: 50 },
  });
  const hub = await createHub(config, { logger });
  const app = await buildApp(hub);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  hub.start();
  const api: TestHub['api'] = async (method, path, o = {}) => {
    const headers: Record<string, string> = { ...o.headers };
    const key = o.key === undefined ? ADMIN_KEY : o.key;
    if (key) headers.authorization = `Bearer ${key}`;
    let body: string | Buffer | undefined = o.body;
    if (o.json !== undefined) { body = JSON.stringify(o.json); headers['content-type'] ??= 'application/json'; }
    const res = await request(url + path, { method: method as 'GET', headers, body });
    const text = await res.body.text();
    let parsed: unknown;
    try { parsed = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.statusCode, headers: res.headers as Record<string, unknown>, json: parsed, text };
  };
  return {
    hub, app, url, dataDir, config, api,
    async participant(id, receiver = null) {
      const put = await api('PUT', `/v1/admin/participants/${id}`, { json: { name: `Participant ${id}`, ...(receiver ? { receiver } : {}) } });
      if (put.status !== 201 && put.status !== 200) throw new Error(`PUT participant ${id}: ${put.status} ${put.text}`);
      const k = await api('POST', `/v1/admin/participants/${id}/keys`);
      if (k.status !== 201) throw new Error(`key for ${id}: ${k.status} ${k.text}`);
      return { key: k.json.key, ...(put.json.secret ? { secret: put.json.secret } : {}) };
    },
    async routes(rules) {
      const r = await api('PUT', '/v1/admin/routes', { json: rules });
      if (r.status !== 200) throw new Error(`PUT routes: ${r.status} ${r.text}`);
    },
    async meters(csv) {
      const r = await api('POST', '/v1/admin/meters', { body: csv, headers: { 'content-type': 'text/csv' } });
      if (r.status !== 200) throw new Error(`POST meters: ${r.status} ${r.text}`);
    },
    async close() {
      await app.close();
      await hub.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
