// Entry of the store's worker thread. tsx's hooks, whether from `node --import tsx` or registered
// in-process (bin/meterhub.js), do not reach a worker on Node 20: register them for this thread.
import { register } from 'tsx/esm/api';

register();
await import('./store-worker.ts');
