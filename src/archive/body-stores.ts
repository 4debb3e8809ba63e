import { join } from 'node:path';
import type { HubConfig } from '../config/hub-config.ts';
import type { BodyStore } from './body-store.ts';
import { FileBodies } from './file-bodies.ts';
import { PostgresBodies } from './postgres-bodies.ts';
import { S3Bodies } from './s3-bodies.ts';

/** The body store that `storage.bodies` names, not yet initialised (call init()). */
export function createBodyStore(storage: HubConfig['storage']): BodyStore {
  const b = storage.bodies;
  switch (b.kind) {
    case 'files':
      return new FileBodies(join(storage.dataDir, 'bodies'));
    case 's3':
      if (!b.s3.bucket) throw new Error('storage.bodies.s3.bucket (METERHUB_S3_BUCKET) is required with storage.bodies.kind s3');
      return new S3Bodies({ ...b.s3, bucket: b.s3.bucket });
    case 'postgres': {
      const url = b.postgres.url ?? storage.databaseUrl;
      if (!url) throw new Error('storage.bodies.kind postgres needs storage.bodies.postgres.url (METERHUB_BODIES_DATABASE_URL) or storage.databaseUrl (METERHUB_DATABASE_URL)');
      return new PostgresBodies({ ...b.postgres, url });
    }
  }
}
