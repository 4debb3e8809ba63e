import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { receiversRoutes } from './admin/receivers-routes.ts';
import { adminRoutes } from './admin/routes.ts';
import { searchRoutes } from './archive/search-routes.ts';
import { dlqRoutes } from './dlq/routes.ts';
import type { Hub } from './hub/hub.ts';
import { frameworkErrorHandler, installErrorHandlers } from './http/errors.ts';
import { inboxRoutes } from './inbox/routes.ts';
import { ingestRoutes } from './ingest/routes.ts';
import { statusRoutes } from './status/routes.ts';
import { operationsRoutes } from './hub/operations-routes.ts';
import { replayRoutes } from './replay/routes.ts';

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
    frameworkErrors: frameworkErrorHandler,
  });
  installErrorHandlers(app);
  // Node closes only the connections that are idle when the server closes; one whose answer was
  // still being written (a streamed body) would then stay open for keepAliveTimeoutMs and hold up
  // shutdown. Close those as soon as their answer is done.
  let closing = false;
  app.addHook('preClose', async () => { closing = true; });
  app.addHook('onResponse', async (request) => { if (closing) request.raw.socket?.destroySoon(); });
  const auth = hub.auth;

  await app.register(operationsRoutes, { hub });
  await app.register(ingestRoutes, {
    auth, ingest: hub.ingest, bodyLimitBytes: config.server.bodyLimitBytes, maxBatchEvents: config.server.maxBatchEvents,
    maxJsonDepth: MAX_JSON_DEPTH, inlineBodyMaxBytes: config.storage.inlineBodyMaxBytes,
  });
  await app.register(statusRoutes, { auth, store: hub.store, archive: hub.archive });
  await app.register(searchRoutes, { auth, store: hub.store });
  await app.register(replayRoutes, { auth, resends: hub.resends });
  await app.register(dlqRoutes, { auth, dlq: hub.dlq });
  await app.register(inboxRoutes, { auth, inbox: hub.inbox, maxWaitSeconds: config.inbox.maxWaitSeconds, maxMessages: config.inbox.maxMessages });
  await app.register(adminRoutes, { auth, admin: hub.admin, store: hub.store });
  await app.register(receiversRoutes, { auth, store: hub.store, breakerStates: () => hub.push.breakerStates() });
  return app;
}
