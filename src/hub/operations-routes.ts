import type { FastifyInstance } from 'fastify';
import { HubError } from '../errors/hub-error.ts';
import type { Hub } from './hub.ts';

/** /healthz, /readyz, /metrics, /v1/site. */
export async function operationsRoutes(app: FastifyInstance, opts: { hub: Hub }): Promise<void> {
  const { hub } = opts;
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async () => {
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
