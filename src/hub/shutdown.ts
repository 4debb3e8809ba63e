import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { PROBLEM_CONTENT_TYPE, problemOf } from '../errors/hub-error.ts';
import type { Hub } from './hub.ts';

/** Seconds a client is told to wait (Retry-After) when the hub is shutting down. */
export const SHUTDOWN_RETRY_AFTER_SECONDS = 5;

/** Paths still served while draining: liveness, and readiness (which then answers 503 itself). */
const SERVED_WHILE_DRAINING = new Set(['/healthz', '/readyz']);

/** Whether a hub is draining; /readyz reads it. One per hub. */
export class Lifecycle {
  draining = false;
}

const lifecycles = new WeakMap<Hub, Lifecycle>();

export function lifecycleOf(hub: Hub): Lifecycle {
  let l = lifecycles.get(hub);
  if (!l) { l = new Lifecycle(); lifecycles.set(hub, l); }
  return l;
}

/**
 * Sits in front of the HTTP server's request handler: counts the requests in flight, and once
 * draining answers every new request (but /healthz and /readyz) with 503 problem+json
 * `shutting-down`, `Retry-After` and `Connection: close`, without handing it to the app.
 */
export class RequestGate {
  private active = 0;
  private idleWaiters: Array<() => void> = [];
  private draining = false;

  install(server: Server): void {
    const handlers = server.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>;
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const path = (req.url ?? '/').split('?')[0]!;
      if (this.draining && !SERVED_WHILE_DRAINING.has(path)) {
        refuse(req, res, path);
        return;
      }
      this.active++;
      res.once('close', () => {
        this.active--;
        if (this.active === 0) this.notifyIdle();
      });
      for (const h of handlers) h.call(server, req, res);
    });
  }

  get inFlight(): number { return this.active; }

  drain(): void { this.draining = true; }

  /** Resolves once no request handed to the app is in flight. */
  whenIdle(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

function refuse(req: IncomingMessage, res: ServerResponse, path: string): void {
  const body = JSON.stringify(problemOf('shutting-down', `the hub is shutting down; send again in ${SHUTDOWN_RETRY_AFTER_SECONDS} s (or to another instance)`, path.slice(0, 200)));
  // Whatever body the client is still sending is read and dropped, so that it sees this answer.
  req.resume();
  res.writeHead(503, {
    'content-type': PROBLEM_CONTENT_TYPE,
    'content-length': Buffer.byteLength(body),
    'retry-after': String(SHUTDOWN_RETRY_AFTER_SECONDS),
    connection: 'close',
  });
  res.end(body);
}

export interface ShutdownReport {
  /** Everything in flight finished within the grace period. */
  graceful: boolean;
  /** Push deliveries still in flight at the end of the grace period, put back to pending. */
  released: number;
  tookMs: number;
}

/**
 * Graceful shutdown, in this order:
 * 1. /readyz answers 503 at once, new requests 503 `shutting-down` (Retry-After); long polls end
 *    now with what they have; the push scheduler claims nothing more.
 * 2. Requests in flight (an ingest being committed) and push requests in flight finish, for at
 *    most `graceMs`. A push result that comes back in time is recorded as usual.
 * 3. Past the grace period, the push requests still in flight are cut and their deliveries put
 *    back to `pending` (sent again after the restart, with the same webhook-id): never lost;
 *    HTTP connections still open are closed (their requests were not answered, so nothing of
 *    theirs was acknowledged).
 * 4. The server, the hub's services and the store are closed.
 */
export async function shutdownGracefully(deps: { hub: Hub; app: FastifyInstance; gate: RequestGate; graceMs: number }): Promise<ShutdownReport> {
  const { hub, app, gate, graceMs } = deps;
  const started = Date.now();
  lifecycleOf(hub).draining = true;
  gate.drain();
  hub.inbox.shutdown();
  const pushDrained = hub.push.stop();
  const inTime = await within(Promise.all([pushDrained, gate.whenIdle()]), graceMs);
  let released = 0;
  if (!inTime) {
    hub.logger.warn({ event: 'shutdown.grace-expired', graceMs, pushInFlight: hub.push.inFlightCount, requestsInFlight: gate.inFlight }, 'shutdown grace period over: cutting what is still in flight');
    // Cut the push requests still going; their results are not recorded (the hub is going away)...
    hub.push.abort();
    await within(pushDrained, 2_000);
    // ...and their deliveries go back to pending, to be sent again after the restart. Not on
    // PostgreSQL: other hub processes sharing it hold live leases that this would take from them
    // (and their deliveries would go out twice); this process's leases expire instead, and the
    // lease keeper of another process (or of this one, restarted) sends them again.
    try {
      if (hub.store.kind === 'sqlite') released = await hub.store.releaseAllPushLeases(Date.now());
    } catch (err) {
      hub.logger.error({ err }, 'could not release push leases at shutdown; the next start releases them');
    }
    app.server.closeAllConnections();
  }
  await app.close();
  await hub.stop();
  const report = { graceful: inTime, released, tookMs: Date.now() - started };
  hub.logger.info({ event: 'shutdown.done', ...report }, 'hub stopped');
  return report;
}

/** True if `p` settled within `ms`. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), Math.max(0, ms)); });
  try {
    return await Promise.race([p.then(() => true, () => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}
