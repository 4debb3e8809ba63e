import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import type { Command } from 'commander';
import { splitNem12 } from '../nem12/split.ts';
import { call, clientOptions, describeProblem } from './client.ts';

interface SendOptions {
  url?: string; key?: string; source?: string; nem12?: boolean; type?: string; subject?: string; id?: string;
  contentType?: string; time?: string; batchSize: string; quiet?: boolean;
}

export function registerSend(program: Command): void {
  program.command('send')
    .description('send one message from a file (or - for stdin), or a NEM12 file split into one message per NMI, register and day')
    .argument('<file>', 'file to send, - for stdin')
    .option('--url <url>', 'hub URL (or METERHUB_URL)', undefined)
    .option('--key <key>', 'sender API key (or METERHUB_KEY)')
    .option('--source <participant>', 'sending participant ID (or METERHUB_SOURCE)')
    .option('--nem12', 'split the NEM12 file into one JSON message per NMI, register and day')
    .option('--type <type>', 'event type (single message)')
    .option('--subject <meter>', 'meter ID (single message)')
    .option('--id <id>', 'event id (single message; default: derived from the content)')
    .option('--time <iso>', 'when the reading applies (single message)')
    .option('--content-type <type>', 'content type of the file (single message)', 'application/json')
    .option('--batch-size <n>', 'events per request when splitting', '500')
    .option('-q, --quiet', 'print only the summary')
    .action(async (file: string, opts: SendOptions) => {
      const client = clientOptions(opts);
      const source = opts.source ?? process.env.METERHUB_SOURCE;
      if (!source) throw new Error('give the sending participant with --source or METERHUB_SOURCE');
      const data = readFileSync(file === '-' ? 0 : file);
      if (opts.nem12) {
        process.exitCode = await sendNem12(client, source, data.toString('utf8'), Math.max(1, Number(opts.batchSize) || 500), !!opts.quiet);
        return;
      }
      if (!opts.type || !opts.subject) throw new Error('a single message needs --type and --subject');
      const id = opts.id ?? `sha256-${createHash('sha256').update(data).digest('hex').slice(0, 32)}`;
      const headers: Record<string, string> = { 'ce-specversion': '1.0', 'ce-id': id, 'ce-source': source, 'ce-type': opts.type, 'ce-subject': opts.subject };
      if (opts.time) headers['ce-time'] = opts.time;
      const res = await call(client, 'POST', '/v1/messages', { contentType: opts.contentType!, data }, headers);
      if (res.status === 202 || res.status === 200) {
        process.stdout.write(`${res.status === 202 ? 'accepted' : 'already accepted'}: ${JSON.stringify(res.json)}\n`);
      } else {
        process.stderr.write(`refused: ${describeProblem(res.json)}\n`);
        process.exitCode = 1;
      }
    });
}

async function sendNem12(client: ReturnType<typeof clientOptions>, source: string, text: string, batchSize: number, quiet: boolean): Promise<number> {
  const messages = splitNem12(text);
  const counts = { accepted: 0, duplicate: 0, refused: 0 };
  for (let i = 0; i < messages.length; i += batchSize) {
    const batch = messages.slice(i, i + batchSize).map((m) => ({ specversion: '1.0', id: m.id, source, type: m.type, subject: m.subject, time: m.time, datacontenttype: 'application/json', data: m.data }));
    const res = await call(client, 'POST', '/v1/messages', { contentType: 'application/cloudevents-batch+json', data: JSON.stringify(batch) });
    if (res.status !== 200) throw new Error(`the hub refused the batch: ${describeProblem(res.json)}`);
    const results = (res.json as { results: Array<{ status: number; sequence?: number; id?: string; problem?: { detail: string } }> }).results;
    results.forEach((r, j) => {
      const m = batch[j]!;
      if (r.status === 202) counts.accepted++;
      else if (r.status === 200) counts.duplicate++;
      else counts.refused++;
      if (!quiet || r.status >= 300) {
        const what = r.status === 202 ? `accepted as ${r.sequence}` : r.status === 200 ? `already accepted as ${r.sequence}` : `refused: ${r.problem?.detail}`;
        process.stdout.write(`${m.subject} ${(m.data as { suffix: string }).suffix} ${(m.data as { date: string }).date}: ${what}\n`);
      }
    });
    process.stderr.write(`\rsent ${Math.min(i + batchSize, messages.length)}/${messages.length}`);
  }
  process.stderr.write('\n');
  process.stdout.write(`${messages.length} messages: ${counts.accepted} accepted, ${counts.duplicate} already accepted, ${counts.refused} refused\n`);
  return counts.refused > 0 ? 1 : 0;
}
