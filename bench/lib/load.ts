import autocannon from 'autocannon';
import { Pool } from 'undici';
import { nowUs, summarize, type LatencySummary } from './stats.ts';

export interface ClosedLoopOptions {
  url: string;
  path: string;
  headers: Record<string, string>;
  /** A new body for every request (each needs a unique event id). */
  body: () => string;
  connections: number;
  seconds: number;
  /** The status that counts as success. */
  okStatus: number;
}

export interface ClosedLoopResult {
  seconds: number;
  ok: number;
  okPerSec: number;
  /** Response time of the successful requests. */
  latency: LatencySummary;
  statuses: Record<string, number>;
  errors: number;
  timeouts: number;
  startUs: number;
  endUs: number;
}

/**
 * Closed loop with autocannon: `connections` keep-alive connections, each sending its next
 * request as soon as the previous one is answered, for `seconds`.
 */
export async function closedLoop(o: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let ok = 0;
  const startUs = nowUs();
  const instance = autocannon({
    url: o.url,
    connections: o.connections,
    pipelining: 1,
    duration: o.seconds,
    timeout: 30,
    renderProgressBar: false,
    renderResultsTable: false,
    renderLatencyTable: false,
    requests: [{
      method: 'POST',
      path: o.path,
      headers: o.headers,
      setupRequest: (req) => ({ ...req, body: o.body() }),
    }],
  });
  instance.on('response', (_client: unknown, status: number, _bytes: number, responseTimeMs: number) => {
    statuses[status] = (statuses[status] ?? 0) + 1;
    if (status === o.okStatus) {
      ok++;
      latencies.push(responseTimeMs);
    }
  });
  const result = await instance;
  const endUs = nowUs();
  const seconds = (endUs - startUs) / 1e6;
  return {
    seconds, ok, okPerSec: ok / seconds, latency: summarize(latencies), statuses,
    errors: result.errors, timeouts: result.timeouts, startUs, endUs,
  };
}

export interface OpenLoopOptions {
  url: string;
  path: string;
  headers: Record<string, string>;
  /** Messages per second offered. */
  rate: number;
  seconds: number;
  body: (i: number) => string;
  /** Per-message headers, added to `headers` (built before the loop starts). */
  headersOf?: (i: number) => Record<string, string>;
  okStatus: number;
}

export interface OpenLoopResult {
  count: number;
  /** When message i was due to be sent (µs, monotonic): latencies are measured from here. */
  scheduledUs: Float64Array;
  /** When its answer came (µs), 0 if none. */
  answeredUs: Float64Array;
  status: Int32Array;
  ok: number;
  errors: number;
  /** How late the sender itself was, at worst (µs): the load generator's own delay. */
  worstSendLagUs: number;
}

/**
 * Open loop: message i is due at start + i / rate whatever happened to the earlier ones, and
 * is sent at once when due (a connection pool large enough never to be the bottleneck).
 * Latency is counted from the due time, so a stall of the system under test shows in full
 * (no coordinated omission).
 */
export async function openLoop(o: OpenLoopOptions): Promise<OpenLoopResult> {
  const count = Math.max(1, Math.round(o.rate * o.seconds));
  const scheduledUs = new Float64Array(count);
  const answeredUs = new Float64Array(count);
  const status = new Int32Array(count);
  const pool = new Pool(o.url, { connections: 256, pipelining: 1, keepAliveTimeout: 60_000 });
  const bodies = Array.from({ length: count }, (_, i) => o.body(i));
  const headers = Array.from({ length: count }, (_, i) => (o.headersOf ? { ...o.headers, ...o.headersOf(i) } : o.headers));
  const intervalUs = 1e6 / o.rate;
  const startUs = nowUs() + 20_000;
  for (let i = 0; i < count; i++) scheduledUs[i] = startUs + i * intervalUs;
  let next = 0;
  let worstSendLagUs = 0;
  let ok = 0;
  let errors = 0;
  const answers: Array<Promise<void>> = [];

  const send = (i: number) => {
    answers.push((async () => {
      try {
        const res = await pool.request({ method: 'POST', path: o.path, headers: headers[i]!, body: bodies[i]! });
        await res.body.dump();
        answeredUs[i] = nowUs();
        status[i] = res.statusCode;
        if (res.statusCode === o.okStatus) ok++;
      } catch {
        errors++;
      }
    })());
  };

  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = nowUs();
      while (next < count && scheduledUs[next]! <= now) {
        worstSendLagUs = Math.max(worstSendLagUs, now - scheduledUs[next]!);
        send(next++);
      }
      if (next >= count) { resolve(); return; }
      setTimeout(tick, Math.max(0, Math.min(5, (scheduledUs[next]! - now) / 1000 - 0.5)));
    };
    tick();
  });
  await Promise.all(answers);
  await pool.close();
  return { count, scheduledUs, answeredUs, status, ok, errors, worstSendLagUs };
}
