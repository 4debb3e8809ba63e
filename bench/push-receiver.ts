/**
 * A bare push receiver for the e2e benchmark, in its own process: node:http, answers 204 to
 * every POST and records when each ce-id arrived (monotonic clock, shared with the load
 * generator's process). Control endpoints, GET only:
 *   GET /_arrivals[?path=]        {"count": n, "arrivals": [[ce-id, microseconds], ...]}
 *   GET /_count[?prefix=][&path=] {"count": n} (of the ids starting with prefix)
 *   GET /_reset                   forgets every arrival
 * `path` keeps only the POSTs to that path (several receivers of a fan-out on one process).
 * Prints `receiver listening on <url>` when ready. Env RECEIVER_PORT (0 = any).
 */
import { createServer } from 'node:http';
import { serveReceiver } from './lib/receiver-process.ts';

let ids: string[] = [];
let times: number[] = [];
let paths: string[] = [];

const server = createServer((req, res) => {
  if (req.method === 'GET') {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.searchParams.get('path');
    if (url.pathname === '/_arrivals') {
      const arrivals: Array<[string, number]> = [];
      ids.forEach((id, i) => { if (!path || paths[i] === path) arrivals.push([id, times[i]!]); });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ count: arrivals.length, arrivals }));
    } else if (url.pathname === '/_count') {
      const prefix = url.searchParams.get('prefix');
      let n = ids.length;
      if (prefix || path) {
        n = 0;
        ids.forEach((id, i) => { if ((!prefix || id.startsWith(prefix)) && (!path || paths[i] === path)) n++; });
      }
      res.setHeader('content-type', 'application/json');
      res.end(`{"count":${n}}`);
    } else if (url.pathname === '/_reset') {
      ids = [];
      times = [];
      paths = [];
      res.end('{}');
    } else {
      res.statusCode = 404;
      res.end();
    }
    return;
  }
  req.on('data', () => { /* the body is not kept */ });
  req.on('end', () => {
    ids.push(String(req.headers['ce-id'] ?? ''));
    times.push(Number(process.hrtime.bigint() / 1000n));
    paths.push((req.url ?? '').split('?')[0]!);
    res.statusCode = 204;
    res.end();
  });
});
serveReceiver(server, Number(process.env.RECEIVER_PORT ?? 0));
