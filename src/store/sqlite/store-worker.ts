/**
 * The writing half of ThreadedSqliteStore, in a worker thread: the SqliteStore that owns the
 * file (migrations, the write queue, every commit and its fsync), so that neither the SQLite
 * work of a write nor its fsync runs on the hub's event loop. Calls arrive in batches (one
 * postMessage per turn of the main thread); their answers go back in batches too, one per group
 * commit, as soon as it is done.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isStorageFault } from '../storage-error.ts';
import type { DeliveryRecord, NewMessage } from '../types.ts';
import { SqliteStore } from './sqlite-store.ts';
import type { WireCall, WireError, WireIngestResult, WireReply, WorkerInit } from './store-wire.ts';

const port = parentPort!;
const { file } = workerData as WorkerInit;

function wireError(error: unknown): WireError {
  const e = error as { name?: unknown; message?: unknown; code?: unknown } | null;
  return {
    name: typeof e?.name === 'string' ? e.name : 'Error',
    message: typeof e?.message === 'string' ? e.message : String(error),
    code: typeof e?.code === 'string' ? e.code : undefined,
    fault: isStorageFault(error),
  };
}

let opened: SqliteStore | null = null;
try {
  // Half the single-thread store's cache: the reading connection on the main thread has its own.
  opened = new SqliteStore(file, { cacheMiB: 32 });
} catch (error) {
  // Said to the opener, which stops this thread; not thrown, which would be a second report.
  port.postMessage({ type: 'failed', error: wireError(error) });
}
const store = opened!;

/** Buffers arrive as plain Uint8Arrays (structured clone); SQLite binds only Buffers as blobs. */
function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

const methods: Record<string, (...args: any[]) => Promise<unknown>> = {
  async commitMessages(messages: NewMessage[]) {
    for (const m of messages) if (m.inlineBody) m.inlineBody = asBuffer(m.inlineBody);
    const results = await store.commitMessages(messages);
    // The caller has the accepted message's fields already: only what the commit added goes back.
    return results.map((r): WireIngestResult => r.kind === 'accepted' ? ['accepted', r.message.sequence, r.receivers] : r);
  },
  async leasePull(receiver: string, max: number, now: number, leaseUntil: number, maxReceives: number, ordered: boolean) {
    const dead: DeliveryRecord[] = [];
    const leased = await store.leasePull(receiver, max, now, leaseUntil, maxReceives, (d) => dead.push(d), ordered);
    return { leased, dead };
  },
  expirePullLeases: (now: number, limits: Record<string, number>) =>
    // A receiver the main thread did not know of when it asked is not exhausted: its lease goes
    // back to pending, and the next expiry judges it.
    store.expirePullLeases(now, (receiver) => limits[receiver] ?? Number.POSITIVE_INFINITY),
};
const WRITES = new Set([
  'upsertParticipant', 'deleteParticipant', 'insertKey', 'revokeKey', 'setRoutes', 'upsertMeters',
  'claimPush', 'recordPushResults', 'releasePushClaims', 'ackPull', 'nackPull', 'rescueExpiredPush',
  'releaseAllPushLeases', 'setPendingMode', 'redriveDead', 'resend', 'replayChunk',
]);

let replies: WireReply[] = [];
let flushing = false;
function reply(r: WireReply): void {
  replies.push(r);
  if (!flushing) {
    flushing = true;
    // After the reactions already queued: a group's answers, resolved together, go together.
    queueMicrotask(() => {
      flushing = false;
      const batch = replies;
      replies = [];
      port.postMessage({ type: 'replies', replies: batch });
    });
  }
}

function run(call: WireCall): void {
  const [id, method, args] = call;
  let result: Promise<unknown>;
  try {
    const fn = methods[method] ?? (WRITES.has(method) ? (store as any)[method].bind(store) : null);
    if (!fn) throw new Error(`the store worker has no method '${method}'`);
    result = fn(...args);
  } catch (error) {
    reply([id, false, wireError(error)]);
    return;
  }
  result.then((value) => reply([id, true, value]), (error) => reply([id, false, wireError(error)]));
}

// A batch that cannot be read is answered by nobody: stop, and the main thread refuses what was in flight.
port.on('messageerror', () => process.exit(1));
port.on('message', (m: { type: 'calls'; calls: WireCall[] } | { type: 'close' }) => {
  if (m.type === 'calls') {
    for (const call of m.calls) run(call);
    return;
  }
  // Commits what was issued, answers it, then says so.
  void store.close().then(() => setImmediate(() => port.postMessage({ type: 'closed' })));
});

if (opened) port.postMessage({ type: 'ready' });
