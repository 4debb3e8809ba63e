/**
 * Two push receivers on one origin (one loopback server, two paths) keep their own connection
 * settings: each has a connection pool of its own, sized to its own maxInFlight, and made again
 * when its settings change. (Pools keyed by origin gave the second receiver the first one's
 * pool: its maxInFlight of 8 was held to the 4 connections made for the first one's 2, shared
 * with it.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestHub, eventually } from '../support/hub.ts';
import { startReceiver } from '../support/receiver.ts';

const HOLD_MS = 150;

test('two receivers on one origin: each gets its own maxInFlight of connections, and a new maxInFlight takes effect', async (t) => {
  const hub = await startTestHub();
  t.after(() => hub.close());

  // Each request is answered after HOLD_MS; `peak` is the most open at once per path.
  const open = new Map<string, number>();
  const peak = new Map<string, number>();
  const sockets = new Map<string, Set<unknown>>();
  const rx = await startReceiver(async (req, res) => {
    const path = req.path;
    open.set(path, (open.get(path) ?? 0) + 1);
    peak.set(path, Math.max(peak.get(path) ?? 0, open.get(path)!));
    let seen = sockets.get(path);
    if (!seen) sockets.set(path, seen = new Set());
    seen.add(res.socket);
    await new Promise((r) => setTimeout(r, HOLD_MS));
    open.set(path, open.get(path)! - 1);
    res.writeHead(204); res.end();
  });
  t.after(() => rx.close());
  const origin = new URL(rx.url).origin;

  const { key } = await hub.participant('MDP-A');
  await hub.participant('RETAILER-A', { mode: 'push', url: `${origin}/a`, maxInFlight: 2 });
  await hub.participant('RETAILER-B', { mode: 'push', url: `${origin}/b`, maxInFlight: 8 });
  await hub.routes([{ name: 'both', match: {}, to: { participants: ['RETAILER-A', 'RETAILER-B'] } }]);

  const send = async (from: number, n: number) => {
    const batch = JSON.stringify(Array.from({ length: n }, (_, i) => ({
      specversion: '1.0', id: `m${from + i}`, source: 'MDP-A', type: 'test.reading', subject: `NMI${i}`, data: { reading: i },
    })));
    const r = await hub.api('POST', '/v1/messages', { key, body: batch, headers: { 'content-type': 'application/cloudevents-batch+json' } });
    assert.equal(r.status, 200, r.text);
  };
  const count = (path: string) => rx.requests.filter((q) => q.path === path).length;

  await send(0, 12);
  await eventually(() => count('/a') === 12 && count('/b') === 12, 10_000, 'all 24 requests');
  assert.equal(peak.get('/a'), 2, `A had ${peak.get('/a')} requests open at once`);
  assert.equal(peak.get('/b'), 8, `B had ${peak.get('/b')} requests open at once (its own maxInFlight), not a share of A's pool`);
  const bSocketsBefore = sockets.get('/b')!.size;

  // B's maxInFlight goes up to 12: its pool is made again with as many connections.
  const put = await hub.api('PUT', '/v1/admin/participants/RETAILER-B', { json: { name: 'Participant RETAILER-B', receiver: { mode: 'push', url: `${origin}/b`, maxInFlight: 12 } } });
  assert.equal(put.status, 200, put.text);
  peak.clear();
  await send(100, 16);
  await eventually(() => count('/a') === 28 && count('/b') === 28, 10_000, 'all 32 more requests');
  assert.equal(peak.get('/b'), 12, `after the change B had ${peak.get('/b')} requests open at once`);
  assert.equal(peak.get('/a'), 2, `A still had ${peak.get('/a')} open at once`);
  assert.ok(sockets.get('/b')!.size >= bSocketsBefore + 12, 'the new pool opened connections of its own');
});
