import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { cursorParam, isoTimeSchema, limitParam, participantParam, timeRange } from '../archive/search-params.ts';
import type { Authenticator } from '../auth/authenticator.ts';
import { participantIdSchema } from '../config/receiver-schema.ts';
import { formatZodError } from '../config/load.ts';
import { HubError } from '../errors/hub-error.ts';
import { DLQ_CURSOR, type DeadLetterQueue } from './dlq-service.ts';

export interface DlqRouteOptions { auth: Authenticator; dlq: DeadLetterQueue }

const MAX_IDS = 10_000;

const redriveBody = z.union([
  z.strictObject({ deliveries: z.array(z.number().int().positive().max(Number.MAX_SAFE_INTEGER)).min(1).max(MAX_IDS) }),
  z.strictObject({ receiver: participantIdSchema.optional(), from: isoTimeSchema.optional(), to: isoTimeSchema.optional(), all: z.boolean().optional() }),
]);

/**
 * `GET /v1/admin/dlq?receiver=&from=&to=&after=&limit=` (from/to on deadAt) and
 * `POST /v1/admin/dlq/redrive` with `{deliveries: [ids]}` or a filter `{receiver?, from?, to?}`
 * (`{all: true}` for every dead delivery: an empty filter is refused, so that nobody redrives
 * everything by accident). Admin keys only.
 */
export async function dlqRoutes(app: FastifyInstance, opts: DlqRouteOptions): Promise<void> {
  app.addHook('onRequest', async (request: FastifyRequest) => {
    const caller = await opts.auth.authenticate(request.headers.authorization);
    if (caller.kind !== 'admin') throw new HubError('forbidden', 'the dead-letter queue needs an admin key');
  });

  app.get<{ Querystring: Record<string, unknown> }>('/v1/admin/dlq', async (request) => {
    const q = request.query;
    const receiver = participantParam(q, 'receiver');
    const cursor = cursorParam(q, DLQ_CURSOR, 2);
    return opts.dlq.list({ ...(receiver ? { receiver } : {}), ...timeRange(q) }, cursor ? { deadAt: cursor[0]!, id: cursor[1]! } : null, limitParam(q));
  });

  app.post('/v1/admin/dlq/redrive', async (request) => {
    const parsed = redriveBody.safeParse(request.body ?? {});
    if (!parsed.success) throw new HubError('malformed-request', `send {"deliveries": [ids]} (at most ${MAX_IDS}) or a filter {"receiver"?, "from"?, "to"?} (or {"all": true}): ${formatZodError(parsed.error)}`);
    const body = parsed.data;
    if ('deliveries' in body) return { redriven: await opts.dlq.redrive({ ids: body.deliveries }) };
    const { all, ...filter } = body;
    if (Object.keys(filter).length === 0 && all !== true) throw new HubError('malformed-request', 'name a receiver or a time range to redrive, or send {"all": true} to redrive every dead delivery');
    if (filter.from !== undefined && filter.to !== undefined && filter.from > filter.to) throw new HubError('malformed-request', 'from must not be after to');
    return { redriven: await opts.dlq.redrive({ filter }) };
  });
}
