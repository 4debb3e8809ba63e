import type { Readable } from 'node:stream';
import { Readable as ReadableStream } from 'node:stream';
import type { Store } from '../store/store.ts';
import type { MessageRecord } from '../store/types.ts';
import { FileBodies } from './file-bodies.ts';

/** Reads the exact bytes of an accepted message, wherever they are kept. */
export class Archive {
  constructor(private readonly store: Store, readonly files: FileBodies) {}

  async read(message: MessageRecord): Promise<Buffer> {
    if (message.body.kind === 'file') return this.files.read(message.body.key);
    const data = await this.store.readInlineBody(message.sequence);
    if (data === null) throw new Error(`body of message ${message.sequence} is missing`);
    return data;
  }

  async stream(message: MessageRecord): Promise<Readable> {
    if (message.body.kind === 'file') return this.files.open(message.body.key);
    return ReadableStream.from([await this.read(message)]);
  }
}
