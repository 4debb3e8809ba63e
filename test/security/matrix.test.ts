// Authentication and isolation, endpoint by endpoint: every registered route × {no key, malformed
// key, wrong key, revoked key, sender, receiver, unrelated participant, admin}. Only the cells the
// spec allows succeed; an unrelated participant gets 404 for message resources (as if they did
// not exist); 401 for a missing or unknown key, 403 for a known key that may not. The rows are
// checked against the routes Fastify has registered, so a new endpoint without a row fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestHub } from '../support/hub.ts';
import { assertProblem } from '../api/helpers.ts';
import { buildWorld, callCell, registeredRoutes, ROWS, runMatrix, WHO, type World } from './matrix.ts';

test('the matrix has a row for every registered route, and no row for a route that does not exist', async (t) => {
  const hub = await startTestHub({}, { listen: false });
  t.after(() => hub.close());
  const registered = registeredRoutes(hub.app);
  assert.ok(registered.size >= 20, `routes found in printRoutes: ${[...registered].join(', ')}`);
  const rows = new Set(ROWS.map((r) => `${r.method} ${r.route}`));
  assert.equal(rows.size, ROWS.length, 'one row per route');
  const missing = [...registered].filter((r) => !rows.has(r));
  const extra = [...rows].filter((r) => !registered.has(r));
  assert.deepEqual(missing, [], `routes without a matrix row (add one to test/security/matrix.ts): ${missing.join(', ')}`);
  assert.deepEqual(extra, [], `matrix rows for routes that are not registered: ${extra.join(', ')}`);
  for (const r of registered) {
    const [method, path] = r.split(' ') as [string, string];
    assert.ok(hub.app.hasRoute({ method: method as 'GET', url: path }), `hasRoute agrees on ${r}`);
  }
});

test('every endpoint × every caller: only the cells the spec allows succeed', async (t) => {
  const w: World = await buildWorld(() => startTestHub());
  t.after(() => w.hub.close());
  await runMatrix(w);

  // The destructive cells refused did nothing: each caller's spare participant and keys still exist and work.
  for (const who of WHO) {
    const spare = w.spare[who];
    const p = await w.hub.api('GET', `/v1/admin/participants/${spare.participant}`);
    const k = await w.hub.api('GET', '/v1/messages', { key: spare.key });
    const a = await w.hub.api('GET', '/v1/admin/participants', { key: spare.adminKey });
    if (who === 'admin') {
      assertProblem(p, 404, 'not-found');
      assertProblem(k, 401, 'unauthorized');
      assertProblem(a, 401, 'unauthorized');
    } else {
      assert.equal(p.status, 200, `${who} could not delete participant ${spare.participant}`);
      assert.equal(k.status, 200, `${who} could not revoke a participant key`);
      assert.equal(a.status, 200, `${who} could not revoke an admin key`);
    }
    const made = await w.hub.api('GET', `/v1/admin/participants/PUT-${who}`);
    assert.equal(made.status, who === 'admin' ? 200 : 404, `PUT-${who} exists only if an admin made it`);
  }
  // Only the sender's event was accepted; the receiver's lease was acked by the receiver alone.
  const all = await w.hub.api('GET', '/v1/messages?limit=100');
  assert.deepEqual(all.json.messages.filter((m: any) => String(m.attributes.id).startsWith('matrix-')).map((m: any) => m.attributes.id).sort(), ['matrix-1', 'matrix-sender', 'matrix-u']);
});

test('isolation is indistinguishable from absence: an unrelated participant\'s 404 for a message is the 404 for a sequence that does not exist', async (t) => {
  const w: World = await buildWorld(() => startTestHub());
  t.after(() => w.hub.close());
  const row = (route: string) => ROWS.find((r) => r.route === route)!;
  for (const route of ['/v1/messages/:sequence', '/v1/messages/:sequence/attempts', '/v1/messages/:sequence/data', '/v1/messages/:sequence/resend']) {
    const r = row(route);
    const real = await callCell(w, r, 'unrelated');
    const absent = await callCell(w, { ...r, request: (world, who) => { const q = r.request(world, who); return { ...q, path: q.path.replace(`/${w.seq}`, '/999999') }; } }, 'unrelated');
    assert.equal(real.status, 404);
    const norm = (text: string, seq: number) => text.replace(new RegExp(`(?<![\\w])${seq}(?![\\w])`, 'g'), '{seq}');
    assert.equal(norm(real.text, w.seq), norm(absent.text, 999999), `${route}: the same problem`);
    assert.deepEqual(Object.keys(real.headers).sort(), Object.keys(absent.headers).sort(), `${route}: the same headers`);
  }
});
