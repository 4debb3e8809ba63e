import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TargetGuard } from '../../src/delivery/target-guard.ts';

// IP literals and localhost only: no DNS query leaves the machine, and nothing is connected to.
const cases: Array<[string, true | RegExp]> = [
  // url, allowed (true) or the refusal it gives
  ['http://93.184.216.34/hook', true],
  ['https://8.8.8.8:8443/hook', true],
  ['http://[2606:4700::1111]/hook', true],
  ['http://[::ffff:8.8.8.8]/hook', true],
  ['http://127.0.0.1:9/hook', /resolves to 127\.0\.0\.1/],
  ['http://localhost:9/hook', /private, loopback or link-local/],
  ['http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254/],
  ['http://[::1]/hook', /::1/],
  ['http://[::ffff:127.0.0.1]/hook', /::ffff:7f00:1/],
  ['http://[fe80::1]/hook', /fe80::1/],
  ['http://10.0.0.1/hook', /10\.0\.0\.1/],
  ['ftp://93.184.216.34/hook', /http or https/],
  ['http://user:pw@93.184.216.34/hook', /credentials/],
  ['not a url', /not a URL/],
];
for (const [url, expected] of cases) {
  test(`TargetGuard(allowPrivate false): ${url} → ${expected === true ? 'allowed' : 'refused'}`, async () => {
    const refusal = await new TargetGuard(false).refusal(url);
    if (expected === true) assert.equal(refusal, null);
    else assert.match(refusal ?? '(allowed)', expected);
  });
}

test('TargetGuard(allowPrivate true): loopback allowed, but not other schemes', async () => {
  const g = new TargetGuard(true);
  assert.equal(await g.refusal('http://127.0.0.1:9/hook'), null);
  assert.match((await g.refusal('file:///etc/passwd'))!, /http or https/);
});
