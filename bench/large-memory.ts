/**
 * Resident memory of another process, from /proc/<pid>/status: VmRSS now, VmHWM the peak.
 * The peak can be reset to the current RSS (writing 5 to /proc/<pid>/clear_refs, Linux 4.0+, our
 * own child processes), so that "peak minus before" is the growth during one message and not a
 * peak left from start-up; a sampler every ~20 ms backs it up where that is not allowed.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export interface Rss { rssBytes: number; hwmBytes: number }

export function rssOf(pid: number): Rss {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
  return { rssBytes: kb('VmRSS'), hwmBytes: kb('VmHWM') };
}

/** Resets the process's VmHWM to its current RSS; false where the kernel or permissions do not allow it. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

export interface MemoryWatch {
  /** Stops sampling; the growth is the higher of the kernel's peak and the sampled peak, minus RSS before. */
  stop(): { beforeBytes: number; peakBytes: number; growthBytes: number; sampledPeakBytes: number; hwmPeakBytes: number; samples: number; peakReset: boolean };
}

/** Watches `pid` from now: RSS before, VmRSS sampled every `everyMs`, VmHWM at the end. */
export function watchMemory(pid: number, everyMs = 20): MemoryWatch {
  const peakReset = resetPeak(pid);
  const before = rssOf(pid);
  let sampledPeak = before.rssBytes;
  let samples = 0;
  const timer = setInterval(() => {
    try {
      sampledPeak = Math.max(sampledPeak, rssOf(pid).rssBytes);
      samples++;
    } catch { /* the process is gone: stop() will say so */ }
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      const after = rssOf(pid);
      sampledPeak = Math.max(sampledPeak, after.rssBytes);
      // Without a reset VmHWM may be a start-up peak from before the message: only the samples count then.
      const hwmPeak = peakReset ? after.hwmBytes : sampledPeak;
      const peak = Math.max(hwmPeak, sampledPeak);
      return { beforeBytes: before.rssBytes, peakBytes: peak, growthBytes: peak - before.rssBytes, sampledPeakBytes: sampledPeak, hwmPeakBytes: after.hwmBytes, samples, peakReset };
    },
  };
}
