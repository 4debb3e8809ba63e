/**
 * A bare push receiver for the e2e benchmark, in its own process: node:http, answers 204 to
 * every POST and records when each ce-id arrived (monotonic clock, shared with the load
 * generator's process). Control endpoints, GET only:
 *   GET /_arrivals        {"count": n, "arrivals": [[ce-id, microseconds], ...]}
 *   GET /_count[?prefix=] {"count": n} (of the ids starting with prefix)
 *   GET /_reset           forgets every arrival
 * Prints `receiver listening on <url>` when ready. Env RECEIVER_PORT (0 = any).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

let ids: string[] = [];
let times: number[] = [];

const server = createServer((req, res) => {
  if (req.method === 'GET') {
    if (req.url === '/_arrivals') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ count: ids.length, arrivals: ids.map((id, i) => [id, times[i]]) }));
    } else if (req.url?.startsWith('/_count')) {
      const prefix = new URL(req.url, 'http://x').searchParams.get('prefix');
      let n = ids.length;
      if (prefix) {
        n = 0;
        for (const id of ids) if (id.startsWith(prefix)) n++;
      }
      res.setHeader('content-type', 'application/json');
      res.end(`{"count":${n}}`);
    } else if (req.url === '/_reset') {
      ids = [];
      times = [];
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
    res.statusCode = 204;
    res.end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.RECEIVER_PORT ?? 0), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`receiver listening on http://127.0.0.1:${port}\n`);
});
const stop = () => { server.closeAllConnections(); server.close(() => process.exit(0)); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
