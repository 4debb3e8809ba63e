import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import type { Authenticator } from '../auth/authenticator.ts';
import { participantBodySchema, participantIdSchema } from '../config/receiver-schema.ts';
import { routesSchema } from '../config/route-schema.ts';
import { formatZodError } from '../config/load.ts';
import { HubError } from '../errors/hub-error.ts';
import type { Store } from '../store/store.ts';
import { participantView, type AdminService } from './admin-service.ts';
import { mediaType } from '../http/body.ts';

export interface AdminRouteOptions { auth: Authenticator; admin: AdminService; store: Store }

function parse<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw new HubError('invalid-config', formatZodError(r.error));
  return r.data;
}

function participantId(raw: string): string {
  const r = participantIdSchema.safeParse(raw);
  if (!r.success) throw new HubError('not-found', `no participant '${raw.slice(0, 64)}'`);
  return r.data;
}

/** The /v1/admin API: participants, keys, routes, meter registry. Admin keys only. */
export async function adminRoutes(app: FastifyInstance, opts: AdminRouteOptions): Promise<void> {
  const { admin, store } = opts;
  app.addContentTypeParser(['text/csv', 'application/csv'], (_req, payload, done) => done(null, payload));

  app.addHook('onRequest', async (request: FastifyRequest) => {
    const caller = await opts.auth.authenticate(request.headers.authorization);
    if (caller.kind !== 'admin') throw new HubError('forbidden', 'the admin API needs an admin key');
  });

  app.get('/v1/admin/participants', async () => ({ participants: (await store.listParticipants()).map(participantView) }));

  app.get<{ Params: { id: string } }>('/v1/admin/participants/:id', async (request) => {
    const p = await store.getParticipant(participantId(request.params.id));
    if (!p) throw new HubError('not-found', `no participant '${request.params.id}'`);
    return participantView(p);
  });

  app.put<{ Params: { id: string } }>('/v1/admin/participants/:id', async (request, reply) => {
    const id = parse(participantIdSchema, request.params.id);
    const body = parse(participantBodySchema, request.body);
    const result = await admin.putParticipant(id, body);
    return reply.code(result.created ? 201 : 200).send({ ...result.participant, ...(result.secret ? { secret: result.secret } : {}) });
  });

  app.delete<{ Params: { id: string } }>('/v1/admin/participants/:id', async (request, reply) => {
    await admin.deleteParticipant(participantId(request.params.id));
    return reply.code(204).send();
  });

  app.get<{ Params: { id: string } }>('/v1/admin/participants/:id/keys', async (request) => ({ keys: await admin.listKeys(participantId(request.params.id)) }));

  app.post<{ Params: { id: string } }>('/v1/admin/participants/:id/keys', async (request, reply) => {
    return reply.code(201).send(await admin.createKey(participantId(request.params.id)));
  });

  app.delete<{ Params: { id: string; keyId: string } }>('/v1/admin/participants/:id/keys/:keyId', async (request, reply) => {
    await admin.revokeKey(participantId(request.params.id), request.params.keyId);
    return reply.code(204).send();
  });

  app.post('/v1/admin/keys', async (_request, reply) => reply.code(201).send(await admin.createAdminKey()));
  app.delete<{ Params: { keyId: string } }>('/v1/admin/keys/:keyId', async (request, reply) => {
    await admin.revokeKey(null, request.params.keyId);
    return reply.code(204).send();
  });

  app.get('/v1/admin/routes', async () => (await store.getRoutes()).rules);

  app.put('/v1/admin/routes', async (request) => {
    const rules = parse(routesSchema, request.body);
    const version = await admin.setRoutes(rules);
    return { version, rules };
  });

  app.post('/v1/admin/meters', async (request) => {
    const media = mediaType(request.headers['content-type']);
    if (media?.type !== 'text/csv' && media?.type !== 'application/csv') throw new HubError('unsupported-media-type', 'send the meter registry as text/csv');
    return { imported: await admin.importMeters(request.body as Readable) };
  });

  app.get<{ Params: { meter: string } }>('/v1/admin/meters/:meter', async (request) => {
    const entries = await store.getMeterEntries(request.params.meter, null);
    if (entries.length === 0) throw new HubError('not-found', `meter '${request.params.meter.slice(0, 64)}' is not in the registry`);
    const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
    return { meter: request.params.meter, roles: entries.map((e) => ({ role: e.role, participant: e.participant, validFrom: iso(e.validFrom), validTo: iso(e.validTo) })) };
  });

  app.get('/v1/admin/deliveries/summary', async () => ({ deliveries: await store.countDeliveriesByState() }));
}
