/**
 * Large request bodies for the large-payload benchmark, made as streams (never one big Buffer)
 * and hashed as they are made, so that the sender's own memory stays small and its SHA-256 can
 * be compared with what the hub archived and what the receiver got.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { Readable } from 'node:stream';

export interface StreamedBody {
  /** The bytes, in chunks of about `CHUNK` bytes; can be read once. */
  stream: Readable;
  /** Exact length in bytes (known before the first byte is made). */
  size: number;
  /** SHA-256 (hex) of every byte, known once the stream has ended. */
  sha256(): string;
  /** SHA-256 (hex) of the bytes the hub keeps as the message's data, known once the stream has ended. */
  dataSha256(): string;
}

const CHUNK = 64 * 1024;

/** `size` random bytes (a binary-mode body: the data is the whole body). */
export function binaryBody(size: number): StreamedBody {
  const hash = createHash('sha256');
  let digest: string | null = null;
  const finished = () => (digest ??= hash.digest('hex'));
  function* chunks() {
    for (let sent = 0; sent < size; sent += CHUNK) {
      const chunk = randomFillSync(Buffer.allocUnsafe(Math.min(CHUNK, size - sent)));
      hash.update(chunk);
      yield chunk;
    }
    finished();
  }
  return { stream: Readable.from(chunks(), { objectMode: false }), size, sha256: finished, dataSha256: finished };
}

const READINGS_PER_CHUNK = 1000;

/** One interval reading of fixed width, so that the body's size is known in advance. */
function reading(i: number): string {
  const v = ((i * 7919) % 10_000) / 1000;
  return `{"t":"${String(i).padStart(9, '0')}","v":${v.toFixed(3)},"q":"A"}`;
}

/**
 * A structured CloudEvent (application/cloudevents+json) of exactly `size` bytes whose `data`
 * is an object with a big `readings` array; `dataSha256` is the hash of the `data` member's
 * bytes, which the hub archives as sent and pushes as the body.
 */
export function jsonEventBody(size: number, envelope: { id: string; source: string; type: string; subject: string }): StreamedBody {
  const head = `{"specversion":"1.0","id":${JSON.stringify(envelope.id)},"source":${JSON.stringify(envelope.source)},"type":${JSON.stringify(envelope.type)},"subject":${JSON.stringify(envelope.subject)},"time":"2024-01-01T00:00:00+10:00","datacontenttype":"application/json","data":`;
  const dataHeadOf = (note: string) => `{"nmi":${JSON.stringify(envelope.subject)},"uom":"KWH","intervalLength":30,"note":"${note}","readings":[`;
  const dataTail = ']}';
  const tail = '}';
  const readingBytes = reading(0).length; // every reading has this width (ASCII)
  const fixed = head.length + dataHeadOf('').length + dataTail.length + tail.length;
  if (size < fixed + readingBytes) throw new Error(`a JSON body of ${size} bytes is too small`);
  // n readings take n × width + (n - 1) commas; the note pads the rest.
  const count = Math.floor((size - fixed + 1) / (readingBytes + 1));
  const dataHead = dataHeadOf('x'.repeat(size - fixed - (count * (readingBytes + 1) - 1)));
  const body = createHash('sha256');
  const data = createHash('sha256');
  let digests: { body: string; data: string } | null = null;
  const finished = () => (digests ??= { body: body.digest('hex'), data: data.digest('hex') });
  function* chunks() {
    const emit = (text: string, isData: boolean) => {
      const buf = Buffer.from(text, 'utf8');
      body.update(buf);
      if (isData) data.update(buf);
      return buf;
    };
    yield emit(head, false);
    yield emit(dataHead, true);
    for (let i = 0; i < count; i += READINGS_PER_CHUNK) {
      const parts: string[] = [];
      for (let j = i; j < Math.min(count, i + READINGS_PER_CHUNK); j++) parts.push(reading(j));
      yield emit((i > 0 ? ',' : '') + parts.join(','), true);
    }
    yield emit(dataTail, true);
    yield emit(tail, false);
    finished();
  }
  return { stream: Readable.from(chunks(), { objectMode: false }), size, sha256: () => finished().body, dataSha256: () => finished().data };
}
