import type { FastifyInstance } from 'fastify';
import type { Authenticator } from '../auth/authenticator.ts';
import type { Store } from '../store/store.ts';
import { parseSearchQuery, searchArchive } from './search.ts';

export interface SearchRouteOptions { auth: Authenticator; store: Store }

/** `GET /v1/messages`: archive search, for any key (each sees only its own messages). */
export async function searchRoutes(app: FastifyInstance, opts: SearchRouteOptions): Promise<void> {
  app.get<{ Querystring: Record<string, unknown> }>('/v1/messages', async (request) => {
    const caller = await opts.auth.authenticate(request.headers.authorization);
    return searchArchive(opts.store, caller, parseSearchQuery(request.query));
  });
}
