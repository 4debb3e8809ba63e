/**
 * Graceful shutdown, the hub as a child process (`meterhub serve`) under ingest load with a slow
 * push receiver: SIGTERM makes /readyz answer 503 at once and new requests 503 `shutting-down`
 * with Retry-After, ends long polls, lets in-flight pushes finish within server.shutdownGraceMs
 * (or cuts them there and puts their deliveries back to pending: never lost, never dead), and
 * exits 0. A second SIGTERM, or a SIGKILL, during the grace period loses nothing acknowledged.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { startHubProcess, type HubProcess } from '../support/hub-process.ts';
import {
  ADMIN_KEY, PULL_KEY, SENDER_KEYS, SteadyLoad, call, checkArchived, connection, deliverySummary, ingest, jsonEvent,
  sleep, startLoggingReceiver, until, writeConfig, type LoggingReceiver,
} from '../chaos/kit.ts';

const INLINE_MAX = 4096;

interface Setup { dir: string; dataDir: string; configFile: string; rx: LoggingReceiver; hubs: HubProcess[] }

async function setup(t: TestContext, opts: { graceMs?: number; maxAttempts?: number; receiverTimeoutMs?: number }): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'meterhub-shutdown-'));
  const hubs: HubProcess[] = [];
  const rx = await startLoggingReceiver('SLOW');
  t.after(async () => {
    for (const h of hubs) await h.kill9();
    await rx.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const configFile = writeConfig(dir, {
    push: { SLOW: { url: rx.url, timeoutMs: opts.receiverTimeoutMs ?? 30_000, maxInFlight: 8, retry: { maxAttempts: opts.maxAttempts ?? 1000 } } },
    pull: { INBOX: {} },
    // Everything to the slow receiver; nothing to the inbox, so that a long poll there waits.
    routes: [{ name: 'all to the slow receiver', match: {}, to: { participants: ['SLOW'] } }],
    extra: {
      storage: { inlineBodyMaxBytes: INLINE_MAX },
      ...(opts.graceMs === undefined ? {} : { server: { shutdownGraceMs: opts.graceMs } }),
    },
  });
  return { dir, dataDir: join(dir, 'data'), configFile, rx, hubs };
}

async function start(s: Setup): Promise<HubProcess> {
  const hub = await startHubProcess({ configFile: s.configFile, dataDir: s.dataDir, adminKey: ADMIN_KEY });
  s.hubs.push(hub);
  return hub;
}

/** After a restart: every acknowledged message is there, byte for byte, and every delivery ends delivered. */
async function checkAfterRestart(hub: HubProcess, load: SteadyLoad | null, extra: Array<{ event: ReturnType<typeof jsonEvent>; sequence: number }> = []) {
  const acked = [...(load?.acked.values() ?? []), ...extra];
  const { missing, wrong } = await checkArchived(hub.url, acked);
  assert.deepEqual(missing, [], 'acknowledged messages missing after the restart');
  assert.deepEqual(wrong, [], 'acknowledged messages changed');
  const summary = await until('every delivery delivered', 20_000, async () => {
    const s = await deliverySummary(hub.url);
    return (s.pending ?? 0) + (s.delivering ?? 0) === 0 ? s : null;
  });
  assert.equal(summary.dead ?? 0, 0, `no delivery went dead: ${JSON.stringify(summary)}`);
  assert.ok((summary.delivered ?? 0) >= acked.length, JSON.stringify(summary));
  return summary;
}

function okAnswersPerWebhookId(rx: LoggingReceiver): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of rx.log) if (r.answeredAt !== null && r.status !== null && r.status < 300) m.set(r.webhookId, (m.get(r.webhookId) ?? 0) + 1);
  return m;
}

test('SIGTERM: /readyz 503 at once, new requests 503 shutting-down, long polls end, in-flight pushes finish, exit 0, nothing sent twice', async (t) => {
  const s = await setup(t, {}); // shutdownGraceMs: the default (10 s)
  s.rx.behave(() => ({ status: 204, delayMs: 1_500 }));
  const hub = await start(s);
  const load = new SteadyLoad(hub.url, { connections: 3, prefix: 'graceful', largeBytes: INLINE_MAX + 1000 }).start();
  await until('pushes in flight at the slow receiver', 10_000, () => s.rx.log.filter((r) => r.answeredAt === null).length >= 4 && load.acked.size >= 10);

  // A long poll on an inbox that has nothing: it would wait 20 s.
  const pollStarted = Date.now();
  const poll = request(`${hub.url}/v1/inbox?max=5&wait=20`, { headers: { authorization: `Bearer ${PULL_KEY}` } })
    .then(async (r) => ({ status: r.statusCode, text: await r.body.text(), at: Date.now() }));
  await sleep(200);
  const inFlightAtTerm = s.rx.log.filter((r) => r.answeredAt === null).map((r) => r.webhookId);
  assert.ok(inFlightAtTerm.length > 0);

  const termAt = Date.now();
  hub.child.kill('SIGTERM');

  // /readyz is the first to know.
  const ready = await until('/readyz to answer 503', 2_000, async () => {
    const r = await call(hub.url, 'GET', '/readyz');
    return r.status === 503 ? r : null;
  }, 10);
  assert.ok(Date.now() - termAt < 1_000, `readyz answered 503 after ${Date.now() - termAt} ms`);
  assert.equal(ready.json.code, 'shutting-down');
  assert.match(String(ready.headers['content-type']), /^application\/problem\+json/);
  assert.ok(Number(ready.headers['retry-after']) > 0);

  // A new request, on a new connection and on a kept-alive one: 503 problem+json with Retry-After.
  const fresh = connection(hub.url);
  t.after(() => fresh.destroy());
  const { request: refused } = await ingest(fresh, SENDER_KEYS['MDP-A']!, 'structured', [jsonEvent('MDP-A', 'after-sigterm', 'NMI-X')]);
  assert.equal(refused.kind, 'refused', JSON.stringify(refused));
  if (refused.kind === 'refused') {
    assert.equal(refused.status, 503);
    assert.equal(refused.code, 'shutting-down');
    assert.match(refused.contentType ?? '', /^application\/problem\+json/);
    assert.ok(Number(refused.retryAfter) > 0, `Retry-After: ${refused.retryAfter}`);
    const problem = JSON.parse(refused.text);
    for (const k of ['type', 'title', 'status', 'detail']) assert.ok(k in problem, `problem has ${k}`);
  }
  const status = await call(hub.url, 'GET', '/v1/messages/1');
  assert.equal(status.status, 503, 'every other request is refused too');
  assert.equal((await call(hub.url, 'GET', '/healthz')).status, 200, 'still alive while draining');

  // The long poll ends now, not in 20 s.
  const polled = await poll;
  assert.equal(polled.status, 200, polled.text);
  assert.deepEqual(JSON.parse(polled.text), { messages: [] });
  assert.ok(polled.at - termAt < 1_500, `the long poll ended ${polled.at - termAt} ms after SIGTERM (started ${termAt - pollStarted} ms before)`);

  const exit = await hub.exited;
  const tookMs = Date.now() - termAt;
  await load.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, hub.output().stderr);
  assert.ok(tookMs < 8_000, `stopped in ${tookMs} ms`);
  assert.match(hub.output().stderr, /stopped in \d+ ms\n/, 'a graceful stop within the grace period');

  // The pushes in flight at SIGTERM were answered (the hub waited for them)...
  for (const id of inFlightAtTerm) {
    assert.ok(s.rx.log.some((r) => r.webhookId === id && r.answeredAt !== null), `push ${id}, in flight at SIGTERM, was answered`);
  }
  // ...and nothing was claimed after it.
  const claimedAfter = s.rx.log.filter((r) => r.receivedAt > termAt + 100);
  assert.deepEqual(claimedAfter.map((r) => r.webhookId), [], 'no push started after SIGTERM');
  for (const r of load.refusals) assert.equal(`${r.status} ${r.code}`, '503 shutting-down', 'the only refusals are for the shutdown');

  // Restart: everything acknowledged is there and ends delivered; what finished before the exit is not sent again.
  const sentBefore = s.rx.log.length;
  s.rx.behave(() => ({ status: 204 }));
  const second = await start(s);
  await checkAfterRestart(second, load);
  await sleep(300);
  for (const [id, n] of okAnswersPerWebhookId(s.rx)) assert.equal(n, 1, `webhook-id ${id} was delivered ${n} times`);
  const resent = s.rx.log.slice(sentBefore).filter((r) => inFlightAtTerm.includes(r.webhookId));
  assert.deepEqual(resent.map((r) => r.webhookId), [], 'the pushes finished during the grace period are not sent again');
  t.diagnostic(`${load.acked.size} acknowledged, ${inFlightAtTerm.length} pushes in flight at SIGTERM, stopped in ${tookMs} ms, ${load.refusals.length} requests refused while draining`);
});

test('grace period over: a push stuck at its receiver is cut at shutdownGraceMs and put back to pending (not dead, even with maxAttempts 1), exit 0', async (t) => {
  const GRACE = 800;
  const s = await setup(t, { graceMs: GRACE, maxAttempts: 1, receiverTimeoutMs: 60_000 });
  s.rx.behave(() => ({ hang: true }));
  const hub = await start(s);
  const client = connection(hub.url);
  t.after(() => client.destroy());
  const sent: Array<{ event: ReturnType<typeof jsonEvent>; sequence: number }> = [];
  for (let i = 0; i < 3; i++) {
    const event = jsonEvent('MDP-A', `stuck-${i}`, `NMI-${i}`, i === 2 ? INLINE_MAX + 10 : 0);
    const { request: a } = await ingest(client, SENDER_KEYS['MDP-A']!, 'structured', [event]);
    assert.equal(a.kind, 'ack', JSON.stringify(a));
    if (a.kind === 'ack') sent.push({ event, sequence: a.sequence });
  }
  await until('three pushes hung at the receiver', 10_000, () => s.rx.log.length >= 3);

  const termAt = Date.now();
  hub.child.kill('SIGTERM');
  const exit = await hub.exited;
  const tookMs = Date.now() - termAt;
  assert.deepEqual(exit, { code: 0, signal: null }, hub.output().stderr);
  assert.ok(tookMs >= GRACE - 50, `waited out the grace period (${tookMs} ms)`);
  assert.ok(tookMs < GRACE + 4_000, `then stopped (${tookMs} ms)`);
  assert.match(hub.output().stderr, /grace period over: 3 in-flight push deliveries put back to pending/);
  assert.ok(s.rx.log.every((r) => r.answeredAt === null), 'the hung pushes were never answered');

  s.rx.behave(() => ({ status: 204 }));
  const second = await start(s);
  await checkAfterRestart(second, null, sent);
  for (const { sequence } of sent) {
    const m = await call(second.url, 'GET', `/v1/messages/${sequence}`);
    assert.equal(m.json.deliveries[0].state, 'delivered');
    const attempts = await call(second.url, 'GET', `/v1/messages/${sequence}/attempts`);
    const outcomes = (attempts.json.attempts as Array<{ outcome: string }>).map((a) => a.outcome);
    assert.deepEqual(outcomes, ['lease-lost', 'delivered'], `attempts of ${sequence}: the cut one is recorded as a lost lease, not a failure`);
    const ids = s.rx.log.filter((r) => r.sequence === sequence).map((r) => r.webhookId);
    assert.equal(ids.length, 2, 'sent again after the restart...');
    assert.equal(ids[0], ids[1], '...with the same webhook-id');
  }
});

async function interruptedDrain(t: TestContext, how: 'second-sigterm' | 'sigkill') {
  const s = await setup(t, { graceMs: 30_000 });
  // Half the pushes hang (held in flight through the drain), half are slow.
  s.rx.behave((r) => (r.n % 2 === 0 ? { hang: true } : { status: 204, delayMs: 300 }));
  const hub = await start(s);
  const load = new SteadyLoad(hub.url, { connections: 4, prefix: how, largeBytes: INLINE_MAX + 500 }).start();
  await until('load and hung pushes', 10_000, () => load.acked.size >= 30 && s.rx.log.filter((r) => r.answeredAt === null).length >= 4);
  hub.child.kill('SIGTERM');
  await until('draining', 2_000, async () => (await call(hub.url, 'GET', '/readyz')).status === 503, 10);
  await sleep(300);
  const cutAt = Date.now();
  if (how === 'second-sigterm') hub.child.kill('SIGTERM');
  else hub.child.kill('SIGKILL');
  const exit = await hub.exited;
  const tookMs = Date.now() - cutAt;
  await load.stop();
  if (how === 'second-sigterm') {
    assert.deepEqual(exit, { code: 130, signal: null }, hub.output().stderr);
    assert.match(hub.output().stderr, /second SIGTERM, exiting now/);
  } else {
    assert.deepEqual(exit, { code: null, signal: 'SIGKILL' });
  }
  assert.ok(tookMs < 2_000, `exited ${tookMs} ms after the ${how}`);
  for (const r of load.refusals) assert.equal(`${r.status} ${r.code}`, '503 shutting-down');

  s.rx.behave(() => ({ status: 204 }));
  const second = await start(s);
  const summary = await checkAfterRestart(second, load);
  t.diagnostic(`${how}: ${load.acked.size} acknowledged, ${s.rx.log.length} push requests, exit ${tookMs} ms after the ${how}; after restart ${JSON.stringify(summary)}`);
}

test('a second SIGTERM during the grace period exits at once; nothing acknowledged is lost, every delivery still ends', async (t) => {
  await interruptedDrain(t, 'second-sigterm');
});

test('a SIGKILL during the grace period loses nothing acknowledged; every delivery still ends', async (t) => {
  await interruptedDrain(t, 'sigkill');
});
