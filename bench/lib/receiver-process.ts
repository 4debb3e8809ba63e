import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Runs a bench receiver process's server: listens on loopback (`port`, 0 for any), prints
 * `receiver listening on <url>` once ready (what bench/lib/children.ts waits for), and exits 0 on
 * SIGTERM or SIGINT after closing every connection.
 */
export function serveReceiver(server: Server, port: number): void {
  server.keepAliveTimeout = 60_000;
  server.listen(port, '127.0.0.1', () => {
    const { port: bound } = server.address() as AddressInfo;
    process.stdout.write(`receiver listening on http://127.0.0.1:${bound}\n`);
  });
  const stop = () => { server.closeAllConnections(); server.close(() => process.exit(0)); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
