import { Readable } from 'node:stream';
import { HubError } from '../errors/hub-error.ts';

function tooLarge(limit: number): HubError {
  return new HubError('payload-too-large', `the body is over the limit of ${limit} bytes`);
}

/**
 * A view of a request body that fails with 413 as soon as it passes `limit`. The request itself
 * is never destroyed: destroying an incoming request resets the connection, and the client would
 * get ECONNRESET instead of the 413. Once the view fails or is abandoned, what is left of the
 * request is read and dropped (the 413 answer says `Connection: close`, so that is short).
 */
export function limitedBody(source: Readable, limit: number): Readable {
  let size = 0;
  let attached = false;
  let detached = false;
  const detach = () => {
    if (detached) return;
    detached = true;
    if (!attached) return; // never read: the request is left as it is
    source.off('data', onData);
    source.off('end', onEnd);
    source.off('error', onError);
    source.on('error', () => { /* the client went away; nothing is waiting for this body any more */ });
    source.resume();
  };
  const out = new Readable({
    read() {
      if (detached) return;
      if (!attached && source.readableEnded) { detached = true; out.push(null); return; }
      if (!attached) {
        // Listen only once someone reads, so that an error cannot be raised before anyone listens.
        attached = true;
        source.on('data', onData);
        source.once('end', onEnd);
        source.once('error', onError);
      }
      source.resume();
    },
    destroy(err, cb) { detach(); cb(err); },
  });
  const onData = (chunk: Buffer) => {
    size += chunk.length;
    if (size > limit) { out.destroy(tooLarge(limit)); return; }
    if (!out.push(chunk)) source.pause();
  };
  const onEnd = () => { detached = true; out.push(null); };
  const onError = (err: Error) => out.destroy(err);
  return out;
}

/**
 * Reads a request body into memory, refusing with 413 as soon as it passes `limit`. As
 * limitedBody, but straight from the request's events (no stream in between: this runs for
 * every structured event). The request is never destroyed; after a 413 or an error the rest of
 * it is read and dropped.
 */
export function readBody(source: Readable, limit: number): Promise<Buffer> {
  if (source.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (err: Error) => {
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', stop);
      source.on('error', ignore);
      source.resume();
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) stop(tooLarge(limit));
      else chunks.push(chunk);
    };
    const onEnd = () => {
      source.off('data', onData);
      source.off('error', stop);
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    source.on('data', onData);
    source.once('end', onEnd);
    source.once('error', stop);
  });
}

/** The client went away after its body was refused or failed; nothing is waiting for it any more. */
function ignore(): void { /* nothing */ }

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
