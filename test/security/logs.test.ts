// No API key, no whsec_ secret and no message body ever reaches the log, at the most verbose
// level (trace, with request logging on): a hub writing into a capturing pino destination runs
// the whole authentication matrix (every endpoint, successes and errors), ingest refusals that
// quote their input, requests Node's parser refuses (where Node hands the raw bytes of the request,
// Authorization included, to the error handler), push deliveries that fail and go dead with a
// receiver echoing the body back. Then the captured text is scanned for every key, every secret
// and the marker placed in the bodies (Buffers that pino logs as byte arrays are decoded first).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { request } from 'undici';
import { ADMIN_KEY, eventually } from '../support/hub.ts';
import { startReceiver } from '../support/receiver.ts';
import { envelope, STRUCTURED } from '../api/helpers.ts';
import { rawExchange, rawRequest } from '../fuzz/support.ts';
import { buildWorld, runMatrix, startLoggedHub } from './matrix.ts';

/** The log as text, with every serialised Buffer ({"type":"Buffer","data":[...]}) turned back into its bytes. */
function readable(lines: string[]): string {
  const text = lines.join('');
  return text.replace(/\{"type":"Buffer","data":\[([0-9,]*)\]\}/g, (_m, bytes: string) => Buffer.from(bytes ? bytes.split(',').map(Number) : []).toString('latin1'));
}

test('nothing secret in the log at trace level: keys, whsec_ secrets and message bodies never appear', async (t) => {
  const lines: string[] = [];
  const destination = new Writable({ write(chunk, _enc, cb) { lines.push(chunk.toString()); cb(); } });
  const logger = pino({ level: 'trace' }, destination);
  const receiver = await startReceiver();
  t.after(() => receiver.close());
  const w = await buildWorld(() => startLoggedHub(logger, {
    server: { logRequests: true, headersTimeoutMs: 500, requestTimeoutMs: 1000 },
    delivery: { retry: { maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 20 }, breaker: { failureThreshold: 10_000 } },
  }));
  t.after(() => w.hub.close());
  const { hub, marker } = w;

  // A push receiver that echoes the body it got in its error answer, so the delivery goes dead quoting it.
  receiver.handle((req, res) => { res.statusCode = 400; res.setHeader('content-type', 'text/plain'); res.end(`bad payload: ${req.body.toString('utf8')}`); });
  const push = await hub.participant('PUSH-ECHO', { mode: 'push', url: receiver.url });
  w.secrets.push(push.secret!);
  const rotated = await hub.api('PUT', '/v1/admin/participants/PUSH-ECHO', { json: { name: 'echo', receiver: { mode: 'push', url: receiver.url, secret: `whsec_${Buffer.from(`rotated-${marker}`).toString('base64')}`, previousSecret: push.secret } } });
  assert.equal(rotated.status, 200, rotated.text);
  w.secrets.push(`whsec_${Buffer.from(`rotated-${marker}`).toString('base64')}`);
  await hub.routes([
    { name: 'from-sender', match: { source: 'SENDER-S' }, to: { participants: ['RECV-R', 'PUSH-ECHO'] } },
    { name: 'from-other', match: { source: 'OTHER-U' }, to: { participants: ['RECV-R'] } },
  ]);

  // Every endpoint, every caller (successes and refusals), twice over the cache.
  await runMatrix(w, { lenient: true });
  await runMatrix(w, { lenient: true });

  // Ingest refusals that could quote the body or the key.
  const post = (body: string, headers: Record<string, string>) => request(`${hub.url}/v1/messages`, { method: 'POST', headers: { authorization: `Bearer ${w.keys.sender}`, ...headers }, body }).then((r) => r.body.text());
  await post(`{"specversion":"1.0","id":"${marker}","source":"SENDER-S"`, { 'content-type': STRUCTURED });
  await post(envelope({ id: 'dup', source: 'SENDER-S', id2: marker }, `{"m":"${marker}"}`).replace('"id2"', '"id"'), { 'content-type': STRUCTURED });
  await post(`[${envelope({ id: 'b1', source: 'SENDER-S' }, `"${marker}"`)},{"bad":"${marker}"}]`, { 'content-type': 'application/cloudevents-batch+json' });
  await post(marker, { 'ce-specversion': '1.0', 'ce-id': 'bin-1', 'ce-source': 'OTHER-U', 'ce-type': 't', 'ce-subject': 'NCDE001111', 'content-type': 'text/plain' });
  await post(`"${marker}"`, { 'content-type': `${STRUCTURED}; charset=${marker}` });
  await post(`{"name":"${marker}","name":"x"}`, { 'content-type': 'application/json' });
  for (const key of [w.keys.sender, w.keys.receiver, ADMIN_KEY]) {
    await request(`${hub.url}/v1/admin/participants/X`, { method: 'PUT', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: `{"name":"${marker}","name":"${marker}"}` }).then((r) => r.body.text());
  }
  // Requests Node's parser refuses, each with a real key in it: too large, not HTTP, too slow.
  const auth = `authorization: Bearer ${w.keys.sender}\r\n`;
  await rawExchange(hub.url, `POST /v1/messages HTTP/1.1\r\nhost: x\r\n${auth}x-pad: ${'p'.repeat(20_000)}\r\n\r\n`);
  await rawExchange(hub.url, `POST /v1/messages HTTP/1.1\r\nhost: x\r\n${auth}content-type: ${STRUCTURED}\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n${marker}`);
  await rawExchange(hub.url, `POST /v1/messages HTTP/1.1\r\nhost: x\r\n${auth}x-bad: a\0b\r\n\r\n${marker}`);
  await rawExchange(hub.url, [`POST /v1/messages HTTP/1.1\r\nhost: x\r\n${auth}content-type: ${STRUCTURED}\r\ncontent-length: 500\r\n\r\n{"data":"${marker}`, { pauseMs: 2500 }], { timeoutMs: 5000 });
  await rawExchange(hub.url, [`POST /v1/messages HTTP/1.1\r\nhost: x\r\n${auth}x-slow: `, { pauseMs: 1500 }], { timeoutMs: 5000 });
  await rawExchange(hub.url, rawRequest('POST', '/v1/messages', [['authorization', `Bearer ${w.keys.sender}`], ...Array.from({ length: 250 }, (_, i) => [`x-h${i}`, marker] as [string, string])], marker));
  await rawExchange(hub.url, `CONNECT ${marker}:443 HTTP/1.1\r\nhost: x\r\n${auth}\r\n`);

  // The push goes out signed (twice, the old and the new secret), fails with the body echoed, and goes dead.
  await eventually(async () => (await hub.api('GET', '/v1/admin/dlq')).json.deliveries?.some((d: any) => d.receiver === 'PUSH-ECHO'), 10_000, 'the echoing push delivery dead');
  assert.ok(receiver.requests.length >= 1 && receiver.requests[0]!.body.toString().includes(marker), 'the receiver got the body');
  assert.match(String(receiver.requests[0]!.headers['webhook-signature']), /^v1,\S+ v1,\S+$/, 'signed with both secrets');

  const logged = readable(lines);
  assert.ok(lines.length > 200, `the hub logged (${lines.length} lines)`);
  assert.match(logged, /incoming request/, 'request logging was on');
  assert.match(logged, /delivery dead-lettered/, 'the dead letter was logged');
  // mh_<id>_<secret>: the id may be logged, the secret never. The secret is base64url, which may
  // itself hold '_', so it is everything after the second '_', not the last '_'-separated piece.
  const secretParts = (k: string) => [k, k.slice(k.indexOf('_', k.indexOf('_') + 1) + 1)];
  const secrets: Array<[string, string]> = [
    ...Object.entries(w.keys).flatMap(([who, k]) => secretParts(k).map((s) => [`${who}'s key`, s] as [string, string])),
    ...Object.entries(w.spare).flatMap(([who, s]) => [[`spare key of ${who}`, s.key], [`spare admin key of ${who}`, s.adminKey]] as Array<[string, string]>),
    ['the admin key', ADMIN_KEY],
    ...w.secrets.map((s) => ['a whsec_ secret', s] as [string, string]),
    ...w.secrets.map((s) => ['a whsec_ secret\'s base64', s.slice('whsec_'.length)] as [string, string]),
    ['the body marker', marker],
  ];
  const found = secrets.filter(([, s]) => logged.includes(s)).map(([what]) => what);
  const context = (s: string) => { const i = logged.indexOf(s); return logged.slice(Math.max(0, i - 300), i + 100); };
  assert.deepEqual(found, [], `in the log: ${found.join(', ')}\n${found.length ? context(secrets.find(([what]) => what === found[0])![1]) : ''}`);
  assert.doesNotMatch(logged, /whsec_/, 'no whsec_ secret, or part of one');
  assert.doesNotMatch(logged, /authorization/i, 'no Authorization header');
});
