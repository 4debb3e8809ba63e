import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { receiversRoutes } from './admin/receivers-routes.ts';
import { adminRoutes } from './admin/routes.ts';
import { searchRoutes } from './archive/search-routes.ts';
import { dlqRoutes } from './dlq/routes.ts';
import type { Hub } from './hub/hub.ts';
import { clientErrorHandler, frameworkErrorHandler, headerCountHook, installErrorHandlers, installProtocolHandlers } from './http/errors.ts';
import { ADMIN_JSON_DEPTH, jsonBodyParser } from './http/json-body.ts';
import { KeyRateLimiter } from './limits/rate-limiter.ts';
import { inboxRoutes } from './inbox/routes.ts';
import { ingestRoutes } from './ingest/routes.ts';
import { statusRoutes } from './status/routes.ts';
import { operationsRoutes } from './hub/operations-routes.ts';
import { replayRoutes } from './replay/routes.ts';

/** The HTTP API over a hub's services. Listening is the entry point's job. */
export async function buildApp(hub: Hub): Promise<FastifyInstance> {
  const { config } = hub;
  const server = config.server;
  const headersTimeout = Math.min(server.headersTimeoutMs, server.requestTimeoutMs);
  const app = Fastify({
    loggerInstance: hub.logger as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: !server.logRequests }),
    bodyLimit: 1024 * 1024,
    requestTimeout: server.requestTimeoutMs,
    keepAliveTimeout: server.keepAliveTimeoutMs,
    connectionTimeout: server.connectionTimeoutMs,
    http: {
      // Node refuses a request once the target plus header names and values reach maxHeaderSize: +1 makes the limit inclusive.
      maxHeaderSize: server.maxHeaderBytes + 1,
      // A missing Host is refused by the hub's own hook, as problem+json (Node would answer a bare 400).
      requireHostHeader: false,
      headersTimeout,
      requestTimeout: server.requestTimeoutMs,
      // Node looks for connections past headersTimeout/requestTimeout only this often (30 s by default).
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 4))),
    },
    clientErrorHandler: clientErrorHandler({ maxHeaderBytes: server.maxHeaderBytes, maxHeaders: server.maxHeaders }),
    routerOptions: { maxParamLength: 200 },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { allErrors: false } },
    frameworkErrors: frameworkErrorHandler,
  });
  installErrorHandlers(app);
  // One more than the limit is kept, so that a request over it can be told apart and refused.
  app.server.maxHeadersCount = server.maxHeaders + 1;
  app.addHook('onRequest', headerCountHook(server.maxHeaders));
  installProtocolHandlers(app);
  // JSON bodies of the hub's own endpoints: strict UTF-8, depth-limited, no duplicate members.
  // No endpoint takes text/plain (Fastify would hand a string to a handler that wants JSON).
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', jsonBodyParser({ maxDepth: ADMIN_JSON_DEPTH, bodyLimitBytes: 1024 * 1024 }));
  // Node closes only the connections that are idle when the server closes; one whose answer was
  // still being written (a streamed body) would then stay open for keepAliveTimeoutMs and hold up
  // shutdown. Close those as soon as their answer is done.
  let closing = false;
  app.addHook('preClose', async () => { closing = true; });
  app.addHook('onResponse', async (request) => { if (closing) request.raw.socket?.destroySoon(); });
  const auth = hub.auth;

  await app.register(operationsRoutes, { hub });
  await app.register(ingestRoutes, {
    auth, ingest: hub.ingest, bodyLimitBytes: server.bodyLimitBytes, jsonBodyLimitBytes: server.jsonBodyLimitBytes, maxBatchEvents: server.maxBatchEvents,
    maxJsonDepth: server.maxJsonDepth, inlineBodyMaxBytes: config.storage.inlineBodyMaxBytes,
    rateLimiter: server.ingestRateLimit.eventsPerSecond === null ? null : new KeyRateLimiter({ eventsPerSecond: server.ingestRateLimit.eventsPerSecond, burst: server.ingestRateLimit.burst }),
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
