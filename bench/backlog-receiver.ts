/**
 * The push receiver of the backlog benchmark, in its own process: node:http, answers 204 to
 * every POST. Unlike bench/push-receiver.ts it keeps no list of arrivals (a million of them):
 * the benchmark's ids are one prefix and a counter (bench/lib/event.ts idMaker), so it counts
 * the arrivals of each counter in a byte array, which gives unique ids and duplicates exactly,
 * and arrivals per second of the monotonic clock (shared with the benchmark's process).
 *   GET /_stats              {"count", "unique", "duplicates", "foreign", "firstUs", "lastUs", "perSecond": [[second, n], ...]}
 *   GET /_missing?below=N    {"missing": n, "examples": [counter, ...]}: counters < N never seen
 * Env: RECEIVER_PORT (the benchmark picks it: the hub is told the URL before this starts),
 * RECEIVER_ID_PREFIX (the ids' prefix), RECEIVER_CAPACITY (highest counter + 1).
 * Prints `receiver listening on <url>` when ready.
 */
import { createServer } from 'node:http';
import { serveReceiver } from './lib/receiver-process.ts';

const prefix = process.env.RECEIVER_ID_PREFIX ?? '';
const seen = new Uint8Array(Number(process.env.RECEIVER_CAPACITY ?? 4_000_000));
const perSecond = new Map<number, number>();
let count = 0;
let unique = 0;
let duplicates = 0;
/** Ids without the prefix, or with a counter beyond the capacity. */
let foreign = 0;
let firstUs = 0;
let lastUs = 0;

function arrived(id: string): void {
  const us = Number(process.hrtime.bigint() / 1000n);
  count++;
  if (firstUs === 0) firstUs = us;
  lastUs = us;
  const second = Math.floor(us / 1e6);
  perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
  const n = id.startsWith(prefix) ? Number(id.slice(prefix.length)) : NaN;
  if (!Number.isInteger(n) || n < 0 || n >= seen.length) { foreign++; return; }
  if (seen[n] === 0) unique++; else duplicates++;
  if (seen[n]! < 255) seen[n]!++;
}

const server = createServer((req, res) => {
  if (req.method === 'GET') {
    const url = new URL(req.url ?? '/', 'http://x');
    res.setHeader('content-type', 'application/json');
    if (url.pathname === '/_stats') {
      res.end(JSON.stringify({ count, unique, duplicates, foreign, firstUs, lastUs, perSecond: [...perSecond] }));
    } else if (url.pathname === '/_missing') {
      const below = Math.min(seen.length, Number(url.searchParams.get('below') ?? 0));
      let missing = 0;
      const examples: number[] = [];
      for (let i = 0; i < below; i++) {
        if (seen[i] !== 0) continue;
        missing++;
        if (examples.length < 20) examples.push(i);
      }
      res.end(JSON.stringify({ missing, examples }));
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
    return;
  }
  req.on('data', () => { /* the body is not kept */ });
  req.on('end', () => {
    arrived(String(req.headers['ce-id'] ?? ''));
    res.statusCode = 204;
    res.end();
  });
});
serveReceiver(server, Number(process.env.RECEIVER_PORT ?? 0));
