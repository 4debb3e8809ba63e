import type { Command } from 'commander';
import { call, clientOptions, describeProblem } from './client.ts';

export function registerStatus(program: Command): void {
  program.command('status')
    .description("show a message's state and deliveries")
    .argument('<sequence>', 'the message sequence')
    .option('--url <url>', 'hub URL (or METERHUB_URL)')
    .option('--key <key>', 'API key (or METERHUB_KEY)')
    .option('--attempts', 'list every attempt too')
    .action(async (sequence: string, opts: { url?: string; key?: string; attempts?: boolean }) => {
      const client = clientOptions(opts);
      const res = await call(client, 'GET', `/v1/messages/${encodeURIComponent(sequence)}`);
      if (res.status !== 200) {
        process.stderr.write(`${describeProblem(res.json)}\n`);
        process.exitCode = 1;
        return;
      }
      const m = res.json as { sequence: number; id: string; source: string; subject: string; type: string; receivedAt: string; size: number; sha256: string; deliveries: Array<Record<string, unknown>> };
      process.stdout.write(`message ${m.sequence}  ${m.source}/${m.id}\n  type ${m.type}  subject ${m.subject}\n  received ${m.receivedAt}  ${m.size} bytes  sha256 ${m.sha256}\n`);
      for (const d of m.deliveries) {
        process.stdout.write(`  -> ${d.receiver} (${d.mode}): ${d.state}, ${d.attempts} attempt(s)${d.lastError ? `, last error: ${d.lastError}` : ''}${d.nextAttemptAt ? `, next at ${d.nextAttemptAt}` : ''}\n`);
      }
      if (opts.attempts) {
        const a = await call(client, 'GET', `/v1/messages/${encodeURIComponent(sequence)}/attempts`);
        for (const at of (a.json as { attempts: Array<Record<string, unknown>> }).attempts) {
          process.stdout.write(`  ${at.at} ${at.receiver} ${at.outcome}${at.status ? ` HTTP ${at.status}` : ''}${at.latencyMs !== null ? ` ${at.latencyMs} ms` : ''}${at.error ? ` ${at.error}` : ''}\n`);
        }
      }
    });
}
