/**
 * Isolation ("a receiver that is slow, down or misbehaving never holds up the others"), measured:
 * every message goes to three push receivers A, B and C at a steady rate, open loop. Phase 1:
 * all three healthy. Phase 2: B hangs until its timeout (1 s, 4 in flight) and C answers 500
 * with short retries, so both pile up a backlog and C keeps the hub busy retrying. A's
 * accept→delivered p99 (and its send→delivered p99, ingest included) in phase 2 stays within
 * 2× its phase-1 value, measured in the same test on the same machine (see ROUNDS for how);
 * A's phase-2 messages are all delivered while B's and C's sit pending; and the hub never has
 * more than B's maxInFlight requests in flight to B.
 *
 * The breaker is set out of reach (failureThreshold 10,000) so that B and C keep being tried for
 * the whole phase: with it, both would be paused after 5 failures and cost the hub nothing,
 * which would prove less. So what keeps A's latency is the scheduler alone (per-receiver slots).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { Pool } from 'undici';
import { startTestHub, eventually } from '../support/hub.ts';

const RATE = 100; // messages a second, each to A, B and C
const PHASE_MS = 2_000;
/**
 * The box is shared (other test files, other people's work), and its load drifts over seconds:
 * one phase measured alone can catch a burst of outside load that doubles its p99 by itself
 * (phase-1 p99s of 6 to 60 ms were seen on the same code). So the two phases run ROUNDS times,
 * each round on a fresh hub, alternating healthy and unhealthy; each round gives a ratio, and
 * the assertion is on the median of those ratios, which a burst in one or two rounds cannot
 * move. The p99s pooled over all rounds are reported too.
 */
const ROUNDS = 5;
const WARMUP = 50; // messages sent before phase 1 and not measured (JIT, connections, page cache)
const B_TIMEOUT_MS = 1_000;
const B_MAX_IN_FLIGHT = 4;
/**
 * p99s here are a few milliseconds, where a 2-core box shows scheduling noise of the same size
 * (a GC pause, an fsync, the test's own timers): a phase-1 p99 of 2 ms against 4.5 ms in phase 2
 * is not a slowdown anyone would notice, but it is a ratio of 2.25. So both p99s are floored
 * at 5 ms before they are compared: below that, the ratio says nothing about isolation.
 */
const P99_FLOOR_MS = 5;
const MAX_RATIO = 2;

interface Sample { sentAt: number; acceptedAt: number; arrivedAt?: number }

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const sleepUntil = (at: number) => new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));

/**
 * Each receiver runs in a worker thread of its own, so that serving C's thousands of failing
 * requests a second (the receiver's work, not the hub's) does not queue behind or ahead of the
 * hub in this thread's event loop and show up as the hub's latency. The hub and the sender stay
 * in this thread. `ok` answers 204, `fail` 500, `hang` holds the request open until the hub
 * gives up (the worker counts how many are open at once). A recording receiver posts the
 * arrival time of every request (by ce-id) as it comes.
 */
const RECEIVER_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
let mode = 'ok', open = 0, openPeak = 0, requests = 0;
const held = new Set();
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const at = Date.now();
    requests++;
    if (workerData.record) parentPort.postMessage({ type: 'arrival', id: String(req.headers['ce-id']), at });
    if (mode === 'ok') { res.writeHead(204); res.end(); return; }
    if (mode === 'fail') { res.writeHead(500); res.end('broken'); return; }
    open++; openPeak = Math.max(openPeak, open); held.add(res);
    res.on('close', () => { open--; held.delete(res); });
  });
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage({ type: 'listening', port: server.address().port }));
parentPort.on('message', (m) => {
  if (m.type === 'mode') mode = m.mode;
  if (m.type === 'stats') parentPort.postMessage({ type: 'stats', requests, open, openPeak });
  if (m.type === 'close') {
    for (const r of held) r.destroy();
    server.closeAllConnections();
    server.close(() => parentPort.postMessage({ type: 'closed' }));
  }
});
`;

interface WorkerReceiver {
  url: string;
  setMode(mode: 'ok' | 'fail' | 'hang'): void;
  stats(): Promise<{ requests: number; open: number; openPeak: number }>;
  close(): Promise<void>;
}

async function workerReceiver(onArrival?: (id: string, at: number) => void): Promise<WorkerReceiver> {
  const worker = new Worker(RECEIVER_WORKER, { eval: true, workerData: { record: onArrival !== undefined } });
  const next = (type: string) => new Promise<any>((resolve) => {
    const on = (m: { type: string }) => { if (m.type === type) { worker.off('message', on); resolve(m); } };
    worker.on('message', on);
  });
  if (onArrival) worker.on('message', (m: { type: string; id: string; at: number }) => { if (m.type === 'arrival') onArrival(m.id, m.at); });
  const { port } = await next('listening');
  return {
    url: `http://127.0.0.1:${port}/hook`,
    setMode(mode) { worker.postMessage({ type: 'mode', mode }); },
    async stats() { const r = next('stats'); worker.postMessage({ type: 'stats' }); return r; },
    async close() { const r = next('closed'); worker.postMessage({ type: 'close' }); await r; await worker.terminate(); },
  };
}

interface Round {
  healthy: Sample[];
  unhealthy: Sample[];
  notes: string;
}

/** One round on a fresh hub: warm-up, phase 1 (all healthy), phase 2 (B hangs, C fails); checks the backlogs and B's slots. */
async function round(n: number): Promise<Round> {
  const hub = await startTestHub({ delivery: { breaker: { failureThreshold: 10_000, cooldownMs: 1_000 } } });
  const closers: Array<() => unknown> = [];
  try {
    const samples = new Map<string, Sample>();
    const rxA = await workerReceiver((id, at) => {
      const s = samples.get(id);
      if (s && s.arrivedAt === undefined) s.arrivedAt = at;
    });
    closers.push(() => rxA.close());
    const rxB = await workerReceiver();
    closers.push(() => rxB.close());
    const rxC = await workerReceiver();
    closers.push(() => rxC.close());
    // The hub's own count of requests in flight to B, read every 2 ms.
    let hubBPeak = 0;
    const sampler = setInterval(() => { hubBPeak = Math.max(hubBPeak, hub.hub.push.inFlightOf('RETAILER-B')); }, 2);
    closers.push(() => clearInterval(sampler));

    const { key } = await hub.participant('MDP-A');
    await hub.participant('RETAILER-A', { mode: 'push', url: rxA.url, timeoutMs: 5_000, maxInFlight: 16 });
    await hub.participant('RETAILER-B', {
      mode: 'push', url: rxB.url, timeoutMs: B_TIMEOUT_MS, maxInFlight: B_MAX_IN_FLIGHT,
      retry: { maxAttempts: 1000, maxAgeSeconds: 3600, initialDelayMs: 50, maxDelayMs: 200 },
    });
    await hub.participant('RETAILER-C', {
      mode: 'push', url: rxC.url, timeoutMs: 5_000, maxInFlight: 8,
      retry: { maxAttempts: 1000, maxAgeSeconds: 3600, initialDelayMs: 20, maxDelayMs: 100 },
    });
    await hub.routes([{ name: 'to all three', match: {}, to: { participants: ['RETAILER-A', 'RETAILER-B', 'RETAILER-C'] } }]);

    const sender = new Pool(hub.url, { connections: 16, pipelining: 1 });
    closers.push(() => sender.destroy());
    const failures: string[] = [];

    /** Sends `count` messages at RATE, open loop (each at its slot, whether earlier ones were answered or not). */
    const run = async (phase: string, count: number): Promise<string[]> => {
      const ids: string[] = [];
      const inFlight: Promise<void>[] = [];
      const start = Date.now() + 20;
      for (let i = 0; i < count; i++) {
        await sleepUntil(start + (i * 1000) / RATE);
        const id = `r${n}-${phase}-${i}`;
        ids.push(id);
        const body = JSON.stringify({ specversion: '1.0', id, source: 'MDP-A', type: 'test.reading', subject: `NMI${i % 50}`, data: { reading: i } });
        samples.set(id, { sentAt: Date.now(), acceptedAt: NaN });
        inFlight.push((async () => {
          try {
            const res = await sender.request({ method: 'POST', path: '/v1/messages', body, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/cloudevents+json' } });
            const text = await res.body.text();
            samples.get(id)!.acceptedAt = Date.now();
            if (res.statusCode !== 202) failures.push(`${id}: ${res.statusCode} ${text.slice(0, 200)}`);
          } catch (err) {
            failures.push(`${id}: ${(err as Error).message}`);
          }
        })());
      }
      await Promise.all(inFlight);
      return ids;
    };
    const arrivedAtA = (ids: string[]) => ids.every((id) => samples.get(id)!.arrivedAt !== undefined);
    const counts = async () => {
      const by: Record<string, Record<string, number>> = {};
      for (const r of await hub.hub.store.countDeliveriesByState()) (by[r.receiver] ??= {})[r.state] = r.count;
      return by;
    };

    // ---- warm-up, then phase 1: everyone healthy ----
    const warm = await run('warm', WARMUP);
    await eventually(() => arrivedAtA(warm), 20_000, 'the warm-up messages at A');
    const phase1 = await run('p1', (RATE * PHASE_MS) / 1000);
    await eventually(() => arrivedAtA(phase1), 20_000, 'phase 1 at A');
    await eventually(async () => {
      const c = await counts();
      return ['RETAILER-A', 'RETAILER-B', 'RETAILER-C'].every((r) => Object.keys(c[r] ?? {}).join() === 'delivered');
    }, 20_000, 'phase 1 delivered to A, B and C');
    assert.ok(hubBPeak >= 1 && hubBPeak <= B_MAX_IN_FLIGHT, `phase 1: B had ${hubBPeak} in flight`);

    // ---- phase 2: B hangs until its timeout, C fails and keeps being retried ----
    rxB.setMode('hang');
    rxC.setMode('fail');
    hubBPeak = 0;
    const [b1, c1] = await Promise.all([rxB.stats(), rxC.stats()]);
    const phase2 = await run('p2', (RATE * PHASE_MS) / 1000);
    // A's phase-2 messages all arrive while B and C keep their backlogs (which cannot drain: B
    // hangs and C fails for good, so waiting longer on a slow box proves no less).
    await eventually(() => arrivedAtA(phase2), 20_000, 'phase 2 at A');
    // A's receiver has them all; the hub records each result once the answer is back (a group
    // commit later, longer on PostgreSQL): give the last few that moment before counting.
    let backlog = await counts();
    for (const until = Date.now() + 5_000; Object.keys(backlog['RETAILER-A'] ?? {}).join() !== 'delivered' && Date.now() < until; backlog = await counts()) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const [b2, c2] = await Promise.all([rxB.stats(), rxC.stats()]);
    const cAttempts = c2.requests - c1.requests;
    assert.deepEqual(failures, [], 'every send accepted');

    assert.deepEqual(Object.keys(backlog['RETAILER-A']!), ['delivered'], `A is done: ${JSON.stringify(backlog['RETAILER-A'])}`);
    const open = (r: string) => (backlog[r]!.pending ?? 0) + (backlog[r]!.delivering ?? 0);
    assert.equal(open('RETAILER-B'), phase2.length, `B's backlog is every phase-2 message: ${JSON.stringify(backlog['RETAILER-B'])}`);
    assert.equal(open('RETAILER-C'), phase2.length, `C's backlog is every phase-2 message: ${JSON.stringify(backlog['RETAILER-C'])}`);
    assert.ok(cAttempts > phase2.length, `C kept being retried (${cAttempts} requests for ${phase2.length} messages)`);
    // B was held to its slots, and used them all.
    assert.equal(hubBPeak, B_MAX_IN_FLIGHT, `the hub had at most (and at some point exactly) ${B_MAX_IN_FLIGHT} requests in flight to B: peak ${hubBPeak}`);
    assert.ok(b2.openPeak <= B_MAX_IN_FLIGHT, `B saw ${b2.openPeak} requests open at once`);

    const notes = `round ${n}: in phase 2 B got ${b2.requests - b1.requests} requests (hub in flight to B peak ${hubBPeak}, open at B peak ${b2.openPeak}) and C ${cAttempts}; then A ${backlog['RETAILER-A']!.delivered} delivered, B ${open('RETAILER-B')} and C ${open('RETAILER-C')} open`;
    return { healthy: phase1.map((id) => samples.get(id)!), unhealthy: phase2.map((id) => samples.get(id)!), notes };
  } finally {
    // The receivers first (B lets its held requests go), so that the hub's stop does not wait for B's timeouts.
    for (const close of closers.reverse()) await close();
    await hub.close();
  }
}

test('isolation: a hanging receiver and a failing one do not slow down a healthy one (p99 ratio, same run)', async (t) => {
  const rounds: Round[] = [];
  for (let n = 1; n <= ROUNDS; n++) rounds.push(await round(n));
  for (const r of rounds) t.diagnostic(r.notes);

  /** accept→delivered: A's arrival minus the 202's arrival at the sender (can be < 0: the push may beat the 202 back). */
  const fromAccept = (ss: Sample[]) => ss.map((s) => s.arrivedAt! - s.acceptedAt);
  /** send→delivered: A's arrival minus the send (ingest included). */
  const fromSend = (ss: Sample[]) => ss.map((s) => s.arrivedAt! - s.sentAt);
  const ratio = (a: number, b: number) => Math.max(a, P99_FLOOR_MS) / Math.max(b, P99_FLOOR_MS);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

  const report = (name: string, latency: (ss: Sample[]) => number[]) => {
    const per = rounds.map((r) => ({ healthy: percentile(latency(r.healthy), 99), unhealthy: percentile(latency(r.unhealthy), 99) }));
    const ratios = per.map((p) => ratio(p.unhealthy, p.healthy));
    const pooled = { healthy: percentile(latency(rounds.flatMap((r) => r.healthy)), 99), unhealthy: percentile(latency(rounds.flatMap((r) => r.unhealthy)), 99) };
    const p50 = { healthy: percentile(latency(rounds.flatMap((r) => r.healthy)), 50), unhealthy: percentile(latency(rounds.flatMap((r) => r.unhealthy)), 50) };
    const text = `A ${name}: p99 per round (healthy→unhealthy) ${per.map((p) => `${p.healthy}→${p.unhealthy}`).join(', ')} ms, ratios (floored at ${P99_FLOOR_MS} ms) ${ratios.map((r) => r.toFixed(2)).join(', ')}, median ${median(ratios).toFixed(2)}; pooled over ${rounds.length * rounds[0]!.healthy.length} messages a phase: p50 ${p50.healthy}→${p50.unhealthy} ms, p99 ${pooled.healthy}→${pooled.unhealthy} ms (ratio ${ratio(pooled.unhealthy, pooled.healthy).toFixed(2)})`;
    t.diagnostic(text);
    return { median: median(ratios), text };
  };
  const accept = report('accept→delivered', fromAccept);
  const send = report('send→delivered', fromSend);
  assert.ok(accept.median <= MAX_RATIO, `A's accept→delivered p99 grew more than ${MAX_RATIO}× with B hanging and C failing: ${accept.text}`);
  assert.ok(send.median <= MAX_RATIO, `A's send→delivered p99 grew more than ${MAX_RATIO}× with B hanging and C failing: ${send.text}`);
});
