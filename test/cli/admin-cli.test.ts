import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ADMIN_KEY, startTestHub } from '../support/hub.ts';

const run = promisify(execFile);

async function cli(url: string, args: string[], key = ADMIN_KEY) {
  return run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args, '--url', url, '--key', key], { cwd: process.cwd() });
}

test('participants, keys and the meter registry are managed from the CLI', async (t) => {
  const hub = await startTestHub();
  const dir = mkdtempSync(join(tmpdir(), 'meterhub-cli-'));
  t.after(async () => { await hub.close(); rmSync(dir, { recursive: true, force: true }); });

  const created = await cli(hub.url, ['participants', 'put', 'RETAILER-A', '--name', 'Retailer A', '--push', 'http://127.0.0.1:9/hook', '--ordering', 'subject']);
  assert.match(created.stdout, /created RETAILER-A/);
  assert.match(created.stdout, /signing secret .*: whsec_[A-Za-z0-9+/=]+/);
  await cli(hub.url, ['participants', 'put', 'MDP-A', '--name', 'MDP A']);
  const listed = await cli(hub.url, ['participants', 'list']);
  assert.match(listed.stdout, /^MDP-A\tMDP A\tsender only$/m);
  assert.match(listed.stdout, /^RETAILER-A\tRetailer A\tpush http:\/\/127\.0\.0\.1:9\/hook$/m);
  const stored = await hub.api('GET', '/v1/admin/participants/RETAILER-A');
  assert.equal(stored.json.receiver.ordering, 'subject');

  const key = await cli(hub.url, ['keys', 'create', 'MDP-A']);
  const plain = /\n(mh_\S+)\n/.exec(key.stdout)?.[1];
  assert.ok(plain, key.stdout);
  assert.equal((await hub.api('GET', '/v1/messages/1', { key: plain })).status, 404, 'the new key authenticates');
  const keyId = /key (\S+) for MDP-A/.exec(key.stdout)![1]!;
  assert.match((await cli(hub.url, ['keys', 'list', 'MDP-A'])).stdout, new RegExp(`^${keyId}\tcreated `, 'm'));
  await cli(hub.url, ['keys', 'revoke', 'MDP-A', keyId]);
  assert.equal((await hub.api('GET', '/v1/messages/1', { key: plain })).status, 401, 'the revoked key is refused');

  const csv = join(dir, 'meters.csv');
  const rows = ['meter,role,participant,validFrom,validTo'];
  for (let i = 0; i < 12_000; i++) rows.push(`NMI${String(i).padStart(7, '0')},FRMP,RETAILER-A,2024-01-01,`);
  writeFileSync(csv, `${rows.join('\n')}\n`);
  const imported = await cli(hub.url, ['meters', 'import', csv]);
  assert.match(imported.stdout, /imported 12000 rows/);
  assert.match(imported.stderr, /100%/, 'a progress bar ends at 100%');
  const shown = await cli(hub.url, ['meters', 'show', 'NMI0011999']);
  assert.match(shown.stdout, /^FRMP\tRETAILER-A\t2024-01-01T00:00:00\.000Z\t-$/m);

  writeFileSync(csv, 'meter,role,participant\nNMI1,FRMP,RETAILER-A\nNMI2,,RETAILER-A\n');
  await assert.rejects(cli(hub.url, ['meters', 'import', csv, '-q']), (e: { stderr: string }) => /line 3/.test(e.stderr));

  await cli(hub.url, ['participants', 'delete', 'MDP-A']);
  await assert.rejects(cli(hub.url, ['participants', 'show', 'MDP-A']), (e: { stderr: string }) => /404/.test(e.stderr));
});
