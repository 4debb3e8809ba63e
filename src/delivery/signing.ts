/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com/):
 *   webhook-signature: v1,<base64(HMAC-SHA256(key, `${msgId}.${timestampSec}.${body}`))>
 * When secrets rotate, both signatures are sent, separated by a space.
 */
import { createHmac, randomBytes, type Hmac } from 'node:crypto';

const PREFIX = 'whsec_';

/** A new secret: 'whsec_' + base64 of 24 random bytes. */
export function generateSecret(): string {
  return PREFIX + randomBytes(24).toString('base64');
}

/** 'v1,' + base64 HMAC-SHA256 of `${msgId}.${timestampSec}.` + body. */
export function signatureFor(secret: string, msgId: string, timestampSec: number, body: Buffer): string {
  return finish(start(secret, msgId, timestampSec).update(body));
}

/** Space-separated signatures, one per secret (two during rotation). */
export function signatureHeader(secrets: string[], msgId: string, timestampSec: number, body: Buffer): string {
  const s = createSigner(secrets, msgId, timestampSec);
  s.update(body);
  return s.digest();
}

/** Streaming form of signatureHeader, for large bodies: update() with each chunk, then digest() once. */
export function createSigner(
  secrets: string[],
  msgId: string,
  timestampSec: number,
): { update(chunk: Buffer): void; digest(): string } {
  if (secrets.length === 0) throw new TypeError('at least one signing secret is required');
  const hmacs = secrets.map((secret) => start(secret, msgId, timestampSec));
  let done = false;
  return {
    update(chunk: Buffer): void {
      if (done) throw new Error('signer already digested');
      for (const h of hmacs) h.update(chunk);
    },
    digest(): string {
      if (done) throw new Error('signer already digested');
      done = true;
      return hmacs.map(finish).join(' ');
    },
  };
}

function start(secret: string, msgId: string, timestampSec: number): Hmac {
  if (!Number.isSafeInteger(timestampSec) || timestampSec < 0) {
    throw new RangeError(`timestampSec must be a non-negative integer of seconds, got ${timestampSec}`);
  }
  return createHmac('sha256', keyFor(secret)).update(`${msgId}.${timestampSec}.`);
}

function finish(h: Hmac): string {
  return `v1,${h.digest('base64')}`;
}

// ---- key decoding, cached: this is on the hot path ---------------------------

const KEY_CACHE_MAX = 256;
const keyCache = new Map<string, Buffer>();
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;

/** Decoded key bytes: the base64 after 'whsec_', or the whole string as base64 if there is no prefix. */
function keyFor(secret: string): Buffer {
  const cached = keyCache.get(secret);
  if (cached) return cached;
  const b64 = secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret;
  // Buffer.from(…, 'base64') quietly skips bad characters, which would sign with the
  // wrong key. Reject bad base64 instead. The secret is never put in the message.
  if (b64 === '' || !BASE64.test(b64)) throw new TypeError('signing secret is not valid base64');
  const key = Buffer.from(b64, 'base64');
  if (keyCache.size >= KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value as string);
  keyCache.set(secret, key);
  return key;
}
