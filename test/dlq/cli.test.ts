/** The CLI over the API: `meterhub dlq list|redrive`, `meterhub replay`, `meterhub tail`. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ADMIN_KEY, eventually, startTestHub, type TestHub } from '../support/hub.ts';
import { startReceiver } from '../support/receiver.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function cli(hub: TestHub, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: ROOT, env: { ...process.env, METERHUB_URL: hub.url, METERHUB_KEY: ADMIN_KEY }, timeout: 30_000,
    }, (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

async function send(hub: TestHub, key: string, id: string, subject = 'NMI1'): Promise<number> {
  const body = JSON.stringify({ specversion: '1.0', id, source: 'MDP-A', type: 'test.reading', subject, datacontenttype: 'application/json', data: {} });
  const res = await hub.api('POST', '/v1/messages', { key, body, headers: { 'content-type': 'application/cloudevents+json' } });
  assert.equal(res.status, 202, res.text);
  return res.json.sequence;
}

test('dlq list and redrive, replay, and tail from the command line', { timeout: 90_000 }, async (t) => {
  const hub = await startTestHub();
  let healthy = false;
  const receiver = await startReceiver((_req, res) => { res.statusCode = healthy ? 204 : 410; res.end(); });
  t.after(async () => { await hub.close(); await receiver.close(); });
  const sender = await hub.participant('MDP-A');
  await hub.participant('R', { mode: 'push', url: receiver.url });
  await hub.routes([{ name: 'all', match: {}, to: { participants: ['R'] } }]);
  const seqs = [await send(hub, sender.key, 'c1'), await send(hub, sender.key, 'c2'), await send(hub, sender.key, 'c3', 'NMI2')];
  await eventually(async () => (await hub.api('GET', '/v1/admin/dlq')).json.deliveries.length === 3, 10_000, 'three dead');

  const json = await cli(hub, ['dlq', 'list', '--json', '--receiver', 'R']);
  assert.equal(json.code, 0, json.stderr);
  const rows = json.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(rows.map((r) => r.sequence).sort(), [...seqs].sort());
  assert.ok(rows.every((r) => r.receiver === 'R' && r.lastStatus === 410));
  const human = await cli(hub, ['dlq', 'list']);
  assert.equal(human.stdout.trim().split('\n').length, 3);
  assert.match(human.stdout, /delivery \d+ +#\d+ +R \(push\) +NMI1 +test\.reading +1 attempt\(s\) HTTP 410/);
  assert.match(human.stderr, /3 dead deliveries/);

  const refused = await cli(hub, ['dlq', 'redrive']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /give delivery ids, or --receiver/);
  healthy = true;
  const one = await cli(hub, ['dlq', 'redrive', String(rows[0].delivery)]);
  assert.equal(one.stdout.trim(), 'redriven 1', one.stderr);
  const rest = await cli(hub, ['dlq', 'redrive', '--receiver', 'R']);
  assert.equal(rest.stdout.trim(), 'redriven 2', rest.stderr);
  assert.equal((await cli(hub, ['dlq', 'redrive', '--all'])).stdout.trim(), 'redriven 0');
  await eventually(() => receiver.requests.filter((r) => r.headers['meterhub-resend'] === undefined).length === 6, 10_000, 'the redriven ones delivered');

  const replay = await cli(hub, ['replay', '--subject', 'NMI1']);
  assert.equal(replay.code, 0, replay.stderr);
  assert.match(replay.stdout, /^replayed 2 message\(s\) as 2 resend\(s\)/);
  assert.match(replay.stderr, /replaying/);
  assert.match((await cli(hub, ['replay'])).stderr, /give a filter/);
  await eventually(() => receiver.requests.filter((r) => r.headers['meterhub-resend'] === 'true').length === 2, 10_000, 'the replayed ones');

  // tail: follows new messages and their states; Ctrl-C stops it.
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'tail', '--receiver', 'R', '--interval', '200'], {
    cwd: ROOT, env: { ...process.env, METERHUB_URL: hub.url, METERHUB_KEY: ADMIN_KEY }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
  child.stderr.setEncoding('utf8').on('data', (s: string) => { err += s; });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  await eventually(() => err.includes('following'), 20_000, 'tail started');
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(out, '', 'what was there before is not shown');
  // A slow receiver, so that the message is seen pending first and its change printed after.
  receiver.handle((_req, res) => { setTimeout(() => { res.statusCode = 204; res.end(); }, 600); });
  const seq = await send(hub, sender.key, 'c4');
  await eventually(() => new RegExp(`#${seq} +MDP-A test\\.reading NMI1 +R: (pending|delivering)`).test(out), 10_000, `tail shows #${seq}: ${out}`);
  await eventually(() => new RegExp(`#${seq} +R: delivered`).test(out), 10_000, `tail shows #${seq} delivered: ${out}`);
  child.kill('SIGINT');
  assert.equal(await exited, 0);
  assert.match(err, /stopped/);
});
