import { test } from 'node:test';
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { createSigner, generateSecret, signatureFor, signatureHeader } from '../../src/delivery/signing.ts';

// Vector from the Standard Webhooks spec repository.
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const MSG_ID = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
const TS = 1614265330;
const BODY = Buffer.from('{"test": 2432232314}');
const EXPECTED = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=';

/**
 * An independent verifier, written from the spec text using WebCrypto rather than
 * node:crypto's createHmac: "the content to sign is composed by concatenating the id,
 * timestamp and payload, separated by the full-stop character (.)"; the key is the
 * base64-decoded part of the secret after the `whsec_` prefix; the header holds
 * space-delimited `v1,<base64>` signatures, and a message is valid if any matches.
 */
async function verifyPerSpec(secret: string, id: string, ts: number, body: Buffer, header: string): Promise<boolean> {
  const keyBytes = Uint8Array.from(atob(secret.split('_').pop()!), (c) => c.charCodeAt(0));
  const key = await webcrypto.subtle.importKey('raw', keyBytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const content = new TextEncoder().encode(`${id}.${ts}.${body.toString('utf8')}`);
  const mac = new Uint8Array(await webcrypto.subtle.sign('HMAC', key, content));
  const expected = btoa(String.fromCharCode(...mac));
  return header.split(' ').some((part) => {
    const [version, sig] = part.split(',');
    return version === 'v1' && sig === expected;
  });
}

test('signatureFor: Standard Webhooks spec vector', () => {
  assert.equal(signatureFor(SECRET, MSG_ID, TS, BODY), EXPECTED);
});

test('signatureFor: secret without whsec_ prefix is taken as base64 of the key', () => {
  assert.equal(signatureFor(SECRET.slice('whsec_'.length), MSG_ID, TS, BODY), EXPECTED);
});

test('signatureFor: repeat calls (cached key) give the same result', () => {
  for (let i = 0; i < 3; i++) assert.equal(signatureFor(SECRET, MSG_ID, TS, BODY), EXPECTED);
});

test('signatureFor: any change to id, timestamp or body changes the signature', () => {
  assert.notEqual(signatureFor(SECRET, `${MSG_ID}x`, TS, BODY), EXPECTED);
  assert.notEqual(signatureFor(SECRET, MSG_ID, TS + 1, BODY), EXPECTED);
  assert.notEqual(signatureFor(SECRET, MSG_ID, TS, Buffer.from('{"test": 2432232315}')), EXPECTED);
});

test('signatureFor: rejects invalid secrets and timestamps', () => {
  for (const bad of ['whsec_', 'whsec_not base64!', 'whsec_a', 'whsec_abcde', '']) {
    assert.throws(() => signatureFor(bad, MSG_ID, TS, BODY), TypeError, bad);
  }
  for (const ts of [1.5, -1, Number.NaN]) assert.throws(() => signatureFor(SECRET, MSG_ID, ts, BODY), RangeError);
});

test('signatureHeader: single secret equals signatureFor', () => {
  assert.equal(signatureHeader([SECRET], MSG_ID, TS, BODY), EXPECTED);
});

test('signatureHeader: rotation gives two space-separated signatures, in secret order', () => {
  const next = generateSecret();
  const header = signatureHeader([SECRET, next], MSG_ID, TS, BODY);
  assert.equal(header, `${EXPECTED} ${signatureFor(next, MSG_ID, TS, BODY)}`);
  assert.equal(header.split(' ').length, 2);
});

test('signatureHeader: no secrets is an error', () => {
  assert.throws(() => signatureHeader([], MSG_ID, TS, BODY), TypeError);
});

test('createSigner: streaming in chunks equals one-shot', () => {
  const secrets = [SECRET, generateSecret()];
  const body = Buffer.from('x'.repeat(100_000) + 'ümlaut ✓'.repeat(1000));
  const oneShot = signatureHeader(secrets, MSG_ID, TS, body);
  for (const size of [1, 7, 4096, body.length]) {
    const s = createSigner(secrets, MSG_ID, TS);
    for (let i = 0; i < body.length; i += size) s.update(body.subarray(i, i + size));
    assert.equal(s.digest(), oneShot, `chunk size ${size}`);
  }
});

test('createSigner: no updates equals signing an empty body', () => {
  assert.equal(createSigner([SECRET], MSG_ID, TS).digest(), signatureFor(SECRET, MSG_ID, TS, Buffer.alloc(0)));
});

test('createSigner: cannot be used after digest', () => {
  const s = createSigner([SECRET], MSG_ID, TS);
  s.digest();
  assert.throws(() => s.update(BODY));
  assert.throws(() => s.digest());
});

test('generateSecret: whsec_ + base64 of 24 random bytes', () => {
  const a = generateSecret();
  const b = generateSecret();
  assert.match(a, /^whsec_[A-Za-z0-9+/]{32}$/);
  assert.equal(Buffer.from(a.slice(6), 'base64').length, 24);
  assert.notEqual(a, b);
});

test('independent verifier (WebCrypto, from the spec text) accepts our signatures', async () => {
  assert.ok(await verifyPerSpec(SECRET, MSG_ID, TS, BODY, EXPECTED), 'spec vector');
  const old = generateSecret();
  const cur = generateSecret();
  const body = Buffer.from(JSON.stringify({ meter: 'E-123', kwh: 4.2, note: 'ünïcode' }));
  const header = signatureHeader([old, cur], 'msg_2abc', 1_700_000_000, body);
  assert.ok(await verifyPerSpec(old, 'msg_2abc', 1_700_000_000, body, header), 'old secret');
  assert.ok(await verifyPerSpec(cur, 'msg_2abc', 1_700_000_000, body, header), 'new secret');
  assert.ok(!(await verifyPerSpec(generateSecret(), 'msg_2abc', 1_700_000_000, body, header)), 'other secret');
  assert.ok(!(await verifyPerSpec(cur, 'msg_2abc', 1_700_000_001, body, header)), 'other timestamp');
});
