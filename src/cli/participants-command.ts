import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { call, clientOptions, describeProblem } from './client.ts';

interface Opts { url?: string; key?: string }

function must(res: { status: number; json: unknown }, ok: number[]): any {
  if (!ok.includes(res.status)) throw new Error(describeProblem(res.json));
  return res.json;
}

const connection = (c: Command) => c.option('--url <url>', 'hub URL (or METERHUB_URL)').option('--key <key>', 'admin API key (or METERHUB_KEY)');

/** `meterhub participants ...` and `meterhub keys ...` (admin key). */
export function registerParticipants(program: Command): void {
  const participants = program.command('participants').description('participants and their receiver settings (admin key)');

  connection(participants.command('list').description('list participants'))
    .action(async (opts: Opts) => {
      const list = must(await call(clientOptions(opts), 'GET', '/v1/admin/participants'), [200]).participants as Array<Record<string, any>>;
      for (const p of list) process.stdout.write(`${p.id}\t${p.name}\t${p.receiver ? `${p.receiver.mode}${p.receiver.url ? ` ${p.receiver.url}` : ''}` : 'sender only'}\n`);
    });

  connection(participants.command('show').description("show a participant").argument('<id>'))
    .action(async (id: string, opts: Opts) => {
      process.stdout.write(`${JSON.stringify(must(await call(clientOptions(opts), 'GET', `/v1/admin/participants/${encodeURIComponent(id)}`), [200]), null, 2)}\n`);
    });

  connection(participants.command('put')
    .description('create or replace a participant: --name, and --push URL or --pull, or --file with the JSON/YAML body')
    .argument('<id>')
    .option('--name <name>', 'display name')
    .option('--push <url>', 'push receiver at this URL')
    .option('--pull', 'pull receiver (polls its inbox)')
    .option('--ordering <mode>', 'none or subject')
    .option('--file <file>', 'the whole body as JSON or YAML (same shape as PUT /v1/admin/participants/{id})'))
    .action(async (id: string, opts: Opts & { name?: string; push?: string; pull?: boolean; ordering?: string; file?: string }) => {
      let body: Record<string, unknown>;
      if (opts.file) body = parseYaml(readFileSync(opts.file, 'utf8')) as Record<string, unknown>;
      else {
        if (!opts.name) throw new Error('give --name (or --file)');
        const receiver = opts.push ? { mode: 'push', url: opts.push } : opts.pull ? { mode: 'pull' } : null;
        if (receiver && opts.ordering) (receiver as Record<string, unknown>).ordering = opts.ordering;
        body = { name: opts.name, ...(receiver ? { receiver } : {}) };
      }
      const res = await call(clientOptions(opts), 'PUT', `/v1/admin/participants/${encodeURIComponent(id)}`, { contentType: 'application/json', data: JSON.stringify(body) });
      const out = must(res, [200, 201]);
      process.stdout.write(`${res.status === 201 ? 'created' : 'replaced'} ${id}\n`);
      if (out.secret) process.stdout.write(`signing secret (give it to the receiver; shown once): ${out.secret}\n`);
    });

  connection(participants.command('delete').description('delete a participant (its keys are revoked; accepted deliveries are kept)').argument('<id>'))
    .action(async (id: string, opts: Opts) => {
      must(await call(clientOptions(opts), 'DELETE', `/v1/admin/participants/${encodeURIComponent(id)}`), [204]);
      process.stdout.write(`deleted ${id}\n`);
    });

  const keys = program.command('keys').description("participants' API keys (admin key)");

  connection(keys.command('create').description('make a new API key for a participant (shown once)').argument('<participant>'))
    .action(async (participant: string, opts: Opts) => {
      const k = must(await call(clientOptions(opts), 'POST', `/v1/admin/participants/${encodeURIComponent(participant)}/keys`), [201]);
      process.stdout.write(`key ${k.id} for ${participant} (shown once; store it now):\n${k.key}\n`);
    });

  connection(keys.command('list').description("list a participant's keys (ids only)").argument('<participant>'))
    .action(async (participant: string, opts: Opts) => {
      const list = must(await call(clientOptions(opts), 'GET', `/v1/admin/participants/${encodeURIComponent(participant)}/keys`), [200]).keys as Array<Record<string, string | null>>;
      for (const k of list) process.stdout.write(`${k.id}\tcreated ${k.createdAt}${k.revokedAt ? `\trevoked ${k.revokedAt}` : ''}\n`);
    });

  connection(keys.command('revoke').description('revoke a key at once').argument('<participant>').argument('<keyId>'))
    .action(async (participant: string, keyId: string, opts: Opts) => {
      must(await call(clientOptions(opts), 'DELETE', `/v1/admin/participants/${encodeURIComponent(participant)}/keys/${encodeURIComponent(keyId)}`), [204]);
      process.stdout.write(`revoked ${keyId}\n`);
    });
}
