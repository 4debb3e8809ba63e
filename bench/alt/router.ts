import type { AltMatcher, AltRoute } from './config.ts';

export interface RoutedAttributes { type: string; source: string; subject: string }

function matches(m: AltMatcher | undefined, value: string): boolean {
  if (m === undefined) return true;
  if (typeof m === 'string') return m === value;
  if (Array.isArray(m)) return m.includes(value);
  return value.startsWith(m.prefix);
}

/** The receivers of an event: every participant of every matching route, once each. */
export function routerFor(routes: AltRoute[]): (a: RoutedAttributes) => string[] {
  return (a) => {
    const out = new Set<string>();
    for (const r of routes) {
      if (matches(r.match.type, a.type) && matches(r.match.source, a.source) && matches(r.match.subject, a.subject)) {
        for (const p of r.to) out.add(p);
      }
    }
    return [...out];
  };
}
