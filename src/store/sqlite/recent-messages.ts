import type { MessageRecord } from '../types.ts';

interface Entry { message: MessageRecord; body: Buffer | null; bytes: number }

/**
 * The messages accepted last (records and inline bodies), by sequence, so that pushing one
 * right after it was accepted reads neither from SQLite. A message never changes once
 * accepted, so an entry is never stale; the oldest go first once `maxBytes` or `maxEntries`
 * is reached. Bodies are held as copies of their own bytes (a body can be a view into a whole
 * batch request, which an entry must not keep alive).
 */
export class RecentMessages {
  private readonly entries = new Map<number, Entry>();
  private bytes = 0;

  constructor(private readonly maxBytes = 8 * 1024 * 1024, private readonly maxEntries = 8192) {}

  add(message: MessageRecord, body: Buffer | undefined): void {
    const copy = body ? Buffer.from(body) : null;
    const bytes = (copy?.length ?? 0) + 512;
    if (bytes > this.maxBytes / 8) return;
    this.entries.set(message.sequence, { message, body: copy, bytes });
    this.bytes += bytes;
    while (this.bytes > this.maxBytes || this.entries.size > this.maxEntries) {
      const [oldest, entry] = this.entries.entries().next().value as [number, Entry];
      this.entries.delete(oldest);
      this.bytes -= entry.bytes;
    }
  }

  /** A copy of the record (callers may change what they are given), or undefined. */
  message(sequence: number): MessageRecord | undefined {
    const e = this.entries.get(sequence);
    return e ? { ...e.message } : undefined;
  }

  /** The inline body, or undefined when not held (a file body, or not among the recent). */
  body(sequence: number): Buffer | undefined {
    return this.entries.get(sequence)?.body ?? undefined;
  }

  get size(): number { return this.entries.size; }
}
