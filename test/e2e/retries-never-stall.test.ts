/**
 * Invariant 2 (every delivery ends) with retries and restarts: the hub runs as a child process
 * with short backoffs (50 ms doubling to 200 ms, 5 attempts), its receiver fails half the time
 * (seeded, per webhook-id and attempt, so the run does not depend on timing), messages keep
 * coming, and the hub is stopped three times mid-run (SIGKILL, SIGTERM, SIGKILL) and started
 * again on the same data folder. Then every delivery of every message in the archive
 * (acknowledged or cut off by a kill) ends delivered or dead, within its budget computed from
 * its attempts (their time in flight, and the longest backoff after each failure) plus one
 * scheduler tick, and so does each attempt after the previous one (the hub's down time, and its
 * own measured event-loop stalls, aside: see LAG_READ_EVERY_MS); and at no point was a delivery
 * left pending with its nextAttemptAt more than a tick plus the lease margin in the past while
 * the hub was up (GET /v1/messages?state=pending, admin key).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify as toYaml } from 'yaml';
import { eventually } from '../support/hub.ts';
import { startHubProcess, type HubProcess } from '../support/hub-process.ts';
import { startReceiver } from '../support/receiver.ts';

const ADMIN_KEY = 'retries-admin-key-0123456789abcdef';
const SENDER_KEY = 'mh_presharedsenderkey_retries_0123456789abcdef';
const SEED = 'retries-never-stall-1';
/**
 * One scheduler tick: the hub's poll interval (its default, 250 ms). Retries do not wait for it
 * (each gets a pass at its due time), so it is the slack an attempt has for the hub being slow
 * to get to it: a new process warming up (the first second of each life is where the latest
 * attempts are, 100-150 ms late on a loaded box) or a pass held up behind other work.
 */
const TICK_MS = 250;
/**
 * How often the hub's event-loop delay is read (GET /metrics, meterhub_nodejs_eventloop_lag_max_seconds:
 * the longest delay since the previous read). A retry gets a scheduler pass of its own at its due
 * time, so on a quiet box it starts within a few ms of it (16 ms at worst seen); but on a loaded
 * 2-core box (load averages of 5 to 11 were seen while other suites ran) the hub's process is
 * descheduled or its event loop held for 100-400 ms at a time, and no scheduler can beat that. So
 * an attempt may be late by a tick plus the hub's own stalls while it was due, as the hub measured
 * them: the longest stall of each read window overlapping the wait, added up (on a quiet box, a
 * few ms a window). The stalls are reported.
 */
const LAG_READ_EVERY_MS = 100;
const LEASE_MARGIN_MS = 500;
const TIMEOUT_MS = 2_000;
const RETRY = { maxAttempts: 5, maxAgeSeconds: 600, initialDelayMs: 50, maxDelayMs: 200, multiplier: 2, retryAfterCapMs: 200 };
/** How each life of the hub but the last ends, each LIFE_MS after it started listening. */
const STOPS: Array<'SIGKILL' | 'SIGTERM'> = ['SIGKILL', 'SIGTERM', 'SIGKILL'];
const LIFE_MS = 1_500;
/** Open loop: a message every SEND_EVERY_MS while the hub is up, at most SENDS_IN_FLIGHT unanswered. */
const SEND_EVERY_MS = 10;
const SENDS_IN_FLIGHT = 16;

/** The longest backoff after `attemptsMade` attempts: the policy's delay before jitter (jitter only shortens it). */
const nominalDelay = (attemptsMade: number) => Math.min(RETRY.maxDelayMs, RETRY.initialDelayMs * RETRY.multiplier ** (attemptsMade - 1));

interface Attempt { receiver: string; at: string; outcome: string; status: number | null; latencyMs: number | null; error: string | null }
interface Delivery { receiver: string; state: string; attempts: number; nextAttemptAt: string | null; webhookId: string }
interface MessageView { sequence: number; receivedAt: string; deliveries: Delivery[] }

test('retries never stall: 50% failures, short backoffs, SIGKILL/SIGTERM/SIGKILL mid-run; every delivery ends within its budget', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meterhub-retries-'));
  const dataDir = join(dir, 'data');
  let hub: HubProcess | null = null;
  t.after(async () => { await hub?.kill9(); rmSync(dir, { recursive: true, force: true }); });

  // Half the requests fail: which ones is decided by the seed, the webhook-id and the attempt number.
  const tries = new Map<string, number>();
  const delivered = new Set<string>();
  const rx = await startReceiver((req, res) => {
    const id = String(req.headers['webhook-id']);
    const n = (tries.get(id) ?? 0) + 1;
    tries.set(id, n);
    const fail = createHash('sha256').update(`${SEED}:${id}:${n}`).digest()[0]! < 128;
    if (fail) { res.writeHead(500); res.end('random failure'); return; }
    delivered.add(id);
    res.writeHead(204); res.end();
  });
  t.after(() => rx.close());

  const configFile = join(dir, 'meterhub.yaml');
  writeFileSync(configFile, `# written by test/e2e/retries-never-stall.test.ts\n${toYaml({
    delivery: {
      pollIntervalMs: TICK_MS, leaseMarginMs: LEASE_MARGIN_MS,
      // Out of reach: with a 50% failure rate, 5 failures in a row are common, and an open
      // breaker legitimately leaves due deliveries pending (docs/delivery-states.md).
      breaker: { failureThreshold: 10_000 },
    },
    maintenance: { intervalMs: 100 },
    participants: {
      'MDP-A': { name: 'Meter data provider A', keys: [SENDER_KEY] },
      // Slots enough that a due retry never waits for one (after a restart, every retry that came
      // due while the hub was down is due at once): this is about the schedule, not the slots.
      'RETAILER-A': { name: 'Retailer A', receiver: { mode: 'push', url: rx.url, timeoutMs: TIMEOUT_MS, maxInFlight: 200, retry: RETRY } },
    },
    routes: [{ name: 'everything to the retailer', match: {}, to: { participants: ['RETAILER-A'] } }],
  })}`);

  /** When the hub was down: from the stop signal until the next process listened. */
  const down: Array<{ from: number; to: number }> = [];
  let upSince = 0;
  const start = async () => {
    hub = await startHubProcess({ configFile, dataDir, adminKey: ADMIN_KEY });
    upSince = Date.now();
  };
  const downTimeWithin = (a: number, b: number) => down.reduce((sum, d) => sum + Math.max(0, Math.min(b, d.to) - Math.max(a, d.from)), 0);
  /** The hub's event-loop delay, as it measured it: the longest in each window between two reads. */
  const lag: Array<{ from: number; to: number; maxMs: number }> = [];
  const stallWithin = (a: number, b: number) => lag.reduce((sum, w) => (w.to >= a && w.from <= b ? sum + w.maxMs : sum), 0);
  const admin = async <T>(path: string): Promise<T> => {
    const res = await request(hub!.url + path, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    const text = await res.body.text();
    assert.equal(res.statusCode, 200, `GET ${path}: ${text}`);
    return JSON.parse(text) as T;
  };

  await start();
  const t0 = Date.now();
  let up = true;
  let sending = true;
  const acknowledged: number[] = [];
  let cutOff = 0;

  // ---- the sender: open loop while the hub is up; a send in flight at a kill is cut off (its message may be committed) ----
  const inFlight = new Set<Promise<void>>();
  const send = async (i: number) => {
    const body = JSON.stringify({ specversion: '1.0', id: `m${i}`, source: 'MDP-A', type: 'test.reading', subject: `NMI${i % 13}`, data: { reading: i } });
    try {
      const res = await request(hub!.url + '/v1/messages', { method: 'POST', body, headers: { authorization: `Bearer ${SENDER_KEY}`, 'content-type': 'application/cloudevents+json' }, headersTimeout: 5_000, bodyTimeout: 5_000 });
      const text = await res.body.text();
      if (res.statusCode === 202) acknowledged.push(JSON.parse(text).sequence);
      else cutOff++;
    } catch {
      cutOff++; // the hub went away mid-request
    }
  };
  const sender = (async () => {
    for (let i = 0; sending; i++) {
      await new Promise((r) => setTimeout(r, SEND_EVERY_MS));
      if (!up || inFlight.size >= SENDS_IN_FLIGHT) continue;
      const p: Promise<void> = send(i).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await Promise.all([...inFlight]);
  })();

  // ---- the hub's event-loop delay, read every LAG_READ_EVERY_MS while it is up ----
  let watching = true;
  const lagReader = (async () => {
    let since = 0;
    let of: HubProcess | null = null;
    while (watching) {
      await new Promise((r) => setTimeout(r, LAG_READ_EVERY_MS));
      if (!up) { of = null; continue; }
      const current = hub!;
      try {
        const res = await request(current.url + '/metrics');
        const text = await res.body.text();
        const at = Date.now();
        const m = /^meterhub_nodejs_eventloop_lag_max_seconds ([0-9.e+-]+)$/m.exec(text);
        // The first read of a process covers it from its start.
        if (m) lag.push({ from: of === current ? since : upSince, to: at, maxMs: Math.round(Number(m[1]) * 1000) });
        of = current;
        since = at;
      } catch { of = null; }
    }
  })();

  // ---- the watcher: while the hub is up, no pending delivery is overdue by more than a tick + the lease margin ----
  const overdue: string[] = [];
  let checks = 0;
  let worstOverdue = 0;
  const watcher = (async () => {
    while (watching) {
      await new Promise((r) => setTimeout(r, 200));
      if (!up) continue;
      const since = upSince;
      const askedAt = Date.now();
      let page: { messages: MessageView[] };
      try { page = await admin<{ messages: MessageView[] }>('/v1/messages?state=pending&limit=1000&order=asc'); } catch { continue; }
      if (upSince !== since) continue; // restarted meanwhile
      checks++;
      for (const m of page.messages) for (const d of m.deliveries) {
        if (d.state !== 'pending' || d.nextAttemptAt === null) continue;
        // Due while the hub was down: it has a tick from the restart.
        const late = askedAt - Math.max(Date.parse(d.nextAttemptAt), since);
        worstOverdue = Math.max(worstOverdue, late);
        if (late > TICK_MS + LEASE_MARGIN_MS) overdue.push(`message ${m.sequence}: due ${d.nextAttemptAt}, still pending ${late} ms later (attempts ${d.attempts})`);
      }
    }
  })();

  // ---- three stops mid-run ----
  const exits: string[] = [];
  for (const signal of STOPS) {
    await new Promise((r) => setTimeout(r, Math.max(0, upSince + LIFE_MS - Date.now())));
    up = false;
    const from = Date.now();
    const old: HubProcess = hub!;
    if (signal === 'SIGKILL') await old.kill9();
    else old.child.kill('SIGTERM');
    const exit: { code: number | null; signal: NodeJS.Signals | null } = await old.exited;
    exits.push(`${signal}: ${exit.signal ?? `code ${exit.code}`}`);
    if (signal === 'SIGTERM') assert.equal(exit.code, 0, `a SIGTERM stops the hub cleanly: ${JSON.stringify(exit)} ${old.output().stderr}`);
    else assert.equal(exit.signal, 'SIGKILL');
    await start();
    down.push({ from, to: upSince });
    up = true;
  }
  await new Promise((r) => setTimeout(r, Math.max(0, upSince + LIFE_MS - Date.now())));
  sending = false;
  await sender;

  // ---- afterwards: nothing left open ----
  await eventually(async () => {
    const open = [
      ...(await admin<{ messages: MessageView[] }>('/v1/messages?state=pending&limit=10')).messages,
      ...(await admin<{ messages: MessageView[] }>('/v1/messages?state=delivering&limit=10')).messages,
    ];
    return open.length === 0;
  }, 10_000, 'every delivery to end');
  watching = false;
  await Promise.all([watcher, lagReader]);

  // Every message in the archive, acknowledged or not (a kill can cut off a committed message's 202).
  const all: MessageView[] = [];
  for (let after: string | null = null; ;) {
    const page: { messages: MessageView[]; next: string | null } = await admin(`/v1/messages?order=asc&limit=1000${after ? `&after=${after}` : ''}`);
    all.push(...page.messages);
    if (page.messages.length < 1000) break;
    after = page.next;
  }
  const sequences = new Set(all.map((m) => m.sequence));
  for (const seq of acknowledged) assert.ok(sequences.has(seq), `acknowledged message ${seq} is in the archive`);

  // ---- each delivery: ended, within its attempts, each attempt in time ----
  const problems: string[] = [];
  const states = { delivered: 0, dead: 0 };
  let leaseLost = 0;
  let worstTotal = -Infinity;
  let firstWait = 0;
  let worstStall = 0;
  const lateness: Array<{ late: number; what: string }> = [];
  for (const m of all) {
    assert.equal(m.deliveries.length, 1, `message ${m.sequence} has one delivery`);
    const d = m.deliveries[0]!;
    const view = await admin<MessageView>(`/v1/messages/${m.sequence}`);
    const final = view.deliveries[0]!;
    if (final.state !== 'delivered' && final.state !== 'dead') { problems.push(`message ${m.sequence}: ${final.state}`); continue; }
    states[final.state]++;
    const { attempts } = await admin<{ attempts: Attempt[] }>(`/v1/messages/${m.sequence}/attempts`);
    const claims = attempts.filter((a) => ['failed', 'delivered', 'dead', 'lease-lost'].includes(a.outcome));
    assert.equal(claims.length, attempts.length, `message ${m.sequence}: only push attempts: ${JSON.stringify(attempts)}`);
    const last = claims.at(-1)!;
    if (last.outcome !== final.state) problems.push(`message ${m.sequence}: ended ${final.state} but its last attempt is ${last.outcome}`);
    if (final.attempts !== claims.length) problems.push(`message ${m.sequence}: attempts ${final.attempts}, rows ${claims.length}`);
    const lost = claims.filter((a) => a.outcome === 'lease-lost').length;
    leaseLost += lost;
    const answered = claims.length - lost;
    if (answered > RETRY.maxAttempts) problems.push(`message ${m.sequence}: ${answered} answered attempts, more than ${RETRY.maxAttempts}`);
    if (final.state === 'dead' && !(claims.length >= RETRY.maxAttempts && /max attempts reached/.test(last.error ?? ''))) {
      problems.push(`message ${m.sequence}: dead before its budget: ${JSON.stringify(claims)}`);
    }
    if (final.state === 'delivered' && !delivered.has(d.webhookId)) problems.push(`message ${m.sequence}: delivered, but the receiver never answered 2xx for it`);

    // Its budget, from its attempts: from the first one, each attempt's time in flight and, after
    // each failure, its backoff at the longest (jitter only shortens it); the hub's down time
    // aside. The delivery ends within that plus one scheduler tick, and so does every single
    // attempt after the previous one. An attempt lost to a kill has no row of its own: it is the
    // 'lease-lost' row written at the restart, so the gap up to it may also hold that attempt's
    // own time in flight (at most the timeout); a lease-lost one is due again at once.
    // (The first attempt is woken by the commit, not by the retry schedule: its wait from the
    // receipt is ingest's, tens of ms on a busy box, and is only held to a loose bound below.)
    if (claims[0]!.outcome !== 'lease-lost') {
      const received = Date.parse(m.receivedAt);
      firstWait = Math.max(firstWait, Date.parse(claims[0]!.at) - received - downTimeWithin(received, Date.parse(claims[0]!.at)));
    }
    let prevEnd = Date.parse(claims[0]!.at);
    let prevDelay = 0;
    let lateTotal = 0;
    let stallTotal = 0;
    claims.forEach((a, i) => {
      const at = Date.parse(a.at);
      const inFlight = a.outcome === 'lease-lost' ? TIMEOUT_MS : 0;
      const dueBy = prevEnd + prevDelay + inFlight;
      const late = at - (dueBy + downTimeWithin(prevEnd, at));
      const stall = stallWithin(dueBy, at);
      lateTotal += late;
      stallTotal += stall;
      worstStall = Math.max(worstStall, stall);
      lateness.push({ late, what: `${m.sequence}#${i + 1} (${a.outcome}) at +${at - t0}` });
      if (late > TICK_MS + stall) problems.push(`message ${m.sequence}: attempt ${i + 1} (${a.outcome}) came ${late} ms after its backoff, more than a tick and the hub's event-loop stall of ${stall} ms: ${JSON.stringify(claims)}`);
      prevEnd = at + (a.latencyMs ?? 0);
      prevDelay = a.outcome === 'failed' ? nominalDelay(i + 1) : 0;
    });
    worstTotal = Math.max(worstTotal, lateTotal);
    if (lateTotal > TICK_MS + stallTotal) problems.push(`message ${m.sequence}: ended ${lateTotal} ms past its budget, more than a tick and the hub's event-loop stalls of ${stallTotal} ms: ${JSON.stringify(claims)}`);
  }

  t.diagnostic(`${all.length} messages (${acknowledged.length} acknowledged, ${cutOff} sends cut off by the stops), ${states.delivered} delivered, ${states.dead} dead, ${leaseLost} attempts lost to a kill and made again; stops: ${exits.join(', ')}; down ${down.map((d) => d.to - d.from).join(', ')} ms`);
  t.diagnostic(`latest end past its budget: ${worstTotal} ms, latest attempt past its backoff: ${Math.max(...lateness.map((l) => l.late))} ms (a tick is ${TICK_MS} ms; the hub's event loop stalled up to ${Math.max(0, ...lag.map((w) => w.maxMs))} ms, up to ${worstStall} ms while an attempt was due), first attempts at most ${firstWait} ms after receipt; ${checks} pending checks while up, most overdue ${worstOverdue} ms (allowed ${TICK_MS + LEASE_MARGIN_MS} ms)`);
  t.diagnostic(`most late: ${lateness.sort((a, b) => b.late - a.late).slice(0, 8).map((l) => `${l.what}: ${l.late}`).join('; ')}; stops at +${down.map((d) => `${d.from - t0}..${d.to - t0}`).join(', ')}`);
  assert.deepEqual(problems, []);
  assert.ok(firstWait < 1_000, `a first attempt came ${firstWait} ms after its message was received`);
  assert.deepEqual(overdue, [], 'no pending delivery was left overdue while the hub was up');
  assert.ok(acknowledged.length > 100, `enough traffic: ${acknowledged.length} acknowledged`);
  assert.ok(states.dead > 0 && states.delivered > states.dead, `both endings seen: ${JSON.stringify(states)}`);
  assert.ok(checks >= 10, `the watcher looked ${checks} times`);
});
