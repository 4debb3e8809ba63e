import { existsSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { HubError } from '../errors/hub-error.ts';
import type { Hub } from './hub.ts';
import { lifecycleOf, SHUTDOWN_RETRY_AFTER_SECONDS } from './shutdown.ts';

/** How long one write probe's answer is reused: /readyz stays cheap however often it is asked. */
const PROBE_CACHE_MS = 1_000;
/** One page: a full disk refuses it even where a 1-byte write would fit in a partly used block. */
const PROBE_BYTES = 4096;

/**
 * Can the hub write where it keeps its data? Writes a fresh file in each folder (new file, one
 * page, fsync'd, removed), as committing a message or storing a body would need: a full disk
 * (ENOSPC), a read-only mount (EROFS) or a folder the hub may no longer write (EACCES) all show.
 * The answer is cached for PROBE_CACHE_MS, and concurrent checks share one probe.
 */
export class WriteProbe {
  private last: { at: number; fault: string | null } | null = null;
  private running: Promise<string | null> | null = null;

  constructor(private readonly folders: string[], private readonly cacheMs = PROBE_CACHE_MS) {}

  /** null when every folder took the write, else what failed. */
  check(now = Date.now()): Promise<string | null> {
    if (this.last && now - this.last.at < this.cacheMs) return Promise.resolve(this.last.fault);
    this.running ??= this.probe().then((fault) => {
      this.last = { at: Date.now(), fault };
      this.running = null;
      return fault;
    });
    return this.running;
  }

  private async probe(): Promise<string | null> {
    for (const folder of this.folders) {
      // One name (one hub per data folder): a probe left by a killed process is replaced, not piled up.
      const file = join(folder, '.meterhub-write-probe');
      try {
        await fsp.rm(file, { force: true });
        const handle = await fsp.open(file, 'wx');
        try {
          await handle.writeFile(Buffer.alloc(PROBE_BYTES, 0x2e)); // every byte (write() may stop short)
          await handle.sync();
        } finally {
          await handle.close();
          await fsp.rm(file, { force: true }).catch(() => {});
        }
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        return `${folder}: ${err.code ?? 'error'}: ${err.message}`;
      }
    }
    return null;
  }
}

/** /healthz, /readyz, /metrics, /v1/site. */
export async function operationsRoutes(app: FastifyInstance, opts: { hub: Hub }): Promise<void> {
  const { hub } = opts;
  const lifecycle = lifecycleOf(hub);
  // The embedded store's folder (the SQLite file, its WAL) and the folder new body files are made in.
  const dataDir = hub.config.storage.dataDir;
  const folders = [
    ...(hub.store.kind === 'sqlite' ? [dataDir] : []),
    join(dataDir, 'bodies', 'tmp'),
  ].filter((f) => existsSync(f));
  const probe = new WriteProbe(folders);

  // Not alive once the store's writer has stopped: it does not come back without a restart.
  app.get('/healthz', async () => {
    const refusal = lifecycle.draining ? null : hub.store.writeRefusal?.() ?? null;
    if (refusal) throw new HubError('storage-unavailable', `the store takes no writes until the hub is restarted: ${refusal}`, { retryAfterSeconds: 5 });
    return { status: 'ok' };
  });
  app.get('/readyz', async () => {
    if (lifecycle.draining) throw new HubError('shutting-down', 'the hub is shutting down', { retryAfterSeconds: SHUTDOWN_RETRY_AFTER_SECONDS });
    const refusal = hub.store.writeRefusal?.() ?? null;
    if (refusal) throw new HubError('storage-unavailable', `the store takes no writes: ${refusal}`, { retryAfterSeconds: 5 });
    const fault = await probe.check();
    if (fault) throw new HubError('storage-unavailable', `the hub cannot write its data: ${fault}`, { retryAfterSeconds: 5 });
    try {
      await hub.store.getRoutes();
    } catch {
      throw new HubError('storage-unavailable', 'the store cannot be read', { retryAfterSeconds: 5 });
    }
    return { status: 'ready', site: 'default', role: 'primary' };
  });
  app.get('/metrics', async (_req, reply) => reply.type(hub.metrics.registry.contentType).send(await hub.metrics.registry.metrics()));
  app.get('/v1/site', async () => ({ site: 'default', role: 'primary', peer: null, replicationLagMs: null }));
}
