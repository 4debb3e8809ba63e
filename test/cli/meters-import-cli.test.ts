/**
 * `meterhub meters import FILE`: the progress on stderr (rows and bytes while the file uploads
 * and the hub checks it, then rows imported of all of them, each with its rate), none with -q,
 * and a bad row late in the file named by its line, nothing imported.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ADMIN_KEY, startTestHub } from '../support/hub.ts';

const run = promisify(execFile);

function cli(url: string, args: string[]) {
  return run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args, '--url', url, '--key', ADMIN_KEY], { cwd: process.cwd() });
}

function registry(file: string, rows: number, bad?: number): void {
  const lines = ['meter,role,participant,validFrom,validTo'];
  for (let i = 0; i < rows; i++) lines.push(i === bad ? `QB${i},FRMP,RETAILER A,,` : `QB${String(i).padStart(8, '0')},FRMP,RETAILER-A,2024-01-01,`);
  writeFileSync(file, `${lines.join('\n')}\n`);
}

test('meters import shows rows and bytes checked, then rows imported of all with rows/s; -q shows none', async (t) => {
  const hub = await startTestHub();
  const dir = mkdtempSync(join(tmpdir(), 'meterhub-cli-meters-'));
  t.after(async () => { await hub.close(); rmSync(dir, { recursive: true, force: true }); });
  const file = join(dir, 'meters.csv');
  registry(file, 40_000);

  const r = await cli(hub.url, ['meters', 'import', file]);
  assert.match(r.stdout, /^imported 40000 rows in [\d.]+ s \(\d+ rows\/s\)$/m);
  const states = r.stderr.split(/[\r\n]/).map((l) => l.trim()).filter(Boolean);
  const checking = states.filter((l) => l.startsWith('checking'));
  const importing = states.filter((l) => l.startsWith('importing'));
  assert.ok(checking.length >= 1 && importing.length >= 1, r.stderr);
  assert.match(checking.at(-1)!, /^checking +\[#{30}\] 100% {2}40,000 rows {2}[\d.]+ MiB {2}[\d.]+ MiB\/s {2}[\d,]+ rows\/s$/);
  assert.match(importing.at(-1)!, /^importing \[#{30}\] 100% {2}40,000 of 40,000 rows {2}[\d,]+ rows\/s$/);
  assert.ok(r.stderr.indexOf('checking') < r.stderr.indexOf('importing'), 'checked first, then imported');
  assert.equal((await hub.api('GET', '/v1/admin/meters/QB00039999')).status, 200);

  const quiet = await cli(hub.url, ['meters', 'import', file, '-q']);
  assert.equal(quiet.stderr, '');
  assert.match(quiet.stdout, /^imported 40000 rows/);
});

test('meters import: a bad row at line 20,001 fails with its line number, and nothing of the file is imported', async (t) => {
  const hub = await startTestHub();
  const dir = mkdtempSync(join(tmpdir(), 'meterhub-cli-meters-'));
  t.after(async () => { await hub.close(); rmSync(dir, { recursive: true, force: true }); });
  const file = join(dir, 'meters.csv');
  registry(file, 25_000, 19_999);
  await assert.rejects(cli(hub.url, ['meters', 'import', file, '-q']), (e: { code: number; stderr: string }) => {
    assert.notEqual(e.code, 0);
    assert.match(e.stderr, /400 .*line 20001: participant 'RETAILER A'.*nothing was imported/);
    return true;
  });
  assert.equal((await hub.api('GET', '/v1/admin/meters/QB00000000')).status, 404);
});
