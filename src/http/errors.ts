import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HubError, PROBLEM_CONTENT_TYPE } from '../errors/hub-error.ts';
import { isStorageFault } from '../store/storage-error.ts';

export function sendProblem(reply: FastifyReply, err: HubError, instance?: string): FastifyReply {
  if (err.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds));
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
  app.setNotFoundHandler((request, reply) => sendProblem(reply, new HubError('not-found', `no such resource: ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}`)));
}
