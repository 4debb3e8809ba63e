import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { EventAttributes } from '../store/types.ts';

/** Same fingerprint = same content: attributes (key order ignored), content type and body hash. */
export function fingerprintOf(attributes: EventAttributes, contentType: string, sha256: string): string {
  const keys = Object.keys(attributes).sort();
  const canonical = JSON.stringify(keys.map((k) => [k, attributes[k]]));
  return createHash('sha256').update(canonical).update('\n').update(contentType).update('\n').update(sha256).digest('hex');
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function sha256OfStream(data: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of data) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
