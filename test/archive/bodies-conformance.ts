/**
 * The BodyStore conformance suite: FileBodies, S3Bodies and PostgresBodies run these same cases
 * (like test/store/conformance.ts for the Store). An adapter's test file calls
 * `runBodyStoreConformance(name, open, opts)`, where `open` makes a store for one case, empty or
 * not, and `leftovers` lists what the store holds beyond the bodies it was given (for "a failed put
 * leaves nothing behind"). Every body is made here from a seed, so a 50 MB body is never whole in
 * the test's memory either: it is checked by size and SHA-256, smaller ones byte for byte.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import { BodyMissingError, type BodyStore } from '../../src/archive/body-store.ts';
import { HubError } from '../../src/errors/hub-error.ts';

export interface OpenedBodyStore {
  store: BodyStore;
  /** Everything the store holds right now, as keys or descriptions (objects, rows, files, uploads in progress). */
  holdings(): Promise<string[]>;
  cleanup(): Promise<void>;
}

export interface BodyConformanceOptions {
  /** Set: the whole suite is skipped with this message. */
  skip?: string | false;
  /** The store's own unit (S3 part, PostgreSQL chunk): bodies around it are tried. */
  unitBytes: number;
  /** Live memory a streamed put may grow by, at most (the big body is 50 MiB). */
  maxGrowthBytes: number;
}

export const MIB = 1024 * 1024;
const BIG = 50 * MIB;

// ---------------------------------------------------------------------------------------------
// Bodies made from a seed, in chunks of varying size, never whole in memory.

/** The bytes of body `seed` from `offset`, `length` of them: an AES-256-CTR key stream (varied, incompressible, seekable). */
function bytesAt(seed: string, offset: number, length: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(Math.floor(offset / 16)), 8);
  const skip = offset % 16;
  const cipher = createCipheriv('aes-256-ctr', key, iv);
  return cipher.update(Buffer.alloc(skip + length)).subarray(skip);
}

/** The whole body in memory (small ones only). */
export function bodyOf(seed: string, size: number): Buffer {
  return bytesAt(seed, 0, size);
}

/** A stream of body `seed`, in chunks of 1 byte to `maxChunk` bytes; `onChunk` sees each as it is pulled. */
export function bodyStream(seed: string, size: number, opts: { maxChunk?: number; onChunk?: (pulled: number) => void; failAt?: number } = {}): Readable {
  const maxChunk = opts.maxChunk ?? 64 * 1024;
  let offset = 0;
  let i = 0;
  return Readable.from((async function* () {
    while (offset < size) {
      if (opts.failAt !== undefined && offset >= opts.failAt) throw Object.assign(new Error('the client went away'), { code: 'ECONNRESET' });
      // Chunk sizes vary (1 byte, odd sizes, full) so that every boundary is crossed some way.
      const want = i++ % 7 === 3 ? 1 + (i % 13) : maxChunk - (i % 5) * 1000;
      const n = Math.min(Math.max(1, want), size - offset);
      const chunk = bytesAt(seed, offset, n);
      offset += n;
      opts.onChunk?.(offset);
      yield chunk;
    }
  })(), { objectMode: false });
}

/** SHA-256 of body `seed` without holding it. */
export function shaOf(seed: string, size: number): string {
  const h = createHash('sha256');
  for (let off = 0; off < size; off += MIB) h.update(bytesAt(seed, off, Math.min(MIB, size - off)));
  return h.digest('hex');
}

async function drain(stream: Readable): Promise<{ size: number; sha256: string }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) { h.update(chunk as Buffer); size += (chunk as Buffer).length; }
  return { size, sha256: h.digest('hex') };
}

// ---------------------------------------------------------------------------------------------
// Live memory: heap plus array buffers (where Buffers live), measured after a full GC, so that
// garbage not yet collected does not count, only what is really held.

v8.setFlagsFromString('--expose_gc');
const gc = vm.runInNewContext('gc') as () => void;
function liveBytes(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/**
 * Runs `fn`, sampling live memory every `everyBytes` pulled from the body (the caller calls
 * `sample` from its stream) and every 20 ms; returns the largest growth over the start and
 * the growth of RSS (for the record: RSS also holds freed memory the allocator kept).
 */
export async function measureGrowth<T>(fn: (sample: () => void) => Promise<T>): Promise<{ result: T; growth: number; rssGrowth: number }> {
  const base = liveBytes();
  const rss0 = process.memoryUsage().rss;
  let peak = base;
  let peakRss = rss0;
  const sample = () => {
    peak = Math.max(peak, liveBytes());
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  };
  const timer = setInterval(sample, 20);
  try {
    const result = await fn(sample);
    sample(); // with the result still held
    return { result, growth: peak - base, rssGrowth: peakRss - rss0 };
  } finally {
    clearInterval(timer);
  }
}

// ---------------------------------------------------------------------------------------------

export function runBodyStoreConformance(name: string, open: () => Promise<OpenedBodyStore>, opts: BodyConformanceOptions): void {
  const test = (title: string, fn: (s: OpenedBodyStore) => Promise<void>, timeout = 60_000) =>
    it(title, { timeout }, async () => {
      const s = await open();
      try { await fn(s); } finally { await s.cleanup(); }
    });
  const unit = opts.unitBytes;

  describe(name, { skip: opts.skip || false }, () => {
    test('putBuffer: round trip byte for byte (empty, small, several units)', async ({ store }) => {
      for (const size of [0, 1, 1000, unit, unit + 1, 2 * unit + 17]) {
        const data = bodyOf(`buf-${size}`, size);
        const key = await store.putBuffer(data);
        assert.ok(typeof key === 'string' && key.length > 0);
        assert.ok((await store.read(key)).equals(data), `read of ${size} bytes`);
        const streamed = await drain(await store.open(key));
        assert.deepEqual(streamed, { size, sha256: createHash('sha256').update(data).digest('hex') }, `open of ${size} bytes`);
      }
    });

    test('putStream: size and SHA-256 are the body\'s, and it reads back byte for byte, around every unit boundary', async ({ store }) => {
      for (const size of [0, 1, 5000, unit - 1, unit, unit + 1, 3 * unit + 12_345]) {
        const seed = `stream-${size}`;
        const stored = await store.putStream(bodyStream(seed, size), size);
        assert.equal(stored.size, size);
        assert.equal(stored.sha256, shaOf(seed, size));
        assert.match(stored.sha256, /^[0-9a-f]{64}$/);
        if (size <= 2 * unit) assert.ok((await store.read(stored.key)).equals(bodyOf(seed, size)), `read of ${size} bytes`);
        assert.deepEqual(await drain(await store.open(stored.key)), { size, sha256: stored.sha256 }, `open of ${size} bytes`);
      }
    });

    test('every put gets its own key; concurrent puts do not mix', async ({ store }) => {
      const sizes = [unit + 3, 200_000, 0, 2 * unit + 1, 77];
      const stored = await Promise.all(sizes.map((size, i) => store.putStream(bodyStream(`conc-${i}`, size), size)));
      const buffered = await Promise.all([1, 2, 3].map((i) => store.putBuffer(bodyOf(`conc-buf-${i}`, 1000 * i))));
      const keys = [...stored.map((s) => s.key), ...buffered];
      assert.equal(new Set(keys).size, keys.length);
      for (const [i, s] of stored.entries()) assert.deepEqual(await drain(await store.open(s.key)), { size: sizes[i], sha256: shaOf(`conc-${i}`, sizes[i]!) });
      for (const [i, key] of buffered.entries()) assert.ok((await store.read(key)).equals(bodyOf(`conc-buf-${i + 1}`, 1000 * (i + 1))));
    });

    test('a 50 MiB streamed body: stored and read back exactly, with bounded memory on the way in and out', async ({ store }) => {
      // Warm the store up (connections, lazily loaded code) so that their one-off cost is not counted.
      await store.remove((await store.putStream(bodyStream('warm', unit + 10), unit + 10)).key);
      const seed = 'big-50';
      const expected = shaOf(seed, BIG);
      let lastSample = 0;
      const put = await measureGrowth((sample) => store.putStream(bodyStream(seed, BIG, {
        onChunk: (pulled) => { if (pulled - lastSample >= MIB) { lastSample = pulled; sample(); } },
      }), BIG));
      assert.equal(put.result.size, BIG);
      assert.equal(put.result.sha256, expected);
      assert.ok(put.growth < opts.maxGrowthBytes,
        `live memory grew by ${(put.growth / MIB).toFixed(1)} MiB during the put of ${BIG / MIB} MiB (at most ${(opts.maxGrowthBytes / MIB).toFixed(1)} MiB allowed; RSS grew ${(put.rssGrowth / MIB).toFixed(1)} MiB)`);
      const read = await measureGrowth(async (sample) => {
        const h = createHash('sha256');
        let size = 0;
        let at = 0;
        for await (const chunk of await store.open(put.result.key)) {
          h.update(chunk as Buffer);
          size += (chunk as Buffer).length;
          if (size - at >= MIB) { at = size; sample(); }
        }
        return { size, sha256: h.digest('hex') };
      });
      assert.deepEqual(read.result, { size: BIG, sha256: expected }, 'the stream read back is the body, byte for byte');
      assert.ok(read.growth < opts.maxGrowthBytes, `live memory grew by ${(read.growth / MIB).toFixed(1)} MiB while streaming it back`);
      // For the record, in the test output.
      console.log(`# ${name}: 50 MiB put: live memory +${(put.growth / MIB).toFixed(1)} MiB (RSS +${(put.rssGrowth / MIB).toFixed(1)} MiB); read back: +${(read.growth / MIB).toFixed(1)} MiB`);
    }, 180_000);

    test('the measure itself: a put that held the whole body would be caught', async () => {
      let lastSample = 0;
      const naive = await measureGrowth(async (sample) => {
        const chunks: Buffer[] = [];
        for await (const c of bodyStream('naive', 20 * MIB, { onChunk: (p) => { if (p - lastSample >= MIB) { lastSample = p; sample(); } } })) chunks.push(c as Buffer);
        return chunks;
      });
      assert.ok(naive.growth >= 19 * MIB, `holding 20 MiB shows as ${(naive.growth / MIB).toFixed(1)} MiB`);
    });

    test('past the limit: 413 payload-too-large, and nothing is left behind (small, and past several units)', async (s) => {
      const before = await s.holdings();
      for (const [size, limit] of [[11, 10], [3 * unit, unit + unit / 2], [3 * unit + 5, 3 * unit + 4]] as const) {
        await assert.rejects(s.store.putStream(bodyStream(`over-${size}`, size), limit), (e: unknown) => {
          assert.ok(e instanceof HubError, `a HubError, not ${String(e)}`);
          assert.equal(e.status, 413);
          assert.equal(e.code, 'payload-too-large');
          return true;
        });
        assert.deepEqual(await s.holdings(), before, `nothing left after ${size} bytes over a limit of ${limit}`);
      }
      // Exactly the limit is accepted.
      const ok = await s.store.putStream(bodyStream('at-limit', unit + 1), unit + 1);
      assert.equal(ok.size, unit + 1);
    });

    test('a body stream that fails (the client went away): the put rejects with its error, and nothing is left behind', async (s) => {
      const before = await s.holdings();
      for (const failAt of [0, 1000, 2 * unit + 10]) {
        await assert.rejects(s.store.putStream(bodyStream(`fail-${failAt}`, 3 * unit, { failAt }), 10 * unit), /the client went away/);
        assert.deepEqual(await s.holdings(), before, `nothing left after a failure at byte ${failAt}`);
      }
    });

    test('remove: the body is gone, reading it fails clearly, and removing it again is not an error', async (s) => {
      const before = await s.holdings();
      const stored = await s.store.putStream(bodyStream('to-remove', 2 * unit + 5), 3 * unit);
      const small = await s.store.putBuffer(Buffer.from('small'));
      assert.notDeepEqual(await s.holdings(), before);
      await s.store.remove(stored.key);
      await s.store.remove(small);
      assert.deepEqual(await s.holdings(), before, 'nothing of them is left');
      for (const key of [stored.key, small]) {
        await assert.rejects(s.store.read(key), BodyMissingError);
        await assert.rejects(s.store.open(key), BodyMissingError);
        await s.store.remove(key);
      }
    });

    test('reading a key that was never written fails clearly (BodyMissingError naming the key)', async ({ store }) => {
      const real = await store.putBuffer(Buffer.from('x'));
      await store.remove(real);
      for (const op of [(k: string) => store.read(k), (k: string) => store.open(k)]) {
        await assert.rejects(op(real), (e: unknown) => {
          assert.ok(e instanceof BodyMissingError, `BodyMissingError, not ${String(e)}`);
          assert.equal(e.code, 'EBODYMISSING');
          assert.ok(e.message.includes(real), e.message);
          return true;
        });
        // Not a key of this store at all (another store's, or junk): the same clear failure, not a crash.
        for (const junk of ['', '../../etc/passwd', 'zz/not-a-key']) await assert.rejects(op(junk), BodyMissingError);
      }
    });

    test('a body read in part and abandoned holds nothing up (more abandoned reads than connections)', async ({ store }) => {
      const stored = await store.putStream(bodyStream('abandoned', 3 * unit), 3 * unit);
      for (let i = 0; i < 25; i++) {
        const stream = await store.open(stored.key);
        for await (const _ of stream) break; // destroys the stream after its first chunk
      }
      assert.deepEqual(await drain(await store.open(stored.key)), { size: 3 * unit, sha256: shaOf('abandoned', 3 * unit) });
    });
  });
}
