import { createReadStream, statSync } from 'node:fs';
import { Transform } from 'node:stream';
import type { Command } from 'commander';
import { request } from 'undici';
import { call, clientOptions, describeProblem, type ClientOptions } from './client.ts';
import { ImportProgress } from './import-progress.ts';

/** `meterhub meters import FILE` (streamed, with progress) and `meterhub meters show METER`. */
export function registerMeters(program: Command): void {
  const meters = program.command('meters').description('the meter registry (admin key)');

  meters.command('import')
    .description('import or update registry entries from a CSV file (meter,role,participant,validFrom,validTo); all rows or, for a bad row, none')
    .argument('<file>')
    .option('--url <url>', 'hub URL (or METERHUB_URL)')
    .option('--key <key>', 'admin API key (or METERHUB_KEY)')
    .option('-q, --quiet', 'no progress')
    .action(async (file: string, opts: { url?: string; key?: string; quiet?: boolean }) => {
      const started = Date.now();
      const imported = await importFile(clientOptions(opts), file, new ImportProgress(statSync(file).size, opts.quiet ? null : (t) => process.stderr.write(t)));
      const seconds = (Date.now() - started) / 1000;
      process.stdout.write(`imported ${imported} rows in ${seconds.toFixed(1)} s (${Math.round(imported / Math.max(seconds, 0.001))} rows/s)\n`);
    });

  meters.command('show')
    .description("a meter's roles")
    .argument('<meter>')
    .option('--url <url>', 'hub URL (or METERHUB_URL)')
    .option('--key <key>', 'admin API key (or METERHUB_KEY)')
    .action(async (meter: string, opts: { url?: string; key?: string }) => {
      const res = await call(clientOptions(opts), 'GET', `/v1/admin/meters/${encodeURIComponent(meter)}`);
      if (res.status !== 200) throw new Error(describeProblem(res.json));
      const m = res.json as { roles: Array<{ role: string; participant: string; validFrom: string | null; validTo: string | null }> };
      for (const r of m.roles) process.stdout.write(`${r.role}\t${r.participant}\t${r.validFrom ?? '-'}\t${r.validTo ?? '-'}\n`);
    });
}

/**
 * Streams the file to POST /v1/admin/meters asking for progress lines (application/x-ndjson):
 * the hub checks every row while the file uploads, answers only once all are good, then
 * reports the rows applied as it goes and ends with `{"imported": n}` (or a problem).
 */
async function importFile(c: ClientOptions, file: string, progress: ImportProgress): Promise<number> {
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) { progress.sent(chunk); done(null, chunk); },
    flush(done) { progress.uploaded(); done(); },
  });
  const res = await request(`${c.url}/v1/admin/meters`, {
    method: 'POST',
    headers: { authorization: `Bearer ${c.key}`, 'content-type': 'text/csv', accept: 'application/x-ndjson, application/json' },
    body: createReadStream(file, { highWaterMark: 1 << 20 }).pipe(counter),
  });
  try {
    if (res.statusCode !== 200) throw new Error(describeProblem(parseJson(await res.body.text())));
    if (!String(res.headers['content-type'] ?? '').startsWith('application/x-ndjson')) {
      return (parseJson(await res.body.text()) as { imported: number }).imported;
    }
    let rest = '';
    for await (const chunk of res.body) {
      const lines = (rest + chunk.toString('utf8')).split('\n');
      rest = lines.pop()!;
      for (const line of lines.filter((l) => l.trim() !== '')) {
        const msg = parseJson(line) as { progress?: { imported: number; rows: number }; imported?: number; status?: number };
        if (msg.progress) progress.applied(msg.progress.imported, msg.progress.rows);
        else if (typeof msg.imported === 'number') { progress.applied(msg.imported, msg.imported, true); return msg.imported; }
        else throw new Error(describeProblem(msg));
      }
    }
    throw new Error('the hub ended the answer before saying how many rows it imported');
  } finally {
    progress.done();
  }
}

function parseJson(text: string): unknown {
  try { return JSON.parse(text); } catch { return text; }
}
