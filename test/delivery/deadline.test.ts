import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withDeadline } from '../../src/delivery/deadline.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cases: Array<[string, (signal: AbortSignal) => Promise<string>, 'ok' | 'timeout' | 'error', number]> = [
  // name, work, expected end, most ms it may take (deadline is 100 ms)
  ['work that finishes in time: its answer', async () => { await sleep(10); return 'done'; }, 'ok', 90],
  ['work that fails in time: its error', async () => { await sleep(10); throw new Error('boom'); }, 'error', 90],
  ['work that honours the signal: TimeoutError at the deadline', (signal) => new Promise((_r, reject) => signal.addEventListener('abort', () => reject(signal.reason))), 'timeout', 300],
  ['work that ignores the signal: TimeoutError at the deadline all the same', async () => { await sleep(1_000); return 'late'; }, 'timeout', 300],
  ['work that ignores the signal and fails late: still a TimeoutError', async () => { await sleep(400); throw new Error('late'); }, 'timeout', 300],
  ['work that fails with its own error because of the abort: a TimeoutError', (signal) => new Promise((_r, reject) => signal.addEventListener('abort', () => reject(new Error('socket closed')))), 'timeout', 300],
];
for (const [name, work, expected, mostMs] of cases) {
  test(`withDeadline: ${name}`, async () => {
    const t0 = Date.now();
    const r = await withDeadline(100, work).then((v) => ({ v }), (e: Error) => ({ e }));
    const took = Date.now() - t0;
    if (expected === 'ok') assert.deepEqual(r, { v: 'done' });
    else if (expected === 'error') assert.equal((r as { e: Error }).e.message, 'boom');
    else {
      assert.equal((r as { e: Error }).e.name, 'TimeoutError');
      assert.ok(took >= 95, `ended after ${took} ms, before the deadline`);
    }
    assert.ok(took <= mostMs, `took ${took} ms`);
  });
}

test('withDeadline: a result that comes after the deadline goes to discard', async () => {
  const late: string[] = [];
  await assert.rejects(withDeadline(20, async () => { await sleep(60); return 'late'; }, (v) => late.push(v)), { name: 'TimeoutError' });
  await sleep(80);
  assert.deepEqual(late, ['late']);
});
