import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { request } from 'undici';
import { buildApp } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { HubConfig, HubConfigInput } from '../../src/config/hub-config.ts';
import { createHub, type Hub } from '../../src/hub/hub.ts';
import { dropTestSchema, testDatabaseUrlFor } from './test-store.ts';

export const ADMIN_KEY = 'test-admin-key-0123456789abcdef';

export interface TestHub {
  hub: Hub;
  app: FastifyInstance;
  url: string;
  dataDir: string;
  config: HubConfig;
  /** Authenticated JSON call over a real socket. */
  api(method: string, path: string, opts?: { key?: string; json?: unknown; body?: string | Buffer; headers?: Record<string, string> }): Promise<{ status: number; headers: Record<string, unknown>; json: any; text: string }>;
  /** Creates a participant (PUT) and one key for it; returns the key (and the push secret if any). */
  participant(id: string, receiver?: Record<string, unknown> | null): Promise<{ key: string; secret?: string }>;
  routes(rules: unknown[]): Promise<void>;
  meters(csv: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * A real hub on a temp data folder, listening on a loopback port. Fast timings by default;
 * `overrides` are merged into the config. The data folder is removed at close unless `keep`.
 *
 * With METERHUB_TEST_STORE=postgres (and no `storage.databaseUrl` in `overrides`), the hub keeps
 * its state in PostgreSQL, in a schema of its own named from the data folder (test-store.ts):
 * a hub started again on the same `dataDir` finds the same data. The schema is dropped at close
 * unless the data is kept (`keep`, or a `dataDir` of the caller's, which may be started again),
 * and then at the end of the test file.
 */
export async function startTestHub(overrides: HubConfigInput = {}, opts: { keep?: boolean; dataDir?: string; listen?: boolean } = {}): Promise<TestHub> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'meterhub-test-'));
  const pg = overrides.storage?.databaseUrl ? null : testDatabaseUrlFor(dataDir);
  const config = parseConfig({
    ...overrides,
    adminKey: ADMIN_KEY,
    allowPrivateTargets: overrides.allowPrivateTargets ?? true,
    server: { host: '127.0.0.1', port: 0, ...overrides.server },
    storage: { ...overrides.storage, dataDir, ...(pg ? { databaseUrl: pg.url } : {}) },
    delivery: { pollIntervalMs: 20, leaseMarginMs: 2000, ...overrides.delivery },
    maintenance: { intervalMs: 50, ...overrides.maintenance },
  });
  const hub = await createHub(config, { logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }) });
  const app = await buildApp(hub);
  let url = '';
  if (opts.listen !== false) {
    url = await app.listen({ host: '127.0.0.1', port: 0 });
  } else {
    await app.ready();
  }
  hub.start();

  const api: TestHub['api'] = async (method, path, o = {}) => {
    const headers: Record<string, string> = { ...o.headers };
    const key = o.key === undefined ? ADMIN_KEY : o.key;
    if (key) headers.authorization = `Bearer ${key}`;
    let body: string | Buffer | undefined = o.body;
    if (o.json !== undefined) {
      body = JSON.stringify(o.json);
      headers['content-type'] ??= 'application/json';
    }
    const res = await request(url + path, { method: method as 'GET', headers, body });
    const text = await res.body.text();
    let json: unknown = undefined;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.statusCode, headers: res.headers as Record<string, unknown>, json, text };
  };

  const t: TestHub = {
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
      if (!opts.keep && !opts.dataDir) {
        rmSync(dataDir, { recursive: true, force: true });
        if (pg) await dropTestSchema(pg.schema);
      }
    },
  };
  return t;
}

/** A structured CloudEvent body. */
export function structured(attrs: Record<string, unknown>, data: unknown = { reading: 1 }): string {
  return JSON.stringify({ specversion: '1.0', type: 'test.reading', subject: 'METER-1', datacontenttype: 'application/json', ...attrs, data });
}

/** Polls `check` until it returns a truthy value (real time, bounded). */
export async function eventually<T>(check: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
