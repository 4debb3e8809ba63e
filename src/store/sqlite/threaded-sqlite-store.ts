import { Worker } from 'node:worker_threads';
import type { Store } from '../store.ts';
import { StorageUnavailableError } from '../storage-error.ts';
import type {
  AckResult, AttemptRecord, AttemptResult, ClaimedDelivery, DeadFilter, DeadLetter, DeliveryMode, DeliveryRecord,
  IngestResult, KeyRecord, MessageRecord, MessageSearch, MeterEntry, NewMessage, ParticipantRecord,
  RedriveSelector, RedrivenDelivery, ReplayChunk, ReplayChunkResult, RouteRule, StoredReceiver,
} from '../types.ts';
import { RecentMessages } from './recent-messages.ts';
import { importInChunks } from './registry.ts';
import { SqliteStore } from './sqlite-store.ts';
import type { WireCall, WireError, WireIngestResult, WireReply, WorkerInit } from './store-wire.ts';

const BOOT = new URL('./store-worker-boot.mjs', import.meta.url);
const EMPTY = Buffer.alloc(0);

interface Pending { resolve: (v: any) => void; reject: (e: unknown) => void }

function toError(e: WireError): Error {
  if (e.fault) {
    const err = new StorageUnavailableError(e.message);
    if (e.code) (err as Error & { code?: string }).code = e.code;
    return err;
  }
  const err = new Error(e.message) as Error & { code?: string };
  err.name = e.name;
  if (e.code) err.code = e.code;
  return err;
}

/**
 * The embedded store on two threads: writes go to a worker thread that owns the file
 * (store-worker.ts: migrations, group commit, fsync), reads run here on a second, read-only
 * connection (WAL: readers never wait for the writer, and a read after a write's promise
 * resolved sees it). So the hub's event loop never runs a commit or waits for an fsync, and the
 * SQLite work of writes runs on the other core. Same contract as SqliteStore (the same
 * conformance suite runs on both); calls issued in one turn of the event loop cross in one
 * message and are committed in one group. The messages accepted last are kept here too
 * (RecentMessages), so pushing them reads nothing from SQLite.
 */
export class ThreadedSqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private outbox: WireCall[] = [];
  private transfers: ArrayBuffer[] = [];
  private scheduled = false;
  /** Why writes are refused (closed, or the worker stopped), or null while it runs. */
  private refusal: string | null = null;
  private closing: Promise<void> | null = null;
  /** What a push of a message just accepted reads (its record and body), without SQLite. */
  private readonly recent = new RecentMessages();

  private constructor(private readonly worker: Worker, private readonly reader: SqliteStore) {
    worker.on('message', (m: { type: string; replies?: WireReply[] }) => {
      if (m.type === 'replies') for (const r of m.replies!) this.settle(r);
    });
    // On 'error' the thread's last answers may still be on their way (they arrive before 'exit'):
    // new writes are refused at once, those in flight only once it has exited.
    worker.on('error', (error) => { this.refusal ??= `the store's worker thread failed: ${error.message}`; });
    worker.on('exit', (code) => this.stopped(`the store's worker thread exited (code ${code})`));
    worker.on('messageerror', (error) => {
      this.refusal ??= `an answer of the store's worker thread could not be read: ${error.message}`;
      void worker.terminate();
    });
  }

  /** Starts the worker (which opens and migrates the file), then opens the reading connection. */
  static async open(file: string): Promise<ThreadedSqliteStore> {
    const worker = new Worker(BOOT, { workerData: { file } satisfies WorkerInit });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (m: { type: string; error?: WireError }) => {
        if (m.type === 'ready') { done(); resolve(); }
        if (m.type === 'failed') { done(); reject(toError({ ...m.error!, fault: false })); }
      };
      const onError = (e: Error) => { done(); reject(e); };
      const onExit = (code: number) => { done(); reject(new Error(`the store's worker thread exited (code ${code}) before it was ready`)); };
      const done = () => { worker.off('message', onMessage); worker.off('error', onError); worker.off('exit', onExit); };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    }).catch(async (e: unknown) => { await worker.terminate(); throw e; });
    let reader: SqliteStore;
    try {
      reader = new SqliteStore(file, { reader: true });
    } catch (e) {
      await worker.terminate();
      throw e;
    }
    return new ThreadedSqliteStore(worker, reader);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.flush();
      if (this.refusal === null) {
        this.refusal = 'the store is closed';
        await new Promise<void>((resolve) => {
          const onMessage = (m: { type: string }) => { if (m.type === 'closed') { this.worker.off('message', onMessage); resolve(); } };
          this.worker.on('message', onMessage);
          this.worker.once('exit', () => resolve());
          this.worker.postMessage({ type: 'close' });
        });
      }
      await this.worker.terminate();
      await this.reader.close();
    })();
    return this.closing;
  }

  writeRefusal(): string | null { return this.refusal; }

  private stopped(why: string): void {
    if (this.refusal === null) this.refusal = why;
    const err = new StorageUnavailableError(this.refusal);
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.outbox = [];
    this.transfers = [];
  }

  private settle([id, ok, value]: WireReply): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (ok) p.resolve(value);
    else p.reject(toError(value as WireError));
  }

  /** Queues a call for the worker; the calls of one turn go in one message. */
  private call<T>(method: string, args: unknown[], transfer?: ArrayBuffer[]): Promise<T> {
    if (this.refusal !== null) return Promise.reject(new StorageUnavailableError(this.refusal));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.outbox.push([id, method, args]);
      if (transfer) this.transfers.push(...transfer);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    if (this.outbox.length === 0) return;
    const calls = this.outbox;
    const transfer = this.transfers;
    this.outbox = [];
    this.transfers = [];
    try {
      this.worker.postMessage({ type: 'calls', calls }, transfer);
    } catch (error) {
      const err = new StorageUnavailableError(`could not pass writes to the store's worker thread: ${(error as Error).message}`);
      for (const [id] of calls) { this.pending.get(id)?.reject(err); this.pending.delete(id); }
    }
  }

  // ---- writes: in the worker ----

  async commitMessages(messages: NewMessage[]): Promise<IngestResult[]> {
    // A body is often a view into a larger buffer (a batch request, Node's buffer pool), and a
    // structured clone would copy all of that: each goes over as a copy of its own bytes, moved.
    const transfer: ArrayBuffer[] = [];
    const wire = messages.map((m) => {
      if (!m.inlineBody) return m;
      const copy = new Uint8Array(m.inlineBody.byteLength);
      copy.set(m.inlineBody);
      transfer.push(copy.buffer);
      return { ...m, inlineBody: copy };
    });
    const results = await this.call<WireIngestResult[]>('commitMessages', [wire], transfer);
    return results.map((r, i): IngestResult => {
      if (!Array.isArray(r)) return r;
      const m = messages[i]!;
      const message: MessageRecord = {
        sequence: r[1], source: m.source, id: m.id, type: m.type, subject: m.subject, time: m.time, attributes: m.attributes,
        contentType: m.contentType, size: m.size, sha256: m.sha256, fingerprint: m.fingerprint, receivedAt: m.receivedAt, body: m.body,
      };
      if (m.body.kind === 'inline') this.recent.add(message, m.inlineBody ?? EMPTY);
      return { kind: 'accepted', message, receivers: r[2] };
    });
  }
  upsertParticipant(id: string, name: string, receiver: StoredReceiver | null, now: number): Promise<{ created: boolean; record: ParticipantRecord }> {
    return this.call('upsertParticipant', [id, name, receiver, now]);
  }
  deleteParticipant(id: string, now: number): Promise<boolean> { return this.call('deleteParticipant', [id, now]); }
  insertKey(key: KeyRecord): Promise<void> { return this.call('insertKey', [key]); }
  revokeKey(participant: string | null, keyId: string, now: number): Promise<boolean> { return this.call('revokeKey', [participant, keyId, now]); }
  setRoutes(rules: RouteRule[], now: number): Promise<number> { return this.call('setRoutes', [rules, now]); }
  upsertMeters(entries: MeterEntry[]): Promise<number> { return this.call('upsertMeters', [entries]); }
  importMeters(chunks: AsyncIterable<MeterEntry[]>, onChunk?: (applied: number) => void): Promise<number> {
    return importInChunks((chunk) => this.upsertMeters(chunk), chunks, onChunk);
  }
  claimPush(receiver: string, limit: number, now: number, leaseUntil: number, token: string, ordered = false): Promise<ClaimedDelivery[]> {
    return this.call('claimPush', [receiver, limit, now, leaseUntil, token, ordered]);
  }
  recordPushResults(results: Array<{ delivery: ClaimedDelivery; result: AttemptResult }>): Promise<boolean[]> {
    return this.call('recordPushResults', [results]);
  }
  releasePushClaims(claims: ClaimedDelivery[]): Promise<number> { return this.call('releasePushClaims', [claims]); }
  async leasePull(receiver: string, max: number, now: number, leaseUntil: number, maxReceives: number, onDead?: (d: DeliveryRecord) => void, ordered = false): Promise<ClaimedDelivery[]> {
    const { leased, dead } = await this.call<{ leased: ClaimedDelivery[]; dead: DeliveryRecord[] }>('leasePull', [receiver, max, now, leaseUntil, maxReceives, ordered]);
    for (const d of dead) onDead?.(d);
    return leased;
  }
  ackPull(receiver: string, leases: string[], now: number): Promise<AckResult[]> { return this.call('ackPull', [receiver, leases, now]); }
  nackPull(receiver: string, leases: string[], now: number, nextAttemptAt: number): Promise<AckResult[]> { return this.call('nackPull', [receiver, leases, now, nextAttemptAt]); }
  rescueExpiredPush(now: number): Promise<number> { return this.call('rescueExpiredPush', [now]); }
  expirePullLeases(now: number, maxReceivesFor: (receiver: string) => number): Promise<{ released: number; dead: DeliveryRecord[] }> {
    // The limit is the caller's function: asked here for each receiver with an expired lease.
    const limits: Record<string, number> = {};
    for (const r of this.reader.expiredPullReceivers(now)) limits[r] = maxReceivesFor(r);
    return this.call('expirePullLeases', [now, limits]);
  }
  releaseAllPushLeases(now: number): Promise<number> { return this.call('releaseAllPushLeases', [now]); }
  setPendingMode(receiver: string, mode: 'push' | 'pull'): Promise<number> { return this.call('setPendingMode', [receiver, mode]); }
  redriveDead(selector: RedriveSelector, now: number, limit: number): Promise<RedrivenDelivery[]> { return this.call('redriveDead', [selector, now, limit]); }
  resend(items: Array<{ sequence: number; receiver: string; mode: DeliveryMode }>, now: number): Promise<DeliveryRecord[]> { return this.call('resend', [items, now]); }
  replayChunk(chunk: ReplayChunk): Promise<ReplayChunkResult> { return this.call('replayChunk', [chunk]); }

  // ---- reads: here, on the reading connection ----

  getMessage(sequence: number): Promise<MessageRecord | null> {
    const recent = this.recent.message(sequence);
    return recent ? Promise.resolve(recent) : this.reader.getMessage(sequence);
  }
  findMessage(source: string, id: string): Promise<MessageRecord | null> { return this.reader.findMessage(source, id); }
  readInlineBody(sequence: number): Promise<Buffer | null> {
    const recent = this.recent.body(sequence);
    // A copy, as SQLite would give: a caller may change the bytes it is given.
    return recent ? Promise.resolve(Buffer.from(recent)) : this.reader.readInlineBody(sequence);
  }
  getDeliveries(sequence: number): Promise<DeliveryRecord[]> { return this.reader.getDeliveries(sequence); }
  getAttempts(sequence: number): Promise<AttemptRecord[]> { return this.reader.getAttempts(sequence); }
  getDelivery(id: number): Promise<DeliveryRecord | null> { return this.reader.getDelivery(id); }
  getParticipant(id: string, includeDeleted?: boolean): Promise<ParticipantRecord | null> { return this.reader.getParticipant(id, includeDeleted); }
  listParticipants(): Promise<ParticipantRecord[]> { return this.reader.listParticipants(); }
  findKeyByHash(hash: string): Promise<KeyRecord | null> { return this.reader.findKeyByHash(hash); }
  listKeys(participant: string): Promise<KeyRecord[]> { return this.reader.listKeys(participant); }
  countAdminKeys(): Promise<number> { return this.reader.countAdminKeys(); }
  getRoutes(): Promise<{ rules: RouteRule[]; version: number }> { return this.reader.getRoutes(); }
  getMeterEntries(meter: string, at: number | null): Promise<MeterEntry[]> { return this.reader.getMeterEntries(meter, at); }
  receiversWithDuePush(now: number, limit: number): Promise<string[]> { return this.reader.receiversWithDuePush(now, limit); }
  nextPushDueAt(): Promise<number | null> { return this.reader.nextPushDueAt(); }
  countDeliveriesByState(): Promise<Array<{ receiver: string; state: string; count: number }>> { return this.reader.countDeliveriesByState(); }
  listDead(filter: DeadFilter, after: { deadAt: number; id: number } | null, limit: number): Promise<DeadLetter[]> { return this.reader.listDead(filter, after, limit); }
  searchMessages(search: MessageSearch): Promise<MessageRecord[]> { return this.reader.searchMessages(search); }
  getDeliveriesOf(sequences: number[]): Promise<DeliveryRecord[]> { return this.reader.getDeliveriesOf(sequences); }
}
