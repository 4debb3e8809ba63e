import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Readable } from 'node:stream';
import type { Authenticator } from '../auth/authenticator.ts';
import { HubError } from '../errors/hub-error.ts';
import { declaredLength, mediaType, readBody, requireUtf8 } from '../http/body.ts';
import { sendProblem } from '../http/errors.ts';
import type { KeyRateLimiter, RateDecision } from '../limits/rate-limiter.ts';
import { attributesFromHeaders, checkRawHeaders, parseBatch, parseStructured } from './cloudevents.ts';
import { validateAttributes } from './attributes.ts';
import type { IngestOutcome, IngestService } from './ingest-service.ts';

export interface IngestRouteOptions {
  auth: Authenticator;
  ingest: IngestService;
  /** Largest body in any mode (binary bodies stream); 413 above. */
  bodyLimitBytes: number;
  /** Largest structured or batch body (read whole and parsed); the lower of this and bodyLimitBytes holds. */
  jsonBodyLimitBytes: number;
  maxBatchEvents: number;
  maxJsonDepth: number;
  inlineBodyMaxBytes: number;
  /** Per-key events rate (server.ingestRateLimit); null: no limit. */
  rateLimiter: KeyRateLimiter | null;
}

const STRUCTURED = 'application/cloudevents+json';
const BATCH = 'application/cloudevents-batch+json';

/** POST /v1/messages in the three CloudEvents HTTP modes. */
export async function ingestRoutes(app: FastifyInstance, opts: IngestRouteOptions): Promise<void> {
  // The body is read by the handler itself, so that binary mode can stream and limits hold.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

  app.post('/v1/messages', async (request, reply) => {
    const caller = await opts.auth.authenticate(request.headers.authorization);
    // Events cost tokens: one for a single event, taken before its body is read; a batch is
    // checked for a token first and charged its length once parsed.
    const limiter = opts.rateLimiter;
    const charge = (cost: number, take: boolean) => {
      if (!limiter) return;
      const decision = take ? limiter.take(caller.keyId, cost, Date.now()) : limiter.peek(caller.keyId, cost, Date.now());
      if (!decision.ok) throw rateLimited(decision, cost);
    };
    const media = mediaType(request.headers['content-type']);
    const isBinary = request.headers['ce-specversion'] !== undefined;
    const limit = !isBinary && (media?.type === STRUCTURED || media?.type === BATCH) ? Math.min(opts.jsonBodyLimitBytes, opts.bodyLimitBytes) : opts.bodyLimitBytes;
    const length = declaredLength(request.headers['content-length']);
    if (length !== null && length > limit) {
      reply.header('connection', 'close');
      throw new HubError('payload-too-large', `the body (${length} bytes) is over the limit of ${limit} bytes`);
    }
    checkRawHeaders(request.raw.rawHeaders);
    const stream = (request.body as Readable | undefined) ?? request.raw;

    if (!isBinary && media?.type === STRUCTURED) {
      requireUtf8(media.charset);
      charge(1, true);
      const raw = await readBody(stream, limit);
      const [outcome] = await opts.ingest.ingestEvents([parseStructured(raw, opts.maxJsonDepth)], caller);
      return sendOutcome(reply, outcome!);
    }
    if (!isBinary && media?.type === BATCH) {
      requireUtf8(media.charset);
      charge(1, false);
      const raw = await readBody(stream, limit);
      const events = parseBatch(raw, opts.maxJsonDepth, opts.maxBatchEvents);
      charge(events.length, true);
      const outcomes = await opts.ingest.ingestEvents(events, caller);
      return reply.code(200).send({ results: outcomes.map(batchItem) });
    }
    if (isBinary) {
      if (media?.type === STRUCTURED || media?.type === BATCH) throw new HubError('invalid-event', 'ce-* headers (binary mode) cannot be combined with a CloudEvents JSON content type');
      const contentType = request.headers['content-type'] ?? 'application/octet-stream';
      const rawAttrs = attributesFromHeaders(request.headers, contentType);
      charge(1, true);
      if (length !== null && length <= opts.inlineBodyMaxBytes) {
        const attributes = validateAttributes(rawAttrs);
        const body = await readBody(stream, opts.bodyLimitBytes);
        const [outcome] = await opts.ingest.ingestEvents([{ attributes, contentType, body }], caller);
        return sendOutcome(reply, outcome!);
      }
      return sendOutcome(reply, await opts.ingest.ingestStream(rawAttrs, contentType, stream, opts.bodyLimitBytes, caller));
    }
    throw new HubError('unsupported-media-type', `send ${STRUCTURED} (structured), ${BATCH} (batch), or ce-* headers with the data's own Content-Type (binary); got ${request.headers['content-type'] ? `'${String(request.headers['content-type']).slice(0, 80)}'` : 'no Content-Type'} without ce-specversion`);
  });
}

function rateLimited(decision: RateDecision & { ok: false }, cost: number): HubError {
  return new HubError('rate-limited', `this key is over its ingest rate limit${cost > 1 ? ` (this batch costs ${cost} events)` : ''}; retry in ${decision.retryAfterSeconds} s`, { retryAfterSeconds: decision.retryAfterSeconds });
}

function sendOutcome(reply: FastifyReply, outcome: IngestOutcome): FastifyReply {
  switch (outcome.kind) {
    case 'accepted':
      return reply.code(202).header('location', `/v1/messages/${outcome.receipt.sequence}`).send(outcome.receipt);
    case 'duplicate':
      return reply.code(200).header('location', `/v1/messages/${outcome.receipt.sequence}`).send(outcome.receipt);
    case 'refused':
      return sendProblem(reply, outcome.error, '/v1/messages');
  }
}

function batchItem(outcome: IngestOutcome) {
  switch (outcome.kind) {
    case 'accepted': return { status: 202, ...outcome.receipt };
    case 'duplicate': return { status: 200, ...outcome.receipt };
    case 'refused': return { status: outcome.error.status, problem: outcome.error.toProblem() };
  }
}

