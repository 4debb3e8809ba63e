/**
 * Crash-consistency harness: the real hub as a child process (`meterhub serve`) under mixed load,
 * SIGKILLed at random moments and restarted on the same data folder each time; at the end (a
 * final restart, load stopped, receivers healthy, everything drained) it checks invariants 1-4
 * and 6-8 from what the senders and receivers saw:
 *
 * - every acknowledged message (202/200, batch items 202/200) is in the archive, byte for byte,
 *   with the sha256 of the data sent;
 * - every delivery ended `delivered` or `dead` (none pending or delivering);
 * - nothing delivered was sent again, except deliveries in flight at a kill: a webhook-id a push
 *   receiver answered 2xx and was then asked for again must have had that 2xx answered at most
 *   a lease (receiver timeout + leaseMarginMs) before a kill, and be asked again after it; a pull
 *   delivery acked (answered `acked`) must never be leased again;
 * - what receivers got is what was sent (sha256 of each pushed body);
 * - sequences are unique, and increase in acknowledgement order on each sender connection.
 *
 * Load, all at once: sender connections ingesting in the three modes (structured; binary, small
 * and over inlineBodyMaxBytes so that body files are used; batches), retrying what a kill cut off
 * and now and then sending an acknowledged event again (must answer 200 with its first sequence);
 * push receivers (healthy, flaky: 500 and 410 sometimes, slow); a pull receiver polling, acking,
 * nacking and letting leases expire; periodic DLQ redrives (`{all: true}` or by receiver).
 *
 * `npm run chaos` (scripts/chaos.ts) runs 20 kills; test/chaos/chaos-short.test.ts runs 3.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { freePort, startHubProcess, type HubProcess } from '../support/hub-process.ts';
import {
  ADMIN_KEY, PULL_KEY, PullConsumer, SENDER_KEYS, binaryEvent, call, connection, deliverySummary, ingest, jsonEvent, rng, sleep,
  startLoggingReceiver, writeConfig, type IngestAnswer, type IngestMode, type LoggedRequest, type LoggingReceiver, type PullLog, type SentEvent,
} from './kit.ts';

export interface ChaosOptions {
  kills: number;
  /** Seeds the mix (modes, sizes, receiver answers, kill moments); timing still differs run to run. */
  seed?: number;
  /** How long each life of the hub lasts before its SIGKILL, at random within [min, max] ms. */
  lifeMs?: [number, number];
  /** Sender connections. */
  senders?: number;
  /** Progress lines (one per kill). */
  log?: (line: string) => void;
  /** Keep the temp folder (data, config) for a post-mortem. */
  keep?: boolean;
  /** Longest the final drain may take. */
  drainTimeoutMs?: number;
  /** SIGTERMs (graceful stops) mixed in among the kills; default kills / 5. */
  gracefulStops?: number;
  /** Extra SIGKILLs while the hub is starting again (before or just after it listens); default kills / 5. */
  startupKills?: number;
}

export interface ChaosReport {
  seed: number;
  kills: number;
  killsSurvived: number;
  /** SIGTERMs under load that stopped the hub cleanly (exit 0), then a restart. */
  gracefulStops: number;
  /** SIGKILLs while the hub was starting again. */
  startupKills: number;
  durationMs: number;
  /** Kills and load; the final drain; the checks. */
  phasesMs: { load: number; drain: number; checks: number };
  requests: number;
  retriedAfterKill: number;
  messagesAcknowledged: number;
  duplicatesAnswered200: number;
  lost: number;
  changed: number;
  deliveries: Record<string, number>;
  unended: number;
  deadAtEnd: number;
  redriven: number;
  pushRequests: number;
  pullLeases: number;
  /** Deliveries sent again after a 2xx (push) or an ack (pull): in flight at a kill (allowed), or not (a violation). */
  duplicated: { total: number; inFlightAtKill: number; unexpected: number };
  bodyMismatches: number;
  sequenceViolations: number;
  /** Deliveries to the `ordering: subject` receiver attempted before their meter's previous one was delivered. */
  orderingViolations: number;
  /** Answers the senders did not expect (a violation each). */
  unexpectedAnswers: Record<string, number>;
  /** 503 (shutting down, storage) and 429 answers the senders waited out and sent again. */
  retriedAnswers: Record<string, number>;
  hubErrorLines: number;
  /** Body files on disk that no message refers to: half-written (bodies/tmp) or written but never committed. */
  orphanBodyFiles: { tmp: number; unreferenced: number };
  violations: string[];
  dataDir?: string;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const INLINE_MAX = 4096;
const RECEIVER_TIMEOUT_MS = 3_000;
const LEASE_MARGIN_MS = 1_000;
/** A push lease: what a delivery in flight at a kill can have been answered before it. */
const LEASE_MS = RECEIVER_TIMEOUT_MS + LEASE_MARGIN_MS;
const MAX_VIOLATIONS_LISTED = 40;

interface Acked { event: SentEvent; mode: IngestMode; sequence: number; receivers: string[] }

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const seed = opts.seed ?? (Date.now() % 1_000_000);
  const random = rng(seed);
  const log = opts.log ?? (() => {});
  const [lifeMin, lifeMax] = opts.lifeMs ?? [1_000, 3_500];
  const started = Date.now();
  const violations: string[] = [];
  const violate = (v: string) => { if (violations.length < MAX_VIOLATIONS_LISTED) violations.push(v); else if (violations.length === MAX_VIOLATIONS_LISTED) violations.push('… more'); };
  const unexpectedAnswers: Record<string, number> = {};
  const unexpected = (what: string) => { unexpectedAnswers[what] = (unexpectedAnswers[what] ?? 0) + 1; };
  const retriedAnswers: Record<string, number> = {};

  const dir = mkdtempSync(join(tmpdir(), 'meterhub-chaos-'));
  const dataDir = join(dir, 'data');
  const receivers: LoggingReceiver[] = [];
  let healthy = false;
  const ok = await startLoggingReceiver('OK');
  const flaky = await startLoggingReceiver('FLAKY', () => {
    if (healthy) return { status: 204 };
    const x = random();
    return x < 0.3 ? { status: 500 } : x < 0.33 ? { status: 410 } : { status: 204 };
  });
  const slow = await startLoggingReceiver('SLOW', () => ({ status: 200, delayMs: healthy ? 20 : 100 + Math.floor(random() * 800) }));
  receivers.push(ok, flaky, slow);
  const configFile = writeConfig(dir, {
    push: {
      OK: { url: ok.url, timeoutMs: RECEIVER_TIMEOUT_MS, ordering: 'subject' },
      FLAKY: { url: flaky.url, timeoutMs: RECEIVER_TIMEOUT_MS, retry: { maxAttempts: 4 } },
      SLOW: { url: slow.url, timeoutMs: RECEIVER_TIMEOUT_MS, maxInFlight: 8 },
    },
    pull: { PULL: { visibilityTimeoutSeconds: 2, maxReceives: 4 } },
    routes: [
      { name: 'every reading to the retailers', match: {}, to: { participants: ['OK', 'FLAKY', 'PULL'] } },
      { name: 'S meters to the slow network too', match: { subject: { prefix: 'NMI-S' } }, to: { participants: ['SLOW'] } },
    ],
    extra: {
      storage: { inlineBodyMaxBytes: INLINE_MAX },
      delivery: { leaseMarginMs: LEASE_MARGIN_MS },
    },
  });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let hub: HubProcess | null = null;
  const outputs: string[] = [];
  const env = { METERHUB_PORT: String(port) };
  const killWhileStarting = async (afterMs: number): Promise<Kill> => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--config', configFile], {
      cwd: ROOT, stdio: 'ignore',
      env: { ...process.env, METERHUB_HOST: '127.0.0.1', METERHUB_DATA_DIR: dataDir, METERHUB_ADMIN_KEY: ADMIN_KEY, METERHUB_ALLOW_PRIVATE_TARGETS: '1', METERHUB_LOG_LEVEL: 'warn', ...env },
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await Promise.race([sleep(afterMs), exited]);
    const at = Date.now();
    child.kill('SIGKILL');
    await exited;
    return { at, exitedAt: Date.now() };
  };
  const startHub = async () => {
    hub = await startHubProcess({ configFile, dataDir, adminKey: ADMIN_KEY, env, startTimeoutMs: 30_000 });
    return hub;
  };

  // ---- senders ----
  const sent = new Map<string, SentEvent>(); // by source/id
  const acked = new Map<string, Acked>();
  const ackOrder: number[][] = [];
  let requests = 0;
  let retriedAfterKill = 0;
  let duplicatesAnswered200 = 0;
  let sending = true;
  const keyOf = (e: { source: string; id: string }) => `${e.source}/${e.id}`;

  const sender = async (c: number) => {
    const source = c % 2 === 0 ? 'MDP-A' : 'MDP-B';
    const key = SENDER_KEYS[source]!;
    const mine: Acked[] = [];
    const order: number[] = [];
    ackOrder.push(order);
    let client = connection(url);
    for (let n = 0; sending; n++) {
      // Now and then, an event acknowledged before, sent again as it was: 200, its first sequence.
      const again = mine.length > 0 && random() < 0.05 ? mine[Math.floor(random() * mine.length)]! : null;
      let mode: IngestMode;
      let events: SentEvent[];
      if (again) {
        mode = again.mode === 'batch' ? 'structured' : again.mode;
        events = [again.event];
      } else {
        const x = random();
        mode = x < 0.35 ? 'structured' : x < 0.55 ? 'binary' : x < 0.75 ? 'binary-large' : 'batch';
        const subject = () => `NMI-${random() < 0.3 ? 'S' : 'N'}${Math.floor(random() * 8)}`;
        const id = `L${c}-${n}`;
        if (mode === 'batch') {
          events = Array.from({ length: 2 + Math.floor(random() * 4) }, (_, i) => jsonEvent(source, `${id}.${i}`, subject(), random() < 0.25 ? INLINE_MAX + Math.floor(random() * 8000) : Math.floor(random() * 200)));
        } else if (mode === 'structured') {
          events = [jsonEvent(source, id, subject(), random() < 0.2 ? INLINE_MAX + Math.floor(random() * 8000) : Math.floor(random() * 300))];
        } else {
          events = [binaryEvent(source, id, subject(), mode === 'binary-large' ? INLINE_MAX + 1 + Math.floor(random() * 30_000) : 200 + Math.floor(random() * 1500), random)];
        }
        for (const e of events) sent.set(keyOf(e), e);
      }
      // Until answered: a request cut off by a kill is sent again, as it was.
      let answer: { request: IngestAnswer; items: IngestAnswer[] };
      for (let tries = 0; ; tries++) {
        requests++;
        answer = await ingest(client, key, mode, events);
        const r = answer.request;
        if (r.kind === 'transport') {
          if (tries === 0) retriedAfterKill++;
          await client.destroy().catch(() => {});
          client = connection(url);
          await sleep(50 + Math.floor(random() * 100));
          continue;
        }
        if (r.kind === 'refused' && (r.status === 503 || r.status === 429)) {
          retriedAnswers[`${r.status} ${r.code}`] = (retriedAnswers[`${r.status} ${r.code}`] ?? 0) + 1;
          await sleep(100);
          continue;
        }
        break;
      }
      answer.items.forEach((a, i) => {
        const e = events[i]!;
        const k = keyOf(e);
        if (a.kind !== 'ack') {
          unexpected(a.kind === 'refused' ? `${a.status} ${a.code}` : 'transport');
          violate(`${k} (${mode}) was refused: ${JSON.stringify(a).slice(0, 300)}`);
          return;
        }
        const before = acked.get(k);
        if (again) {
          if (a.status !== 200) violate(`${k} sent again answered ${a.status}, not 200`);
          duplicatesAnswered200++;
        }
        if (before) {
          if (before.sequence !== a.sequence) violate(`${k} acknowledged with sequence ${before.sequence}, then ${a.sequence}`);
          return;
        }
        // A retry after a kill may find the event committed before it (200): the same receipt.
        const rec: Acked = { event: e, mode, sequence: a.sequence, receivers: a.receivers };
        acked.set(k, rec);
        mine.push(rec);
        order.push(a.sequence);
      });
    }
    await client.destroy().catch(() => {});
  };

  // ---- pull consumer, DLQ redrives ----
  const consumer = new PullConsumer(() => url, PULL_KEY, { max: 20, waitSeconds: 1 });
  consumer.decide = () => {
    if (healthy) return 'ack';
    const x = random();
    return x < 0.8 ? 'ack' : x < 0.92 ? 'nack' : 'ignore';
  };
  let redriven = 0;
  let redriving = true;
  const redriver = (async () => {
    while (redriving) {
      await sleep(healthy ? 300 : 700 + Math.floor(random() * 800));
      const x = random();
      const body = healthy || x < 0.5 ? { all: true } : x < 0.75 ? { receiver: 'FLAKY' } : { receiver: 'PULL' };
      try {
        const r = await call(url, 'POST', '/v1/admin/dlq/redrive', { json: body, timeoutMs: 5_000 });
        if (r.status === 200) redriven += r.json.redriven;
        else if (r.status === 503) retriedAnswers[`redrive 503 ${r.json?.code ?? ''}`] = (retriedAnswers[`redrive 503 ${r.json?.code ?? ''}`] ?? 0) + 1;
        else { unexpected(`redrive ${r.status} ${r.json?.code ?? ''}`); violate(`redrive answered ${r.status}: ${r.text.slice(0, 300)}`); }
      } catch { /* the hub is down for a moment */ }
    }
  })();

  const kills: Kill[] = [];
  const stops: Kill[] = [];
  const gracefulStops = opts.gracefulStops ?? Math.round(opts.kills / 5);
  const startupKills = opts.startupKills ?? Math.round(opts.kills / 5);
  let startupKillsDone = 0;
  let killsSurvived = 0;
  const senderCount = opts.senders ?? 4;
  const senders: Promise<void>[] = [];
  try {
    await startHub();
    consumer.start();
    for (let c = 0; c < senderCount; c++) senders.push(sender(c));

    // ---- kill, restart, again; now and then a graceful stop instead, or a kill while starting ----
    const plan: Array<'kill' | 'term'> = Array.from({ length: opts.kills }, () => 'kill' as const);
    for (let i = 0; i < gracefulStops; i++) plan.splice(Math.floor(random() * (plan.length + 1)), 0, 'term');
    const startupKillAt = new Set<number>();
    while (startupKillAt.size < Math.min(startupKills, plan.length)) startupKillAt.add(Math.floor(random() * plan.length));
    let killNo = 0;
    for (const [i, what] of plan.entries()) {
      await sleep(lifeMin + Math.floor(random() * (lifeMax - lifeMin)));
      const h = hub!;
      outputs.push(h.output().stderr);
      const at = Date.now();
      if (what === 'kill') {
        killNo++;
        h.child.kill('SIGKILL');
        await h.exited;
        kills.push({ at, exitedAt: Date.now() });
      } else {
        h.child.kill('SIGTERM');
        const exit = await Promise.race([h.exited, sleep(20_000).then(() => null)]);
        if (exit === null || exit.code !== 0) violate(`a SIGTERM under load did not stop the hub cleanly within 20 s: ${JSON.stringify(exit)}\n${h.output().stderr.slice(-1500)}`);
        if (exit === null) { h.child.kill('SIGKILL'); await h.exited; kills.push({ at: Date.now(), exitedAt: Date.now() }); }
        stops.push({ at, exitedAt: Date.now() });
      }
      await sleep(Math.floor(random() * 300));
      // A kill while the hub is starting (before or just after it listens).
      if (startupKillAt.has(i)) {
        startupKillsDone++;
        const t = await killWhileStarting(Math.floor(random() * 1_500));
        kills.push(t);
      }
      try {
        await startHub();
      } catch (e) {
        violate(`the hub did not start again after ${what === 'kill' ? `kill ${killNo}` : 'a SIGTERM'}: ${(e as Error).message.slice(0, 2000)}`);
        break;
      }
      if (what === 'kill') killsSurvived++;
      log(`${what === 'kill' ? `kill ${killNo}/${opts.kills}` : 'SIGTERM'} (${i + 1}/${plan.length}): ${acked.size} acknowledged so far, ${ok.log.length + flaky.log.length + slow.log.length} push requests, ${consumer.log.leased.length} leases`);
    }

    // ---- the end: load stops, receivers heal, everything drains ----
    const loadEndedAt = Date.now();
    await sleep(500);
    sending = false;
    await Promise.all(senders);
    healthy = true;
    const drainDeadline = Date.now() + (opts.drainTimeoutMs ?? 90_000);
    let summary: Record<string, number> = {};
    for (;;) {
      summary = await deliverySummary(url).catch(() => ({}));
      const open = (summary.pending ?? 0) + (summary.delivering ?? 0);
      if (open === 0 && (summary.dead ?? 0) === 0) break;
      if (Date.now() > drainDeadline) break;
      await sleep(250);
    }
    // Let a duplicate, if any, arrive.
    await sleep(600);
    summary = await deliverySummary(url);
    redriving = false;
    await redriver;
    await consumer.stop();

    // ---- checks ----
    const drainedAt = Date.now();
    // 1. Every acknowledged message is there, unchanged; each of its deliveries ended.
    let lost = 0;
    let changed = 0;
    let unended = 0;
    let deadAtEnd = 0;
    const views = await mapLimit([...acked.values()], 8, async (a) => ({ a, m: await call(url, 'GET', `/v1/messages/${a.sequence}`) }));
    for (const { a, m } of views) {
      const k = keyOf(a.event);
      if (m.status !== 200) { lost++; violate(`${k} (sequence ${a.sequence}, acknowledged) is missing: ${m.status}`); continue; }
      if (m.json.id !== a.event.id || m.json.source !== a.event.source) { lost++; violate(`sequence ${a.sequence} is ${m.json.source}/${m.json.id}, not ${k}`); continue; }
      if (m.json.sha256 !== a.event.sha256) { changed++; violate(`${k}: sha256 ${m.json.sha256}, sent ${a.event.sha256}`); }
      const originals = (m.json.deliveries as Array<{ receiver: string; state: string; resend: boolean }>).filter((d) => !d.resend);
      if (originals.length !== a.receivers.length) violate(`${k}: ${originals.length} deliveries for ${a.receivers.length} receivers`);
      for (const d of originals) {
        if (d.state === 'dead') deadAtEnd++;
        else if (d.state !== 'delivered') { unended++; violate(`${k} to ${d.receiver} is still ${d.state}`); }
      }
    }
    const open = (summary.pending ?? 0) + (summary.delivering ?? 0);
    if (open > 0) violate(`deliveries not ended after the drain: ${JSON.stringify(summary)}`);
    // The exact bytes, too (every body file, and a sample of the rest).
    const byteChecks = [...acked.values()].filter((a) => a.event.data.length > INLINE_MAX || random() < 0.2);
    await mapLimit(byteChecks, 8, async (a) => {
      try {
        const res = await request(`${url}/v1/messages/${a.sequence}/data`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
        const bytes = Buffer.from(await res.body.arrayBuffer());
        if (res.statusCode !== 200 || !bytes.equals(a.event.data)) { changed++; violate(`${keyOf(a.event)}: archived bytes differ (${res.statusCode}, ${bytes.length}/${a.event.data.length} bytes)`); }
      } catch (e) {
        changed++;
        violate(`${keyOf(a.event)}: archived bytes unreadable: ${(e as Error).message}`);
      }
    });

    // 2. Sequences: unique, increasing per connection.
    const seqProblems = sequenceProblems([...acked.values()].map((a) => ({ key: keyOf(a.event), sequence: a.sequence })), ackOrder);
    for (const p of seqProblems) violate(p);
    const sequenceViolations = seqProblems.length;

    // 3. Duplicates, from the receivers' logs by webhook-id; and what push receivers got is what was sent.
    let bodyMismatches = 0;
    for (const rx of receivers) {
      for (const r of rx.log) {
        const e = sent.get(`${r.ceSource}/${r.ceId}`);
        if (!e) { bodyMismatches++; violate(`${rx.id} got an event never sent: ${r.ceSource}/${r.ceId}`); }
        else if (e.sha256 !== r.bodySha256) { bodyMismatches++; violate(`${rx.id} got ${r.ceSource}/${r.ceId} with other bytes (sha256 ${r.bodySha256})`); }
      }
    }
    const ordering = orderingProblems(ok.id, ok.log);
    for (const v of ordering) violate(v);
    const push = pushDuplicates(receivers.map((rx) => ({ receiver: rx.id, log: rx.log })), kills, LEASE_MS, started);
    const pull = pullDuplicates(consumer.log, started);
    for (const v of [...push.unexpected, ...pull.unexpected]) violate(v);
    const dupTotal = push.total + pull.total;
    const dupInFlight = push.inFlightAtKill;
    const dupUnexpected = push.unexpected.length + pull.unexpected.length;

    // 4. What the hub logged at error level (not a violation by itself: listed for a look).
    outputs.push(hub!.output().stderr);
    // 5. Body files no message refers to (left by kills between writing a body and committing its message).
    await hub!.kill9();
    const orphanBodyFiles = orphanBodies(dataDir);
    const errorLines = outputs.join('\n').split('\n').filter((l) => /"level":(50|60)/.test(l));

    const report: ChaosReport = {
      phasesMs: { load: loadEndedAt - started, drain: drainedAt - loadEndedAt, checks: Date.now() - drainedAt },
      seed, kills: opts.kills, killsSurvived, gracefulStops: stops.length, startupKills: startupKillsDone, durationMs: Date.now() - started,
      requests, retriedAfterKill, messagesAcknowledged: acked.size, duplicatesAnswered200,
      lost, changed, deliveries: summary, unended: unended + open, deadAtEnd, redriven,
      pushRequests: ok.log.length + flaky.log.length + slow.log.length, pullLeases: consumer.log.leased.length,
      duplicated: { total: dupTotal, inFlightAtKill: dupInFlight, unexpected: dupUnexpected },
      bodyMismatches, sequenceViolations, orderingViolations: ordering.length, unexpectedAnswers, retriedAnswers, hubErrorLines: errorLines.length, orphanBodyFiles,
      violations,
      ...(opts.keep ? { dataDir } : {}),
    };
    if (errorLines.length > 0) log(`hub error lines (first 5):\n${errorLines.slice(0, 5).map((l) => `  ${l.slice(0, 400)}`).join('\n')}`);
    return report;
  } finally {
    sending = false;
    redriving = false;
    await (hub as HubProcess | null)?.kill9();
    await consumer.stop().catch(() => {});
    await Promise.allSettled(senders);
    await redriver.catch(() => {});
    for (const rx of receivers) await rx.close();
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
  }
}

export interface Kill { at: number; exitedAt: number }

/**
 * Push deliveries sent again after a 2xx. Each request that follows a 2xx answer for the same
 * webhook-id counts once; it is explained by a kill when the 2xx was answered before the kill
 * (within a few ms: the harness sees the exit a moment after it) and at most a lease before it,
 * and the new request came after the kill. Anything else is unexpected.
 */
export function pushDuplicates(logs: Array<{ receiver: string; log: LoggedRequest[] }>, kills: Kill[], leaseMs: number, t0 = 0): { total: number; inFlightAtKill: number; unexpected: string[] } {
  let total = 0;
  let inFlightAtKill = 0;
  const unexpected: string[] = [];
  for (const { receiver, log } of logs) {
    const byId = new Map<string, LoggedRequest[]>();
    for (const r of log) {
      const list = byId.get(r.webhookId) ?? [];
      list.push(r);
      byId.set(r.webhookId, list);
    }
    for (const [id, list] of byId) {
      list.sort((x, y) => x.receivedAt - y.receivedAt);
      for (let i = 0; i < list.length; i++) {
        const r = list[i]!;
        if (r.answeredAt === null || r.status === null || r.status < 200 || r.status >= 300) continue;
        const next = list.slice(i + 1).find((x) => x.receivedAt >= r.answeredAt!);
        if (!next) continue;
        total++;
        const kill = kills.find((k) => r.answeredAt! <= k.exitedAt + 50 && k.at - r.answeredAt! <= leaseMs && next.receivedAt >= k.at);
        if (kill) inFlightAtKill++;
        else unexpected.push(`${receiver}: webhook-id ${id} answered ${r.status} at +${r.answeredAt - t0} ms, sent again at +${next.receivedAt - t0} ms, with no kill in between within a lease (${leaseMs} ms)`);
      }
    }
  }
  return { total, inFlightAtKill, unexpected };
}

/** Pull deliveries leased again after an ack the hub answered `acked` (durable): always unexpected. */
export function pullDuplicates(log: Pick<PullLog, 'leased' | 'acked'>, t0 = 0): { total: number; unexpected: string[] } {
  const unexpected: string[] = [];
  for (const l of log.leased) {
    const ackedAt = log.acked.get(l.webhookId);
    if (ackedAt !== undefined && l.at > ackedAt) unexpected.push(`PULL: webhook-id ${l.webhookId} (sequence ${l.sequence}) acked at +${ackedAt - t0} ms, leased again at +${l.at - t0} ms`);
  }
  return { total: unexpected.length, unexpected };
}

/** Sequences given to two events, and, per connection, a sequence acknowledged after a higher one. */
export function sequenceProblems(acked: Array<{ key: string; sequence: number }>, perConnection: number[][]): string[] {
  const problems: string[] = [];
  const owner = new Map<number, string>();
  for (const a of acked) {
    const o = owner.get(a.sequence);
    if (o !== undefined && o !== a.key) problems.push(`sequence ${a.sequence} given to ${o} and ${a.key}`);
    owner.set(a.sequence, a.key);
  }
  perConnection.forEach((order, c) => {
    for (let i = 1; i < order.length; i++) {
      if (order[i]! <= order[i - 1]!) problems.push(`connection ${c}: sequence ${order[i]} acknowledged after ${order[i - 1]}`);
    }
  });
  return problems;
}

/**
 * Invariant 5 for a receiver with `ordering: subject` that never fails: a meter's delivery is
 * not attempted before the meter's previous one (by sequence) was answered 2xx the first time.
 * A kill may make the hub send the previous one again (in flight), never the next one early.
 */
export function orderingProblems(receiver: string, log: LoggedRequest[]): string[] {
  const problems: string[] = [];
  const bySubject = new Map<string, Map<number, { firstAt: number; firstOkAt: number | null }>>();
  for (const r of log) {
    const m = bySubject.get(r.ceSubject) ?? new Map<number, { firstAt: number; firstOkAt: number | null }>();
    bySubject.set(r.ceSubject, m);
    const e = m.get(r.sequence) ?? { firstAt: r.receivedAt, firstOkAt: null };
    e.firstAt = Math.min(e.firstAt, r.receivedAt);
    if (r.answeredAt !== null && r.status !== null && r.status < 300) e.firstOkAt = e.firstOkAt === null ? r.answeredAt : Math.min(e.firstOkAt, r.answeredAt);
    m.set(r.sequence, e);
  }
  for (const [subject, m] of bySubject) {
    const seqs = [...m.keys()].sort((a, b) => a - b);
    for (let i = 1; i < seqs.length; i++) {
      const prev = m.get(seqs[i - 1]!)!;
      const cur = m.get(seqs[i]!)!;
      if (prev.firstOkAt === null || cur.firstAt < prev.firstOkAt) {
        problems.push(`${receiver}, meter ${subject}: sequence ${seqs[i]} sent before ${seqs[i - 1]} was delivered`);
      }
    }
  }
  return problems;
}

/** True when the run found nothing wrong. */
export function passed(r: ChaosReport): boolean {
  return r.killsSurvived === r.kills && r.lost === 0 && r.changed === 0 && r.unended === 0 && r.duplicated.unexpected === 0
    && r.bodyMismatches === 0 && r.sequenceViolations === 0 && r.orderingViolations === 0 && r.violations.length === 0;
}

export function summaryLine(r: ChaosReport): string {
  return `chaos ${passed(r) ? 'PASS' : 'FAIL'}: seed ${r.seed}, kills survived ${r.killsSurvived}/${r.kills} (+${r.startupKills} while starting, +${r.gracefulStops} SIGTERM stops), messages acknowledged ${r.messagesAcknowledged}, `
    + `lost ${r.lost}, changed ${r.changed}, duplicated ${r.duplicated.total} (in flight at a kill ${r.duplicated.inFlightAtKill}, unexpected ${r.duplicated.unexpected}), `
    + `unended ${r.unended}, dead at end ${r.deadAtEnd}, redriven ${r.redriven}, push requests ${r.pushRequests}, pull leases ${r.pullLeases}, `
    + `sequence violations ${r.sequenceViolations}, ordering violations ${r.orderingViolations}, orphan body files ${r.orphanBodyFiles.tmp + r.orphanBodyFiles.unreferenced}, in ${(r.durationMs / 1000).toFixed(1)} s`;
}

function orphanBodies(dataDir: string): { tmp: number; unreferenced: number } {
  const root = join(dataDir, 'bodies');
  const db = new Database(join(dataDir, 'meterhub.db'), { readonly: true, fileMustExist: true });
  let keys: Set<string>;
  try {
    keys = new Set((db.prepare("SELECT body_key AS k FROM messages WHERE body_kind = 'file'").all() as Array<{ k: string }>).map((r) => r.k));
  } finally {
    db.close();
  }
  const tmp = existsSync(join(root, 'tmp')) ? readdirSync(join(root, 'tmp')).filter((f) => !f.startsWith('.')).length : 0;
  let unreferenced = 0;
  for (const d of readdirSync(root).filter((x) => /^[0-9a-f]{2}$/.test(x))) {
    for (const f of readdirSync(join(root, d))) if (!keys.has(`${d}/${f}`)) unreferenced++;
  }
  return { tmp, unreferenced };
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  }));
  return out;
}
