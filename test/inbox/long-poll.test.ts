import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from 'undici';
import { pullHub, sleep } from './pull-fixture.ts';

test('a long poll started before anything is sent returns promptly once a message arrives', async (t) => {
  const f = await pullHub();
  t.after(() => f.close());
  const started = performance.now();
  const polling = f.poll('wait=5').then((r) => ({ ...r, endedAt: performance.now() }));
  await sleep(300);
  const sentAt = performance.now();
  const seq = await f.send('m1', '{"big":12345678901234567890}');
  const acceptedAt = performance.now();
  const res = await polling;
  assert.equal(res.status, 200, res.text);
  assert.equal(res.messages.length, 1, res.text);
  assert.equal(res.messages[0]!.event.sequence, String(seq));
  assert.ok(res.text.includes('12345678901234567890'));
  assert.ok(res.endedAt >= sentAt, 'the poll was still open when the message was sent');
  const afterSend = res.endedAt - acceptedAt;
  assert.ok(afterSend < 1500, `returned ${afterSend.toFixed(0)} ms after the 202 (want < 1500)`);
  assert.ok(res.endedAt - started < 2500, 'well under the 5 s wait');
});

test('a long poll with nothing arriving returns an empty list after about the wait', async (t) => {
  const f = await pullHub();
  t.after(() => f.close());
  const res = await f.poll('wait=2');
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { messages: [] });
  assert.ok(res.ms >= 1900, `waited ${res.ms.toFixed(0)} ms (want ~2000)`);
  assert.ok(res.ms < 3000, `waited ${res.ms.toFixed(0)} ms (want ~2000)`);
});

test('wait=0 (the default) answers at once', async (t) => {
  const f = await pullHub();
  t.after(() => f.close());
  const res = await f.poll('wait=0');
  assert.deepEqual(res.json, { messages: [] });
  assert.ok(res.ms < 500, `${res.ms} ms`);
  const dflt = await f.poll();
  assert.deepEqual(dflt.json, { messages: [] });
  assert.ok(dflt.ms < 500, `${dflt.ms} ms`);
});

test('a long poll returns what is there at once, and honours max', async (t) => {
  const f = await pullHub();
  t.after(() => f.close());
  for (let i = 0; i < 3; i++) await f.send(`m${i}`);
  const res = await f.poll('wait=5&max=2');
  assert.equal(res.messages.length, 2);
  assert.ok(res.ms < 500, `${res.ms} ms`);
  const rest = await f.poll('wait=5&max=2');
  assert.equal(rest.messages.length, 1);
  assert.ok(rest.ms < 500, `${rest.ms} ms`);
});

test('a long poll wakes when a lease expires and the message comes back', async (t) => {
  const f = await pullHub({ visibilityTimeoutSeconds: 1 });
  t.after(() => f.close());
  await f.send('m1');
  const first = await f.poll();
  const expiresAt = Date.parse(first.messages[0]!.leaseExpiresAt);
  const res = await f.poll('wait=5');
  assert.equal(res.messages.length, 1);
  assert.equal(res.messages[0]!.receives, 2);
  const late = Date.now() - expiresAt;
  assert.ok(late < 1200, `${late} ms after the lease expired`);
});

test('two long polls for the same receiver share the messages without duplicates', async (t) => {
  const f = await pullHub();
  t.after(() => f.close());
  const polls = [f.poll('wait=3&max=1'), f.poll('wait=3&max=1')];
  await sleep(200);
  await f.send('m1');
  await f.send('m2');
  const results = await Promise.all(polls);
  const seqs = results.flatMap((r) => r.messages.map((m) => m.event.sequence)).sort();
  // Each message goes to exactly one poll; whichever poll missed both returned empty after the wait.
  assert.equal(new Set(seqs).size, seqs.length, `no duplicates: ${seqs}`);
  const rest = await f.poll('max=10');
  assert.equal(seqs.length + rest.messages.length, 2);
});

test('a long poll the receiver gave up on does not swallow a message that arrives later', async (t) => {
  const f = await pullHub({ visibilityTimeoutSeconds: 30 });
  t.after(() => f.close());
  // Its own client, destroyed with the poll: the shared pool would open a spare connection on
  // abort, which holds the hub's graceful close for the keep-alive timeout.
  const client = new Client(f.hub.url);
  const abort = new AbortController();
  const gone = client.request({ method: 'GET', path: '/v1/inbox?wait=5', headers: { authorization: `Bearer ${f.receiverKey}` }, signal: abort.signal }).catch((e) => e);
  await sleep(300);
  abort.abort();
  assert.equal((await gone).name, 'AbortError');
  await client.destroy();
  await sleep(200);
  const seq = await f.send('m1');
  await sleep(300);
  const res = await f.poll();
  assert.equal(res.messages.length, 1, `the message is not leased to the abandoned poll: ${res.text}`);
  assert.equal(res.messages[0]!.event.sequence, String(seq));
  assert.equal(res.messages[0]!.receives, 1);
});

test('closing the hub ends open long polls at once instead of waiting them out', async (t) => {
  const f = await pullHub();
  let closed = false;
  t.after(async () => { if (!closed) await f.close(); });
  const polls = [f.poll('wait=15'), f.poll('wait=15&max=3')];
  await sleep(300);
  const started = performance.now();
  await f.close();
  closed = true;
  const took = performance.now() - started;
  const results = await Promise.all(polls);
  for (const r of results) {
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { messages: [] });
    assert.ok(r.ms < 3000, `the poll answered ${r.ms.toFixed(0)} ms after it began`);
  }
  assert.ok(took < 2000, `close took ${took.toFixed(0)} ms with two 15 s long polls open`);
});
