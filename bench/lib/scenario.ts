import type { BenchSettings } from './settings.ts';

export interface ScenarioResult {
  /** Human-readable summary lines. */
  lines: string[];
  /** The machine-readable figures (printed as one JSON line). */
  json: Record<string, unknown> & { scenario: string };
  /** Anything that makes the figures untrustworthy (errors, lost messages): the run fails. */
  problems: string[];
}

export interface Scenario {
  name: string;
  description: string;
  run(settings: BenchSettings, workDir: string, log: (line: string) => void): Promise<ScenarioResult>;
}

export const SENDER = 'BENCH-SENDER';
export const SENDER_KEY = 'bench-sender-key-0123456789abcdef';

export function ingestHeaders(key: string | null): Record<string, string> {
  return {
    'content-type': 'application/cloudevents+json',
    ...(key ? { authorization: `Bearer ${key}` } : {}),
  };
}

/** Statuses other than the expected one, as "503×12, 400×1". */
export function unexpectedStatuses(statuses: Record<string, number>, ok: number): string {
  return Object.entries(statuses).filter(([s]) => Number(s) !== ok).map(([s, n]) => `${s}×${n}`).join(', ');
}
