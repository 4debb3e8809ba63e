/**
 * The inside of a storage-fault scenario, run by test/faults/namespace.ts in a private mount
 * namespace where argv[2]/data is a small tmpfs. Starts the hub as a child process on it,
 * breaks the storage for real (fills the tmpfs, or makes the folder read-only), and prints
 * `RESULT {"ok", "error"?, "figures"}`. Cleans up (hub, receivers) whatever happens: on success,
 * on a failed check, on SIGTERM and when the parent goes away (stdin closes).
 */
import { execFileSync } from 'node:child_process';
import { closeSync, fsyncSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { startHubProcess, type HubProcess } from '../../support/hub-process.ts';
import { ADMIN_KEY } from '../../chaos/kit.ts';

export interface Ctx {
  base: string;
  dataDir: string;
  figures: Record<string, unknown>;
  /** Starts (or restarts) the hub on dataDir. */
  startHub(configFile: string): Promise<HubProcess>;
  onCleanup(fn: () => Promise<void> | void): void;
}

export async function scenario(fn: (ctx: Ctx) => Promise<void>): Promise<void> {
  const base = process.argv[2]!;
  const hubs: HubProcess[] = [];
  const cleanups: Array<() => Promise<void> | void> = [];
  const figures: Record<string, unknown> = {};
  let finished = false;
  const cleanup = async () => {
    for (const h of hubs) await h.kill9().catch(() => {});
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
  };
  const abort = (why: string) => {
    if (finished) return;
    finished = true;
    void cleanup().finally(() => {
      process.stdout.write(`RESULT ${JSON.stringify({ ok: false, error: why, figures })}\n`);
      process.exit(1);
    });
  };
  process.once('SIGTERM', () => abort('the scenario was stopped (timeout)'));
  process.stdin.on('end', () => abort('the parent went away'));
  process.stdin.resume();
  const ctx: Ctx = {
    base,
    dataDir: join(base, 'data'),
    figures,
    async startHub(configFile) {
      const hub = await startHubProcess({ configFile, dataDir: join(base, 'data'), adminKey: ADMIN_KEY });
      hubs.push(hub);
      return hub;
    },
    onCleanup(c) { cleanups.push(c); },
  };
  let result: { ok: boolean; error?: string; figures: Record<string, unknown> };
  try {
    await fn(ctx);
    result = { ok: true, figures };
  } catch (e) {
    result = { ok: false, error: (e as Error).stack ?? String(e), figures };
  }
  if (finished) return;
  finished = true;
  await cleanup();
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  process.exit(0);
}

/** Fills the file system of `dir` to the last byte with `dir/filler`; returns its size. */
export function fillDisk(dir: string): number {
  const fd = openSync(join(dir, 'filler'), 'w');
  let size = 0;
  for (const chunk of [1 << 20, 1 << 16, 1 << 12, 1 << 8, 1]) {
    const buf = Buffer.alloc(chunk, 0x55);
    try { for (;;) size += writeSync(fd, buf); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e; }
  }
  try { fsyncSync(fd); } catch { /* tmpfs */ }
  closeSync(fd);
  return size;
}

export function freeDisk(dir: string): void {
  rmSync(join(dir, 'filler'), { force: true });
}

/**
 * Makes `dir` read-only for real (EROFS): a read-only bind mount of it over itself. Files the hub
 * opens from now on (a new body file, the readiness probe) see it; files it holds open already
 * (the SQLite database and its WAL, opened through the mount below) can still be written, as
 * Linux lets them be: a file system cannot be made read-only under a writer (EBUSY).
 */
export function makeReadOnly(dir: string): void {
  execFileSync('mount', ['--bind', dir, dir]);
  execFileSync('mount', ['-o', 'remount,bind,ro', dir]);
}

/**
 * Lifts the read-only bind mount. A file the hub opened through it meanwhile (a body being read
 * for a push, say) makes a plain umount answer EBUSY until it is closed; after a few tries the
 * mount is detached lazily (umount -l): files open through it keep working, and every new open
 * sees the writable folder below, which is what "the disk is writable again" means to the hub.
 */
export function makeWritable(dir: string): void {
  for (let i = 0; i < 20; i++) {
    try { execFileSync('umount', [dir], { stdio: 'pipe' }); return; } catch { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100); }
  }
  execFileSync('umount', ['-l', dir]);
}

/** Body files left half-written in bodies/tmp (the readiness probe's file aside). */
export function leftoverTmpFiles(dataDir: string): string[] {
  try {
    return readdirSync(join(dataDir, 'bodies', 'tmp')).filter((f) => !f.startsWith('.meterhub-write-probe'));
  } catch {
    return [];
  }
}
