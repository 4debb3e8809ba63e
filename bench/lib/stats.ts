import { readFileSync } from 'node:fs';

/** Monotonic clock in microseconds. CLOCK_MONOTONIC is system-wide, so child processes share it. */
export function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** Nearest-rank percentile of unsorted values (p in 0..100). NaN for no values. */
export function percentile(values: ArrayLike<number>, p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export interface LatencySummary { p50Ms: number; p99Ms: number; maxMs: number; count: number }

export function summarize(latenciesMs: ArrayLike<number>): LatencySummary {
  let max = 0;
  for (let i = 0; i < latenciesMs.length; i++) max = Math.max(max, latenciesMs[i]!);
  return { p50Ms: round(percentile(latenciesMs, 50), 2), p99Ms: round(percentile(latenciesMs, 99), 2), maxMs: round(max, 2), count: latenciesMs.length };
}

export function round(n: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

export function fmtRate(n: number): string {
  return `${Math.round(n).toLocaleString('en-US')} msgs/s`;
}

export function fmtMs(n: number): string {
  return Number.isFinite(n) ? `${n.toFixed(n < 10 ? 2 : 1)} ms` : 'n/a';
}

/**
 * CPU seconds (user + system, all threads) a process has used so far, from /proc/<pid>/stat;
 * null where there is no /proc. Unlike throughput, CPU per message hardly moves when other work
 * on the machine takes CPU time away, so it is the figure to compare across noisy runs.
 */
export function cpuSecondsOf(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime field 15, in clock ticks (USER_HZ = 100 on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/** CPU used by `pid` between two readings, per message (µs), or null. */
export function cpuUsPer(before: number | null, after: number | null, messages: number): number | null {
  if (before === null || after === null || messages <= 0) return null;
  return round(((after - before) * 1e6) / messages, 1);
}
