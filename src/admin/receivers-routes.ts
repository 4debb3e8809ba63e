import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Authenticator } from '../auth/authenticator.ts';
import type { BreakerView } from '../delivery/receiver-gates.ts';
import { HubError } from '../errors/hub-error.ts';
import type { Store } from '../store/store.ts';

export interface ReceiversRouteOptions {
  auth: Authenticator;
  store: Store;
  /** The push dispatcher's circuit breakers (receivers it has not sent to are closed). */
  breakerStates: () => BreakerView[];
}

/**
 * `GET /v1/admin/receivers`: every push receiver with its rate limit and the state of its circuit
 * breaker in this process (`closed`, `open` until `openUntil`, or `half-open`). Admin keys only.
 */
export async function receiversRoutes(app: FastifyInstance, opts: ReceiversRouteOptions): Promise<void> {
  app.addHook('onRequest', async (request: FastifyRequest) => {
    const caller = await opts.auth.authenticate(request.headers.authorization);
    if (caller.kind !== 'admin') throw new HubError('forbidden', 'the admin API needs an admin key');
  });

  app.get('/v1/admin/receivers', async () => {
    const breakers = new Map(opts.breakerStates().map((b) => [b.receiver, b]));
    const receivers = [];
    for (const p of await opts.store.listParticipants()) {
      if (p.receiver?.mode !== 'push') continue;
      const b = breakers.get(p.id);
      receivers.push({
        receiver: p.id,
        url: p.receiver.url,
        maxInFlight: p.receiver.maxInFlight,
        ratePerSecond: p.receiver.ratePerSecond,
        breaker: {
          state: b?.state ?? 'closed',
          consecutiveFailures: b?.consecutiveFailures ?? 0,
          openUntil: b?.openUntil ? new Date(b.openUntil).toISOString() : null,
        },
      });
    }
    return { receivers };
  });
}
