/**
 * Scale-out on PostgreSQL under load, one process SIGKILLed mid-run.
 *
 * Two hub processes (`meterhub serve`, each with its own data folder and port) share one
 * PostgreSQL schema; bodies are small, so they stay inline in PostgreSQL and no shared file store
 * is needed. Both are started at once from the same config file (migrations and the config's
 * participants, pre-shared key and routes applied by both concurrently). A load generator sends
 * to both alternately, open loop; every message goes to two push receivers on loopback: O
 * (`ordering: subject`, quick) and U (no ordering, slow, so that each hub always has pushes in
 * flight). Midway hub 1 is SIGKILLed; its senders' requests cut off are sent again to hub 0 (as
 * a client with a list of hub URLs would: same id, answered as a duplicate if hub 1 had
 * committed it). Then:
 *  - hub 0 kept accepting (every send to it answered 202/200) and delivering;
 *  - hub 0 took over hub 1's in-flight deliveries once their leases expired (receiver timeout
 *    plus delivery.leaseMarginMs: 2.5 s here): 'lease-lost' attempts, then delivered;
 *  - every acknowledged message was delivered to both receivers; nothing is left open or dead;
 *  - each webhook-id was answered 2xx exactly once, except deliveries hub 1 had in flight at the
 *    kill (a 'lease-lost' attempt, first sent before the kill), which may come twice;
 *  - for O, per subject, the first successful delivery of each webhook-id came in sequence order;
 *  - sequences are unique (and one per (source, id) across both hubs).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify as toYaml } from 'yaml';
import { startHubProcess, type HubProcess } from '../support/hub-process.ts';
import { startReceiver, type TestReceiver } from '../support/receiver.ts';
import { postgresTest, sharedSchema, sleep } from './support.ts';

const ADMIN_KEY = 'multiprocess-admin-key-0123456789abcdef';
const SENDER_KEY = 'mh_presharedsenderkey_multiprocess_0123456789';
const SUBJECTS = 12;
/** Open loop: one send every SEND_EVERY_MS, at most SENDS_IN_FLIGHT unanswered. */
const SEND_EVERY_MS = 10;
const SENDS_IN_FLIGHT = 16;
const KILL_AT_MS = 3_500;
const RUN_MS = 7_500;
const TIMEOUT_MS = 2_000;
const LEASE_MARGIN_MS = 500;
const O_IN_FLIGHT = 16;
const U_IN_FLIGHT = 32;

interface Success { arrivedAt: number; at: number; webhookId: string; ceId: string; sequence: number; subject: string }
interface Receipt { id: string; sequence: number; subject: string; via: number; status: number; at: number }

/** A receiver that answers 204 after `delayMs()`, logging each success (its decision to answer 2xx) in arrival order. */
async function loggingReceiver(delayMs: () => number) {
  const successes: Success[] = [];
  const rx: TestReceiver = await startReceiver(async (req, res) => {
    await sleep(delayMs());
    successes.push({
      arrivedAt: req.at, at: Date.now(), webhookId: String(req.headers['webhook-id']), ceId: String(req.headers['ce-id']),
      sequence: Number(req.headers['ce-sequence']), subject: String(req.headers['ce-subject']),
    });
    res.statusCode = 204;
    res.end();
  });
  return { rx, successes };
}

postgresTest('test/multiprocess/two-processes-kill.test.ts', 'two hub processes on one PostgreSQL under load, one SIGKILLed: the other carries on and takes over; all delivered, once (but for the kill\'s in-flight), in order per subject', { timeout: 90_000 }, async () => {
  const started = Date.now();
  const db = sharedSchema(8);
  const dir = mkdtempSync(join(tmpdir(), 'meterhub-2proc-'));
  const hubs: HubProcess[] = [];
  const O = await loggingReceiver(() => 5 + Math.floor(Math.random() * 20));
  const U = await loggingReceiver(() => 100 + Math.floor(Math.random() * 200));
  try {
    const retry = { maxAttempts: 1000, maxAgeSeconds: 3600, initialDelayMs: 100, maxDelayMs: 500, multiplier: 2, retryAfterCapMs: 500 };
    const configFile = join(dir, 'meterhub.yaml');
    writeFileSync(configFile, `# written by test/multiprocess/two-processes-kill.test.ts\n${toYaml({
      server: { ingestRateLimit: { eventsPerSecond: null } },
      delivery: { pollIntervalMs: 50, leaseMarginMs: LEASE_MARGIN_MS },
      maintenance: { intervalMs: 200 },
      participants: {
        'MDP-A': { name: 'Meter data provider A', keys: [SENDER_KEY] },
        'RETAILER-O': { name: 'Ordered', receiver: { mode: 'push', url: O.rx.url, ordering: 'subject', timeoutMs: TIMEOUT_MS, maxInFlight: O_IN_FLIGHT, retry } },
        'RETAILER-U': { name: 'Unordered', receiver: { mode: 'push', url: U.rx.url, timeoutMs: TIMEOUT_MS, maxInFlight: U_IN_FLIGHT, retry } },
      },
      routes: [{ name: 'everything to O and U', match: {}, to: { participants: ['RETAILER-O', 'RETAILER-U'] } }],
    })}`);

    // ---- two processes, one schema, started at once ----
    const env = { METERHUB_DATABASE_URL: db.databaseUrl };
    hubs.push(...await Promise.all([0, 1].map((i) => startHubProcess({ configFile, dataDir: join(dir, `data-${i}`), adminKey: ADMIN_KEY, env, startTimeoutMs: 30_000 }))));
    const loadStart = Date.now();

    // ---- load: alternately to hub 0 and hub 1; after the kill, what hub 1 cannot take goes to hub 0 ----
    let killedAt = Infinity;
    const receipts = new Map<string, Receipt>();
    const refused: string[] = [];
    let cutOff = 0;
    let survivorAnswers = 0;
    const sendOne = async (i: number) => {
      const id = `mp-${i}`;
      const subject = `NMI${String(i % SUBJECTS).padStart(4, '0')}`;
      const body = JSON.stringify({ specversion: '1.0', id, source: 'MDP-A', type: 'test.reading', subject, datacontenttype: 'application/json', data: { i, kwh: (i % 100) / 10 } });
      let via = i % 2;
      for (let tries = 0; tries < 4; tries++) {
        if (via === 1 && Date.now() >= killedAt) via = 0;
        try {
          const res = await request(`${hubs[via]!.url}/v1/messages`, {
            method: 'POST', body, headersTimeout: 10_000, bodyTimeout: 10_000,
            headers: { authorization: `Bearer ${SENDER_KEY}`, 'content-type': 'application/cloudevents+json' },
          });
          const text = await res.body.text();
          if (via === 0 && Date.now() >= killedAt) survivorAnswers++;
          if (res.statusCode === 202 || res.statusCode === 200) {
            const json = JSON.parse(text) as { sequence: number; id: string };
            assert.equal(json.id, id);
            receipts.set(id, { id, sequence: json.sequence, subject, via, status: res.statusCode, at: Date.now() });
          } else {
            refused.push(`${id} via hub ${via}: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
          }
          return;
        } catch (e) {
          // Only hub 1 may go away; a transport error from hub 0 is a failure.
          if (via === 0) { refused.push(`${id} via hub 0: ${(e as Error).message}`); return; }
          cutOff++;
          via = 0;
        }
      }
    };
    const inFlight = new Set<Promise<void>>();
    let sent = 0;
    const killer = (async () => {
      await sleep(KILL_AT_MS);
      killedAt = Date.now();
      await hubs[1]!.kill9();
    })();
    for (let i = 0; Date.now() - loadStart < RUN_MS; i++) {
      await sleep(SEND_EVERY_MS);
      if (inFlight.size >= SENDS_IN_FLIGHT) continue;
      const p: Promise<void> = sendOne(sent++).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await Promise.all([...inFlight]);
    await killer;
    const exit = await hubs[1]!.exited;
    assert.equal(exit.signal, 'SIGKILL');
    const loadEnd = Date.now();

    assert.deepEqual(refused, [], 'hub 0 (and hub 1 while it lived) answered every send 202 or 200');
    assert.equal(receipts.size, sent, 'every send acknowledged, by one hub or the other');
    assert.ok(survivorAnswers > 50, `hub 0 kept accepting after the kill (${survivorAnswers} answers)`);
    const ackedAfterKill = [...receipts.values()].filter((r) => r.at > killedAt + 500).length;
    assert.ok(ackedAfterKill > 50, `acknowledged after the kill: ${ackedAfterKill}`);

    // ---- sequences: unique, one per (source, id) ----
    const sequences = [...receipts.values()].map((r) => r.sequence);
    assert.equal(new Set(sequences).size, sequences.length, 'sequences are unique');

    // ---- every acknowledged message delivered to both receivers (hub 0 alone from the kill on) ----
    const delivered = (s: Success[]) => new Set(s.map((x) => x.ceId));
    const deadline = Date.now() + 30_000;
    for (;;) {
      const o = delivered(O.successes);
      const u = delivered(U.successes);
      const missing = [...receipts.keys()].filter((id) => !o.has(id) || !u.has(id));
      if (missing.length === 0) break;
      if (Date.now() > deadline) assert.fail(`${missing.length} acknowledged messages not delivered to both receivers, e.g. ${missing.slice(0, 5).join(', ')}`);
      await sleep(100);
    }
    const allDelivered = Date.now();
    const admin = async <T>(path: string): Promise<T> => {
      const res = await request(hubs[0]!.url + path, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      const text = await res.body.text();
      assert.equal(res.statusCode, 200, `GET ${path}: ${text}`);
      return JSON.parse(text) as T;
    };
    interface View { sequence: number; id: string; subject: string; deliveries: Array<{ receiver: string; state: string; attempts: number; webhookId: string }> }
    // Nothing left open or dead, committed messages whose 202 was cut off included.
    for (let t = Date.now(); ; await sleep(100)) {
      const open = [
        ...(await admin<{ messages: View[] }>('/v1/messages?state=pending&limit=10')).messages,
        ...(await admin<{ messages: View[] }>('/v1/messages?state=delivering&limit=10')).messages,
      ];
      if (open.length === 0) break;
      if (Date.now() - t > 15_000) assert.fail(`deliveries still open: ${JSON.stringify(open.slice(0, 3))}`);
    }
    assert.deepEqual((await admin<{ messages: View[] }>('/v1/messages?state=dead&limit=10')).messages, [], 'nothing dead');

    // Every message in the archive (cut-off ones too), and which deliveries were retried.
    const all: View[] = [];
    for (let after: string | null = null; ;) {
      const page: { messages: View[]; next: string | null } = await admin(`/v1/messages?order=asc&limit=1000${after ? `&after=${after}` : ''}`);
      all.push(...page.messages);
      if (page.messages.length < 1000 || !page.next) break;
      after = page.next;
    }
    assert.equal(new Set(all.map((m) => m.sequence)).size, all.length);
    assert.equal(new Set(all.map((m) => m.id)).size, all.length, 'one message per (source, id) across both hubs');
    for (const r of receipts.values()) {
      const m = all.find((x) => x.sequence === r.sequence);
      assert.ok(m && m.id === r.id, `receipt ${r.id} → sequence ${r.sequence} is that message`);
    }

    // ---- hub 1's in-flight deliveries: rescued by hub 0 once their leases expired ----
    const rescued = new Map<string, { sequence: number; receiver: string; lostAt: number }>();
    for (const m of all) for (const d of m.deliveries) {
      assert.equal(d.state, 'delivered', `message ${m.sequence} to ${d.receiver}`);
      if (d.attempts < 2) continue;
      const { attempts } = await admin<{ attempts: Array<{ receiver: string; at: string; outcome: string }> }>(`/v1/messages/${m.sequence}/attempts`);
      const mine = attempts.filter((a) => a.receiver === d.receiver);
      const lost = mine.find((a) => a.outcome === 'lease-lost');
      assert.ok(lost, `message ${m.sequence} to ${d.receiver} was attempted ${d.attempts} times without a kill in between: ${JSON.stringify(mine)}`);
      const lostAt = Date.parse(lost.at);
      assert.ok(lostAt >= killedAt, `a lease lost only after the kill: ${lost.at}`);
      assert.equal(mine.at(-1)!.outcome, 'delivered');
      rescued.set(d.webhookId, { sequence: m.sequence, receiver: d.receiver, lostAt });
    }
    assert.ok(rescued.size >= 1, 'hub 1 had deliveries in flight at the kill, and hub 0 took them over');
    assert.ok(rescued.size <= O_IN_FLIGHT + U_IN_FLIGHT, `no more rescued than hub 1 could have had in flight: ${rescued.size}`);
    const firstTakeover = Math.min(...[...rescued.values()].map((r) => r.lostAt));
    assert.ok(firstTakeover - killedAt >= TIMEOUT_MS + LEASE_MARGIN_MS - 1_500, `taken over once the leases expired, not before: ${firstTakeover - killedAt} ms after the kill`);

    // ---- exactly once per webhook-id, except hub 1's in-flight at the kill ----
    const duplicates: string[] = [];
    for (const [name, rx] of [['O', O], ['U', U]] as const) {
      const count = new Map<string, Success[]>();
      for (const s of rx.successes) count.set(s.webhookId, [...(count.get(s.webhookId) ?? []), s]);
      for (const [id, ss] of count) {
        if (ss.length === 1) continue;
        const r = rescued.get(id);
        // In flight at the kill: hub 1's request had reached the receiver by then (the answer,
        // after the receiver's own delay, went to a dead socket, or came back too late to record).
        if (!r || ss[0]!.arrivedAt > killedAt + 50 || ss.length > 2) duplicates.push(`${name} ${id} (sequence ${ss[0]!.sequence}) answered 2xx ${ss.length} times, arrived at ${ss.map((s) => s.arrivedAt - killedAt).join(', ')} ms from the kill; rescued: ${JSON.stringify(r)}`);
      }
      // A webhook-id names one message and receiver.
      const seqOf = new Map<string, number>();
      for (const s of rx.successes) {
        assert.equal(seqOf.get(s.webhookId) ?? s.sequence, s.sequence);
        seqOf.set(s.webhookId, s.sequence);
      }
    }
    assert.deepEqual(duplicates, [], 'no duplicate but those in flight at the kill');

    // ---- per-subject order at O: first successes in sequence order ----
    const seen = new Set<string>();
    const lastBySubject = new Map<string, number>();
    const disorder: string[] = [];
    for (const s of O.successes) {
      if (seen.has(s.webhookId)) continue;
      seen.add(s.webhookId);
      const last = lastBySubject.get(s.subject) ?? 0;
      if (s.sequence < last) disorder.push(`${s.subject}: ${s.sequence} after ${last}`);
      lastBySubject.set(s.subject, Math.max(last, s.sequence));
    }
    assert.deepEqual(disorder, [], 'O got each meter\'s messages in sequence order');
    assert.equal(lastBySubject.size, SUBJECTS);

    const viaHub = [0, 1].map((h) => [...receipts.values()].filter((r) => r.via === h).length);
    process.stdout.write(`# ${sent} sent (${viaHub[0]} acknowledged by hub 0, ${viaHub[1]} by hub 1, ${cutOff} cut off by the kill and sent again to hub 0, ${[...receipts.values()].filter((r) => r.status === 200).length} of those answered as duplicates), ${all.length} in the archive; `
      + `kill at +${killedAt - loadStart} ms, load until +${loadEnd - loadStart} ms, all acknowledged delivered at +${allDelivered - loadStart} ms; `
      + `${rescued.size} deliveries taken over (first ${firstTakeover - killedAt} ms after the kill), `
      + `${O.successes.length - new Set(O.successes.map((s) => s.webhookId)).size + U.successes.length - new Set(U.successes.map((s) => s.webhookId)).size} duplicates at the receivers; whole test ${Date.now() - started} ms\n`);
  } finally {
    await Promise.all(hubs.map((h) => h.kill9()));
    await Promise.all([O.rx.close(), U.rx.close()]);
    rmSync(dir, { recursive: true, force: true });
    await db.drop();
  }
});
