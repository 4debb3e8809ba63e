import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { request } from 'undici';
import { parseConfig } from '../../src/config/load.ts';
import { spawnTs, type Child } from './children.ts';

export const ADMIN_KEY = 'bench-admin-key-0123456789abcdef';

/**
 * Deep-merges `patch` into `config` if this version of the hub's config schema accepts it, and
 * says whether it did (settings that an older or newer hub does not have are left out).
 */
export function mergeIfSupported(config: Record<string, unknown>, patch: Record<string, unknown>): boolean {
  try { parseConfig(patch); } catch { return false; }
  const merge = (into: Record<string, unknown>, from: Record<string, unknown>) => {
    for (const [k, v] of Object.entries(from)) {
      const cur = into[k];
      if (v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)) merge(cur as Record<string, unknown>, v as Record<string, unknown>);
      else into[k] = v;
    }
  };
  merge(config, patch);
  return true;
}

/** The benchmarks measure what the hub can do: its per-key ingest rate limit is lifted. */
export function benchHubSettings(config: Record<string, unknown>): Record<string, unknown> {
  mergeIfSupported(config, { server: { ingestRateLimit: { eventsPerSecond: null } } });
  // BENCH_SQLITE_WRITES=main|worker: where the embedded store commits (storage.sqliteWrites).
  if (process.env.BENCH_SQLITE_WRITES) mergeIfSupported(config, { storage: { sqliteWrites: process.env.BENCH_SQLITE_WRITES } });
  return config;
}

export interface HubProcess {
  url: string;
  child: Child;
  /** Admin GET returning JSON. */
  admin(path: string): Promise<any>;
  stop(): Promise<void>;
}

/**
 * The real hub, `meterhub serve --config <yaml>`, in its own process on a folder of its own, on
 * a free loopback port. `config` is the YAML content (participants with keys, routes).
 */
export async function startHubProcess(dir: string, config: Record<string, unknown>, opts: { cpuProfDir?: string | null; name?: string } = {}): Promise<HubProcess> {
  mkdirSync(dir, { recursive: true });
  const configFile = join(dir, 'meterhub.yaml');
  writeFileSync(configFile, stringify(benchHubSettings(structuredClone(config))));
  const nodeArgs: string[] = [];
  if (opts.cpuProfDir) {
    // One profile per thread (tsx's loader runs in a worker): the main thread's is the big one.
    const profDir = join(opts.cpuProfDir, `hub-${opts.name ?? 'run'}-${Date.now()}`);
    mkdirSync(profDir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${profDir}`);
  }
  const child = await spawnTs(opts.name ?? 'hub', 'src/cli/main.ts', ['serve', '--config', configFile], {
    nodeArgs,
    env: {
      METERHUB_DATA_DIR: join(dir, 'data'),
      METERHUB_PORT: '0',
      METERHUB_HOST: '127.0.0.1',
      METERHUB_ADMIN_KEY: ADMIN_KEY,
      METERHUB_ALLOW_PRIVATE_TARGETS: '1',
      METERHUB_LOG_LEVEL: process.env.METERHUB_LOG_LEVEL ?? 'warn',
    },
    ready: /meterhub listening on (http:\/\/\S+)/,
    timeoutMs: 30_000,
  });
  const url = child.ready[1]!;
  return {
    url,
    child,
    async admin(path: string) {
      const res = await request(url + path, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`GET ${path}: ${res.statusCode} ${text}`);
      return JSON.parse(text);
    },
    async stop() {
      const code = await child.stop(15_000);
      if (code !== 0) process.stderr.write(`warning: the hub exited with ${code}\n${child.output()}\n`);
    },
  };
}

/** Deliveries by state for one receiver, from GET /v1/admin/deliveries/summary. */
export async function deliveryCounts(hub: HubProcess, receiver: string): Promise<Record<string, number>> {
  const { deliveries } = await hub.admin('/v1/admin/deliveries/summary') as { deliveries: Array<{ receiver: string; state: string; count: number }> };
  const out: Record<string, number> = {};
  for (const d of deliveries) if (d.receiver === receiver) out[d.state] = d.count;
  return out;
}
