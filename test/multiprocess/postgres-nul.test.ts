/**
 * The NUL character (U+0000) on PostgreSQL, whose text type cannot hold it: a CloudEvent
 * attribute value holding it is refused 400 `invalid-event` (a CloudEvents string holds no
 * control character, src/ingest/attributes.ts), in structured mode and per event in a batch; the
 * message data may hold it (it is bytes, kept as bytea). Any other input that would reach a text
 * column or parameter with it (a search filter, a participant name, a lease, a key ID, a meter)
 * answers 400 `malformed-request`, never 500 (src/store/postgres/errors.ts).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestHub, structured } from '../support/hub.ts';
import { postgresTest, sharedSchema } from './support.ts';

const CE = { 'content-type': 'application/cloudevents+json' };

postgresTest('test/multiprocess/postgres-nul.test.ts', 'NUL in CloudEvent attributes is refused 400 invalid-event, and nowhere answers 500', { timeout: 30_000 }, async () => {
  const db = sharedSchema();
  const dir = mkdtempSync(join(tmpdir(), 'meterhub-nul-'));
  const hub = await startTestHub({ storage: { databaseUrl: db.databaseUrl } }, { dataDir: dir });
  try {
    assert.equal(hub.hub.store.kind, 'postgres');
    const sender = await hub.participant('MDP-A');
    const inbox = await hub.participant('RETAILER-A', { mode: 'pull' });
    await hub.routes([{ name: 'all', match: {}, to: { participants: ['RETAILER-A'] } }]);
    const send = (body: string, headers: Record<string, string> = CE) => hub.api('POST', '/v1/messages', { key: sender.key, body, headers });

    // ---- attribute values: structured mode ----
    for (const [name, attrs] of Object.entries({
      id: { id: 'nul\u0000id', source: 'MDP-A' },
      subject: { id: 'nul-subject', source: 'MDP-A', subject: 'NMI\u00001' },
      type: { id: 'nul-type', source: 'MDP-A', type: 'test\u0000reading' },
      time: { id: 'nul-time', source: 'MDP-A', time: '2024-01-01T00:00:00Z\u0000' },
      extension: { id: 'nul-ext', source: 'MDP-A', region: 'NSW\u0000' },
      datacontenttype: { id: 'nul-dct', source: 'MDP-A', datacontenttype: 'application/json\u0000' },
    })) {
      const res = await send(structured(attrs));
      assert.equal(res.status, 400, `${name}: ${res.text}`);
      assert.equal(res.json.code, 'invalid-event', `${name}: ${res.text}`);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    }
    // (source holding NUL is refused before it is compared with the key's participant)
    const src = await send(structured({ id: 'nul-source', source: 'MDP\u0000A' }));
    assert.equal(src.status, 400, src.text);
    assert.equal(src.json.code, 'invalid-event');

    // ---- a batch: the event holding NUL alone is refused ----
    const batch = await send(JSON.stringify([
      JSON.parse(structured({ id: 'batch-ok-1', source: 'MDP-A' })),
      JSON.parse(structured({ id: 'batch-nul', source: 'MDP-A', subject: 'NMI\u0000' })),
      JSON.parse(structured({ id: 'batch-ok-2', source: 'MDP-A' })),
    ]), { 'content-type': 'application/cloudevents-batch+json' });
    assert.equal(batch.status, 200, batch.text);
    assert.deepEqual(batch.json.results.map((r: { status: number }) => r.status), [202, 400, 202]);
    assert.equal(batch.json.results[1].problem.code, 'invalid-event');

    // ---- the data may hold NUL: bytes, kept and delivered exact ----
    const withNul = await send(structured({ id: 'data-nul', source: 'MDP-A' }, { text: 'a\u0000b' }));
    assert.equal(withNul.status, 202, withNul.text);
    const data = await hub.api('GET', `/v1/messages/${withNul.json.sequence}/data`, { key: sender.key });
    assert.equal(data.status, 200);
    assert.equal(data.text, '{"text":"a\\u0000b"}');

    // ---- other inputs that would reach PostgreSQL text: 400, not 500 ----
    const refusals: Array<[string, Promise<{ status: number; json: any; text: string }>]> = [
      ['search subject', hub.api('GET', '/v1/messages?subject=NMI%001')],
      ['search type', hub.api('GET', '/v1/messages?type=a%00')],
      ['search source', hub.api('GET', '/v1/messages?source=MDP%00A', { key: sender.key })],
      ['participant name', hub.api('PUT', '/v1/admin/participants/MDP-B', { json: { name: 'Meter data\u0000provider' } })],
      ['meter lookup', hub.api('GET', '/v1/admin/meters/NMI%001')],
      ['ack lease', hub.api('POST', '/v1/inbox/ack', { key: inbox.key, json: { leases: ['pl_\u0000'] } })],
      ['nack lease', hub.api('POST', '/v1/inbox/nack', { key: inbox.key, json: { leases: ['pl_\u0000'] } })],
      ['key revoke', hub.api('DELETE', '/v1/admin/participants/MDP-A/keys/k%00')],
      ['replay', hub.api('POST', '/v1/admin/replay', { json: { subject: 'NMI\u0000', from: '2020-01-01T00:00:00Z', to: '2030-01-01T00:00:00Z' } })],
    ];
    for (const [what, pending] of refusals) {
      const res = await pending;
      assert.ok(res.status >= 400 && res.status < 500, `${what}: ${res.status} ${res.text}`);
      assert.equal(typeof res.json?.detail, 'string', `${what}: a problem answer`);
    }
    // ...and the hub carries on.
    assert.equal((await send(structured({ id: 'after', source: 'MDP-A' }))).status, 202);
    assert.equal((await hub.api('GET', '/v1/inbox?max=10', { key: inbox.key })).status, 200);
  } finally {
    await hub.close();
    rmSync(dir, { recursive: true, force: true });
    await db.drop();
  }
});
