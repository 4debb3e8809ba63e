import type { RouteRule } from '../config/route-schema.ts';
import { HubError } from '../errors/hub-error.ts';
import type { ParticipantDirectory } from '../participants/directory.ts';
import type { Store } from '../store/store.ts';
import type { DeliveryMode, EventAttributes } from '../store/types.ts';
import { isValidMeterId, type MeterIdScheme } from './meter-ids.ts';
import { ruleMatches } from './match.ts';

export interface RouteResult {
  receivers: Array<{ receiver: string; mode: DeliveryMode }>;
  rules: string[];
}

/** How old the cached rule list may get before a message routed reads the stored version again. */
export const ROUTES_REFRESH_MS = 1_000;

/**
 * Finds a message's receivers: the union of the matching rules' targets (participants named
 * directly, and meter roles looked up in the registry at the message's time), less the sender,
 * less anyone who is not an active receiver.
 *
 * The rules are cached. A PUT through this process reloads them at once; one through another
 * process sharing the store is picked up by the first message routed here once the copy is older
 * than `refreshMs` (it reads the stored rules again, single-flight, and keeps them only if their
 * version is newer): so every message routed more than `refreshMs` after a routes PUT committed
 * anywhere is routed by the new rules. The receivers come from the participant directory, which
 * is refreshed the same way (directory.ts). The meter registry is not cached (read per message).
 */
export class Router {
  private rules: RouteRule[] = [];
  private version = -1;
  private checkedAt = 0;
  private refreshing: Promise<void> | null = null;

  constructor(
    private readonly store: Store,
    private readonly directory: ParticipantDirectory,
    private readonly validateSubject: MeterIdScheme | null = null,
    readonly refreshMs = ROUTES_REFRESH_MS,
  ) {}

  async reload(): Promise<void> {
    const checkedAt = Date.now();
    const { rules, version } = await this.store.getRoutes();
    // Never back to an older list (a refresh that read before a concurrent PUT, finishing after it).
    if (version >= this.version) {
      this.rules = rules;
      this.version = version;
    }
    this.checkedAt = Math.max(this.checkedAt, checkedAt);
  }

  /** Reads the stored rules again when the copy is older than refreshMs; resolves at once when it is not. */
  refreshIfStale(): Promise<void> {
    if (Date.now() - this.checkedAt <= this.refreshMs) return Promise.resolve();
    this.refreshing ??= this.reload().finally(() => { this.refreshing = null; });
    return this.refreshing;
  }

  get routesVersion(): number { return this.version; }

  async route(attrs: EventAttributes, receivedAt: number): Promise<RouteResult> {
    await Promise.all([this.refreshIfStale(), this.directory.refreshIfStale()]);
    const matched = this.rules.filter((r) => ruleMatches(r, attrs));
    for (const scheme of new Set([this.validateSubject, ...matched.map((r) => r.validateSubject)])) {
      if (scheme && !isValidMeterId(scheme, attrs.subject)) {
        throw new HubError('invalid-meter-id', `subject '${attrs.subject}' is not a valid ${scheme.toUpperCase()} meter ID`);
      }
    }
    const targets = new Set<string>();
    const roles = new Set<string>();
    for (const rule of matched) {
      for (const p of rule.to.participants ?? []) targets.add(p);
      for (const role of rule.to.roles ?? []) roles.add(role);
    }
    if (roles.size > 0) {
      const at = effectiveTime(attrs.time, receivedAt);
      for (const entry of await this.store.getMeterEntries(attrs.subject, at)) {
        if (roles.has(entry.role)) targets.add(entry.participant);
      }
    }
    targets.delete(attrs.source);
    const receivers: RouteResult['receivers'] = [];
    for (const id of [...targets].sort()) {
      const p = this.directory.active(id);
      if (p?.receiver) receivers.push({ receiver: id, mode: p.receiver.mode });
    }
    if (receivers.length === 0) {
      const why = matched.length === 0 ? 'no routing rule matches' : `rules ${matched.map((r) => `'${r.name}'`).join(', ')} matched but name no active receiver for meter '${attrs.subject}'`;
      throw new HubError('no-route', `${why} (type '${attrs.type}', source '${attrs.source}', subject '${attrs.subject}')`);
    }
    return { receivers, rules: matched.map((r) => r.name) };
  }
}

function effectiveTime(time: string | undefined, receivedAt: number): number {
  if (time) {
    const t = Date.parse(time);
    if (Number.isFinite(t)) return t;
  }
  return receivedAt;
}
