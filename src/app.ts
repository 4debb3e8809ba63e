import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { adminRoutes } from './admin/routes.ts';
import type { Hub } from './hub/hub.ts';
import { installErrorHandlers } from './http/errors.ts';
import { inboxRoutes } from './inbox/routes.ts';
import { ingestRoutes } from './ingest/routes.ts';
import { statusRoutes } from './status/routes.ts';
import { operationsRoutes } from './hub/operations-routes.ts';

export const MAX_JSON_DEPTH = 64;

/** The HTTP API over a hub's services. Listening is the entry point's job. */
export async function buildApp(hub: Hub): Promise<FastifyInstance> {
  const { config } = hub;
  const app = Fastify({
    loggerInstance: hub.logger as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: !config.server.logRequests }),
    bodyLimit: 1024 * 1024,
    requestTimeout: config.server.requestTimeoutMs,
    keepAliveTimeout: config.server.keepAliveTimeoutMs,
    connectionTimeout: config.server.requestTimeoutMs,
    routerOptions: { maxParamLength: 200 },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { allErrors: false } },
  });
  installErrorHandlers(app);
  const auth = hub.auth;

  await app.register(operationsRoutes, { hub });
  await app.register(ingestRoutes, {
    auth, ingest: hub.ingest, bodyLimitBytes: config.server.bodyLimitBytes, maxBatchEvents: config.server.maxBatchEvents,
    maxJsonDepth: MAX_JSON_DEPTH, inlineBodyMaxBytes: config.storage.inlineBodyMaxBytes,
  });
  await app.register(statusRoutes, { auth, store: hub.store, archive: hub.archive });
  await app.register(inboxRoutes, { auth, inbox: hub.inbox, maxWaitSeconds: config.inbox.maxWaitSeconds, maxMessages: config.inbox.maxMessages });
  await app.register(adminRoutes, { auth, admin: hub.admin, store: hub.store });
  return app;
}
