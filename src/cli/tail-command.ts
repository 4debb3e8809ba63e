import type { Command } from 'commander';
import { call, clientOptions, describeProblem, type ClientOptions } from './client.ts';

interface TailOptions { url?: string; key?: string; receiver?: string; subject?: string; interval: string }

interface MessageView {
  sequence: number; source: string; type: string; subject: string; receivedAt: string;
  deliveries: Array<{ receiver: string; state: string; resend: boolean; delivery: number; lastError: string | null }>;
}

/** Messages whose deliveries are still moving; each checked again every interval, the oldest dropped past this. */
const MAX_WATCHED = 500;
const FINAL = new Set(['delivered', 'dead']);

/**
 * `meterhub tail`: follows the archive. Every interval it asks the search for what came after
 * its cursor and prints each new message with its delivery states, then prints the deliveries
 * of messages already shown as their states change. Ctrl-C stops it.
 */
export function registerTail(program: Command): void {
  program.command('tail')
    .description('follow new messages and their delivery states as they change (Ctrl-C to stop)')
    .option('--url <url>', 'hub URL (or METERHUB_URL)')
    .option('--key <key>', 'API key (or METERHUB_KEY): a participant sees its own messages, an admin all')
    .option('--receiver <participant>', 'only messages routed to this receiver')
    .option('--subject <meter>', 'only this meter')
    .option('--interval <ms>', 'how often to look', '1000')
    .action(async (opts: TailOptions) => {
      const client = clientOptions(opts);
      const interval = Math.max(100, Number(opts.interval) || 1000);
      let stopped = false;
      let wake: (() => void) | null = null;
      process.on('SIGINT', () => { stopped = true; wake?.(); });
      process.on('SIGTERM', () => { stopped = true; wake?.(); });
      const sleep = () => new Promise<void>((r) => { const t = setTimeout(r, interval); wake = () => { clearTimeout(t); r(); }; });
      const filter = { receiver: opts.receiver, subject: opts.subject };
      const watched = new Map<number, string>();
      let cursor: string | null | undefined;
      process.stderr.write('following; Ctrl-C to stop\n');
      while (!stopped) {
        try {
          // Start at the newest message there is now: only what comes later is shown.
          if (cursor === undefined) cursor = (await search(client, params({ ...filter, order: 'desc', limit: '1' }))).next;
          cursor = await printNew(client, filter, cursor, watched);
          await printChanges(client, watched);
        } catch (err) {
          process.stderr.write(`tail: ${(err as Error).message}; trying again\n`);
        }
        if (!stopped) await sleep();
      }
      process.stderr.write('stopped\n');
    });
}

async function search(client: ClientOptions, query: string): Promise<{ messages: MessageView[]; next: string | null }> {
  const res = await call(client, 'GET', `/v1/messages?${query}`);
  if (res.status !== 200) throw new Error(describeProblem(res.json));
  return res.json as { messages: MessageView[]; next: string | null };
}

async function printNew(client: ClientOptions, filter: Record<string, string | undefined>, cursor: string | null, watched: Map<number, string>): Promise<string | null> {
  for (;;) {
    const page = await search(client, params({ ...filter, order: 'asc', limit: '500', ...(cursor ? { after: cursor } : {}) }));
    for (const m of page.messages) {
      process.stdout.write(`${m.receivedAt}  #${m.sequence}  ${m.source} ${m.type} ${m.subject}  ${states(m)}\n`);
      watch(watched, m);
    }
    if (page.next) cursor = page.next;
    if (page.messages.length < 500) return cursor;
  }
}

async function printChanges(client: ClientOptions, watched: Map<number, string>): Promise<void> {
  for (const [sequence, before] of [...watched]) {
    const res = await call(client, 'GET', `/v1/messages/${sequence}`);
    if (res.status !== 200) { watched.delete(sequence); continue; }
    const m = res.json as MessageView;
    const now = states(m);
    if (now !== before) process.stdout.write(`${new Date().toISOString()}  #${sequence}  ${now}\n`);
    watch(watched, m);
  }
}

function watch(watched: Map<number, string>, m: MessageView): void {
  watched.delete(m.sequence);
  if (m.deliveries.every((d) => FINAL.has(d.state))) return;
  watched.set(m.sequence, states(m));
  if (watched.size > MAX_WATCHED) watched.delete(watched.keys().next().value!);
}

function params(values: Record<string, string | undefined>): string {
  return new URLSearchParams(Object.entries(values).filter((e): e is [string, string] => e[1] !== undefined)).toString();
}

function states(m: MessageView): string {
  return m.deliveries.map((d) => `${d.receiver}${d.resend ? ' (resend)' : ''}: ${d.state}${d.state === 'dead' && d.lastError ? ` (${d.lastError})` : ''}`).join(', ') || '(no deliveries)';
}
