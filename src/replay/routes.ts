import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { isoTimeSchema } from '../archive/search-params.ts';
import type { Authenticator } from '../auth/authenticator.ts';
import { participantIdSchema } from '../config/receiver-schema.ts';
import { formatZodError } from '../config/load.ts';
import { HubError } from '../errors/hub-error.ts';
import type { ResendService } from './resend-service.ts';

export interface ReplayRouteOptions { auth: Authenticator; resends: ResendService }

const resendBody = z.strictObject({ receivers: z.array(participantIdSchema).min(1).max(1000).optional() });
const text = z.string().min(1).max(256);
const replayBody = z.strictObject({
  subject: text.optional(), type: text.optional(), source: participantIdSchema.optional(), receiver: participantIdSchema.optional(),
  from: isoTimeSchema.optional(), to: isoTimeSchema.optional(), all: z.boolean().optional(),
});

function parse<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw new HubError('malformed-request', formatZodError(r.error));
  return r.data;
}

/** `POST /v1/messages/{sequence}/resend` (any key: see ResendService) and `POST /v1/admin/replay` (admin keys). */
export async function replayRoutes(app: FastifyInstance, opts: ReplayRouteOptions): Promise<void> {
  app.post<{ Params: { sequence: string } }>('/v1/messages/:sequence/resend', async (request, reply) => {
    const caller = await opts.auth.authenticate(request.headers.authorization);
    const param = request.params.sequence;
    if (!/^[1-9][0-9]{0,15}$/.test(param)) throw new HubError('not-found', `no message ${param.slice(0, 30)}`);
    const { receivers } = parse(resendBody, request.body);
    const resent = await opts.resends.resend(Number(param), caller, receivers);
    return reply.code(202).send({ resent });
  });

  app.post('/v1/admin/replay', async (request, reply) => {
    const caller = await opts.auth.authenticate(request.headers.authorization);
    if (caller.kind !== 'admin') throw new HubError('forbidden', 'replay needs an admin key');
    const { all, ...filter } = parse(replayBody, request.body);
    if (Object.keys(filter).length === 0 && all !== true) {
      throw new HubError('malformed-request', 'name at least one of subject, type, source, receiver, from, to; or send {"all": true} to replay the whole archive');
    }
    if (filter.from !== undefined && filter.to !== undefined && filter.from > filter.to) throw new HubError('malformed-request', 'from must not be after to');
    return reply.code(202).send(await opts.resends.replay(filter));
  });
}
