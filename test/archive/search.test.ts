/**
 * Archive search (GET /v1/messages): isolation (each participant sees only what it sent or was
 * routed to, and only its own deliveries of others' messages) and a cursor that pages through
 * without gaps or repeats while new messages arrive, newest first and oldest first.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, startTestHub } from '../support/hub.ts';
import { startReceiver } from '../support/receiver.ts';

interface Sent { sequence: number; source: string; to: string[] }

test('archive search: isolation holds, and the cursor pages without gaps or repeats while messages arrive', { timeout: 60_000 }, async (t) => {
  const hub = await startTestHub();
  const push = await startReceiver();
  t.after(async () => { await hub.close(); await push.close(); });
  const keys: Record<string, string> = {
    A: (await hub.participant('A')).key,
    B: (await hub.participant('B')).key,
    R1: (await hub.participant('R1', { mode: 'push', url: push.url })).key,
    R2: (await hub.participant('R2', { mode: 'pull' })).key,
  };
  await hub.routes([
    { name: 'both', match: { subject: 'BOTH' }, to: { participants: ['R1', 'R2'] } },
    { name: 'a', match: { source: 'A' }, to: { participants: ['R1'] } },
    { name: 'b', match: { source: 'B' }, to: { participants: ['R2'] } },
  ]);
  const sent: Sent[] = [];
  let n = 0;
  const send = async (source: 'A' | 'B', subject = `M${n % 3}`) => {
    const id = `e${++n}`;
    const body = JSON.stringify({ specversion: '1.0', id, source, type: `t.${source}`, subject, datacontenttype: 'application/json', data: { n } });
    const res = await hub.api('POST', '/v1/messages', { key: keys[source], body, headers: { 'content-type': 'application/cloudevents+json' } });
    assert.equal(res.status, 202, res.text);
    sent.push({ sequence: res.json.sequence, source, to: res.json.receivers });
  };
  for (let i = 0; i < 12; i++) await send('A', i % 4 === 0 ? 'BOTH' : undefined);
  for (let i = 0; i < 8; i++) await send('B', i % 4 === 0 ? 'BOTH' : undefined);

  const visible = (who: string) => sent.filter((m) => who === 'admin' || m.source === who || m.to.includes(who)).map((m) => m.sequence);
  const page = async (who: string, query: string) => {
    const res = await hub.api('GET', `/v1/messages?${query}`, { key: who === 'admin' ? undefined : keys[who] });
    assert.equal(res.status, 200, res.text);
    return res.json as { messages: Array<{ sequence: number; source: string; deliveries: Array<{ receiver: string; state: string }> }>; next: string | null };
  };

  for (const who of ['A', 'B', 'R1', 'R2', 'admin']) {
    // Newest first: the pages cover exactly what was visible when paging began; later arrivals
    // (higher sequences) do not push anything into a later page twice.
    const top = Math.max(...visible(who));
    const desc: number[] = [];
    let after: string | null = null;
    for (let i = 0; ; i++) {
      const p = await page(who, `limit=5${after ? `&after=${after}` : ''}`);
      desc.push(...p.messages.map((m) => m.sequence));
      if (i < 3) { await send('A'); await send('B', 'BOTH'); }
      if (p.messages.length < 5) break;
      after = p.next;
    }
    assert.deepEqual(desc, visible(who).filter((s) => s <= top).sort((x, y) => y - x), `${who}: newest first, no gaps or repeats`);

    // Oldest first from the start: new arrivals are picked up at the end, once each.
    const asc: number[] = [];
    after = null;
    for (let i = 0; ; i++) {
      const p = await page(who, `order=asc&limit=5${after ? `&after=${after}` : ''}`);
      asc.push(...p.messages.map((m) => m.sequence));
      if (p.next) after = p.next;
      if (i < 3) { await send('B'); await send('A', 'BOTH'); continue; }
      if (p.messages.length < 5) break;
    }
    assert.deepEqual(asc, visible(who).sort((x, y) => x - y), `${who}: oldest first picks up the new ones, no gaps or repeats`);
  }

  // Deliveries shown: a receiver sees only its own delivery of a message it shares; the sender all.
  const both = sent.find((m) => m.source === 'A' && m.to.length === 2)!;
  const asR1 = (await page('R1', 'subject=BOTH&source=A&order=asc&limit=1')).messages[0]!;
  assert.equal(asR1.sequence, both.sequence);
  assert.deepEqual(asR1.deliveries.map((d) => d.receiver), ['R1']);
  const asA = (await page('A', 'subject=BOTH&order=asc&limit=1')).messages[0]!;
  assert.deepEqual(asA.deliveries.map((d) => d.receiver), ['R1', 'R2']);

  // Filters stay within what the caller may see.
  assert.deepEqual((await page('R1', 'receiver=R2')).messages, [], "R2's deliveries are not R1's to see");
  assert.deepEqual((await page('R1', 'source=B')).messages.map((m) => m.sequence), visible('R1').filter((s) => sent.find((m) => m.sequence === s)!.source === 'B').sort((x, y) => y - x), 'only the B messages routed to R1 too');
  assert.deepEqual((await page('A', 'receiver=R2&limit=1000')).messages.map((m) => m.sequence), sent.filter((m) => m.source === 'A' && m.to.includes('R2')).map((m) => m.sequence).sort((x, y) => y - x));
  assert.deepEqual((await page('B', 'type=t.A')).messages, [], "A's messages are not B's to see, unless routed to it");
  await eventually(async () => (await page('R1', 'state=pending')).messages.length === 0 && (await page('R1', 'state=delivering')).messages.length === 0, 10_000, 'R1 has everything delivered');
  const r2Pending = (await page('R2', 'state=pending&limit=1000')).messages.map((m) => m.sequence);
  assert.deepEqual(r2Pending, visible('R2').sort((x, y) => y - x), 'nothing polled yet: all of R2 pending');
  assert.deepEqual((await page('R1', 'state=delivered&limit=1000')).messages.map((m) => m.sequence), visible('R1').sort((x, y) => y - x));
  assert.deepEqual((await page('R2', 'state=delivered')).messages, [], "R1's delivered deliveries of shared messages are not R2's");

  // Refusals.
  for (const q of ['order=sideways', 'state=bogus', 'after=garbage!', 'limit=0', 'limit=1001', 'from=2024-01-01T25:00:00Z', 'from=2024-02-01&to=2024-01-01', 'receiver=no%20such']) {
    const res = await hub.api('GET', `/v1/messages?${q}`, { key: keys.A });
    assert.deepEqual([res.status, res.json.code], [400, 'malformed-request'], q);
  }
  assert.equal((await hub.api('GET', '/v1/messages', { key: '' })).status, 401);
});
