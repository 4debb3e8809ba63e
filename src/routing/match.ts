import type { Matcher, RouteRule } from '../config/route-schema.ts';
import type { EventAttributes } from '../store/types.ts';

export function matches(m: Matcher | undefined, value: unknown): boolean {
  if (m === undefined) return true;
  if (typeof value !== 'string') return false;
  if (typeof m === 'string') return m === value;
  if (Array.isArray(m)) return m.includes(value);
  return value.startsWith(m.prefix);
}

export function ruleMatches(rule: RouteRule, attrs: EventAttributes): boolean {
  const { type, source, subject, extensions } = rule.match;
  if (!matches(type, attrs.type) || !matches(source, attrs.source) || !matches(subject, attrs.subject)) return false;
  if (extensions) {
    for (const [name, m] of Object.entries(extensions)) {
      const v = attrs[name];
      if (!matches(m, v === undefined ? undefined : String(v))) return false;
    }
  }
  return true;
}
