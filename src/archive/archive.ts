import type { Readable } from 'node:stream';
import { Readable as ReadableStream } from 'node:stream';
import type { Store } from '../store/store.ts';
import type { MessageRecord } from '../store/types.ts';
import type { BodyStore } from './body-store.ts';

/** Reads the exact bytes of an accepted message, wherever they are kept: inline in the Store, or in the body store. */
export class Archive {
  constructor(private readonly store: Store, readonly bodies: BodyStore) {}

  async read(message: MessageRecord): Promise<Buffer> {
    if (message.body.kind === 'file') return this.bodies.read(message.body.key);
    const data = await this.store.readInlineBody(message.sequence);
    if (data === null) throw new Error(`body of message ${message.sequence} is missing`);
    return data;
  }

  async stream(message: MessageRecord): Promise<Readable> {
    if (message.body.kind === 'file') return this.bodies.open(message.body.key);
    return ReadableStream.from([await this.read(message)]);
  }
}
