// Shared assertions and request helpers for the API tests (test/api/*). Each test still starts its own hub.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import type { TestHub } from '../support/hub.ts';

export const STRUCTURED = 'application/cloudevents+json';
export const BATCH = 'application/cloudevents-batch+json';

export function sample(name: string): Buffer {
  return readFileSync(fileURLToPath(new URL(`../../samples/${name}`, import.meta.url)));
}

/** What any HTTP answer looks like to these helpers, whether from a socket or inject(). */
export interface Answer {
  status: number;
  headers: Record<string, unknown>;
  text: string;
  json: any;
}

/**
 * An RFC 9457 problem as the spec promises it: problem+json, type/title/status/detail, the
 * catalogue code in the type, and no stack trace or HTML anywhere in the answer.
 */
export function assertProblem(res: Answer, status: number, code?: string): any {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text.slice(0, 500)}`);
  const ct = String(res.headers['content-type'] ?? '');
  assert.match(ct, /^application\/problem\+json\b/, `content type of a ${status}: ${ct}`);
  const p = JSON.parse(res.text);
  assert.equal(typeof p.type, 'string');
  assert.equal(typeof p.title, 'string');
  assert.equal(typeof p.detail, 'string');
  assert.ok(p.title.length > 0 && p.detail.length > 0);
  assert.equal(p.status, status);
  if (code) {
    assert.ok(p.type.endsWith(`/${code}`), `problem type '${p.type}' should end with /${code}`);
    assert.equal(p.code, code);
  }
  assert.equal(p.stack, undefined);
  assert.doesNotMatch(res.text, /\n\s+at |at .+\.ts:\d+|<html|<!DOCTYPE/i, 'no stack trace or HTML in a problem');
  return p;
}

/** A raw request over the hub's socket with any body (Buffer, string or stream: a stream goes chunked). */
export async function send(hub: TestHub, method: string, path: string, opts: { key?: string | null; headers?: Record<string, string>; body?: any } = {}): Promise<Answer & { raw: Buffer }> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  const res = await request(hub.url + path, { method: method as 'POST', headers, body: opts.body });
  const raw = Buffer.from(await res.body.arrayBuffer());
  const text = raw.toString('utf8');
  let json: unknown;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.statusCode, headers: res.headers as Record<string, unknown>, text, json, raw };
}

/** The same over fastify's inject() (no socket). */
export async function inject(hub: TestHub, method: string, path: string, opts: { key?: string | null; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Answer & { raw: Buffer }> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  const res = await hub.app.inject({ method: method as 'POST', url: path, headers, ...(opts.body !== undefined ? { payload: opts.body } : {}) });
  let json: unknown;
  try { json = JSON.parse(res.body); } catch { /* not JSON */ }
  return { status: res.statusCode, headers: res.headers as Record<string, unknown>, text: res.body, json, raw: res.rawPayload };
}

/** A structured CloudEvent envelope as text, with `data` spliced in verbatim when `rawData` is given. */
export function envelope(attrs: Record<string, unknown>, rawData?: string): string {
  const head = JSON.stringify({ specversion: '1.0', type: 'meter.reading', subject: 'NCDE001111', ...attrs });
  return rawData === undefined ? head : `${head.slice(0, -1)},"data":${rawData}}`;
}

/** Binary-mode headers for an event. */
export function ceHeaders(attrs: Record<string, string>, contentType?: string): Record<string, string> {
  const h: Record<string, string> = { 'ce-specversion': '1.0', 'ce-type': 'meter.reading', 'ce-subject': 'NCDE001111' };
  for (const [k, v] of Object.entries(attrs)) h[`ce-${k}`] = v;
  if (contentType) h['content-type'] = contentType;
  return h;
}

/** Checks a 202 receipt: Location and exactly the documented members. */
export function assertReceipt(res: Answer, expect: { id: string; source: string; receivers: string[] }): number {
  assert.equal(res.status, 202, res.text);
  const r = res.json;
  assert.deepEqual(Object.keys(r).sort(), ['id', 'receivedAt', 'receivers', 'sequence', 'source']);
  assert.ok(Number.isSafeInteger(r.sequence) && r.sequence > 0, `sequence ${r.sequence}`);
  assert.equal(res.headers.location, `/v1/messages/${r.sequence}`);
  assert.equal(r.id, expect.id);
  assert.equal(r.source, expect.source);
  assert.deepEqual(r.receivers, expect.receivers);
  assert.equal(new Date(r.receivedAt).toISOString(), r.receivedAt, 'receivedAt is an ISO 8601 UTC timestamp');
  assert.ok(Math.abs(Date.parse(r.receivedAt) - Date.now()) < 60_000);
  return r.sequence;
}

/** Every delivery the hub holds, by receiver and state (admin view). */
export async function deliveryCounts(hub: TestHub): Promise<Record<string, number>> {
  const r = await hub.api('GET', '/v1/admin/deliveries/summary');
  assert.equal(r.status, 200, r.text);
  const out: Record<string, number> = {};
  for (const d of r.json.deliveries as Array<{ receiver: string; state: string; count: number }>) out[`${d.receiver}:${d.state}`] = d.count;
  return out;
}

export function totalDeliveries(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const ADMIN = 'test-admin-key-0123456789abcdef';

/** hub.participant() for a hub that does not listen: PUT the participant and make a key, over inject(). */
export async function injectParticipant(hub: TestHub, id: string, receiver: Record<string, unknown> | null = null): Promise<{ key: string; keyId: string; secret?: string }> {
  const put = await inject(hub, 'PUT', `/v1/admin/participants/${id}`, { key: ADMIN, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: `Participant ${id}`, ...(receiver ? { receiver } : {}) }) });
  assert.ok(put.status === 201 || put.status === 200, put.text);
  const k = await inject(hub, 'POST', `/v1/admin/participants/${id}/keys`, { key: ADMIN });
  assert.equal(k.status, 201, k.text);
  return { key: k.json.key, keyId: k.json.id, ...(put.json.secret ? { secret: put.json.secret } : {}) };
}

export async function injectRoutes(hub: TestHub, rules: unknown[]): Promise<void> {
  const r = await inject(hub, 'PUT', '/v1/admin/routes', { key: ADMIN, headers: { 'content-type': 'application/json' }, body: JSON.stringify(rules) });
  assert.equal(r.status, 200, r.text);
}
