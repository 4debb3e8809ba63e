/**
 * Benchmark sizes. Every figure comes from the environment so that a run can be made longer,
 * shorter or harder without editing code; `--smoke` (or BENCH_SMOKE=1) picks tiny defaults so
 * that the suite can run every scenario in a few seconds.
 */
export interface BenchSettings {
  smoke: boolean;
  /** Measured seconds of each closed-loop phase (ingest, e2e throughput). */
  seconds: number;
  /** Warm-up seconds before each closed-loop phase (its figures are discarded). */
  warmupSeconds: number;
  /** Concurrent connections of the closed-loop load generator. */
  connections: number;
  /** Size of the structured CloudEvent, in bytes. */
  bodyBytes: number;
  /** Offered rate of the open-loop e2e phase, messages per second (the first of `rates`). */
  rate: number;
  /** Offered rates of the open-loop e2e phases, one phase each (BENCH_RATE, comma separated). */
  rates: number[];
  /** Seconds the open-loop phase offers load. */
  openSeconds: number;
  /** Push requests in flight to the receiver (the hub's receiver maxInFlight; the floor relay's too). */
  pushInFlight: number;
  /** Longest wait for the deliveries of a phase to arrive after its load stopped. */
  drainSeconds: number;
  /** Folder for --cpu-prof profiles of the hub, when set. */
  cpuProfDir: string | null;
}

/** A positive number from the environment, `fallback` when unset or empty; anything else is refused. */
export function positiveSetting(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got '${raw}'`);
  return n;
}

function nums(env: NodeJS.ProcessEnv, name: string, fallback: number[]): number[] {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  return raw.split(',').map((part) => positiveSetting({ [name]: part.trim() }, name, 0));
}

export function settingsFrom(env: NodeJS.ProcessEnv, smoke: boolean): BenchSettings {
  const seconds = positiveSetting(env, 'BENCH_SECONDS', smoke ? 1 : 10);
  const rates = nums(env, 'BENCH_RATE', smoke ? [200] : [1000, 5000]);
  return {
    smoke,
    seconds,
    warmupSeconds: positiveSetting(env, 'BENCH_WARMUP_SECONDS', smoke ? 0.5 : 3),
    connections: Math.round(positiveSetting(env, 'BENCH_CONNECTIONS', 50)),
    bodyBytes: Math.round(positiveSetting(env, 'BENCH_BODY_BYTES', 1024)),
    rate: rates[0]!,
    rates,
    openSeconds: positiveSetting(env, 'BENCH_OPEN_SECONDS', seconds),
    pushInFlight: Math.round(positiveSetting(env, 'BENCH_PUSH_INFLIGHT', 16)),
    drainSeconds: positiveSetting(env, 'BENCH_DRAIN_SECONDS', smoke ? 15 : 120),
    cpuProfDir: env.BENCH_CPU_PROF ? env.BENCH_CPU_PROF : null,
  };
}
