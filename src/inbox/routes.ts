import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Authenticator } from '../auth/authenticator.ts';
import { formatZodError } from '../config/load.ts';
import { HubError } from '../errors/hub-error.ts';
import type { InboxService } from './inbox-service.ts';

export interface InboxRouteOptions { auth: Authenticator; inbox: InboxService; maxWaitSeconds: number; maxMessages: number }

const leasesBody = z.strictObject({ leases: z.array(z.string().min(1).max(200)).min(1).max(1000) });
const nackBody = leasesBody.extend({ delaySeconds: z.number().int().min(0).max(43_200).default(0) });

function intParam(raw: unknown, name: string, min: number, max: number, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  // Plain decimal digits only: no sign, space, exponent, hex or repeated parameter.
  const n = typeof raw === 'string' && /^[0-9]{1,9}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new HubError('malformed-request', `${name} must be an integer from ${min} to ${max}`);
  return n;
}

async function receiverOf(auth: Authenticator, header: string | undefined): Promise<string> {
  const caller = await auth.authenticate(header);
  if (caller.kind !== 'participant') throw new HubError('forbidden', 'the inbox is read with the receiver\'s own key');
  return caller.participant;
}

/** GET /v1/inbox (long poll), POST /v1/inbox/ack, POST /v1/inbox/nack. */
export async function inboxRoutes(app: FastifyInstance, opts: InboxRouteOptions): Promise<void> {
  // Long polls in progress, each settled once its answer is written (or the client went away).
  const polls = new Set<Promise<void>>();
  // A graceful close first ends every long poll (they answer at once, with `Connection: close`)
  // and lets the answers go out; otherwise the close waits out the wait and then the keep-alive.
  app.addHook('preClose', async () => {
    opts.inbox.shutdown();
    await Promise.allSettled([...polls]);
  });

  app.get<{ Querystring: Record<string, string> }>('/v1/inbox', async (request, reply) => {
    const receiver = await receiverOf(opts.auth, request.headers.authorization);
    const max = intParam(request.query.max, 'max', 1, opts.maxMessages, 10);
    const wait = intParam(request.query.wait, 'wait', 0, opts.maxWaitSeconds, 0);
    const abort = new AbortController();
    request.raw.on('close', () => abort.abort());
    const answered = new Promise<void>((resolve) => reply.raw.once('close', resolve));
    polls.add(answered);
    void answered.then(() => polls.delete(answered));
    const items = await opts.inbox.poll(receiver, max, wait, abort.signal);
    if (opts.inbox.shuttingDown) reply.header('connection', 'close');
    const messages = items.map((i) => `{"lease":${JSON.stringify(i.lease)},"leaseExpiresAt":"${i.leaseExpiresAt}","receives":${i.receives},"resend":${i.resend},"event":${i.event}}`);
    return reply.type('application/json; charset=utf-8').send(`{"messages":[${messages.join(',')}]}`);
  });

  app.post('/v1/inbox/ack', async (request) => {
    const receiver = await receiverOf(opts.auth, request.headers.authorization);
    const body = leasesBody.safeParse(request.body);
    if (!body.success) throw new HubError('malformed-request', formatZodError(body.error));
    return { results: await opts.inbox.ack(receiver, body.data.leases) };
  });

  app.post('/v1/inbox/nack', async (request) => {
    const receiver = await receiverOf(opts.auth, request.headers.authorization);
    const body = nackBody.safeParse(request.body);
    if (!body.success) throw new HubError('malformed-request', formatZodError(body.error));
    return { results: await opts.inbox.nack(receiver, body.data.leases, body.data.delaySeconds) };
  });
}
