/** Builders shared by the Store conformance cases (test/store/conformance*.ts). */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { it } from 'node:test';
import type { Store } from '../../src/store/store.ts';
import type {
  AttemptResult, BodyRef, DeliveryMode, DeliveryRecord, EventAttributes, KeyRecord, MessageRecord, NewMessage, StoredReceiver,
} from '../../src/store/types.ts';

export type OpenStore = () => Promise<{ store: Store; cleanup: () => Promise<void> }>;
/** Registers one case that runs on a fresh store. */
export type StoreCase = (title: string, fn: (store: Store) => Promise<void>) => void;

/** A case on a fresh store, cleaned up whatever happens. */
export function storeCase(open: OpenStore): StoreCase {
  return (title, fn) =>
    it(title, async () => {
      const { store, cleanup } = await open();
      try {
        await fn(store);
      } finally {
        await cleanup();
      }
    });
}

export const T0 = 1_700_000_000_000;
export const MIN = 60_000;

// ---------------------------------------------------------------------------------------------
// builders

let counter = 0;
export const uid = (prefix = 'm') => `${prefix}-${++counter}-${randomBytes(3).toString('hex')}`;

export function fingerprint(attributes: EventAttributes, contentType: string, sha256: string): string {
  const canonical = JSON.stringify(Object.keys(attributes).sort().map((k) => [k, attributes[k]]));
  return createHash('sha256').update(canonical).update('\n').update(contentType).update('\n').update(sha256).digest('hex');
}

export interface MsgOpts {
  source?: string;
  id?: string;
  type?: string;
  subject?: string;
  time?: string | null;
  extra?: Record<string, string | number | boolean>;
  body?: Buffer;
  contentType?: string;
  receivedAt?: number;
  /** Receiver IDs (push), or [id, mode] pairs. */
  to?: Array<string | [string, DeliveryMode]>;
  fileKey?: string;
}

export function msg(o: MsgOpts = {}): NewMessage {
  const source = o.source ?? 'MDP-A';
  const id = o.id ?? uid();
  const type = o.type ?? 'au.nem12.interval';
  const subject = o.subject ?? 'NMI0000001';
  const time = o.time === undefined ? null : o.time;
  const attributes: EventAttributes = {
    specversion: '1.0', id, source, type, subject, ...(time ? { time } : {}), ...o.extra,
  };
  const body = o.body ?? Buffer.from(JSON.stringify({ reading: id }));
  const contentType = o.contentType ?? 'application/json';
  const sha256 = createHash('sha256').update(body).digest('hex');
  const bodyRef: BodyRef = o.fileKey ? { kind: 'file', key: o.fileKey } : { kind: 'inline' };
  return {
    source, id, type, subject, time, attributes, contentType, size: body.length, sha256,
    fingerprint: fingerprint(attributes, contentType, sha256), receivedAt: o.receivedAt ?? T0, body: bodyRef,
    ...(o.fileKey ? {} : { inlineBody: body }),
    receivers: (o.to ?? ['RETAILER-A']).map((r) => (typeof r === 'string' ? { receiver: r, mode: 'push' as const } : { receiver: r[0], mode: r[1] })),
  };
}

export async function commitOne(store: Store, m: NewMessage): Promise<MessageRecord> {
  const r = (await store.commitMessages([m]))[0]!;
  assert.ok(r, 'one result per message');
  assert.equal(r.kind, 'accepted');
  return r.message;
}

/** Commits one message to one receiver and returns that delivery. */
export async function oneDelivery(store: Store, receiver: string, mode: DeliveryMode, o: MsgOpts = {}): Promise<DeliveryRecord> {
  const m = await commitOne(store, msg({ ...o, to: [[receiver, mode]] }));
  const ds = await store.getDeliveries(m.sequence);
  assert.equal(ds.length, 1);
  return ds[0]!;
}

export async function delivery(store: Store, id: number): Promise<DeliveryRecord> {
  const d = await store.getDelivery(id);
  assert.ok(d, `delivery ${id} exists`);
  return d;
}

export async function attemptsOf(store: Store, d: DeliveryRecord) {
  return (await store.getAttempts(d.sequence)).filter((a) => a.deliveryId === d.id);
}

export const delivered = (at: number, status = 200): AttemptResult => ({ kind: 'delivered', status, latencyMs: 5, at });
export const retry = (at: number, nextAttemptAt: number, status: number | null = 500): AttemptResult => ({ kind: 'retry', status, latencyMs: 5, at, error: `HTTP ${status}`, nextAttemptAt });
export const dead = (at: number, status: number | null = 410): AttemptResult => ({ kind: 'dead', status, latencyMs: 5, at, error: 'gone' });

export const pushReceiver = (url = 'https://r.example/hook'): StoredReceiver => ({
  mode: 'push', url, ordering: 'none', timeoutMs: 10_000, maxInFlight: 16, ratePerSecond: null, retry: {}, secrets: ['whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ='],
});
export const pullReceiver = (maxReceives = 10): StoredReceiver => ({ mode: 'pull', ordering: 'subject', visibilityTimeoutSeconds: 30, maxReceives });

export function key(o: Partial<KeyRecord> = {}): KeyRecord {
  return { id: uid('key'), participant: 'RETAILER-A', role: 'participant', hash: randomBytes(32).toString('hex'), createdAt: T0, revokedAt: null, ...o };
}

export function sortedIds(ds: Array<{ id: number }>): number[] {
  return ds.map((d) => d.id).sort((a, b) => a - b);
}

