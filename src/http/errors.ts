import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
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

export interface ProtocolLimits { maxHeaderBytes: number; maxHeaders: number }

/**
 * Errors Node's HTTP parser raises before Fastify sees a request (Fastify's `clientErrorHandler`):
 * headers over `maxHeaderBytes` (431), headers or request too slow (408), anything that is not
 * HTTP/1.1 (400). Answered as problem+json like every other error, then the connection is closed.
 * The error object is not logged: Node puts the raw bytes of the request on it (`rawPacket`),
 * and those hold the Authorization header.
 */
export function clientErrorHandler(limits: ProtocolLimits) {
  const answered = new WeakSet<Socket>();
  return function onClientError(this: FastifyInstance, err: Error & { code?: string }, socket: Socket): void {
    // A reset connection has no one to answer; the parser may report the same socket twice.
    if (err.code === 'ECONNRESET' || socket.destroyed || answered.has(socket)) return;
    answered.add(socket);
    let problem: HubError;
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') problem = new HubError('request-timeout', 'the request headers or body did not arrive in time; the connection is closed');
    else if (err.code === 'HPE_HEADER_OVERFLOW') problem = new HubError('headers-too-large', `the request line and headers are over the limit of ${limits.maxHeaderBytes} bytes`);
    else problem = new HubError('malformed-request', `the request is not valid HTTP/1.1 (${String(err.code ?? 'parse error').slice(0, 40)})`);
    this.log.debug({ event: 'http.client-error', code: err.code, status: problem.status }, 'client error');
    const settle = (): void => {
      if (socket.destroyed) return;
      const inFlight = (socket as SocketWithResponse)._httpMessage;
      // Pipelined requests received in full before the bad one are answered first, in order:
      // the problem written now would be read as the answer to one of them.
      if (inFlight && inFlight.req?.complete && !inFlight.writableFinished) {
        let again = false;
        const next = () => { if (!again) { again = true; setImmediate(settle); } };
        inFlight.once('finish', next);
        inFlight.once('close', next);
        return;
      }
      // The request in flight (if any) is the bad one: answer it, unless its answer has begun.
      if (socket.writable && !inFlight?.headersSent) {
        const body = JSON.stringify(problem.toProblem());
        socket.write(`HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status]}\r\ncontent-type: ${PROBLEM_CONTENT_TYPE}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      }
      // Half-close and let what the client is still sending drain for a moment before the close:
      // closing a socket with unread input resets it, and the client could lose the answer.
      socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
    };
    settle();
  };
}

type SocketWithResponse = Socket & {
  _httpMessage?: (NodeJS.EventEmitter & { headersSent: boolean; writableFinished: boolean; req?: { complete: boolean } }) | null;
};

/**
 * Node keeps at most `maxHeadersCount` header fields and silently drops the rest (a dropped
 * Content-Type or ce- header would change what the request means). The server keeps one more
 * than the limit, and this onRequest hook refuses a request that has it.
 */
export function headerCountHook(maxHeaders: number) {
  return async (request: FastifyRequest): Promise<void> => {
    if (request.raw.rawHeaders.length / 2 > maxHeaders) throw new HubError('headers-too-large', `a request may carry at most ${maxHeaders} header fields`);
    // HTTP/1.1 requires Host (RFC 9112 §3.2); Node's own check would answer a bare 400.
    if (request.raw.httpVersionMajor === 1 && request.raw.httpVersionMinor >= 1 && request.headers.host === undefined) {
      throw new HubError('malformed-request', 'an HTTP/1.1 request needs a Host header');
    }
  };
}

/**
 * Requests Node would otherwise answer on its own, without a body: an `Expect` other than
 * 100-continue (Node: a bare 417; here the expectation is ignored, as RFC 9110 §10.1.1 allows,
 * and the request handled), and CONNECT (Node: the connection dropped; here a 400 problem).
 */
export function installProtocolHandlers(app: FastifyInstance): void {
  app.server.on('checkExpectation', (req, res) => app.server.emit('request', req, res));
  app.server.on('connect', (_req, socket: Socket) => {
    const body = JSON.stringify(new HubError('malformed-request', 'CONNECT is not served: the hub is not a proxy').toProblem());
    socket.on('error', () => { /* the client went away */ });
    socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: ${PROBLEM_CONTENT_TYPE}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    setTimeout(() => socket.destroy(), 1000).unref();
  });
}
