import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertProblem, pullHub, SENDER } from './pull-fixture.ts';

test('a poll returns structured CloudEvents with a lease, JSON data inline byte-exact, and the sequence', async (t) => {
  const f = await pullHub();
  t.after(() => f.close());
  const data = '{"reading": 12345678901234567890, "v": 0.1000000000000000055511, "s": "caf\\u00e9"}';
  const seq = await f.send('m1', data);

  const res = await f.poll('max=10');
  assert.equal(res.status, 200, res.text);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  // The number survives verbatim: the hub splices the accepted bytes, it never re-serialises.
  assert.ok(res.text.includes('12345678901234567890'), res.text);
  assert.ok(res.text.includes('0.1000000000000000055511'), res.text);
  assert.ok(res.text.includes(data), `the data bytes appear unchanged in: ${res.text}`);

  assert.equal(res.messages.length, 1);
  const m = res.messages[0]!;
  assert.equal(typeof m.lease, 'string');
  assert.ok(m.lease.length >= 16);
  assert.ok(Date.parse(m.leaseExpiresAt) > Date.now(), m.leaseExpiresAt);
  assert.equal(m.receives, 1);
  assert.equal(m.resend, false);
  const e = m.event;
  assert.equal(e.specversion, '1.0');
  assert.equal(e.id, 'm1');
  assert.equal(e.source, SENDER);
  assert.equal(e.type, 'test.reading');
  assert.equal(e.subject, 'NMI1');
  assert.equal(e.datacontenttype, 'application/json');
  assert.equal(e.sequence, String(seq), 'sequence extension attribute (a string, per the CloudEvents sequence extension)');
  assert.equal(e.data_base64, undefined);
  assert.deepEqual(e.data, JSON.parse(data));
  // The lease makes the delivery `delivering` in the sender's view.
  assert.equal((await f.delivery(seq)).state, 'delivering');
});

test('a binary-mode text/csv message is polled as data_base64 decoding to the exact bytes', async (t) => {
  const f = await pullHub();
  t.after(() => f.close());
  // CRLF, a trailing space, a non-ASCII byte sequence and no final newline: all must survive.
  const csv = Buffer.from('100,NEM12,200506081149,UNITEDDP,NEMMCO\r\n200,NEM1201009,E1E2,1,E1,N1,01009,kWh,30,20050610 \r\n900 Zürich', 'utf8');
  const sent = await f.hub.api('POST', '/v1/messages', {
    key: f.senderKey, body: csv,
    headers: { 'content-type': 'text/csv', 'ce-specversion': '1.0', 'ce-id': 'csv-1', 'ce-source': SENDER, 'ce-type': 'nem12.file', 'ce-subject': 'NMI1' },
  });
  assert.equal(sent.status, 202, sent.text);

  const res = await f.poll();
  assert.equal(res.status, 200, res.text);
  assert.equal(res.messages.length, 1);
  const e = res.messages[0]!.event;
  assert.equal(e.datacontenttype, 'text/csv');
  assert.equal(e.data, undefined);
  assert.equal(typeof e.data_base64, 'string');
  assert.ok(Buffer.from(e.data_base64, 'base64').equals(csv), 'data_base64 decodes to the accepted bytes');
  assert.equal(e.sequence, String(sent.json.sequence));
  assert.equal(e.id, 'csv-1');
  assert.equal(e.type, 'nem12.file');
});

test('max is honoured and messages come oldest first; the rest stay for the next poll', async (t) => {
  const f = await pullHub();
  t.after(() => f.close());
  const seqs: number[] = [];
  for (let i = 0; i < 5; i++) seqs.push(await f.send(`m${i}`, `{"n":${i}}`));

  const first = await f.poll('max=2');
  assert.equal(first.status, 200, first.text);
  assert.deepEqual(first.messages.map((m) => m.event.sequence), seqs.slice(0, 2).map(String));
  const second = await f.poll('max=2');
  assert.deepEqual(second.messages.map((m) => m.event.sequence), seqs.slice(2, 4).map(String));
  const third = await f.poll('max=10');
  assert.deepEqual(third.messages.map((m) => m.event.sequence), seqs.slice(4).map(String));
  assert.equal(new Set([...first.messages, ...second.messages, ...third.messages].map((m) => m.lease)).size, 5, 'each lease is distinct');
  assert.equal((await f.poll()).messages.length, 0);
});

test('the default max is 10', async (t) => {
  const f = await pullHub();
  t.after(() => f.close());
  for (let i = 0; i < 12; i++) await f.send(`m${i}`);
  assert.equal((await f.poll()).messages.length, 10);
  assert.equal((await f.poll()).messages.length, 2);
});

test('bad max and wait answer 400 problem+json, and nothing is leased', async (t) => {
  const f = await pullHub({}, { overrides: { inbox: { maxWaitSeconds: 20, maxMessages: 100 } } });
  t.after(() => f.close());
  await f.send('m1');
  for (const q of ['max=0', 'max=-1', 'max=101', 'max=abc', 'max=1.5', 'max=1e1', 'max=0x10', 'max=%201', 'max=1&max=2',
    'wait=-1', 'wait=21', 'wait=soon', 'wait=0.5', 'wait=1&wait=2']) {
    const res = await f.poll(q);
    assert.equal(res.status, 400, `${q}: ${res.text}`);
    assertProblem(res, 400);
  }
  // Bad requests leased nothing: the message is still there, first receive.
  const ok = await f.poll('max=100&wait=0');
  assert.equal(ok.messages.length, 1);
  assert.equal(ok.messages[0]!.receives, 1);
});

test('bad ack and nack bodies answer 400 problem+json', async (t) => {
  const f = await pullHub();
  t.after(() => f.close());
  for (const body of [{}, { leases: [] }, { leases: 'x' }, { leases: [1] }, { leases: ['x'], extra: 1 }]) {
    const res = await f.hub.api('POST', '/v1/inbox/ack', { key: f.receiverKey, json: body });
    assertProblem(res, 400);
  }
  for (const body of [{ leases: ['x'], delaySeconds: -1 }, { leases: ['x'], delaySeconds: 1.5 }, { leases: ['x'], delaySeconds: '2' }]) {
    const res = await f.hub.api('POST', '/v1/inbox/nack', { key: f.receiverKey, json: body });
    assertProblem(res, 400);
  }
});

test('a JSON-typed body that is not valid UTF-8 is not spliced lossily: data_base64 with the exact bytes', async (t) => {
  const f = await pullHub();
  t.after(() => f.close());
  const bin = (id: string, body: Buffer) => f.hub.api('POST', '/v1/messages', {
    key: f.senderKey, body,
    headers: { 'content-type': 'application/json', 'ce-specversion': '1.0', 'ce-id': id, 'ce-source': SENDER, 'ce-type': 't', 'ce-subject': 'NMI1' },
  });
  const badUtf8 = Buffer.from([0x22, 0xff, 0xfe, 0x22]); // "\xff\xfe": JSON-shaped, not UTF-8
  const withBom = Buffer.from('\uFEFF{"a":1}', 'utf8');
  const notJson = Buffer.from('{"a":', 'utf8');
  for (const [id, body] of [['bad-utf8', badUtf8], ['bom', withBom], ['not-json', notJson]] as const) {
    const sent = await bin(id, body);
    if (sent.status !== 202) continue; // refusing it at ingest is fine too
    const res = await f.poll();
    assert.equal(res.messages.length, 1, `${id}: ${res.text}`);
    const e = res.messages[0]!.event;
    const got = e.data_base64 !== undefined ? Buffer.from(e.data_base64, 'base64') : Buffer.from(JSON.stringify(e.data));
    assert.ok(got.equals(body), `${id}: received ${got.toString('hex')}, accepted ${body.toString('hex')}`);
    assert.equal(e.data, undefined, `${id} carried as data_base64, not as re-decoded data`);
    await f.ack([res.messages[0]!.lease]);
  }
});

test('an event without data is polled with neither data nor data_base64', async (t) => {
  const f = await pullHub();
  t.after(() => f.close());
  const sent = await f.hub.api('POST', '/v1/messages', {
    key: f.senderKey, headers: { 'content-type': 'application/cloudevents+json' },
    body: `{"specversion":"1.0","id":"nodata","source":"${SENDER}","type":"t","subject":"NMI1"}`,
  });
  assert.equal(sent.status, 202, sent.text);
  const res = await f.poll();
  const e = res.messages[0]!.event;
  assert.equal(e.id, 'nodata');
  assert.equal(e.sequence, String(sent.json.sequence));
  assert.ok(!('data' in e) && !('data_base64' in e), JSON.stringify(e));
});

test('a JSON body of a large (file-stored) message is inline and byte-exact', async (t) => {
  const f = await pullHub({}, { overrides: { storage: { inlineBodyMaxBytes: 1024 } } });
  t.after(() => f.close());
  const data = `{"pad":"${'x'.repeat(50_000)}","n":12345678901234567890}`;
  const seq = await f.send('big', data);
  const res = await f.poll();
  assert.ok(res.text.includes(data));
  assert.equal(res.messages[0]!.event.sequence, String(seq));
});
