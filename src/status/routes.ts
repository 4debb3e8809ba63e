import type { FastifyInstance } from 'fastify';
import type { Archive } from '../archive/archive.ts';
import type { Authenticator, Caller } from '../auth/authenticator.ts';
import { HubError } from '../errors/hub-error.ts';
import type { Store } from '../store/store.ts';
import type { DeliveryRecord, MessageRecord } from '../store/types.ts';
import { attemptView, messageView } from './views.ts';
import { visibleDeliveries } from './visibility.ts';

export interface StatusRouteOptions { auth: Authenticator; store: Store; archive: Archive }

/**
 * What a caller may see of a message: the sender sees all its deliveries, a receiver only its
 * own, an admin everything; anyone else gets 404, as if the message did not exist.
 */
export async function visibleMessage(store: Store, caller: Caller, param: string): Promise<{ message: MessageRecord; deliveries: DeliveryRecord[] }> {
  const notFound = new HubError('not-found', `no message ${param.slice(0, 30)}`);
  if (!/^[1-9][0-9]{0,15}$/.test(param)) throw notFound;
  const message = await store.getMessage(Number(param));
  if (!message) throw notFound;
  const deliveries = visibleDeliveries(caller, message, await store.getDeliveries(message.sequence));
  if (!deliveries) throw notFound;
  return { message, deliveries };
}

export async function statusRoutes(app: FastifyInstance, opts: StatusRouteOptions): Promise<void> {
  app.get<{ Params: { sequence: string } }>('/v1/messages/:sequence', async (request) => {
    const caller = await opts.auth.authenticate(request.headers.authorization);
    const { message, deliveries } = await visibleMessage(opts.store, caller, request.params.sequence);
    return messageView(message, deliveries);
  });

  app.get<{ Params: { sequence: string } }>('/v1/messages/:sequence/attempts', async (request) => {
    const caller = await opts.auth.authenticate(request.headers.authorization);
    const { message, deliveries } = await visibleMessage(opts.store, caller, request.params.sequence);
    const ids = new Set(deliveries.map((d) => d.id));
    const attempts = (await opts.store.getAttempts(message.sequence)).filter((a) => ids.has(a.deliveryId));
    return { sequence: message.sequence, attempts: attempts.map(attemptView) };
  });

  app.get<{ Params: { sequence: string } }>('/v1/messages/:sequence/data', async (request, reply) => {
    const caller = await opts.auth.authenticate(request.headers.authorization);
    const { message } = await visibleMessage(opts.store, caller, request.params.sequence);
    reply.header('content-type', message.contentType).header('content-length', String(message.size))
      .header('digest', `sha-256=${Buffer.from(message.sha256, 'hex').toString('base64')}`)
      .header('ce-sequence', String(message.sequence));
    return reply.send(await opts.archive.stream(message));
  });
}
