/**
 * The data folder fills up under a running hub (a real tmpfs, filled to the last byte), then
 * space comes back (the filler is deleted). Run by test/faults/disk-full.test.ts.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import {
  PULL_KEY, PullConsumer, SENDER_KEYS, binaryEvent, call, checkArchived, connection, deliverySummary, ingest, jsonEvent, rng,
  sleep, startLoggingReceiver, until, writeConfig, type IngestAnswer, type IngestMode, type SentEvent,
} from '../../chaos/kit.ts';
import { fillDisk, freeDisk, leftoverTmpFiles, scenario } from './common.ts';

const INLINE_MAX = 4096;

await scenario(async (ctx) => {
  const { dataDir, figures } = ctx;
  // The bodies on a file system of their own (a second tmpfs), so that one can fill while the
  // database's still has room: a body file that does not fit must never be half-kept.
  const bodiesDir = join(dataDir, 'bodies');
  mkdirSync(bodiesDir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'meterhub-fault-bodies', bodiesDir]);
  const random = rng(7);
  const push = await startLoggingReceiver('PUSH', () => ({ status: 503 }));
  ctx.onCleanup(() => push.close());
  const configFile = writeConfig(ctx.base, {
    push: { PUSH: { url: push.url, timeoutMs: 2_000 } },
    pull: { INBOX: { visibilityTimeoutSeconds: 2 } },
    routes: [{ name: 'all', match: {}, to: { participants: ['PUSH', 'INBOX'] } }],
    extra: { storage: { inlineBodyMaxBytes: INLINE_MAX } },
  });
  let hub = await ctx.startHub(configFile);
  const pid = hub.child.pid;
  const client = connection(hub.url);
  ctx.onCleanup(() => client.destroy());
  const acked: Array<{ event: SentEvent; sequence: number }> = [];
  let n = 0;
  const send = async (mode: IngestMode): Promise<IngestAnswer[]> => {
    const k = n++;
    const events = mode === 'batch'
      ? [jsonEvent('MDP-A', `b${k}-0`, 'NMI-1'), jsonEvent('MDP-A', `b${k}-1`, 'NMI-2', INLINE_MAX + 100), jsonEvent('MDP-A', `b${k}-2`, 'NMI-3')]
      : mode === 'structured' ? [jsonEvent('MDP-A', `s${k}`, 'NMI-1', 1500)]
        : [binaryEvent('MDP-A', `f${k}`, 'NMI-2', mode === 'binary-large' ? 20_000 + Math.floor(random() * 20_000) : 500, random)];
    const { items } = await ingest(client, SENDER_KEYS['MDP-A']!, mode, events);
    items.forEach((a, i) => { if (a.kind === 'ack') acked.push({ event: events[i]!, sequence: a.sequence }); });
    return items;
  };
  const modes: IngestMode[] = ['structured', 'binary', 'binary-large', 'batch'];

  // ---- before: everything accepted; the push receiver is down, so deliveries are pending ----
  for (let i = 0; i < 24; i++) for (const a of await send(modes[i % 4]!)) assert.equal(a.kind, 'ack', JSON.stringify(a));
  figures.ackedBefore = acked.length;
  assert.equal((await call(hub.url, 'GET', '/readyz')).status, 200);

  // ---- the disk fills up, with pushes in flight ----
  push.behave(() => ({ hang: true }));
  await until('pushes in flight', 5_000, () => push.log.some((r) => r.answeredAt === null && r.status === null));
  await sleep(300);
  figures.pushesInFlightAtFull = push.log.filter((r) => r.answeredAt === null && r.status === null).length;
  figures.fillerBytes = fillDisk(dataDir) + fillDisk(bodiesDir);
  const fullAt = Date.now();
  // The receiver is back and answers what is in flight, but the hub cannot record anything now.
  push.behave(() => ({ status: 204 }));
  push.releaseHung(204);
  const notReady = await until('/readyz to report the full disk', 5_000, async () => {
    const r = await call(hub.url, 'GET', '/readyz');
    return r.status === 503 ? r : null;
  }, 50);
  figures.readyzNotReadyAfterMs = Date.now() - fullAt;
  assert.equal(notReady.json.code, 'storage-unavailable', notReady.text);
  assert.ok(Number(notReady.headers['retry-after']) > 0);
  assert.match(notReady.json.detail, /ENOSPC/);

  const whileFull: Record<string, number> = {};
  const ackedWhileFull: string[] = [];
  const refusedModes = new Set<string>();
  for (let i = 0; i < 40; i++) {
    const mode = modes[i % 4]!;
    for (const a of await send(mode)) {
      const key = a.kind === 'ack' ? `${a.status}` : a.kind === 'refused' ? `${a.status} ${a.code}` : 'transport';
      whileFull[key] = (whileFull[key] ?? 0) + 1;
      if (a.kind === 'ack') { ackedWhileFull.push(mode); continue; }
      assert.equal(a.kind, 'refused', `only refusals while the disk is full: ${JSON.stringify(a)}`);
      if (a.kind !== 'refused') continue;
      assert.equal(a.status, 503, JSON.stringify(a));
      assert.equal(a.code, 'storage-unavailable', JSON.stringify(a));
      if (mode !== 'batch') {
        assert.ok(Number(a.retryAfter) > 0, `Retry-After on a 503: ${JSON.stringify(a)}`);
        assert.match(a.contentType ?? '', /^application\/problem\+json/);
      }
      refusedModes.add(mode);
    }
  }
  figures.answersWhileFull = whileFull;
  // A 202 while full is legitimate only when SQLite still had room in its WAL: those must survive (checked below).
  figures.ackedWhileFull = ackedWhileFull.length;
  for (const m of modes) assert.ok(refusedModes.has(m), `a ${m} ingest is refused with 503 while the disk is full (refused: ${[...refusedModes]})`);
  assert.ok(!ackedWhileFull.includes('binary-large'), 'a body file cannot be written to a full disk');
  // A pull poll needs a write too (the lease): 503 or an answer, never a 500.
  const poll = await call(hub.url, 'GET', '/v1/inbox?max=5', { key: PULL_KEY });
  figures.pollWhileFull = `${poll.status} ${poll.json?.code ?? ''}`.trim();
  assert.ok(poll.status === 200 || (poll.status === 503 && poll.json.code === 'storage-unavailable'), poll.text);
  assert.equal((await call(hub.url, 'GET', '/healthz')).status, 200, 'the hub is alive');
  await sleep(500); // let the push scheduler and the lease keeper fail against the full disk for a while
  assert.equal(hub.child.exitCode, null, 'the hub did not crash');

  // ---- space comes back: the hub recovers by itself ----
  freeDisk(dataDir);
  freeDisk(bodiesDir);
  const freedAt = Date.now();
  await until('/readyz to be ready again', 5_000, async () => (await call(hub.url, 'GET', '/readyz')).status === 200, 50);
  figures.readyAgainAfterMs = Date.now() - freedAt;
  await until('ingest to be accepted again', 5_000, async () => (await send('binary-large')).every((a) => a.kind === 'ack'), 100);
  figures.acceptedAgainAfterMs = Date.now() - freedAt;
  for (const mode of modes) for (const a of await send(mode)) assert.equal(a.kind, 'ack', `after recovery: ${JSON.stringify(a)}`);
  assert.equal(hub.child.pid, pid, 'no restart');

  const consumer = new PullConsumer(() => hub.url, PULL_KEY).start();
  ctx.onCleanup(() => consumer.stop());
  const flowed = await until('every delivery to flow', 30_000, async () => {
    const s = await deliverySummary(hub.url);
    return (s.pending ?? 0) + (s.delivering ?? 0) === 0 ? s : null;
  }, 200);
  figures.afterRecovery = flowed;
  // Pushes answered 2xx while the hub could not record it are sent again once it can (at least once).
  const okById = new Map<string, number>();
  for (const r of push.log) if (r.answeredAt !== null && r.status === 204) okById.set(r.webhookId, (okById.get(r.webhookId) ?? 0) + 1);
  figures.pushSentAgainAfter2xx = [...okById.values()].filter((c) => c > 1).length;
  assert.equal(figures.pushSentAgainAfter2xx, 0, 'a push answered 2xx while the disk was full is recorded once it has room, not sent again');
  figures.drainedAfterMs = Date.now() - freedAt;
  assert.equal(flowed.dead ?? 0, 0, JSON.stringify(flowed));

  const check = await checkArchived(hub.url, acked);
  assert.deepEqual(check.missing, [], 'acknowledged messages missing');
  assert.deepEqual(check.wrong, [], 'acknowledged messages changed');
  for (const [seq, view] of check.views) {
    for (const d of view.deliveries) assert.equal(d.state, 'delivered', `sequence ${seq} to ${d.receiver}`);
  }
  figures.acked = acked.length;
  figures.leftoverTmpFiles = leftoverTmpFiles(dataDir).length;
  assert.deepEqual(leftoverTmpFiles(dataDir), [], 'no half-written body files are left taking space');

  // ---- the bodies' file system nearly full, the database's not: a body that does not fit is refused, not cut short ----
  // Nothing else writes bodies now (every delivery is done, the consumer is stopped): the room left is these requests'.
  await consumer.stop();
  const nearly: Record<string, string> = {};
  const leaveRoom = () => { const f = fillDisk(bodiesDir); truncateSync(join(bodiesDir, 'filler'), f - 64 * 1024); };
  const expectRefused = async (what: string, mode: IngestMode, events: SentEvent[]) => {
    leaveRoom();
    const { items } = await ingest(client, SENDER_KEYS['MDP-A']!, mode, events);
    items.forEach((a, i) => { if (a.kind === 'ack') acked.push({ event: events[i]!, sequence: a.sequence }); });
    nearly[what] = items.map((a) => (a.kind === 'ack' ? String(a.status) : a.kind === 'refused' ? `${a.status} ${a.code}` : a.kind)).join(',');
    freeDisk(bodiesDir);
  };
  await expectRefused('binary 400 KB', 'binary-large', [binaryEvent('MDP-A', 'nearly-binary', 'NMI-1', 400_000, random)]);
  await expectRefused('structured 300 KB', 'structured', [jsonEvent('MDP-A', 'nearly-structured', 'NMI-1', 300_000)]);
  await expectRefused('batch 20 KB + 400 KB + small', 'batch', [jsonEvent('MDP-A', 'nearly-0', 'NMI-1', 20_000), jsonEvent('MDP-A', 'nearly-1', 'NMI-1', 400_000), jsonEvent('MDP-A', 'nearly-2', 'NMI-1')]);
  await expectRefused('small (inline)', 'structured', [jsonEvent('MDP-A', 'nearly-small', 'NMI-1', 100)]);
  figures.bodiesNearlyFull = nearly;
  const afterNearly = await checkArchived(hub.url, acked);
  assert.deepEqual(afterNearly.wrong, [], 'a message acknowledged while the bodies were nearly full is archived byte for byte');
  assert.deepEqual(nearly, {
    'binary 400 KB': '503 storage-unavailable',
    'structured 300 KB': '503 storage-unavailable',
    'batch 20 KB + 400 KB + small': '503 storage-unavailable,503 storage-unavailable,503 storage-unavailable',
    'small (inline)': '202',
  });
  // Every body file belongs to an accepted message: none written for a request that failed is left taking space.
  const fileBodies = new Set(acked.filter((a) => a.event.data.length > INLINE_MAX).map((a) => `${a.event.source}/${a.event.id}`)).size;
  figures.bodyFiles = { onDisk: publishedBodyFiles(dataDir).length, accepted: fileBodies };
  assert.equal(publishedBodyFiles(dataDir).length, fileBodies, 'body files on disk = accepted messages with a body file (no orphans)');
  assert.deepEqual(leftoverTmpFiles(dataDir), []);

  // ---- a kill -9 while the disk is full, a start while it is still full, then space again ----
  fillDisk(dataDir);
  fillDisk(bodiesDir);
  await hub.kill9();
  try {
    const whileFull = await ctx.startHub(configFile);
    const ready = await call(whileFull.url, 'GET', '/readyz');
    figures.startWhileFull = `started; /readyz ${ready.status}`;
    await whileFull.kill9();
  } catch (e) {
    figures.startWhileFull = `did not start: ${(e as Error).message.split('\n').find((l) => /meterhub:|Error/.test(l)) ?? (e as Error).message.slice(0, 200)}`;
  }
  freeDisk(dataDir);
  freeDisk(bodiesDir);

  // ---- and it all survives a kill -9 and a restart ----
  hub = await ctx.startHub(configFile);
  const again = await checkArchived(hub.url, acked);
  figures.ackedTotal = acked.length;
  assert.deepEqual(again.missing, [], 'acknowledged messages missing after kill -9');
  assert.deepEqual(again.wrong, []);
});

function publishedBodyFiles(dataDir: string): string[] {
  const root = join(dataDir, 'bodies');
  return readdirSync(root).filter((d) => d !== 'tmp' && /^[0-9a-f]{2}$/.test(d)).flatMap((d) => readdirSync(join(root, d)).map((f) => `${d}/${f}`));
}
