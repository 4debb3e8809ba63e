import { createHash, hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { EventAttributes } from '../store/types.ts';

/** Same fingerprint = same content: attributes (key order ignored), content type and body hash. */
export function fingerprintOf(attributes: EventAttributes, contentType: string, sha256: string): string {
  const keys = Object.keys(attributes).sort();
  const canonical = JSON.stringify(keys.map((k) => [k, attributes[k]]));
  // One-shot hashes: a Hash object and its update calls cost more than hashing a 1 KB event.
  return hash('sha256', `${canonical}\n${contentType}\n${sha256}`, 'hex');
}

export function sha256Hex(data: Buffer): string {
  return hash('sha256', data, 'hex');
}

export async function sha256OfStream(data: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of data) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
