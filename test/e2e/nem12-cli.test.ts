/**
 * A NEM12 file sent with the real CLI (a child process) to a real hub, routed by meter role
 * through the registry to two push receivers, checked the way a receiver would check it:
 * the body bytes, the Standard Webhooks signature (verified here from the spec, not with the
 * hub's own signing code), and the CloudEvents headers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { request } from 'undici';
import { splitNem12, type Nem12Message } from '../../src/nem12/split.ts';
import { startTestHub, eventually } from '../support/hub.ts';
import { startReceiver, type ReceivedRequest, type TestReceiver } from '../support/receiver.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SAMPLE = 'samples/nem12_multiple_meters.csv';

/**
 * Standard Webhooks verification, written from the spec (standardwebhooks.com):
 * the key is the base64 after `whsec_`; the signed content is `${id}.${timestamp}.${body}`;
 * `webhook-signature` is a space-separated list of `v1,<base64 HMAC-SHA256>`, any of which may
 * match; compare in constant time; refuse timestamps more than 5 minutes from now.
 */
function verifyStandardWebhook(secret: string, headers: ReceivedRequest['headers'], body: Buffer, nowSec = Math.floor(Date.now() / 1000)): void {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof timestamp !== 'string' || typeof signatures !== 'string') throw new Error('missing webhook-* headers');
  if (!/^\d+$/.test(timestamp)) throw new Error(`bad webhook-timestamp ${timestamp}`);
  const ts = Number(timestamp);
  if (Math.abs(nowSec - ts) > 5 * 60) throw new Error(`webhook-timestamp ${ts} is more than 5 minutes from now (${nowSec})`);
  if (!secret.startsWith('whsec_')) throw new Error('not a whsec_ secret');
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const expected = createHmac('sha256', key).update(Buffer.concat([Buffer.from(`${id}.${timestamp}.`, 'utf8'), body])).digest();
  for (const part of signatures.split(' ')) {
    const [version, b64] = part.split(',', 2);
    if (version !== 'v1' || !b64) continue;
    const given = Buffer.from(b64, 'base64');
    if (given.length === expected.length && timingSafeEqual(given, expected)) return;
  }
  throw new Error('no webhook-signature matches');
}

async function cli(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, timeout: 15_000 });
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('a NEM12 file sent with the CLI reaches the FRMP and the LNSP of each meter, byte for byte and signed', async (t) => {
  const hub = await startTestHub();
  const retailer = await startReceiver();
  const network = await startReceiver();
  t.after(async () => { await hub.close(); await retailer.close(); await network.close(); });

  const { key } = await hub.participant('MDP-A');
  const { secret: retailerSecret } = await hub.participant('RETAILER-A', { mode: 'push', url: retailer.url });
  const { secret: networkSecret } = await hub.participant('NETWORK-B', { mode: 'push', url: network.url });
  assert.match(retailerSecret ?? '', /^whsec_/);
  assert.match(networkSecret ?? '', /^whsec_/);
  await hub.routes([{ name: 'nem12 to FRMP and LNSP', match: { type: { prefix: 'au.com.aemo.nem12.' } }, to: { roles: ['FRMP', 'LNSP'] } }]);
  await hub.meters([
    'meter,role,participant,validFrom,validTo',
    'NCDE001111,FRMP,RETAILER-A,,',
    'NCDE001111,LNSP,NETWORK-B,,',
    'NDDD001888,FRMP,RETAILER-A,2003-01-01,',
    'NDDD001888,LNSP,NETWORK-B,2003-01-01,2010-01-01',
  ].join('\n'));

  const expected = splitNem12(readFileSync(new URL(`../../${SAMPLE}`, import.meta.url), 'utf8'));
  assert.equal(expected.length, 12, 'the sample holds 12 (NMI, register, day) readings');
  const byId = new Map<string, Nem12Message>(expected.map((m) => [m.id, m]));
  assert.equal(byId.size, expected.length, 'ids are unique');

  // ---- first send ----
  const first = await cli(['send', '--url', hub.url, '--key', key, '--source', 'MDP-A', '--nem12', SAMPLE]);
  assert.match(first.stdout, new RegExp(`^${expected.length} messages: ${expected.length} accepted, 0 already accepted, 0 refused$`, 'm'), first.stdout);

  await eventually(() => retailer.requests.length >= expected.length && network.requests.length >= expected.length, 10_000, 'every message at both receivers');

  // Every delivery ended delivered, with one attempt (the receivers answer 204).
  const sequences = new Map<string, number>(); // id -> sequence
  for (const rx of [retailer, network]) {
    for (const req of rx.requests) {
      const id = String(req.headers['ce-id']);
      const seq = Number(req.headers['ce-sequence']);
      if (sequences.has(id)) assert.equal(sequences.get(id), seq, `${id} has one sequence`);
      sequences.set(id, seq);
    }
  }
  assert.deepEqual([...sequences.keys()].sort(), [...byId.keys()].sort(), 'the receivers got exactly the messages of the file');
  for (const seq of sequences.values()) {
    await eventually(async () => {
      const s = await hub.api('GET', `/v1/messages/${seq}`, { key });
      return s.json.deliveries.length === 2 && s.json.deliveries.every((d: { state: string }) => d.state === 'delivered');
    }, 5_000, `message ${seq} delivered to both`);
  }

  const check = async (rx: TestReceiver, receiverId: string, secret: string) => {
    assert.equal(rx.requests.length, expected.length, `${receiverId} got each message once`);
    const seen = new Set<string>();
    for (const req of rx.requests) {
      assert.equal(req.method, 'POST');
      assert.equal(req.path, '/hook');
      const id = String(req.headers['ce-id']);
      const m = byId.get(id);
      assert.ok(m, `${receiverId} got an unknown message ${id}`);
      assert.ok(!seen.has(id), `${receiverId} got ${id} twice`);
      seen.add(id);

      // The body: the exact bytes of `data` as the CLI sent them in its batch.
      const sent = Buffer.from(JSON.stringify(m.data), 'utf8');
      assert.deepEqual(JSON.parse(req.body.toString('utf8')), m.data);
      assert.ok(req.body.equals(sent), `${receiverId}: body of ${id} differs from the bytes sent`);
      const seq = Number(req.headers['ce-sequence']);
      const archived = await request(`${hub.url}/v1/messages/${seq}/data`, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(archived.statusCode, 200);
      assert.match(String(archived.headers['content-type']), /^application\/json/);
      const archivedBytes = Buffer.from(await archived.body.arrayBuffer());
      assert.ok(archivedBytes.equals(req.body), `archived bytes of ${seq} differ from the pushed bytes`);
      const status = await hub.api('GET', `/v1/messages/${seq}`, { key });
      assert.equal(status.json.sha256, sha256(req.body), `sha256 of ${seq}`);
      assert.equal(status.json.size, req.body.length);

      // Standard Webhooks signature, from the spec.
      verifyStandardWebhook(secret, req.headers, req.body);
      assert.throws(() => verifyStandardWebhook(secret, req.headers, Buffer.concat([req.body, Buffer.from(' ')])), /no webhook-signature/);
      const mine = status.json.deliveries.find((d: { receiver: string }) => d.receiver === receiverId);
      assert.equal(req.headers['webhook-id'], mine.webhookId);

      // CloudEvents binary mode headers.
      assert.equal(req.headers['ce-specversion'], '1.0');
      assert.equal(req.headers['ce-source'], 'MDP-A');
      assert.equal(req.headers['ce-type'], m.type);
      assert.equal(req.headers['ce-subject'], m.subject);
      assert.equal(req.headers['ce-time'], m.time);
      assert.equal(req.headers['ce-datacontenttype'], undefined, 'binary mode carries the content type in Content-Type');
      assert.match(String(req.headers['content-type']), /^application\/json/);
      assert.equal(status.json.id, id);
      assert.equal(status.json.subject, m.subject);
    }
  };
  await check(retailer, 'RETAILER-A', retailerSecret!);
  await check(network, 'NETWORK-B', networkSecret!);
  // A receiver's secret does not verify another receiver's deliveries.
  assert.throws(() => verifyStandardWebhook(networkSecret!, retailer.requests[0]!.headers, retailer.requests[0]!.body), /no webhook-signature/);

  // ---- second send: all duplicates, nothing new delivered ----
  const again = await cli(['send', '--url', hub.url, '--key', key, '--source', 'MDP-A', '--nem12', SAMPLE]);
  assert.match(again.stdout, new RegExp(`^${expected.length} messages: 0 accepted, ${expected.length} already accepted, 0 refused$`, 'm'), again.stdout);
  const perMessage = again.stdout.split('\n').filter((l) => /: (accepted|already accepted|refused)/.test(l));
  assert.equal(perMessage.length, expected.length);
  for (const line of perMessage) {
    const m = /already accepted as (\d+)$/.exec(line);
    assert.ok(m, `not reported as already accepted: ${line}`);
    assert.ok([...sequences.values()].includes(Number(m[1])), `a duplicate is reported with its first sequence: ${line}`);
  }
  // Wait until the hub is idle (several scheduler passes) and check nothing more arrived.
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(retailer.requests.length, expected.length, 'the second send delivered nothing new to RETAILER-A');
  assert.equal(network.requests.length, expected.length, 'the second send delivered nothing new to NETWORK-B');
  for (const seq of sequences.values()) {
    const s = await hub.api('GET', `/v1/messages/${seq}`, { key });
    assert.deepEqual(s.json.deliveries.map((d: { state: string; attempts: number }) => [d.state, d.attempts]), [['delivered', 1], ['delivered', 1]]);
  }
});
