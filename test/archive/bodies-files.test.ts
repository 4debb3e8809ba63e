import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { FileBodies } from '../../src/archive/file-bodies.ts';
import { MIB, runBodyStoreConformance } from './bodies-conformance.ts';

/** Every file under `dir` (tmp/ included), as paths relative to it. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

runBodyStoreConformance('FileBodies', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meterhub-bodies-'));
  const store = new FileBodies(join(dir, 'bodies'));
  await store.init();
  return {
    store,
    holdings: async () => filesUnder(join(dir, 'bodies')),
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}, { unitBytes: 64 * 1024, maxGrowthBytes: 8 * MIB });
