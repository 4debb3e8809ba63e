import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A new API key: 192 random bits, shown once. `mh_` marks it as a meterhub key in secret scanners. */
export function generateKey(): { id: string; key: string } {
  const id = randomBytes(6).toString('hex');
  return { id, key: `mh_${id}_${randomBytes(24).toString('base64url')}` };
}

/** Keys are stored only as this hash. Keys are high-entropy, so a plain SHA-256 is enough (no KDF needed). */
export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function hashesEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** A stable key ID for a pre-shared key from the config file. */
export function configKeyId(hash: string): string {
  return `cfg-${hash.slice(0, 12)}`;
}
