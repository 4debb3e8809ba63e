import { createReadStream, statSync } from 'node:fs';
import { Transform } from 'node:stream';
import type { Command } from 'commander';
import { call, clientOptions, describeProblem } from './client.ts';

/** `meterhub meters import FILE` (streamed, with progress) and `meterhub meters show METER`. */
export function registerMeters(program: Command): void {
  const meters = program.command('meters').description('the meter registry (admin key)');

  meters.command('import')
    .description('import or update registry entries from a CSV file (meter,role,participant,validFrom,validTo)')
    .argument('<file>')
    .option('--url <url>', 'hub URL (or METERHUB_URL)')
    .option('--key <key>', 'admin API key (or METERHUB_KEY)')
    .option('-q, --quiet', 'no progress bar')
    .action(async (file: string, opts: { url?: string; key?: string; quiet?: boolean }) => {
      const total = statSync(file).size;
      const started = Date.now();
      let sent = 0;
      let lastDraw = 0;
      const draw = (final = false) => {
        if (opts.quiet || (!final && Date.now() - lastDraw < 200)) return;
        lastDraw = Date.now();
        const share = total === 0 ? 1 : sent / total;
        const width = 30;
        const bar = '#'.repeat(Math.round(share * width)).padEnd(width, '.');
        const mb = (sent / 1048576).toFixed(1);
        const rate = (sent / 1048576 / Math.max(0.001, (Date.now() - started) / 1000)).toFixed(1);
        process.stderr.write(`\r[${bar}] ${(share * 100).toFixed(0).padStart(3)}%  ${mb} MiB  ${rate} MiB/s`);
      };
      const progress = new Transform({
        transform(chunk: Buffer, _enc, done) { sent += chunk.length; draw(); done(null, chunk); },
        flush(done) { draw(true); done(); },
      });
      const res = await call(clientOptions(opts), 'POST', '/v1/admin/meters', { contentType: 'text/csv', data: createReadStream(file).pipe(progress) });
      if (!opts.quiet) process.stderr.write('\n');
      if (res.status !== 200) throw new Error(describeProblem(res.json));
      const n = (res.json as { imported: number }).imported;
      const seconds = (Date.now() - started) / 1000;
      process.stdout.write(`imported ${n} rows in ${seconds.toFixed(1)} s (${Math.round(n / Math.max(seconds, 0.001))} rows/s)\n`);
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
