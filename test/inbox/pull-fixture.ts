import assert from 'node:assert/strict';
import type { HubConfigInput } from '../../src/config/hub-config.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

/** What a receiver sees of one inbox item. */
export interface InboxMessage {
  lease: string;
  leaseExpiresAt: string;
  receives: number;
  resend: boolean;
  event: Record<string, any>;
}

export interface PullFixture {
  hub: TestHub;
  senderKey: string;
  receiverKey: string;
  /** Sends one structured JSON event from MDP-A; returns its sequence. */
  send(id: string, data?: string): Promise<number>;
  /** GET /v1/inbox with `query`, as `key` (the receiver's by default). */
  poll(query?: string, key?: string): Promise<{ status: number; headers: Record<string, unknown>; text: string; json: any; messages: InboxMessage[]; ms: number }>;
  ack(leases: string[], key?: string): Promise<{ status: number; headers: Record<string, unknown>; text: string; json: any }>;
  nack(leases: string[], delaySeconds?: number, key?: string): Promise<{ status: number; headers: Record<string, unknown>; text: string; json: any }>;
  /** The delivery to RETAILER-A as the sender sees it in GET /v1/messages/{seq}. */
  delivery(sequence: number): Promise<Record<string, any>>;
  attempts(sequence: number): Promise<Array<Record<string, any>>>;
  close(): Promise<void>;
}

export const RECEIVER = 'RETAILER-A';
export const SENDER = 'MDP-A';

/**
 * A hub with sender MDP-A and pull receiver RETAILER-A, every message routed to RETAILER-A.
 * With `reuse`, attaches to an existing data folder (participants and routes already there).
 */
export async function pullHub(
  receiver: { visibilityTimeoutSeconds?: number; maxReceives?: number } = {},
  opts: { overrides?: HubConfigInput; dataDir?: string; reuse?: { senderKey: string; receiverKey: string } } = {},
): Promise<PullFixture> {
  const hub = await startTestHub(opts.overrides ?? {}, opts.dataDir ? { dataDir: opts.dataDir } : {});
  let senderKey: string;
  let receiverKey: string;
  if (opts.reuse) {
    ({ senderKey, receiverKey } = opts.reuse);
  } else {
    senderKey = (await hub.participant(SENDER)).key;
    receiverKey = (await hub.participant(RECEIVER, { mode: 'pull', ...receiver })).key;
    await hub.routes([{ name: 'all', match: {}, to: { participants: [RECEIVER] } }]);
  }
  return fixture(hub, senderKey, receiverKey);
}

function fixture(hub: TestHub, senderKey: string, receiverKey: string): PullFixture {
  return {
    hub, senderKey, receiverKey,
    async send(id, data = '{"reading":1}') {
      const body = `{"specversion":"1.0","id":${JSON.stringify(id)},"source":"${SENDER}","type":"test.reading","subject":"NMI1","datacontenttype":"application/json","data":${data}}`;
      const res = await hub.api('POST', '/v1/messages', { key: senderKey, body, headers: { 'content-type': 'application/cloudevents+json' } });
      assert.equal(res.status, 202, res.text);
      assert.deepEqual(res.json.receivers, [RECEIVER]);
      return res.json.sequence as number;
    },
    async poll(query = '', key = receiverKey) {
      const started = performance.now();
      const res = await hub.api('GET', `/v1/inbox${query ? `?${query}` : ''}`, { key });
      const ms = performance.now() - started;
      return { status: res.status, headers: res.headers, text: res.text, json: res.json, messages: res.status === 200 ? res.json.messages : [], ms };
    },
    async ack(leases, key = receiverKey) {
      const res = await hub.api('POST', '/v1/inbox/ack', { key, json: { leases } });
      return res;
    },
    async nack(leases, delaySeconds, key = receiverKey) {
      const res = await hub.api('POST', '/v1/inbox/nack', { key, json: delaySeconds === undefined ? { leases } : { leases, delaySeconds } });
      return res;
    },
    async delivery(sequence) {
      const res = await hub.api('GET', `/v1/messages/${sequence}`, { key: senderKey });
      assert.equal(res.status, 200, res.text);
      const d = res.json.deliveries.find((x: any) => x.receiver === RECEIVER);
      assert.ok(d, `no delivery to ${RECEIVER}: ${res.text}`);
      return d;
    },
    async attempts(sequence) {
      const res = await hub.api('GET', `/v1/messages/${sequence}/attempts`, { key: senderKey });
      assert.equal(res.status, 200, res.text);
      return res.json.attempts;
    },
    close: () => hub.close(),
  };
}

/** Asserts an RFC 9457 problem answer. */
export function assertProblem(res: { status: number; headers?: Record<string, unknown>; json: any; text: string }, status: number): void {
  assert.equal(res.status, status, res.text);
  if (res.headers) assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  assert.equal(res.json.status, status);
  for (const f of ['type', 'title', 'detail']) assert.equal(typeof res.json[f], 'string', `problem without ${f}: ${res.text}`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
