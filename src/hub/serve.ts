import type { FastifyInstance } from 'fastify';
import { buildApp } from '../app.ts';
import type { HubConfig } from '../config/hub-config.ts';
import { createHub, type Hub } from './hub.ts';

/** Starts the hub and listens; stops cleanly on SIGTERM/SIGINT. */
export async function serve(config: HubConfig, print: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<{ hub: Hub; app: FastifyInstance; close: () => Promise<void> }> {
  const hub = await createHub(config);
  const app = await buildApp(hub);
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
  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= (async () => {
      await app.close();
      await hub.stop();
    })();
    return closing;
  };
  return { hub, app, close };
}
