/**
 * Invariant 1 (nothing acknowledged is lost) and 2 (every delivery ends) across a kill -9:
 * the hub runs as a child process configured from a YAML file; a burst of concurrent events
 * is sent while the receiver is failing; the hub is SIGKILLed; it restarts on the same data
 * folder with the receiver healthy; every acknowledged message is there, unchanged, and ends
 * delivered, once per webhook-id.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool, request } from 'undici';
import { stringify as toYaml } from 'yaml';
import { eventually } from '../support/hub.ts';
import { startHubProcess, type HubProcess } from '../support/hub-process.ts';
import { startReceiver, type TestReceiver } from '../support/receiver.ts';

const ADMIN_KEY = 'durability-admin-key-0123456789abcdef';
const SENDER_KEY = 'mh_presharedsenderkey_0123456789abcdefghij';
const SECRET = `whsec_${Buffer.from('durability-test-signing-key!').toString('base64')}`;
const BURST = 300;
const CONNECTIONS = 8;

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

interface Sent { id: string; data: string; sha256: string }
interface Receipt { id: string; sequence: number }

/** Event i of a run: `data` written by hand (odd spacing, trailing zeros) so that only exact bytes compare equal. */
function eventOf(run: string, i: number): { sent: Sent; body: string } {
  const id = `${run}-${String(i).padStart(4, '0')}`;
  const data = `{"i": ${i},  "reading": 1.50, "unit":"kWh", "pad": "${'x'.repeat(i % 97)}", "big": 12345678901234567890}`;
  const body = `{"specversion":"1.0","id":"${id}","source":"MDP-A","type":"test.reading","subject":"NMI${i % 7}","datacontenttype":"application/json","data":${data}}`;
  return { sent: { id, data, sha256: sha256(data) }, body };
}

/** A receiver that fails (as given) until `heal()`, then answers 204; counts 2xx answers per webhook-id. */
async function flakyReceiver(t: TestContext, failure: 'answer-503' | 'reset') {
  let healthy = false;
  const ok = new Map<string, number>();
  const rx: TestReceiver = await startReceiver((req, res) => {
    if (!healthy) {
      if (failure === 'reset') { res.socket?.destroy(); return; }
      res.writeHead(503); res.end('down for maintenance'); return;
    }
    const id = String(req.headers['webhook-id']);
    ok.set(id, (ok.get(id) ?? 0) + 1);
    res.writeHead(204); res.end();
  });
  t.after(() => rx.close());
  return { rx, ok, heal() { healthy = true; } };
}

function writeConfig(dir: string, receiverUrl: string): string {
  const config = {
    delivery: { pollIntervalMs: 20, leaseMarginMs: 500 },
    maintenance: { intervalMs: 100 },
    participants: {
      'MDP-A': { name: 'Meter data provider A', keys: [SENDER_KEY] },
      'RETAILER-A': {
        name: 'Retailer A',
        receiver: {
          mode: 'push', url: receiverUrl, secret: SECRET, timeoutMs: 2_000, maxInFlight: 32,
          retry: { maxAttempts: 1000, maxAgeSeconds: 3600, initialDelayMs: 100, maxDelayMs: 300, multiplier: 2, retryAfterCapMs: 300 },
        },
      },
    },
    routes: [{ name: 'everything to the retailer', match: {}, to: { participants: ['RETAILER-A'] } }],
  };
  const file = join(dir, 'meterhub.yaml');
  writeFileSync(file, `# written by test/e2e/durability.test.ts\n${toYaml(config)}`);
  return file;
}

/**
 * Fires the burst over several connections. `killAfter`: SIGKILL the hub as soon as that many
 * 202s are in (requests still in flight); otherwise kill once every response is in.
 */
async function burst(hub: HubProcess, run: string, killAfter: number | null) {
  const pool = new Pool(hub.url, { connections: CONNECTIONS, pipelining: 1 });
  const sent = new Map<string, Sent>();
  const receipts: Receipt[] = [];
  const failures: string[] = [];
  let killed: Promise<void> | null = null;
  await Promise.all(Array.from({ length: BURST }, async (_, i) => {
    const { sent: s, body } = eventOf(run, i);
    sent.set(s.id, s);
    try {
      const res = await pool.request({
        method: 'POST', path: '/v1/messages', body,
        headers: { authorization: `Bearer ${SENDER_KEY}`, 'content-type': 'application/cloudevents+json' },
      });
      const text = await res.body.text();
      if (res.statusCode !== 202) { failures.push(`${s.id}: HTTP ${res.statusCode} ${text.slice(0, 200)}`); return; }
      const json = JSON.parse(text) as { sequence: number; id: string; source: string };
      assert.equal(json.id, s.id);
      assert.equal(json.source, 'MDP-A');
      receipts.push({ id: s.id, sequence: json.sequence });
      if (killAfter !== null && receipts.length >= killAfter) killed ??= hub.kill9();
    } catch (e) {
      failures.push(`${s.id}: ${(e as Error).message}`);
    }
  }));
  await (killed ?? hub.kill9());
  await pool.destroy();
  return { sent, receipts, failures };
}

async function adminGet(hub: HubProcess, path: string) {
  const res = await request(hub.url + path, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  const bytes = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, bytes, json: () => JSON.parse(bytes.toString('utf8')) };
}

async function killRestartAndCheck(t: TestContext, run: string, failure: 'answer-503' | 'reset', killAfter: number | null) {
  const dir = mkdtempSync(join(tmpdir(), 'meterhub-durability-'));
  const dataDir = join(dir, 'data');
  let current: HubProcess | null = null;
  t.after(async () => { await current?.kill9(); rmSync(dir, { recursive: true, force: true }); });
  const receiver = await flakyReceiver(t, failure);
  const configFile = writeConfig(dir, receiver.rx.url);

  // ---- first life: the receiver is failing; a burst; kill -9 ----
  current = await startHubProcess({ configFile, dataDir, adminKey: ADMIN_KEY });
  const first = current;
  const { sent, receipts, failures } = await burst(first, run, killAfter);
  const exit = await first.exited;
  assert.equal(exit.signal, 'SIGKILL', `the hub was killed, not stopped: ${JSON.stringify(exit)}`);
  if (killAfter === null) {
    assert.deepEqual(failures, [], 'with the hub up, every event of the burst is accepted');
    assert.equal(receipts.length, BURST);
  } else {
    assert.ok(receipts.length >= killAfter, `${receipts.length} receipts`);
    assert.ok(receipts.length < BURST, 'the kill came while requests were still in flight');
    for (const f of failures) assert.doesNotMatch(f, /HTTP \d/, `only transport errors after the kill, not refusals: ${f}`);
  }
  assert.equal(new Set(receipts.map((r) => r.sequence)).size, receipts.length, 'sequences are unique');
  const okBeforeRestart = [...receiver.ok.values()].reduce((a, b) => a + b, 0);
  assert.equal(okBeforeRestart, 0, 'nothing was delivered while the receiver was failing');
  const triedBeforeKill = receiver.rx.requests.length;

  // ---- second life: same data folder, the receiver is healthy ----
  receiver.heal();
  current = await startHubProcess({ configFile, dataDir, adminKey: ADMIN_KEY });
  const second = current;

  const webhookIds = new Map<number, string>();
  for (const r of receipts) {
    const m = await adminGet(second, `/v1/messages/${r.sequence}`);
    assert.equal(m.status, 200, `acknowledged message ${r.id} (sequence ${r.sequence}) is missing after kill -9: ${m.bytes.toString()}`);
    const view = m.json();
    assert.equal(view.id, r.id);
    assert.equal(view.source, 'MDP-A');
    assert.equal(view.sha256, sent.get(r.id)!.sha256, `sha256 of ${r.id}`);
    const data = await adminGet(second, `/v1/messages/${r.sequence}/data`);
    assert.equal(data.status, 200);
    assert.equal(data.bytes.toString('utf8'), sent.get(r.id)!.data, `archived bytes of ${r.id}`);
    assert.equal(view.deliveries.length, 1);
    webhookIds.set(r.sequence, view.deliveries[0].webhookId);
  }

  // Every acknowledged message ends delivered at the receiver...
  await eventually(() => [...webhookIds.values()].every((id) => receiver.ok.has(id)), 15_000, 'every acknowledged message delivered after the restart');
  // ...and the hub says so.
  await eventually(async () => {
    for (const seq of webhookIds.keys()) {
      const m = await adminGet(second, `/v1/messages/${seq}`);
      if (m.json().deliveries[0].state !== 'delivered') return false;
    }
    return true;
  }, 10_000, 'every acknowledged delivery recorded as delivered');

  // Every message the hub committed, acknowledged or not, is delivered once, with the bytes sent.
  // (Let the hub idle a little so that a duplicate, if any, would have arrived.)
  await new Promise((resolve) => setTimeout(resolve, 300));
  for (const [id, n] of receiver.ok) {
    // The receiver failed every request before the kill, so no delivery was in flight with a 2xx
    // answer at the kill: each webhook-id is answered 2xx exactly once.
    assert.equal(n, 1, `webhook-id ${id} was delivered ${n} times`);
  }
  const delivered = receiver.rx.requests.filter((q) => q.headers['webhook-id'] && receiver.ok.has(String(q.headers['webhook-id'])));
  for (const q of delivered) {
    const s = sent.get(String(q.headers['ce-id']));
    assert.ok(s, `the receiver got an event that was never sent: ${q.headers['ce-id']}`);
    assert.equal(q.body.toString('utf8'), s.data, `pushed bytes of ${s.id}`);
  }
  assert.ok(receiver.ok.size >= receipts.length);
  t.diagnostic(`${run}: ${receipts.length} acknowledged, ${triedBeforeKill} failed pushes before the kill, ${receiver.ok.size} delivered after the restart, ${failures.length} requests cut off by the kill`);
}

test('kill -9 right after a burst of 300 acknowledged events: none lost, all delivered after restart', async (t) => {
  await killRestartAndCheck(t, 'after', 'answer-503', null);
});

test('kill -9 in the middle of a burst: every 202 received survives and is delivered after restart', async (t) => {
  await killRestartAndCheck(t, 'during', 'reset', 100);
});
