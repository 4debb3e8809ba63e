import type { Command } from 'commander';
import { call, clientOptions, describeProblem, type ClientOptions } from './client.ts';

interface CommonOptions { url?: string; key?: string; receiver?: string; from?: string; to?: string }

const PAGE = 1000;
const IDS_PER_CALL = 10_000;

/** `meterhub dlq list` and `meterhub dlq redrive`. */
export function registerDlq(program: Command): void {
  const dlq = program.command('dlq').description('the dead-letter queue: list and redrive dead deliveries (admin key)');

  dlq.command('list')
    .description('list dead deliveries, oldest dead first')
    .option('--url <url>', 'hub URL (or METERHUB_URL)')
    .option('--key <key>', 'admin API key (or METERHUB_KEY)')
    .option('--receiver <participant>', 'only this receiver')
    .option('--from <iso>', 'dead at or after this time')
    .option('--to <iso>', 'dead before this time')
    .option('--json', 'one JSON object per line')
    .action(async (opts: CommonOptions & { json?: boolean }) => {
      const client = clientOptions(opts);
      let after: string | null = null;
      let count = 0;
      for (;;) {
        const query = params({ receiver: opts.receiver, from: opts.from, to: opts.to, limit: String(PAGE), after: after ?? undefined });
        const res = await call(client, 'GET', `/v1/admin/dlq?${query}`);
        if (res.status !== 200) throw new Error(describeProblem(res.json));
        const page = res.json as { deliveries: Array<Record<string, any>>; next: string | null };
        for (const d of page.deliveries) process.stdout.write(`${opts.json ? JSON.stringify(d) : line(d)}\n`);
        count += page.deliveries.length;
        if (page.deliveries.length < PAGE) break;
        after = page.next;
        process.stderr.write(`\rlisted ${count}…`);
      }
      if (count >= PAGE) process.stderr.write('\n');
      if (!opts.json) process.stderr.write(`${count} dead ${count === 1 ? 'delivery' : 'deliveries'}\n`);
    });

  dlq.command('redrive')
    .description('put dead deliveries back to pending with a fresh retry budget: by receiver (and time), all, or by delivery id')
    .argument('[ids...]', 'delivery ids (from dlq list)')
    .option('--url <url>', 'hub URL (or METERHUB_URL)')
    .option('--key <key>', 'admin API key (or METERHUB_KEY)')
    .option('--receiver <participant>', "every dead delivery of this receiver")
    .option('--from <iso>', 'only those dead at or after this time')
    .option('--to <iso>', 'only those dead before this time')
    .option('--all', 'every dead delivery')
    .action(async (ids: string[], opts: CommonOptions & { all?: boolean }) => {
      const client = clientOptions(opts);
      const filtered = opts.receiver !== undefined || opts.from !== undefined || opts.to !== undefined;
      if (ids.length > 0 ? filtered || opts.all : !filtered && !opts.all) {
        throw new Error('give delivery ids, or --receiver (and/or --from, --to), or --all');
      }
      const n = ids.length > 0 ? await redriveIds(client, ids) : await redrive(client, {
        ...(opts.receiver ? { receiver: opts.receiver } : {}), ...(opts.from ? { from: opts.from } : {}), ...(opts.to ? { to: opts.to } : {}),
        ...(opts.all ? { all: true } : {}),
      });
      process.stdout.write(`redriven ${n}\n`);
    });
}

async function redrive(client: ClientOptions, body: Record<string, unknown>): Promise<number> {
  process.stderr.write('redriving…\n');
  const res = await call(client, 'POST', '/v1/admin/dlq/redrive', { contentType: 'application/json', data: JSON.stringify(body) });
  if (res.status !== 200) throw new Error(describeProblem(res.json));
  return (res.json as { redriven: number }).redriven;
}

async function redriveIds(client: ClientOptions, raw: string[]): Promise<number> {
  const ids = raw.map((s) => {
    if (!/^[1-9][0-9]{0,15}$/.test(s)) throw new Error(`not a delivery id: '${s}'`);
    return Number(s);
  });
  let total = 0;
  for (let i = 0; i < ids.length; i += IDS_PER_CALL) {
    total += await redrive(client, { deliveries: ids.slice(i, i + IDS_PER_CALL) });
    if (ids.length > IDS_PER_CALL) process.stderr.write(`\r${Math.min(i + IDS_PER_CALL, ids.length)}/${ids.length} ids sent`);
  }
  if (ids.length > IDS_PER_CALL) process.stderr.write('\n');
  return total;
}

function line(d: Record<string, any>): string {
  const status = d.lastStatus ? ` HTTP ${d.lastStatus}` : '';
  return `${d.deadAt}  delivery ${d.delivery}  #${d.sequence}  ${d.receiver} (${d.mode})  ${d.subject}  ${d.type}  ${d.attempts} attempt(s)${status}${d.lastError ? `  ${d.lastError}` : ''}`;
}

function params(values: Record<string, string | undefined>): string {
  return new URLSearchParams(Object.entries(values).filter((e): e is [string, string] => e[1] !== undefined)).toString();
}
