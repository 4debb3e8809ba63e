/**
 * The FLOOR of the large-payload benchmark: the least any streaming store-and-forward design can
 * cost in memory and time on this machine. A bare node:http server: POST /v1/messages?id=ID
 * streams the request body to a file (fsync'd before the answer), answers 202, then streams the
 * file to FLOOR_FORWARD_URL as a POST with `ce-id: ID` and the request's Content-Type. No auth,
 * no parsing, no hashing, no database.
 *
 * Env: FLOOR_DIR (folder for the files), FLOOR_FORWARD_URL. Prints `floor listening on <url>`.
 */
import { createReadStream, createWriteStream, mkdirSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { request } from 'undici';

const dir = process.env.FLOOR_DIR;
const forwardUrl = process.env.FLOOR_FORWARD_URL;
if (!dir || !forwardUrl) throw new Error('set FLOOR_DIR and FLOOR_FORWARD_URL');
mkdirSync(dir, { recursive: true });
let n = 0;

async function forward(file: string, id: string, contentType: string): Promise<void> {
  const res = await request(forwardUrl!, {
    method: 'POST',
    headers: { 'ce-id': id, 'content-type': contentType, 'content-length': String(statSync(file).size) },
    body: createReadStream(file),
  });
  await res.body.dump();
  if (res.statusCode >= 300) process.stderr.write(`floor: the receiver answered ${res.statusCode} for ${id}\n`);
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  const id = url.searchParams.get('id');
  if (req.method !== 'POST' || url.pathname !== '/v1/messages' || !id) {
    res.statusCode = 404;
    res.end();
    return;
  }
  const file = join(dir, `body-${n++}`);
  const contentType = String(req.headers['content-type'] ?? 'application/octet-stream');
  // flush: the file is fsync'd before the stream finishes, as a durable 202 needs.
  pipeline(req, createWriteStream(file, { flush: true })).then(() => {
    res.statusCode = 202;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ id }));
    return forward(file, id, contentType);
  }).catch((err: Error) => {
    process.stderr.write(`floor: ${err.stack ?? err}\n`);
    if (!res.headersSent) { res.statusCode = 500; res.end(); }
  });
});
server.requestTimeout = 0;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`floor listening on http://127.0.0.1:${port}\n`);
});
const stop = () => { server.closeAllConnections(); server.close(() => process.exit(0)); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
