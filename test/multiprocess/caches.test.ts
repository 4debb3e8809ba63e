/**
 * Caches across hub processes: two hubs A and B on one PostgreSQL schema, each with its own
 * caches (participant directory, routes, API keys). A change made through A is used by B within
 * the documented bound (README, "Running on PostgreSQL"):
 *  - routes PUT: B's next message routed more than ROUTES_REFRESH_MS (1 s) later uses them;
 *  - participant PUT (a new receiver) and DELETE: B's ingest and inbox within
 *    DIRECTORY_REFRESH_MS (2 s);
 *  - key revoke: B refuses the key within the key cache's 5 s.
 * B's push scheduler is stopped, so what refreshes B's caches here is the request path alone
 * (ingest, inbox), not the scheduler's passes. Each bound is asserted with slack for a loaded box,
 * and every measured delay is reported.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIRECTORY_REFRESH_MS } from '../../src/participants/directory.ts';
import { ROUTES_REFRESH_MS } from '../../src/routing/router.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';
import { postgresTest, sharedSchema, sleep } from './support.ts';

/** The Authenticator's cache of key lookups (src/auth/authenticator.ts, ttlMs). */
const KEY_CACHE_MS = 5_000;
/** What a loaded 2-core box may add to a bound: a reload's round trip, the test's own polling. */
const SLACK_MS = 1_500;

postgresTest('test/multiprocess/caches.test.ts', 'two hubs on one schema: routes, participant PUT/DELETE and key revocation through one are used by the other within the bound', { timeout: 60_000 }, async () => {
  const db = sharedSchema();
  const dirs = [mkdtempSync(join(tmpdir(), 'meterhub-mp-a-')), mkdtempSync(join(tmpdir(), 'meterhub-mp-b-'))];
  const hubs: TestHub[] = [];
  const notes: string[] = [];
  try {
    const a = await startTestHub({ storage: { databaseUrl: db.databaseUrl } }, { dataDir: dirs[0]! });
    hubs.push(a);
    const b = await startTestHub({ storage: { databaseUrl: db.databaseUrl } }, { dataDir: dirs[1]! });
    hubs.push(b);
    await b.hub.push.stop();
    assert.equal(a.hub.store.kind, 'postgres');

    // ---- set up through A: a sender, pull receivers X and Y; routes to X and Z (Z does not exist yet) ----
    const sender = await a.participant('MDP-A');
    const x = await a.participant('RETAILER-X', { mode: 'pull' });
    await a.participant('RETAILER-Y', { mode: 'pull' });
    await a.routes([{ name: 'to X and Z', match: {}, to: { participants: ['RETAILER-X', 'RETAILER-Z'] } }]);

    let n = 0;
    /** B's answer to a new event: its receivers, or the problem code. */
    const sendToB = async (key = sender.key): Promise<string> => {
      const res = await b.api('POST', '/v1/messages', {
        key, headers: { 'content-type': 'application/cloudevents+json' },
        body: JSON.stringify({ specversion: '1.0', id: `cache-${n++}`, source: 'MDP-A', type: 'test.reading', subject: 'NMI1', data: { n } }),
      });
      if (res.status === 202) return (res.json.receivers as string[]).join(',');
      return `${res.status} ${res.json?.code ?? res.text}`;
    };
    /** Polls until `check` holds; the time it took from `since`. */
    const until = async (what: string, since: number, boundMs: number, check: () => Promise<boolean>): Promise<number> => {
      for (;;) {
        if (await check()) {
          const took = Date.now() - since;
          notes.push(`${what}: ${took} ms (bound ${boundMs} ms)`);
          assert.ok(took <= boundMs + SLACK_MS, `${what} took ${took} ms, more than ${boundMs} ms (+${SLACK_MS} ms slack)`);
          return took;
        }
        if (Date.now() - since > boundMs + SLACK_MS + 5_000) assert.fail(`${what}: not seen after ${Date.now() - since} ms`);
        await sleep(25);
      }
    };

    // B loaded its directory and routes at its start, before any of this: it sees them once stale.
    const setUp = Date.now();
    await until('B routes by the routes and receivers made through A', setUp, DIRECTORY_REFRESH_MS, async () => (await sendToB()) === 'RETAILER-X');

    // ---- routes PUT through A ----
    await sleep(ROUTES_REFRESH_MS + 100); // B's copy is stale already: the bound counts from the PUT
    await a.routes([{ name: 'to Y', match: {}, to: { participants: ['RETAILER-Y'] } }]);
    const routesPut = Date.now();
    await until('routes PUT through A, used by B\'s ingest', routesPut, ROUTES_REFRESH_MS, async () => (await sendToB()) === 'RETAILER-Y');

    // ---- participant PUT through A: a new receiver Z, already named by the routes ----
    await a.routes([{ name: 'to Y and Z', match: {}, to: { participants: ['RETAILER-Y', 'RETAILER-Z'] } }]);
    await sleep(ROUTES_REFRESH_MS + 100);
    assert.equal(await sendToB(), 'RETAILER-Y', 'Z is named, but not a participant yet'); // and B has read these routes
    const z = await a.participant('RETAILER-Z', { mode: 'pull' });
    const zPut = Date.now();
    await until('participant PUT through A, routed to by B', zPut, DIRECTORY_REFRESH_MS, async () => (await sendToB()) === 'RETAILER-Y,RETAILER-Z');

    // ---- inbox on B: a receiver made through A can poll B ----
    const w = await a.participant('RETAILER-W', { mode: 'pull' });
    const wPut = Date.now();
    await until('participant PUT through A, its inbox on B', wPut, DIRECTORY_REFRESH_MS, async () => (await b.api('GET', '/v1/inbox?max=1', { key: w.key })).status === 200);
    // Z's inbox on B holds what B routed to Z.
    const polled = await b.api('GET', '/v1/inbox?max=10', { key: z.key });
    assert.equal(polled.status, 200, polled.text);
    assert.ok(polled.json.messages.length >= 1, 'Z got what B routed to it');

    // ---- participant DELETE through A ----
    const del = await a.api('DELETE', '/v1/admin/participants/RETAILER-Z');
    assert.ok(del.status === 200 || del.status === 204, del.text);
    const zDeleted = Date.now();
    await until('participant DELETE through A, no longer routed to by B', zDeleted, DIRECTORY_REFRESH_MS, async () => (await sendToB()) === 'RETAILER-Y');
    // Its key was revoked with it, and B's key cache forgets it in time.
    await until('a deleted participant\'s key refused by B', zDeleted, KEY_CACHE_MS, async () => (await b.api('GET', '/v1/inbox?max=1', { key: z.key })).status === 401);

    // ---- key revoke through A, of a key B has cached ----
    const second = await a.api('POST', '/v1/admin/participants/MDP-A/keys');
    assert.equal(second.status, 201, second.text);
    assert.equal(await sendToB(second.json.key), 'RETAILER-Y', 'B takes the new key (and caches it)');
    const revoke = await a.api('DELETE', `/v1/admin/participants/MDP-A/keys/${second.json.id}`);
    assert.ok(revoke.status === 200 || revoke.status === 204, revoke.text);
    const revoked = Date.now();
    await until('key revoked through A, refused by B', revoked, KEY_CACHE_MS, async () => (await sendToB(second.json.key)).startsWith('401'));
    assert.equal(await sendToB(), 'RETAILER-Y', 'the sender\'s other key still works');
    assert.ok(x.key, 'X kept its key');
  } finally {
    for (const h of hubs.reverse()) await h.close().catch(() => {});
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await db.drop();
    if (notes.length > 0) process.stdout.write(`# ${notes.join('; ')}\n`);
  }
});
