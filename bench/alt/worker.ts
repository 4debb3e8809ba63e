/**
 * The usual alternative's delivery: a BullMQ Worker in its own process, ALT_CONFIG's
 * `concurrency` jobs at once, each POSTed to its receiver as a binary-mode CloudEvent with
 * Standard Webhooks signature headers, through one shared undici Pool per receiver. A non-2xx
 * answer or a network error fails the attempt; BullMQ retries it with exponential backoff (the
 * job's `attempts` and `backoff`) and keeps it as failed once they are spent.
 *
 * Env ALT_CONFIG (bench/alt/config.ts). Prints `alt worker ready` when connected.
 */
import { Worker, type Job } from 'bullmq';
import { Pool } from 'undici';
import { signatureHeader } from '../../src/delivery/signing.ts';
import { readAltConfig } from './config.ts';
import { cloudEventHeaders, type PushJob } from './push-job.ts';

const config = readAltConfig();

interface Endpoint { pool: Pool; path: string; secret: string }
const endpoints = new Map<string, Endpoint>();
for (const [id, r] of Object.entries(config.receivers)) {
  const url = new URL(r.url);
  endpoints.set(id, {
    pool: new Pool(url.origin, { connections: config.concurrency, pipelining: 1, keepAliveTimeout: 60_000 }),
    path: url.pathname + url.search,
    secret: r.secret,
  });
}

async function push(job: Job<PushJob>): Promise<void> {
  const { receiver, attributes, data, base64 } = job.data;
  const endpoint = endpoints.get(receiver);
  if (!endpoint) throw new Error(`no push endpoint for '${receiver}'`);
  const body = Buffer.from(data, base64 ? 'base64' : 'utf8');
  // The same webhook-id on every attempt of a job, so a receiver can drop repeats.
  const webhookId = `job_${job.id}`;
  const timestamp = Math.floor(Date.now() / 1000);
  const res = await endpoint.pool.request({
    method: 'POST', path: endpoint.path,
    headers: {
      ...cloudEventHeaders(attributes),
      'content-length': String(body.length),
      'webhook-id': webhookId,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signatureHeader([endpoint.secret], webhookId, timestamp, body),
    },
    body,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  await res.body.dump();
  if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`${receiver} answered ${res.statusCode}`);
}

const worker = new Worker<PushJob>(config.queueName, push, {
  connection: { host: '127.0.0.1', port: config.redisPort },
  concurrency: config.concurrency,
});
worker.on('error', (err) => process.stderr.write(`worker error: ${err.message}\n`));
await worker.waitUntilReady();
process.stdout.write('alt worker ready\n');

const stop = async () => {
  // Lets the jobs in flight finish; the others stay in Redis.
  await worker.close();
  await Promise.all([...endpoints.values()].map((e) => e.pool.close()));
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
