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

/**
 * Finds a message's receivers: the union of the matching rules' targets (participants named
 * directly, and meter roles looked up in the registry at the message's time), less the sender,
 * less anyone who is not an active receiver.
 */
export class Router {
  private rules: RouteRule[] = [];
  private version = -1;

  constructor(
    private readonly store: Store,
    private readonly directory: ParticipantDirectory,
    private readonly validateSubject: MeterIdScheme | null = null,
  ) {}

  async reload(): Promise<void> {
    const { rules, version } = await this.store.getRoutes();
    this.rules = rules;
    this.version = version;
  }

  get routesVersion(): number { return this.version; }

  async route(attrs: EventAttributes, receivedAt: number): Promise<RouteResult> {
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
