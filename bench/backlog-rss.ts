import { readFileSync } from 'node:fs';

/** Resident set size of a process in MB (VmRSS in /proc/<pid>/status), or null where there is no /proc. */
export function rssMbOf(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : null;
  } catch {
    return null;
  }
}

/**
 * Samples a process's RSS every `intervalMs` in the background; `take()` answers the highest and
 * the latest sample since the previous `take()` and starts a new window.
 */
export class RssSampler {
  private readonly timer: NodeJS.Timeout;
  private max = 0;
  private last = 0;
  private overall = 0;

  constructor(private readonly pid: number | undefined, intervalMs = 500) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  private sample(): void {
    const mb = rssMbOf(this.pid);
    if (mb === null) return;
    this.last = mb;
    this.max = Math.max(this.max, mb);
    this.overall = Math.max(this.overall, mb);
  }

  take(): { maxMb: number; lastMb: number } {
    this.sample();
    const out = { maxMb: this.max, lastMb: this.last };
    this.max = this.last;
    return out;
  }

  /** The highest sample since the start. */
  get peakMb(): number { return this.overall; }

  stop(): void { clearInterval(this.timer); }
}
