import type { Command } from 'commander';
import { call, clientOptions, describeProblem } from './client.ts';

interface ReplayOptions { url?: string; key?: string; subject?: string; type?: string; source?: string; receiver?: string; from?: string; to?: string; all?: boolean }

/** `meterhub replay`: resend archived messages by filter (admin key). */
export function registerReplay(program: Command): void {
  program.command('replay')
    .description('resend archived messages to the receivers they were routed to, by filter (admin key)')
    .option('--url <url>', 'hub URL (or METERHUB_URL)')
    .option('--key <key>', 'admin API key (or METERHUB_KEY)')
    .option('--subject <meter>', 'only this meter')
    .option('--type <type>', 'only this event type')
    .option('--source <participant>', 'only messages from this sender')
    .option('--receiver <participant>', 'only messages routed to this receiver, resent to it alone')
    .option('--from <iso>', 'received at or after this time')
    .option('--to <iso>', 'received before this time')
    .option('--all', 'the whole archive (needed when no filter is given)')
    .action(async (opts: ReplayOptions) => {
      const client = clientOptions(opts);
      const body: Record<string, unknown> = {};
      for (const k of ['subject', 'type', 'source', 'receiver', 'from', 'to'] as const) if (opts[k] !== undefined) body[k] = opts[k];
      if (opts.all) body.all = true;
      if (Object.keys(body).length === 0) throw new Error('give a filter (--subject, --type, --source, --receiver, --from, --to), or --all for the whole archive');
      process.stderr.write('replaying…\n');
      const started = Date.now();
      const res = await call(client, 'POST', '/v1/admin/replay', { contentType: 'application/json', data: JSON.stringify(body) });
      if (res.status !== 202) throw new Error(describeProblem(res.json));
      const r = res.json as { messages: number; deliveries: number };
      process.stdout.write(`replayed ${r.messages} message(s) as ${r.deliveries} resend(s) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    });
}
