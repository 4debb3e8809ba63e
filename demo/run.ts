/**
 * meterhub demo (`npm run demo`): a hub in its own process on a temp folder, three receivers,
 * three real NEM12 files sent with the real CLI, and a summary of what happened to every
 * delivery. Exits 0 only when every delivery ended delivered; else 1, saying what is missing.
 *
 *   MDP-A        sends the NEM12 files (`meterhub send --nem12`), split per NMI, register and day
 *   RETAILER-A   push receiver (FRMP), healthy
 *   NETWORK-B    push receiver (LNSP), answers 503 for its first ~3 s: the hub retries
 *   METER-COORD  pull receiver (MDP), polls GET /v1/inbox every ~500 ms and acks
 *
 * Everything it starts (the hub, the CLI runs, the receivers) and its temp folder are cleaned up
 * on every exit path.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { REPO_ROOT, runTs, spawnTs, type Child } from '../bench/lib/children.ts';
import { mergeIfSupported } from '../bench/lib/hub-process.ts';

const ADMIN_KEY = `demo-admin-${randomBytes(16).toString('hex')}`;
const SENDER_KEY = `demo-mdp-a-${randomBytes(16).toString('hex')}`;
const COORD_KEY = `demo-coord-${randomBytes(16).toString('hex')}`;
const FAIL_FOR_MS = 3_000;
const DEADLINE_MS = 45_000;

const FILES = [
  'samples/nem12_multiple_meters.csv',
  'samples/nem12_nemmco_scenario10_powermdp.csv',
  'samples/nem12_month_solar_5min.csv',
];
const REGISTRY = [
  'meter,role,participant,validFrom,validTo',
  ...['NCDE001111', 'NDDD001888', 'NEM1210187', 'NMI1234567'].flatMap((nmi) => [
    `${nmi},FRMP,RETAILER-A,,`,
    `${nmi},LNSP,NETWORK-B,,`,
    `${nmi},MDP,METER-COORD,,`,
  ]),
].join('\n');
const RECEIVERS = ['RETAILER-A', 'NETWORK-B', 'METER-COORD'] as const;

const started = Date.now();
const say = (line: string): void => { process.stdout.write(`${line}\n`); };
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;

// ---- cleanup on every exit path ----
const dir = mkdtempSync(join(tmpdir(), 'meterhub-demo-'));
const servers: Server[] = [];
let hub: Child | null = null;
let poller: { stop(): Promise<void> } | null = null;
process.on('exit', () => {
  hub?.proc.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});
// Ctrl-C or a kill: the 'exit' handlers above (and bench/lib/children.ts's) still run.
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));

async function cleanup(): Promise<void> {
  await poller?.stop().catch(() => undefined);
  if (hub) {
    const code = await hub.stop(10_000);
    if (code !== 0) say(`(the hub exited with ${code})`);
    hub = null;
  }
  for (const s of servers) { s.closeAllConnections(); s.close(); }
  rmSync(dir, { recursive: true, force: true });
}

// ---- push receivers, in this process ----
interface PushStats { requests: number; ok: number; refused503: number; badSignatures: number; ids: Set<string> }

function verifySignature(secret: string, headers: Record<string, string | string[] | undefined>, body: Buffer): boolean {
  const id = String(headers['webhook-id'] ?? '');
  const ts = String(headers['webhook-timestamp'] ?? '');
  const sigs = String(headers['webhook-signature'] ?? '').split(' ');
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${ts}.`).update(body).digest();
  return sigs.some((s) => {
    const [version, b64] = s.split(',');
    const got = Buffer.from(b64 ?? '', 'base64');
    return version === 'v1' && got.length === expected.length && timingSafeEqual(got, expected);
  });
}

async function pushReceiver(secret: string, failForMs: number): Promise<{ url: string; stats: PushStats }> {
  const stats: PushStats = { requests: 0, ok: 0, refused503: 0, badSignatures: 0, ids: new Set() };
  let firstAt: number | null = null;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      stats.requests++;
      firstAt ??= Date.now();
      if (!verifySignature(secret, req.headers, Buffer.concat(chunks))) {
        stats.badSignatures++;
        res.statusCode = 401;
        res.end();
        return;
      }
      if (Date.now() - firstAt < failForMs) {
        stats.refused503++;
        res.statusCode = 503;
        res.end('warming up');
        return;
      }
      stats.ok++;
      stats.ids.add(String(req.headers['webhook-id']));
      res.statusCode = 204;
      res.end();
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/meterhub`, stats };
}

// ---- the pull receiver ----
interface PullStats { polls: number; received: number; acked: number }

function startPoller(hubUrl: string, key: string, stats: PullStats): { stop(): Promise<void> } {
  let running = true;
  let timer: NodeJS.Timeout | null = null;
  let current: Promise<void> = Promise.resolve();
  const auth = { authorization: `Bearer ${key}` };
  const pollOnce = async () => {
    stats.polls++;
    const res = await request(`${hubUrl}/v1/inbox?max=100&wait=0`, { headers: auth });
    const body = await res.body.json() as { messages?: Array<{ lease: string }> };
    if (res.statusCode !== 200) throw new Error(`GET /v1/inbox answered ${res.statusCode}: ${JSON.stringify(body)}`);
    const leases = (body.messages ?? []).map((m) => m.lease);
    stats.received += leases.length;
    if (leases.length === 0) return;
    const ack = await request(`${hubUrl}/v1/inbox/ack`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ leases }) });
    const acked = await ack.body.json() as { results: Array<{ result: string }> };
    stats.acked += acked.results.filter((r) => r.result === 'acked').length;
  };
  const loop = () => {
    if (!running) return;
    current = pollOnce().catch((err) => say(`METER-COORD poll failed: ${(err as Error).message}`)).finally(() => {
      if (running) timer = setTimeout(loop, 500);
    });
  };
  loop();
  return {
    async stop() {
      running = false;
      if (timer) clearTimeout(timer);
      await current;
    },
  };
}

// ---- hub API ----
async function admin(hubUrl: string, method: string, path: string, body?: { type: string; data: string }): Promise<any> {
  const res = await request(hubUrl + path, {
    method: method as 'GET',
    headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(body ? { 'content-type': body.type } : {}) },
    body: body?.data,
  });
  const text = await res.body.text();
  if (res.statusCode >= 300) throw new Error(`${method} ${path}: ${res.statusCode} ${text}`);
  return text ? JSON.parse(text) : null;
}

type Summary = Array<{ receiver: string; state: string; count: number }>;

function byReceiver(summary: Summary): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  for (const r of RECEIVERS) out.set(r, {});
  for (const { receiver, state, count } of summary) {
    const m = out.get(receiver) ?? {};
    m[state] = count;
    out.set(receiver, m);
  }
  return out;
}

async function main(): Promise<number> {
  say('meterhub demo: one hub, three receivers, three NEM12 files');

  const retailerSecret = `whsec_${randomBytes(24).toString('base64')}`;
  const networkSecret = `whsec_${randomBytes(24).toString('base64')}`;
  const retailer = await pushReceiver(retailerSecret, 0);
  const network = await pushReceiver(networkSecret, FAIL_FOR_MS);

  const config = {
    participants: {
      'MDP-A': { name: 'Meter data provider A (sender)', keys: [SENDER_KEY] },
      'RETAILER-A': { name: 'Retailer A', receiver: { mode: 'push', url: retailer.url, secret: retailerSecret } },
      'NETWORK-B': {
        name: 'Network B (503 for its first 3 s)',
        receiver: { mode: 'push', url: network.url, secret: networkSecret, timeoutMs: 2000, retry: { initialDelayMs: 500, maxDelayMs: 1000, maxAttempts: 20 } },
      },
      'METER-COORD': { name: 'Metering coordinator (pull)', keys: [COORD_KEY], receiver: { mode: 'pull', visibilityTimeoutSeconds: 30 } },
    },
    routes: [{ name: 'NEM12 interval data to the meter\'s FRMP, LNSP and MDP', match: { type: { prefix: 'au.com.aemo.nem12.' } }, to: { roles: ['FRMP', 'LNSP', 'MDP'] } }],
  };
  // A receiver failing again and again trips the hub's circuit breaker (30 s cooldown by
  // default); the demo shortens it so that the recovery shows within seconds.
  const hasBreaker = mergeIfSupported(config, { delivery: { breaker: { cooldownMs: 1000, maxCooldownMs: 2000 } } });
  const configFile = join(dir, 'demo.yaml');
  writeFileSync(configFile, stringify(config));

  hub = await spawnTs('hub', 'src/cli/main.ts', ['serve', '--config', configFile], {
    env: {
      METERHUB_DATA_DIR: join(dir, 'data'), METERHUB_PORT: '0', METERHUB_HOST: '127.0.0.1',
      METERHUB_ADMIN_KEY: ADMIN_KEY, METERHUB_ALLOW_PRIVATE_TARGETS: '1', METERHUB_LOG_LEVEL: process.env.METERHUB_LOG_LEVEL ?? 'warn',
    },
    ready: /meterhub listening on (http:\/\/\S+)/,
    timeoutMs: 30_000,
  });
  const hubUrl = hub.ready[1]!;
  say(`[${elapsed()}] hub started at ${hubUrl} (data in a temp folder)`);

  const imported = await admin(hubUrl, 'POST', '/v1/admin/meters', { type: 'text/csv', data: REGISTRY }) as { imported: number };
  say(`[${elapsed()}] meter registry: ${imported.imported} rows imported (4 NMIs × FRMP→RETAILER-A, LNSP→NETWORK-B, MDP→METER-COORD)`);

  const pull: PullStats = { polls: 0, received: 0, acked: 0 };
  poller = startPoller(hubUrl, COORD_KEY, pull);

  // ---- send the files with the real CLI ----
  const sequences: number[] = [];
  const perFile: Array<{ file: string; line: string; accepted: number }> = [];
  for (const file of FILES) {
    const run = await runTs('src/cli/main.ts', ['send', '--nem12', file, '--url', hubUrl, '--source', 'MDP-A'], {
      env: { METERHUB_KEY: SENDER_KEY },
      timeoutMs: 30_000,
    });
    const seqs = [...run.stdout.matchAll(/accepted as (\d+)/g)].map((m) => Number(m[1]));
    const summaryLine = run.stdout.trim().split('\n').at(-1) ?? '';
    if (run.code !== 0) {
      say(`meterhub send ${file} failed (exit ${run.code}):\n${run.stdout}${run.stderr}`);
      return 1;
    }
    const fresh = [...run.stdout.matchAll(/: accepted as (\d+)/g)].length;
    sequences.push(...seqs);
    perFile.push({ file, line: summaryLine, accepted: fresh });
    say(`[${elapsed()}] sent ${file}: ${summaryLine}`);
  }
  const unique = [...new Set(sequences)];

  // ---- wait until every delivery ends ----
  const expected = unique.length * RECEIVERS.length;
  let summary: Summary = [];
  const deadline = started + DEADLINE_MS;
  for (;;) {
    summary = (await admin(hubUrl, 'GET', '/v1/admin/deliveries/summary') as { deliveries: Summary }).deliveries;
    const ended = summary.filter((d) => d.state === 'delivered' || d.state === 'dead').reduce((n, d) => n + d.count, 0);
    const total = summary.reduce((n, d) => n + d.count, 0);
    if (total >= expected && ended === total) break;
    if (Date.now() > deadline) {
      say(`[${elapsed()}] gave up waiting: ${ended} of ${total} deliveries ended (${expected} expected)`);
      break;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await poller.stop();
  poller = null;

  // ---- what happened to each message ----
  const attemptsBy = new Map<string, { deliveries: number; attempts: number; retried: number }>();
  const notDelivered: string[] = [];
  for (const seq of unique) {
    const m = await admin(hubUrl, 'GET', `/v1/messages/${seq}`) as { subject: string; deliveries: Array<{ receiver: string; state: string; attempts: number; lastError: string | null }> };
    const got = new Set(m.deliveries.map((d) => d.receiver));
    for (const r of RECEIVERS) if (!got.has(r)) notDelivered.push(`message ${seq} (${m.subject}) has no delivery to ${r}`);
    for (const d of m.deliveries) {
      const a = attemptsBy.get(d.receiver) ?? { deliveries: 0, attempts: 0, retried: 0 };
      a.deliveries++;
      a.attempts += d.attempts;
      if (d.attempts > 1) a.retried++;
      attemptsBy.set(d.receiver, a);
      if (d.state !== 'delivered') notDelivered.push(`message ${seq} (${m.subject}) to ${d.receiver}: ${d.state} after ${d.attempts} attempt(s)${d.lastError ? `, last error: ${d.lastError}` : ''}`);
    }
  }

  say('');
  say('== summary ==');
  say('messages accepted per file:');
  for (const f of perFile) say(`  ${f.file.padEnd(46)} ${f.line}`);
  say(`deliveries per receiver and state (${unique.length} messages × ${RECEIVERS.length} receivers = ${expected} expected):`);
  const states = byReceiver(summary);
  for (const r of RECEIVERS) {
    const s = states.get(r) ?? {};
    const a = attemptsBy.get(r) ?? { deliveries: 0, attempts: 0, retried: 0 };
    const stateText = Object.entries(s).map(([k, v]) => `${v} ${k}`).join(', ') || 'none';
    say(`  ${r.padEnd(12)} ${stateText.padEnd(16)} ${a.attempts} attempt(s), ${a.attempts - a.deliveries} retries over ${a.retried} deliveries`);
  }
  say('retries seen:');
  say(`  NETWORK-B answered 503 to ${network.stats.refused503} request(s) in its first ${FAIL_FOR_MS / 1000} s, then 204 to ${network.stats.ok}; the hub retried with backoff from 500 ms${hasBreaker ? ', and its circuit breaker held NETWORK-B back and probed it (cooldown 1-2 s here)' : ''}`);
  const example = unique[0];
  if (example !== undefined) {
    const { attempts } = await admin(hubUrl, 'GET', `/v1/messages/${example}/attempts`) as { attempts: Array<{ receiver: string; at: string; outcome: string; status: number | null; error: string | null }> };
    const t0 = attempts.length > 0 ? Date.parse(attempts[0]!.at) : 0;
    say(`  message ${example} to NETWORK-B, attempt by attempt:`);
    for (const a of attempts.filter((x) => x.receiver === 'NETWORK-B')) {
      say(`    +${((Date.parse(a.at) - t0) / 1000).toFixed(2)}s ${a.outcome}${a.status ? ` HTTP ${a.status}` : ''}${a.error ? ` (${a.error})` : ''}`);
    }
  }
  say(`  RETAILER-A answered 204 to ${retailer.stats.ok} of ${retailer.stats.requests} request(s); bad signatures: ${retailer.stats.badSignatures + network.stats.badSignatures}`);
  say(`  METER-COORD polled ${pull.polls} time(s), received ${pull.received}, acked ${pull.acked}`);
  say(`time taken: ${elapsed()}`);

  const total = summary.reduce((n, d) => n + d.count, 0);
  if (total < expected) notDelivered.unshift(`${expected - total} deliveries are missing altogether (${total} of ${expected})`);
  if (retailer.stats.badSignatures + network.stats.badSignatures > 0) notDelivered.push('some pushes carried a bad webhook-signature');
  if (notDelivered.length > 0) {
    say(`NOT ALL DELIVERED: ${notDelivered.length} problem(s):`);
    for (const p of notDelivered.slice(0, 30)) say(`  ${p}`);
    if (notDelivered.length > 30) say(`  … and ${notDelivered.length - 30} more`);
    return 1;
  }
  say(`ALL DELIVERED: ${expected} deliveries to ${RECEIVERS.length} receivers, every one delivered`);
  return 0;
}

process.chdir(REPO_ROOT);
let code = 1;
try {
  code = await main();
} catch (err) {
  say(`demo failed: ${(err as Error).stack ?? err}`);
  const h = hub as Child | null;
  if (h) say(`--- hub output ---\n${h.output()}`);
  code = 1;
} finally {
  await cleanup().catch((err) => say(`cleanup: ${(err as Error).message}`));
}
process.exit(code);
