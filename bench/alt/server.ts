/**
 * The usual alternative's ingest: Fastify + BullMQ, as a team would write it. POST /v1/messages
 * takes a structured CloudEvent (application/cloudevents+json), checks the Bearer key against
 * SHA-256 hashes, checks the required attributes and that `source` is the key's participant,
 * routes it (bench/alt/router.ts), adds one job per receiver and answers 202 once Redis has
 * acknowledged the jobs. How durable that 202 is depends on Redis's appendfsync setting
 * (bench/alt/redis-server.ts). No deduplication of (source, id), no archive, no sequence.
 *
 * Env ALT_CONFIG (bench/alt/config.ts), ALT_PORT (0 = any). Prints `alt listening on <url>`.
 * GET /_count answers {"accepted": n} (events answered 202 so far).
 */
import Fastify, { type FastifyReply } from 'fastify';
import { Queue } from 'bullmq';
import { readAltConfig, sha256Hex } from './config.ts';
import type { PushJob } from './push-job.ts';
import { routerFor } from './router.ts';

const config = readAltConfig();
const senders = new Map(Object.entries(config.keyHashes));
const route = routerFor(config.routes);
const queue = new Queue<PushJob>(config.queueName, {
  connection: { host: '127.0.0.1', port: config.redisPort },
  defaultJobOptions: {
    attempts: config.attempts,
    backoff: { type: 'exponential', delay: config.backoffMs },
    removeOnComplete: true,
    // Failed jobs are kept: they are the dead-letter queue.
    removeOnFail: false,
  },
});
await queue.waitUntilReady();

const NAME = /^[a-z0-9]{1,20}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;
const REQUIRED = ['id', 'source', 'type', 'subject'] as const;

/** What is wrong with the event's attributes, or null. */
function invalid(event: Record<string, unknown>): string | null {
  if (event.specversion !== '1.0') return 'specversion must be "1.0"';
  for (const name of REQUIRED) {
    const v = event[name];
    if (typeof v !== 'string' || v.length === 0 || v.length > 256) return `the attribute '${name}' must be a non-empty string of at most 256 characters`;
  }
  if (event.time !== undefined && (typeof event.time !== 'string' || !RFC3339.test(event.time))) return "the attribute 'time' must be an RFC 3339 timestamp";
  for (const [name, v] of Object.entries(event)) {
    if (name === 'data' || name === 'data_base64') continue;
    if (!NAME.test(name)) return `attribute names are 1-20 lower-case letters or digits: '${name.slice(0, 40)}'`;
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') return `the attribute '${name}' must be a string, number or boolean`;
  }
  return null;
}

function problem(reply: FastifyReply, status: number, title: string, detail: string) {
  return reply.code(status).type('application/problem+json').send({ type: 'about:blank', title, status, detail });
}

let accepted = 0;
const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
app.addContentTypeParser('application/cloudevents+json', { parseAs: 'string' }, app.getDefaultJsonParser('error', 'ignore'));

app.post('/v1/messages', async (request, reply) => {
  const auth = request.headers.authorization;
  const participant = auth?.startsWith('Bearer ') ? senders.get(sha256Hex(auth.slice(7))) : undefined;
  if (participant === undefined) return problem(reply, 401, 'Unauthorized', 'a valid Bearer key is required');
  const event = request.body;
  if (!event || typeof event !== 'object' || Array.isArray(event)) return problem(reply, 400, 'Invalid event', 'the body must be one structured CloudEvent');
  const { data, data_base64: base64, ...attributes } = event as Record<string, unknown>;
  const why = invalid(attributes);
  if (why) return problem(reply, 400, 'Invalid event', why);
  if (attributes.source !== participant) return problem(reply, 403, 'Forbidden', "the event's source is not the key's participant");
  const receivers = route(attributes as { type: string; source: string; subject: string });
  if (receivers.length === 0) return problem(reply, 422, 'No route', 'no route matches the event');
  if (base64 !== undefined && typeof base64 !== 'string') return problem(reply, 400, 'Invalid event', 'data_base64 must be a string');
  const body: Omit<PushJob, 'receiver'> = typeof base64 === 'string'
    ? { attributes: attributes as PushJob['attributes'], data: base64, base64: true }
    : { attributes: attributes as PushJob['attributes'], data: JSON.stringify(data ?? null) };
  const jobs = receivers.map((receiver) => ({ name: 'push', data: { receiver, ...body } }));
  // One job per receiver; addBulk adds several in one atomic round trip.
  const added = jobs.length === 1 ? [await queue.add(jobs[0]!.name, jobs[0]!.data)] : await queue.addBulk(jobs);
  accepted++;
  return reply.code(202).send({ id: attributes.id, jobs: added.map((j) => j.id) });
});

app.get('/_count', async () => ({ accepted }));

const address = await app.listen({ host: '127.0.0.1', port: Number(process.env.ALT_PORT ?? 0) });
process.stdout.write(`alt listening on ${address}\n`);

const stop = async () => {
  await app.close();
  await queue.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
