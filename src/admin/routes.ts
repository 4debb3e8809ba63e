import type { FastifyInstance, FastifyRequest } from 'fastify';
import { PassThrough, type Readable } from 'node:stream';
import { z } from 'zod';
import type { Authenticator } from '../auth/authenticator.ts';
import { participantBodySchema, participantIdSchema } from '../config/receiver-schema.ts';
import { routesSchema } from '../config/route-schema.ts';
import { formatZodError } from '../config/load.ts';
import { HubError } from '../errors/hub-error.ts';
import type { Store } from '../store/store.ts';
import { participantView, type AdminService } from './admin-service.ts';
import type { CheckedImport } from './meter-import.ts';
import { mediaType } from '../http/body.ts';
import { toHubError } from '../http/errors.ts';

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

const NDJSON = 'application/x-ndjson';
const PROGRESS_EVERY_MS = 250;

function acceptsNdjson(accept: string | undefined): boolean {
  return (accept ?? '').split(',').some((part) => part.split(';')[0]!.trim().toLowerCase() === NDJSON);
}

/**
 * Applies a checked registry import, writing one JSON line of progress at most every 250 ms
 * (`{"progress":{"imported":n,"rows":total}}`), then the answer `{"imported":n}`, or a problem
 * object (with `status`) if the store failed midway.
 */
function streamImport(admin: AdminService, checked: CheckedImport, out: PassThrough, request: FastifyRequest): void {
  const line = (value: unknown) => `${JSON.stringify(value)}\n`;
  let last = 0;
  const progress = (imported: number) => {
    if (Date.now() - last < PROGRESS_EVERY_MS) return;
    last = Date.now();
    out.write(line({ progress: { imported, rows: checked.rows } }));
  };
  progress(0);
  admin.applyMeters(checked, progress).then(
    (imported) => out.end(line({ imported })),
    (error: unknown) => {
      const problem = toHubError(error);
      request.log.error({ err: error, url: request.url }, 'registry import failed while applying');
      out.end(line(problem.toProblem(request.url.split('?')[0])));
    },
  );
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

  app.post('/v1/admin/meters', async (request, reply) => {
    const media = mediaType(request.headers['content-type']);
    if (media?.type !== 'text/csv' && media?.type !== 'application/csv') throw new HubError('unsupported-media-type', 'send the meter registry as text/csv');
    // Every row is checked before the answer starts, so a bad row is a plain 400 either way.
    const checked = await admin.checkMeters(request.body as Readable).catch((error: unknown) => {
      // The rest of the upload is not worth reading (a bad row may come long before its end): answer, then close.
      if (!request.raw.complete) reply.header('connection', 'close');
      throw error;
    });
    if (!acceptsNdjson(request.headers.accept)) return { imported: await admin.applyMeters(checked) };
    const out = new PassThrough();
    out.on('error', () => {}); // a client gone mid-import: the import still completes
    void reply.code(200).type(NDJSON).send(out);
    streamImport(admin, checked, out, request);
    return reply;
  });

  app.get<{ Params: { meter: string } }>('/v1/admin/meters/:meter', async (request) => {
    const entries = await store.getMeterEntries(request.params.meter, null);
    if (entries.length === 0) throw new HubError('not-found', `meter '${request.params.meter.slice(0, 64)}' is not in the registry`);
    const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
    return { meter: request.params.meter, roles: entries.map((e) => ({ role: e.role, participant: e.participant, validFrom: iso(e.validFrom), validTo: iso(e.validTo) })) };
  });

  app.get('/v1/admin/deliveries/summary', async () => ({ deliveries: await store.countDeliveriesByState() }));
}
