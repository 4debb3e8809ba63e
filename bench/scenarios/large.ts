/**
 * large: one big binary-mode body (50 MiB) and one big structured JSON body (20 MiB), each
 * accepted and pushed to a receiver in its own process (bench/large-receiver.ts, which hashes the
 * body as it streams in). For each: time to 202, time to delivered, MB/s, the server's RSS growth
 * (peak minus before, from /proc/<pid>/status) and its CPU; the receiver's SHA-256 must equal the
 * sender's and the hub's recorded one. Baseline in the same run: bench/large-floor.ts, a bare
 * node:http server that streams the body to a file and then the file to the same receiver.
 * Sizes: BENCH_LARGE_BINARY_BYTES, BENCH_LARGE_JSON_BYTES (smoke: 2 MiB and 1 MiB).
 */
import { join } from 'node:path';
import { request } from 'undici';
import { spawnTs, type Child } from '../lib/children.ts';
import { mergeIfSupported, startHubProcess, type HubProcess } from '../lib/hub-process.ts';
import { SENDER, SENDER_KEY, type Scenario } from '../lib/scenario.ts';
import { cpuSecondsOf, nowUs, round } from '../lib/stats.ts';
import { watchMemory } from '../large-memory.ts';
import { binaryBody, jsonEventBody, type StreamedBody } from '../large-payloads.ts';

const PUSH = 'BENCH-LARGE-PUSH';
const MIB = 1024 * 1024;
const TYPE = 'au.com.aemo.nem12.file';
const SUBJECT = 'NMI0000001';
/** The target: a 50 MB binary body adds less than this to the hub's peak RSS. */
const BINARY_RSS_TARGET_BYTES = 64 * MIB;

function sizeFrom(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 4096) throw new Error(`${name} must be a whole number of bytes, at least 4096; got '${raw}'`);
  return n;
}

export function largeHubConfig(receiverUrl: string, largest: number): Record<string, unknown> {
  const limit = Math.max(64 * MIB, Math.ceil((largest + MIB) / MIB) * MIB);
  const config: Record<string, unknown> = {
    server: { bodyLimitBytes: limit },
    participants: {
      [SENDER]: { name: 'Benchmark sender', keys: [SENDER_KEY] },
      [PUSH]: { name: 'Benchmark large push receiver', receiver: { mode: 'push', url: receiverUrl, timeoutMs: 120_000 } },
    },
    routes: [{ name: 'everything to the push receiver', match: {}, to: { participants: [PUSH] } }],
  };
  // Hubs with a separate (lower) limit for JSON bodies, which are parsed in memory.
  mergeIfSupported(config, { server: { jsonBodyLimitBytes: limit } });
  return config;
}

type Kind = 'binary' | 'json';

interface Figures {
  kind: Kind;
  bytes: number;
  status: number;
  acceptMs: number;
  deliveredMs: number | null;
  /** MB/s (10^6 bytes) from the first byte sent to the last byte at the receiver. */
  mbPerSec: number | null;
  /** MB/s up to the 202 (ingest alone). */
  ingestMbPerSec: number;
  rssBeforeMiB: number;
  rssPeakMiB: number;
  rssGrowthMiB: number;
  sampledGrowthMiB: number;
  rssSamples: number;
  peakReset: boolean;
  cpuMs: number | null;
  receivedSha256: string | null;
  sha256Match: boolean;
}

class Receiver {
  constructor(readonly child: Child, readonly url: string) {}
  async received(id: string): Promise<{ size: number; sha256: string; endUs: number; count: number } | null> {
    const res = await request(`${this.url}/_received?id=${encodeURIComponent(id)}`);
    if (res.statusCode === 404) { await res.body.dump(); return null; }
    return res.body.json() as Promise<{ size: number; sha256: string; endUs: number; count: number }>;
  }
  async waitFor(id: string, seconds: number) {
    const deadline = Date.now() + seconds * 1000;
    for (;;) {
      const r = await this.received(id);
      if (r || Date.now() > deadline) return r;
      await new Promise((ok) => setTimeout(ok, 20));
    }
  }
}

interface Target {
  name: 'hub' | 'floor';
  url: string;
  pid: number;
  /** Path and headers of the POST for this body. */
  post(kind: Kind, id: string, body: StreamedBody): { path: string; headers: Record<string, string> };
  /** After delivery: the hub's recorded SHA-256 of the data and whether every delivery ended delivered. */
  recorded?(answer: { sequence: number }, seconds: number): Promise<{ sha256: string; delivered: boolean; states: string }>;
}

async function sendOne(target: Target, receiver: Receiver, kind: Kind, bytes: number, id: string, drainSeconds: number, problems: string[]): Promise<Figures> {
  const body = kind === 'binary' ? binaryBody(bytes) : jsonEventBody(bytes, { id, source: SENDER, type: TYPE, subject: SUBJECT });
  const { path, headers } = target.post(kind, id, body);
  const what = `${target.name} ${kind} ${(bytes / MIB).toFixed(1)} MiB`;
  const cpuBefore = cpuSecondsOf(target.pid);
  const memory = watchMemory(target.pid);
  const startUs = nowUs();
  const res = await request(target.url + path, { method: 'POST', headers: { ...headers, 'content-length': String(body.size) }, body: body.stream, headersTimeout: 300_000, bodyTimeout: 300_000 });
  const answer = await res.body.text();
  const acceptUs = nowUs();
  if (res.statusCode !== 202) problems.push(`${what}: answered ${res.statusCode}, not 202: ${answer.slice(0, 300)}`);
  const got = res.statusCode === 202 ? await receiver.waitFor(id, drainSeconds) : null;
  let recorded: Awaited<ReturnType<NonNullable<Target['recorded']>>> | null = null;
  if (res.statusCode === 202 && got && target.recorded) recorded = await target.recorded(JSON.parse(answer) as { sequence: number }, drainSeconds);
  const mem = memory.stop();
  const cpuAfter = cpuSecondsOf(target.pid);

  // The hub pushes the data (binary: the body; structured: the `data` member's bytes); the floor forwards the body as it came.
  const expected = target.name === 'hub' ? body.dataSha256() : body.sha256();
  const expectedSize = target.name === 'hub' && kind === 'json' ? null : body.size;
  let match = false;
  if (res.statusCode === 202) {
    if (!got) problems.push(`${what}: accepted but not at the receiver within ${drainSeconds}s`);
    else {
      match = got.sha256 === expected && (!recorded || recorded.sha256 === expected);
      if (got.sha256 !== expected) problems.push(`${what}: the receiver's SHA-256 ${got.sha256} is not the sender's ${expected} (${got.size} bytes arrived)`);
      if (recorded && recorded.sha256 !== expected) problems.push(`${what}: the hub recorded SHA-256 ${recorded.sha256}, the sender's is ${expected}`);
      if (expectedSize !== null && got.size !== expectedSize) problems.push(`${what}: ${got.size} bytes arrived, ${expectedSize} sent`);
      if (got.count !== 1) problems.push(`${what}: arrived ${got.count} times`);
      if (recorded && !recorded.delivered) problems.push(`${what}: deliveries not all delivered (${recorded.states})`);
    }
  }
  const deliveredUs = got ? got.endUs - startUs : null;
  return {
    kind, bytes, status: res.statusCode,
    acceptMs: round((acceptUs - startUs) / 1000, 1),
    deliveredMs: deliveredUs === null ? null : round(deliveredUs / 1000, 1),
    mbPerSec: deliveredUs ? round(bytes / deliveredUs, 1) : null,
    ingestMbPerSec: round(bytes / (acceptUs - startUs), 1),
    rssBeforeMiB: round(mem.beforeBytes / MIB, 1), rssPeakMiB: round(mem.peakBytes / MIB, 1), rssGrowthMiB: round(mem.growthBytes / MIB, 1),
    sampledGrowthMiB: round((mem.sampledPeakBytes - mem.beforeBytes) / MIB, 1), rssSamples: mem.samples, peakReset: mem.peakReset,
    cpuMs: cpuBefore !== null && cpuAfter !== null ? round((cpuAfter - cpuBefore) * 1000) : null,
    receivedSha256: got?.sha256 ?? null, sha256Match: match,
  };
}

function hubTarget(hub: HubProcess): Target {
  const auth = { authorization: `Bearer ${SENDER_KEY}` };
  return {
    name: 'hub', url: hub.url, pid: hub.child.proc.pid!,
    post(kind, id) {
      if (kind === 'json') return { path: '/v1/messages', headers: { ...auth, 'content-type': 'application/cloudevents+json' } };
      return {
        path: '/v1/messages',
        headers: { ...auth, 'content-type': 'application/octet-stream', 'ce-specversion': '1.0', 'ce-id': id, 'ce-source': SENDER, 'ce-type': TYPE, 'ce-subject': SUBJECT },
      };
    },
    async recorded(answer, seconds) {
      // The receiver has the bytes; the hub records the result just after: wait for it.
      const deadline = Date.now() + seconds * 1000;
      for (;;) {
        const res = await request(`${hub.url}/v1/messages/${answer.sequence}`, { headers: auth });
        const view = await res.body.json() as { sha256: string; deliveries: Array<{ receiver: string; state: string }> };
        const delivered = view.deliveries.length > 0 && view.deliveries.every((d) => d.state === 'delivered');
        if (delivered || Date.now() > deadline) return { sha256: view.sha256, delivered, states: view.deliveries.map((d) => `${d.receiver} ${d.state}`).join(', ') };
        await new Promise((ok) => setTimeout(ok, 20));
      }
    },
  };
}

function floorTarget(floor: Child): Target {
  return {
    name: 'floor', url: floor.ready[1]!, pid: floor.proc.pid!,
    post(kind, id) {
      return { path: `/v1/messages?id=${encodeURIComponent(id)}`, headers: { 'content-type': kind === 'json' ? 'application/cloudevents+json' : 'application/octet-stream' } };
    },
  };
}

function line(name: string, f: Figures): string {
  const mib = (f.bytes / MIB).toFixed(1);
  const delivered = f.deliveredMs === null ? 'not delivered' : `delivered ${f.deliveredMs.toFixed(0).padStart(6)} ms (${f.mbPerSec} MB/s)`;
  return `    ${name.padEnd(6)} ${f.kind.padEnd(7)} ${mib.padStart(6)} MiB   202 ${f.acceptMs.toFixed(0).padStart(6)} ms (${f.ingestMbPerSec} MB/s)   ${delivered}   RSS +${f.rssGrowthMiB} MiB (${f.rssBeforeMiB} → ${f.rssPeakMiB} MiB peak)   CPU ${f.cpuMs ?? '?'} ms   sha256 ${f.sha256Match ? 'equal' : 'DIFFERENT'}`;
}

export const largeScenario: Scenario = {
  name: 'large',
  description: 'a 50 MB binary body and a 20 MB JSON body accepted and delivered: peak RSS growth',
  async run(s, workDir, log) {
    const problems: string[] = [];
    const binaryBytes = sizeFrom(process.env, 'BENCH_LARGE_BINARY_BYTES', s.smoke ? 2 * MIB : 50 * MIB);
    const jsonBytes = sizeFrom(process.env, 'BENCH_LARGE_JSON_BYTES', s.smoke ? MIB : 20 * MIB);
    const tag = Date.now().toString(36);
    const rc = await spawnTs('receiver', 'bench/large-receiver.ts', [], { ready: /receiver listening on (\S+)/ });
    const receiver = new Receiver(rc, rc.ready[1]!);
    const hook = `${receiver.url}/hook`;
    const results: { hub: Figures[]; floor: Figures[] } = { hub: [], floor: [] };
    try {
      log(`large: hub (child process) → push receiver (child process): binary ${binaryBytes} B, JSON ${jsonBytes} B`);
      const hub = await startHubProcess(join(workDir, 'large-hub'), largeHubConfig(hook, Math.max(binaryBytes, jsonBytes)), { cpuProfDir: s.cpuProfDir, name: 'large' });
      try {
        const t = hubTarget(hub);
        results.hub.push(await sendOne(t, receiver, 'binary', binaryBytes, `lhb-${tag}`, s.drainSeconds, problems));
        results.hub.push(await sendOne(t, receiver, 'json', jsonBytes, `lhj-${tag}`, s.drainSeconds, problems));
      } finally {
        await hub.stop();
      }
      log('large: floor (bare node:http: body → file → receiver), the same bodies');
      const floor = await spawnTs('floor', 'bench/large-floor.ts', [], { env: { FLOOR_DIR: join(workDir, 'large-floor'), FLOOR_FORWARD_URL: hook }, ready: /floor listening on (\S+)/ });
      try {
        const t = floorTarget(floor);
        results.floor.push(await sendOne(t, receiver, 'binary', binaryBytes, `lfb-${tag}`, s.drainSeconds, problems));
        results.floor.push(await sendOne(t, receiver, 'json', jsonBytes, `lfj-${tag}`, s.drainSeconds, problems));
      } finally {
        await floor.stop();
      }
    } finally {
      await rc.stop();
    }
    const hubBinary = results.hub[0]!;
    const targetMet = hubBinary.rssGrowthMiB * MIB < BINARY_RSS_TARGET_BYTES;
    const lines = [
      `large — one binary-mode body and one structured JSON body, each accepted and pushed to a receiver (own process) that hashes it`,
      ...results.hub.map((f) => line('hub', f)),
      ...results.floor.map((f) => line('floor', f)),
      `  target: a ${(binaryBytes / MIB).toFixed(0)} MiB binary body adds under ${BINARY_RSS_TARGET_BYTES / MIB} MiB to the hub's peak RSS: +${hubBinary.rssGrowthMiB} MiB, ${targetMet ? 'met' : 'NOT met'}${s.smoke ? ' (smoke sizes: means nothing)' : ''}`,
    ];
    if (!hubBinary.peakReset) lines.push('  (VmHWM could not be reset: RSS peaks are from 20 ms samples only)');
    return {
      lines,
      problems,
      json: { scenario: 'large', binaryBytes, jsonBytes, hub: results.hub, floor: results.floor, binaryRssTargetMiB: BINARY_RSS_TARGET_BYTES / MIB, binaryRssTargetMet: targetMet },
    };
  },
};
