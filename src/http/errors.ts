import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HubError, PROBLEM_CONTENT_TYPE } from '../errors/hub-error.ts';
import { isStorageFault } from '../store/storage-error.ts';

export function sendProblem(reply: FastifyReply, err: HubError, instance?: string): FastifyReply {
  if (err.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds));
  // The rest of an oversized body is not worth reading: answer, then close the connection.
  if (err.status === 413) reply.header('connection', 'close');
  if (err.status === 401) reply.header('www-authenticate', 'Bearer');
  return reply.code(err.status).type(PROBLEM_CONTENT_TYPE).send(err.toProblem(instance));
}

/** Maps anything thrown to a problem+json answer: never HTML, never a stack trace. */
export function toHubError(error: unknown): HubError {
  if (error instanceof HubError) return error;
  if (isStorageFault(error)) return new HubError('storage-unavailable', 'the hub cannot store data right now; nothing was accepted', { retryAfterSeconds: 5 });
  const fe = error as FastifyError;
  switch (fe?.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': return new HubError('unsupported-media-type', 'this endpoint does not take that content type');
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return new HubError('payload-too-large', 'the body is over the size limit');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY': return new HubError('malformed-json', 'the body is empty');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH': return new HubError('malformed-request', 'the Content-Length does not match the body');
    case 'FST_ERR_CTP_INVALID_JSON_BODY': return new HubError('malformed-json', 'the body is not valid JSON');
    case 'FST_ERR_VALIDATION': return new HubError('malformed-request', fe.message);
    case 'FST_ERR_BAD_URL': return new HubError('malformed-request', 'the path is not valid percent-encoding');
    // No ID or sequence is that long, so nothing is there.
    case 'FST_ERR_MAX_PARAM_LENGTH': return new HubError('not-found', 'no such resource (a path segment is too long)');
    default: break;
  }
  if (fe && typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    if (fe.statusCode === 415) return new HubError('unsupported-media-type', fe.message);
    if (fe.statusCode === 413) return new HubError('payload-too-large', fe.message);
    if (fe.statusCode === 408) return new HubError('request-timeout', fe.message);
    return new HubError('malformed-request', String(fe.message ?? 'bad request'));
  }
  return new HubError('internal', 'the hub failed to handle this request; it is logged');
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const hubError = toHubError(error);
    if (hubError.status >= 500) request.log.error({ err: error, url: request.url, method: request.method }, 'request failed');
    return sendProblem(reply, hubError, request.url.split('?')[0]);
  });
  // Every route's path pattern and methods, so that a known path with another method answers 405.
  const routes: Array<{ pattern: RegExp; methods: Set<string> }> = [];
  app.addHook('onRoute', (route) => {
    const source = `^${route.url.split('/').map((seg) => (seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/')}/?$`;
    let entry = routes.find((r) => r.pattern.source === new RegExp(source).source);
    if (!entry) { entry = { pattern: new RegExp(source), methods: new Set() }; routes.push(entry); }
    for (const m of [route.method].flat()) entry.methods.add(String(m).toUpperCase());
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!;
    const allowed = new Set<string>();
    for (const r of routes) if (r.pattern.test(path)) for (const m of r.methods) allowed.add(m);
    if (allowed.size > 0 && !allowed.has(request.method)) {
      reply.header('allow', [...allowed].sort().join(', '));
      return sendProblem(reply, new HubError('method-not-allowed', `${request.method} is not allowed here; use ${[...allowed].sort().join(', ')}`), path.slice(0, 200));
    }
    return sendProblem(reply, new HubError('not-found', `no such resource: ${request.method} ${path.slice(0, 200)}`));
  });
}

/** Fastify's `frameworkErrors` option: errors raised before routing (a bad URL) answer problem+json too. */
export function frameworkErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  void sendProblem(reply, toHubError(error), request.url.split('?')[0]!.slice(0, 200));
}
