/**
 * The data folder turns read-only under a running hub (a read-only bind mount over it: every
 * file opened from then on gets EROFS), then writable again. Run by test/faults/read-only.test.ts.
 *
 * Linux does not let a file system go read-only under a process holding files open for writing
 * (`mount -o remount,ro` answers EBUSY), short of the kernel's own emergency read-only after an
 * I/O error, which only an unmount undoes. So what this checks is the hub's part: whatever needs
 * a fresh file (a body over inlineBodyMaxBytes, the readiness probe) fails with EROFS, and the
 * hub answers 503 for it, says it is not ready, loses nothing, and comes back by itself. The
 * SQLite file, opened before, stays writable, and small messages may still be accepted: they are
 * durable, and must survive like any other (checked after a kill -9).
 */
import assert from 'node:assert/strict';
import {
  PULL_KEY, PullConsumer, SENDER_KEYS, binaryEvent, call, checkArchived, connection, deliverySummary, ingest, jsonEvent, rng,
  startLoggingReceiver, until, writeConfig, type IngestAnswer, type IngestMode, type SentEvent,
} from '../../chaos/kit.ts';
import { leftoverTmpFiles, makeReadOnly, makeWritable, scenario } from './common.ts';

const INLINE_MAX = 4096;
/** Every other structured event (they come every fourth request) has a body over inlineBodyMaxBytes. */
const fileSized = (k: number) => (k >> 2) % 2 === 1;

await scenario(async (ctx) => {
  const { dataDir, figures } = ctx;
  const random = rng(11);
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
      : mode === 'structured' ? [jsonEvent('MDP-A', `s${k}`, 'NMI-1', fileSized(k) ? INLINE_MAX + 10 : 1500)]
        : [binaryEvent('MDP-A', `f${k}`, 'NMI-2', mode === 'binary-large' ? 20_000 + Math.floor(random() * 20_000) : 500, random)];
    const { items } = await ingest(client, SENDER_KEYS['MDP-A']!, mode, events);
    items.forEach((a, i) => { if (a.kind === 'ack') acked.push({ event: events[i]!, sequence: a.sequence }); });
    return items;
  };
  const modes: IngestMode[] = ['structured', 'binary', 'binary-large', 'batch'];
  for (let i = 0; i < 16; i++) for (const a of await send(modes[i % 4]!)) assert.equal(a.kind, 'ack', JSON.stringify(a));
  figures.ackedBefore = acked.length;

  // ---- read-only ----
  makeReadOnly(dataDir);
  const roAt = Date.now();
  push.behave(() => ({ status: 204 }));
  const notReady = await until('/readyz to report the read-only folder', 5_000, async () => {
    const r = await call(hub.url, 'GET', '/readyz');
    return r.status === 503 ? r : null;
  }, 50);
  figures.readyzNotReadyAfterMs = Date.now() - roAt;
  assert.equal(notReady.json.code, 'storage-unavailable');
  assert.ok(Number(notReady.headers['retry-after']) > 0);
  assert.match(notReady.json.detail, /EROFS/);

  const whileRo: Record<string, number> = {};
  for (let i = 0; i < 24; i++) {
    const mode = modes[i % 4]!;
    const before = acked.length;
    const items = await send(mode);
    items.forEach((a, j) => {
      const key = `${mode}${mode === 'structured' ? fileSized(n - 1) ? ' file' : ' inline' : ''}: ${a.kind === 'ack' ? a.status : a.kind === 'refused' ? `${a.status} ${a.code}` : a.kind}`;
      whileRo[key] = (whileRo[key] ?? 0) + 1;
      if (a.kind === 'refused') {
        assert.equal(`${a.status} ${a.code}`, '503 storage-unavailable', JSON.stringify(a));
        if (mode !== 'batch') assert.ok(Number(a.retryAfter) > 0, 'Retry-After');
      } else {
        assert.equal(a.kind, 'ack', JSON.stringify(a));
      }
      void j;
    });
    // Nothing that needs a new file is accepted.
    for (const x of acked.slice(before)) assert.ok(x.event.data.length <= INLINE_MAX, `a body file was accepted on a read-only folder: ${x.event.id}`);
  }
  figures.answersWhileReadOnly = whileRo;
  for (const m of ['binary-large', 'batch', 'structured file']) {
    assert.ok(Object.keys(whileRo).some((k) => k.startsWith(m) && k.endsWith('503 storage-unavailable')), `${m} refused while read-only: ${JSON.stringify(whileRo)}`);
  }
  assert.equal(hub.child.exitCode, null, 'the hub did not crash');

  // ---- writable again: the hub recovers by itself ----
  makeWritable(dataDir);
  const rwAt = Date.now();
  await until('/readyz ready again', 5_000, async () => (await call(hub.url, 'GET', '/readyz')).status === 200, 50);
  figures.readyAgainAfterMs = Date.now() - rwAt;
  for (const mode of modes) for (const a of await send(mode)) assert.equal(a.kind, 'ack', `after recovery: ${JSON.stringify(a)}`);
  assert.equal(hub.child.pid, pid, 'no restart');
  const consumer = new PullConsumer(() => hub.url, PULL_KEY).start();
  ctx.onCleanup(() => consumer.stop());
  const flowed = await until('every delivery to flow', 30_000, async () => {
    const s = await deliverySummary(hub.url);
    return (s.pending ?? 0) + (s.delivering ?? 0) === 0 ? s : null;
  }, 200);
  figures.afterRecovery = flowed;
  assert.equal(flowed.dead ?? 0, 0);
  const check = await checkArchived(hub.url, acked);
  assert.deepEqual(check.missing, []);
  assert.deepEqual(check.wrong, []);
  assert.deepEqual(leftoverTmpFiles(dataDir), []);
  figures.acked = acked.length;

  await consumer.stop();
  await hub.kill9();
  hub = await ctx.startHub(configFile);
  const again = await checkArchived(hub.url, acked);
  assert.deepEqual(again.missing, [], 'acknowledged messages missing after kill -9');
  assert.deepEqual(again.wrong, []);
});
