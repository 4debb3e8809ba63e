import type { Readable } from 'node:stream';
import { HubError } from '../errors/hub-error.ts';

/** Reads a request body into memory, refusing with 413 as soon as it passes `limit`. */
export async function readBody(stream: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) {
      stream.destroy();
      throw new HubError('payload-too-large', `the body is over the limit of ${limit} bytes`);
    }
    chunks.push(buf);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}

export function declaredLength(header: string | undefined): number | null {
  if (header === undefined) return null;
  const n = Number(header);
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

/** The media type without parameters, lower-cased; charset must be UTF-8 when given. */
export function mediaType(header: string | undefined): { type: string; charset: string | null } | null {
  if (!header) return null;
  const [type, ...params] = header.split(';');
  let charset: string | null = null;
  for (const p of params) {
    const [k, v] = p.split('=');
    if (k?.trim().toLowerCase() === 'charset') charset = (v ?? '').trim().replace(/^"|"$/g, '').toLowerCase();
  }
  return { type: type!.trim().toLowerCase(), charset };
}

export function requireUtf8(charset: string | null): void {
  if (charset !== null && charset !== 'utf-8' && charset !== 'utf8') {
    throw new HubError('unsupported-media-type', `only UTF-8 JSON is accepted, not charset=${charset.slice(0, 40)}`);
  }
}
