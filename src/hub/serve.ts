import type { FastifyInstance } from 'fastify';
import { buildApp } from '../app.ts';
import type { HubConfig } from '../config/hub-config.ts';
import { createHub, type Hub } from './hub.ts';
import { RequestGate, shutdownGracefully, type ShutdownReport } from './shutdown.ts';

export interface Served {
  hub: Hub;
  app: FastifyInstance;
  /**
   * Graceful shutdown (src/hub/shutdown.ts): 503 to new requests and /readyz at once, in-flight
   * requests and pushes get `server.shutdownGraceMs`, then the rest is cut and released. Idempotent.
   */
  close: () => Promise<ShutdownReport>;
}

/** Starts the hub and listens. The entry point (src/cli/serve-command.ts) wires the signals to close(). */
export async function serve(config: HubConfig, print: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<Served> {
  const hub = await createHub(config);
  const app = await buildApp(hub);
  const gate = new RequestGate();
  gate.install(app.server);
  const address = await app.listen({ host: config.server.host, port: config.server.port });
  hub.start();
  print(`meterhub listening on ${address} (data in ${config.storage.dataDir})`);
  switch (hub.adminKeySource) {
    case 'generated':
      print(`admin key (made at first start, shown this once; store it now): ${hub.generatedAdminKey}`);
      break;
    case 'environment': print('admin key: from METERHUB_ADMIN_KEY'); break;
    case 'config': print('admin key: from the config file (adminKey)'); break;
    case 'stored': print('admin key: the one made at first start (stored hashed); set METERHUB_ADMIN_KEY to use another'); break;
  }
  let closing: Promise<ShutdownReport> | null = null;
  const close = () => {
    closing ??= shutdownGracefully({ hub, app, gate, graceMs: config.server.shutdownGraceMs });
    return closing;
  };
  return { hub, app, close };
}
