import { open } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { AdminService } from '../admin/admin-service.ts';
import type { HubConfig } from '../config/hub-config.ts';
import type { Store } from '../store/store.ts';

/**
 * Applies the config file at start: participants (and their pre-shared keys), routes, meter
 * files; and settles where the first admin key comes from. Participants made through the API
 * and not named in the file are left as they are.
 */
export async function applyConfigFile(config: HubConfig, deps: { store: Store; admin: AdminService; logger: Logger }): Promise<{ source: 'environment' | 'config' | 'generated' | 'stored'; generated: string | null }> {
  const { admin, store, logger } = deps;
  for (const [id, p] of Object.entries(config.participants)) {
    const { keys, ...body } = p;
    await admin.putParticipant(id, body);
    for (const key of keys ?? []) await admin.ensureConfigKey(id, key);
  }
  if (config.routes) await admin.setRoutes(config.routes);
  for (const file of config.meters) {
    // Opened first: a stream of a missing file would emit its error while nobody listens yet.
    const handle = await open(file, 'r').catch((e: NodeJS.ErrnoException) => {
      throw new Error(`the registry file '${file}' (config meters) cannot be read: ${e.code ?? e.message}`);
    });
    let n: number;
    try {
      n = await admin.importMeters(handle.createReadStream());
    } finally {
      await handle.close().catch(() => {});
    }
    logger.info({ file, imported: n }, 'meter registry imported');
  }
  if (config.adminKey) return { source: process.env.METERHUB_ADMIN_KEY ? 'environment' : 'config', generated: null };
  if ((await store.countAdminKeys()) > 0) return { source: 'stored', generated: null };
  const { key } = await admin.createAdminKey();
  return { source: 'generated', generated: key };
}
