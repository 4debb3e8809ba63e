/**
 * A push receiver for the large-payload benchmark, in its own process: node:http, hashes each
 * POST body as it streams in (never holding it), answers 204 and records, per ce-id, the size,
 * the SHA-256 and when the first and last bytes arrived (monotonic clock, shared with the
 * benchmark's process). Control endpoints, GET only:
 *   GET /_received?id=ID  {"size", "sha256", "firstByteUs", "endUs", "count"} or 404 if not yet arrived
 *   GET /_rss             {"rssBytes", "hwmBytes"} of this process
 * Prints `receiver listening on <url>` when ready.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { serveReceiver } from './lib/receiver-process.ts';

interface Received { size: number; sha256: string; firstByteUs: number; endUs: number; count: number }
const received = new Map<string, Received>();
const nowUs = () => Number(process.hrtime.bigint() / 1000n);

function json(res: import('node:http').ServerResponse, status: number, value: unknown): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(value));
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  if (req.method === 'GET') {
    if (url.pathname === '/_received') {
      const r = received.get(url.searchParams.get('id') ?? '');
      json(res, r ? 200 : 404, r ?? {});
    } else if (url.pathname === '/_rss') {
      const status = readFileSync('/proc/self/status', 'utf8');
      const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
      json(res, 200, { rssBytes: kb('VmRSS'), hwmBytes: kb('VmHWM') });
    } else {
      json(res, 404, {});
    }
    return;
  }
  const id = String(req.headers['ce-id'] ?? '');
  const hash = createHash('sha256');
  let size = 0;
  let firstByteUs = 0;
  req.on('data', (chunk: Buffer) => {
    if (size === 0) firstByteUs = nowUs();
    size += chunk.length;
    hash.update(chunk);
  });
  req.on('end', () => {
    const endUs = nowUs();
    const count = (received.get(id)?.count ?? 0) + 1;
    received.set(id, { size, sha256: hash.digest('hex'), firstByteUs: firstByteUs || endUs, endUs, count });
    res.statusCode = 204;
    res.end();
  });
});
server.requestTimeout = 0;
serveReceiver(server, 0);
