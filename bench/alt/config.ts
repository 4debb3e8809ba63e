/**
 * The BullMQ pipeline's settings, derived from the same config the hub gets in the benchmark
 * (participants with keys and receivers, routes) so both do the same routing and delivery.
 * Passed to the server and the worker processes as JSON in ALT_CONFIG.
 */
import { createHash, randomBytes } from 'node:crypto';

/** A route field: an exact value, any of a list, or a prefix (as the hub's matchers). */
export type AltMatcher = string | string[] | { prefix: string };

export interface AltRoute {
  match: { type?: AltMatcher; source?: AltMatcher; subject?: AltMatcher };
  to: string[];
}

export interface AltConfig {
  redisPort: number;
  queueName: string;
  /** SHA-256 (hex) of each sender key → the participant it acts as. */
  keyHashes: Record<string, string>;
  routes: AltRoute[];
  /** Push receivers by participant: endpoint and Standard Webhooks signing secret. */
  receivers: Record<string, { url: string; secret: string }>;
  /** Jobs the worker runs at once (the hub's receiver maxInFlight). */
  concurrency: number;
  /** Retry policy of each job: the hub's defaults (30 attempts, exponential from 2 s). */
  attempts: number;
  backoffMs: number;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

interface HubParticipant { keys?: string[]; receiver?: { mode: string; url?: string; maxInFlight?: number } }
interface HubRoute { match?: AltRoute['match']; to: { participants?: string[] } }

/** The hub's benchmark config (participants, routes) in the pipeline's terms. */
export function altConfigFrom(hubConfig: Record<string, unknown>, redisPort: number, concurrency: number): AltConfig {
  const participants = hubConfig.participants as Record<string, HubParticipant>;
  const keyHashes: Record<string, string> = {};
  const receivers: AltConfig['receivers'] = {};
  for (const [id, p] of Object.entries(participants)) {
    for (const key of p.keys ?? []) keyHashes[sha256Hex(key)] = id;
    if (p.receiver?.mode === 'push' && p.receiver.url) receivers[id] = { url: p.receiver.url, secret: `whsec_${randomBytes(24).toString('base64')}` };
  }
  const routes = (hubConfig.routes as HubRoute[]).map((r) => {
    if (!r.to.participants?.length) throw new Error('the BullMQ pipeline routes to participants only (no registry roles)');
    return { match: r.match ?? {}, to: r.to.participants };
  });
  return { redisPort, queueName: 'deliveries', keyHashes, routes, receivers, concurrency, attempts: 30, backoffMs: 2_000 };
}

export function readAltConfig(): AltConfig {
  const raw = process.env.ALT_CONFIG;
  if (!raw) throw new Error('set ALT_CONFIG');
  return JSON.parse(raw) as AltConfig;
}
