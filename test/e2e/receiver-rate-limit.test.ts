/**
 * Per-receiver rate limit (`ratePerSecond`), seen from the receivers' request logs: a burst of
 * max(1, rate), then the rate; the dispatcher wakes itself for each token (the poll interval is
 * a minute here); a receiver without a limit is not slowed by one with.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestHub, eventually } from '../support/hub.ts';
import { startReceiver } from '../support/receiver.ts';

const batch = (n: number) => JSON.stringify(Array.from({ length: n }, (_, i) => ({
  specversion: '1.0', id: `m${i}`, source: 'MDP-A', type: 'test.reading', subject: `NMI${i}`, data: { reading: i },
})));

test('ratePerSecond 5: a burst of 5, then one every 200 ms; a receiver without a limit gets everything at once', async (t) => {
  const hub = await startTestHub({ delivery: { pollIntervalMs: 60_000 } });
  t.after(() => hub.close());
  const limited = await startReceiver();
  const free = await startReceiver();
  t.after(() => limited.close());
  t.after(() => free.close());
  const { key } = await hub.participant('MDP-A');
  await hub.participant('LIMITED', { mode: 'push', url: limited.url, ratePerSecond: 5, maxInFlight: 16 });
  await hub.participant('FREE', { mode: 'push', url: free.url, maxInFlight: 16 });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['LIMITED', 'FREE'] } }]);

  const N = 12;
  const sentAt = Date.now();
  const r = await hub.api('POST', '/v1/messages', { key, body: batch(N), headers: { 'content-type': 'application/cloudevents-batch+json' } });
  assert.equal(r.status, 200, r.text);

  await eventually(() => free.requests.length === N, 5_000, 'the unlimited receiver to get every message');
  const freeSpan = free.requests.at(-1)!.at - sentAt;
  assert.ok(freeSpan < 1_000, `the unlimited receiver took ${freeSpan} ms: it was held up by the limited one`);

  // 12 requests: 5 at once, then 7 more at 200 ms each ≈ 1.4 s. Times are taken from before the
  // send (the bucket fills no earlier), so they are sound lower bounds even on a loaded machine.
  // With the 60 s poll interval, finishing in time means the dispatcher woke itself for each token.
  await eventually(() => limited.requests.length === N, 5_000, 'the limited receiver to get every message');
  const offsets = limited.requests.map((q) => q.at - sentAt);
  for (const [k, off] of offsets.entries()) {
    const earliest = Math.max(0, k - 4) * 200;
    assert.ok(off >= earliest, `request ${k + 1} came ${off} ms after the send, before its token (${earliest} ms): ${offsets.join(', ')}`);
  }
  assert.ok(offsets[4]! < 500, `the first 5 are a burst: ${offsets.join(', ')}`);
  assert.ok(offsets.at(-1)! < 1_400 + 800, `the last request came ${offsets.at(-1)} ms after the send: the dispatcher did not wake for its tokens (${offsets.join(', ')})`);

  await new Promise((res) => setTimeout(res, 300));
  assert.equal(limited.requests.length, N, 'each message once');
  assert.equal(free.requests.length, N, 'each message once');
});

test('ratePerSecond below 1 (0.5): one request, then one every 2 s', async (t) => {
  const hub = await startTestHub({ delivery: { pollIntervalMs: 60_000 } });
  t.after(() => hub.close());
  const rx = await startReceiver();
  t.after(() => rx.close());
  const { key } = await hub.participant('MDP-A');
  await hub.participant('SLOW', { mode: 'push', url: rx.url, ratePerSecond: 0.5 });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['SLOW'] } }]);
  const sentAt = Date.now();
  const r = await hub.api('POST', '/v1/messages', { key, body: batch(2), headers: { 'content-type': 'application/cloudevents-batch+json' } });
  assert.equal(r.status, 200, r.text);
  await eventually(() => rx.requests.length === 2, 5_000, 'both messages');
  const [first, second] = rx.requests.map((q) => q.at - sentAt);
  assert.ok(first! < 500, `the first request came ${first} ms after the send`);
  assert.ok(second! >= 2_000 && second! < 2_800, `the second request came ${second} ms after the send, not ≈ 2 s`);
});
