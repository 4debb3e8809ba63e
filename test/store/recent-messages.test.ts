import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RecentMessages } from '../../src/store/sqlite/recent-messages.ts';
import type { MessageRecord } from '../../src/store/types.ts';

const record = (sequence: number): MessageRecord => ({
  sequence, source: 'MDP-A', id: `m${sequence}`, type: 't', subject: 'NMI1', time: null, attributes: { specversion: '1.0', id: `m${sequence}`, source: 'MDP-A', type: 't', subject: 'NMI1' },
  contentType: 'application/json', size: 2, sha256: 'x', fingerprint: 'f', receivedAt: 1, body: { kind: 'inline' },
});

describe('RecentMessages', () => {
  it('keeps the latest entries, the oldest going first past maxEntries', () => {
    const recent = new RecentMessages(1024 * 1024, 3);
    for (let seq = 1; seq <= 5; seq++) recent.add(record(seq), Buffer.from(`b${seq}`));
    assert.equal(recent.size, 3);
    assert.equal(recent.message(2), undefined);
    assert.equal(recent.body(3)?.toString(), 'b3');
    assert.equal(recent.message(5)?.id, 'm5');
  });

  it('holds at most maxBytes (bodies plus 512 bytes per record), and never one body over an eighth of it', () => {
    const recent = new RecentMessages(8 * 1024, 100);
    recent.add(record(1), Buffer.alloc(2000));
    assert.equal(recent.size, 0, 'over 1 KiB (an eighth of 8 KiB): not kept');
    for (let seq = 2; seq <= 20; seq++) recent.add(record(seq), Buffer.alloc(500));
    assert.equal(recent.size, 8, '8 × (500 + 512) bytes fit in 8 KiB, 9 do not');
    assert.equal(recent.body(20)?.length, 500);
  });

  it('copies a body out of the buffer it is a view into, and hands out copies of records', () => {
    const whole = Buffer.from('[first][second]');
    const recent = new RecentMessages();
    recent.add(record(1), whole.subarray(7, 15));
    whole.fill(0);
    assert.equal(recent.body(1)?.toString(), '[second]');
    const got = recent.message(1)!;
    got.subject = 'changed';
    assert.equal(recent.message(1)!.subject, 'NMI1');
  });
});
