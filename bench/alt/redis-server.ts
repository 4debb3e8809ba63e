/**
 * A private redis-server for the BullMQ pipeline, on a free loopback port with a temp folder of
 * its own: append-only file on, RDB snapshots off (`--save ""`).
 *  - fsync 'always': Redis writes and fsyncs the AOF before it answers a write (it groups the
 *    writes of one event-loop turn into one fsync), so an acknowledged job survives a power cut:
 *    comparable to the hub's 202.
 *  - fsync 'everysec': the AOF is fsync'd once a second in the background, so a crash or power cut
 *    can lose about the last second (up to 2 s when the disk lags) of acknowledged jobs.
 * The machine's shared Redis on 6379 keeps nothing on disk and is never used here.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { freePort } from '../lib/ports.ts';

export type AofFsync = 'always' | 'everysec';

export interface RedisServer {
  port: number;
  pid: number;
  fsync: AofFsync;
  /** SHUTDOWN via SIGTERM (Redis flushes the AOF first); SIGKILL after 10 s. */
  stop(): Promise<void>;
}

/** Whether a `redis-server` binary is on PATH. */
export function redisServerInstalled(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

const live = new Set<ChildProcess>();
process.on('exit', () => { for (const p of live) p.kill('SIGKILL'); });

export async function startRedisServer(dir: string, fsync: AofFsync): Promise<RedisServer> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const proc = spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
    '--appendonly', 'yes', '--appendfsync', fsync, '--save', '',
    // BullMQ needs keys never to be evicted.
    '--maxmemory-policy', 'noeviction', '--daemonize', 'no', '--loglevel', 'notice',
  ], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => { live.delete(proc); resolve(); }));
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`redis-server did not start in 10 s:\n${output}`)); }, 10_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (!output.includes('Ready to accept connections')) return;
      clearTimeout(timer);
      proc.stdout!.off('data', onData);
      proc.stderr!.off('data', onData);
      resolve();
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('error', (err) => { clearTimeout(timer); reject(err); });
    void exited.then(() => { clearTimeout(timer); reject(new Error(`redis-server exited before it was ready:\n${output}`)); });
  });
  proc.stdout!.resume();
  proc.stderr!.resume();
  return {
    port, pid: proc.pid!, fsync,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const killer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}
