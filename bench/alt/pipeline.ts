/**
 * The whole BullMQ pipeline for a benchmark: a private redis-server (bench/alt/redis-server.ts),
 * the worker (bench/alt/worker.ts) and the Fastify server (bench/alt/server.ts), each in its own
 * process, configured from the hub's benchmark config.
 */
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { request } from 'undici';
import { spawnTs, type Child } from '../lib/children.ts';
import { altConfigFrom } from './config.ts';
import { startRedisServer, type AofFsync, type RedisServer } from './redis-server.ts';

export interface BullmqPipeline {
  url: string;
  /** The server's process (the ingest side, like the hub's process). */
  serverPid: number;
  /** Every process of the pipeline, by role. */
  pids: { server: number; worker: number; redis: number };
  redis: RedisServer;
  /** Redis's own word on its persistence: appendonly, appendfsync, save. */
  persistence: Record<string, string>;
  /** Events the server has answered 202. */
  accepted(): Promise<number>;
  /** BullMQ's job counts by state. */
  jobCounts(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

export async function startBullmqPipeline(dir: string, hubConfig: Record<string, unknown>, fsync: AofFsync, concurrency: number): Promise<BullmqPipeline> {
  const redis = await startRedisServer(join(dir, 'redis'), fsync);
  const children: Child[] = [];
  const config = altConfigFrom(hubConfig, redis.port, concurrency);
  const queue = new Queue(config.queueName, { connection: { host: '127.0.0.1', port: redis.port } });
  try {
    const env = { ALT_CONFIG: JSON.stringify(config) };
    children.push(await spawnTs('alt-worker', 'bench/alt/worker.ts', [], { env, ready: /alt worker ready/ }));
    const server = await spawnTs('alt-server', 'bench/alt/server.ts', [], { env, ready: /alt listening on (\S+)/ });
    children.push(server);
    // BullMQ's client is an ioredis instance, whose CONFIG its interface type leaves out.
    const client = (await queue.client) as unknown as { config(op: 'GET', name: string): Promise<string[]> };
    const persistence: Record<string, string> = {};
    for (const name of ['appendonly', 'appendfsync', 'save']) {
      const [, value] = await client.config('GET', name);
      persistence[name] = value ?? '';
    }
    const url = server.ready[1]!;
    return {
      url, serverPid: server.proc.pid!, pids: { server: server.proc.pid!, worker: children[0]!.proc.pid!, redis: redis.pid }, redis, persistence,
      async accepted() {
        const res = await request(`${url}/_count`);
        return ((await res.body.json()) as { accepted: number }).accepted;
      },
      async jobCounts() {
        return queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed');
      },
      async stop() {
        for (const c of children.reverse()) await c.stop(15_000);
        await queue.close();
        await redis.stop();
      },
    };
  } catch (err) {
    for (const c of children) await c.stop(2_000);
    await queue.close();
    await redis.stop();
    throw err;
  }
}
