import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  at: number;
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export type ReceiverHandler = (req: ReceivedRequest, res: ServerResponse, n: number) => void | Promise<void>;

export interface TestReceiver {
  url: string;
  requests: ReceivedRequest[];
  /** Replace how the receiver answers (default: 204). */
  handle(handler: ReceiverHandler): void;
  close(): Promise<void>;
  server: Server;
}

/** A real HTTP server on loopback that records every request (body included) and answers per `handler`. */
export async function startReceiver(handler: ReceiverHandler = (_r, res) => { res.statusCode = 204; res.end(); }): Promise<TestReceiver> {
  let current = handler;
  const requests: ReceivedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: ReceivedRequest = { at: Date.now(), method: req.method!, path: req.url!, headers: req.headers, body: Buffer.concat(chunks) };
      requests.push(r);
      Promise.resolve(current(r, res, requests.length)).catch(() => { res.statusCode = 500; res.end(); });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    requests,
    server,
    handle(h) { current = h; },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
