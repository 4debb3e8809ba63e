/**
 * Finds the byte ranges of a JSON document's top-level members (or array elements) without
 * re-serialising anything, so that `data` is archived as the exact bytes the sender wrote
 * (JSON.parse + JSON.stringify would change number precision and spacing). The input must be
 * valid JSON already (checked by JSON.parse); this scanner only has to be correct on valid input,
 * plus enforce the nesting limit.
 */
export interface Span { start: number; end: number }
export interface MemberSpan { key: string; value: Span }

export class JsonShapeError extends Error {}

const WS = new Uint8Array(256);
WS[0x20] = WS[0x0a] = WS[0x0d] = WS[0x09] = 1;

function skipWs(b: Uint8Array, i: number): number {
  while (i < b.length && WS[b[i]!]) i++;
  return i;
}

/** Index just past the string that starts at b[i] === '"'. */
function skipString(b: Uint8Array, i: number): number {
  i++;
  for (;;) {
    const c = b[i];
    if (c === undefined) throw new JsonShapeError('unterminated string');
    if (c === 0x5c) i += 2;
    else if (c === 0x22) return i + 1;
    else i++;
  }
}

/** Index just past the value that starts at b[i]; throws past `maxDepth` levels of nesting. */
export function skipValue(b: Uint8Array, i: number, maxDepth: number): number {
  const c = b[i];
  if (c === 0x22) return skipString(b, i);
  if (c !== 0x7b && c !== 0x5b) {
    while (i < b.length) {
      const d = b[i]!;
      if (d === 0x2c || d === 0x7d || d === 0x5d || WS[d]) break;
      i++;
    }
    return i;
  }
  let depth = 0;
  while (i < b.length) {
    const d = b[i]!;
    if (d === 0x22) { i = skipString(b, i); continue; }
    if (d === 0x7b || d === 0x5b) {
      depth++;
      if (depth > maxDepth) throw new JsonShapeError(`JSON nested deeper than ${maxDepth} levels`);
    } else if (d === 0x7d || d === 0x5d) {
      depth--;
      if (depth === 0) return i + 1;
    }
    i++;
  }
  throw new JsonShapeError('unterminated value');
}

/** The members of the object spanning [start, end). Duplicate keys are refused. */
export function objectMembers(b: Uint8Array, span: Span, maxDepth: number): MemberSpan[] {
  let i = skipWs(b, span.start);
  if (b[i] !== 0x7b) throw new JsonShapeError('not a JSON object');
  i = skipWs(b, i + 1);
  const out: MemberSpan[] = [];
  const seen = new Set<string>();
  if (b[i] === 0x7d) return out;
  for (;;) {
    const keyStart = i;
    i = skipString(b, i);
    const key = JSON.parse(Buffer.from(b.buffer, b.byteOffset + keyStart, i - keyStart).toString('utf8')) as string;
    if (seen.has(key)) throw new JsonShapeError(`duplicate member "${key.slice(0, 64)}"`);
    seen.add(key);
    i = skipWs(b, i);
    i = skipWs(b, i + 1); // past ':'
    const vStart = i;
    i = skipValue(b, i, maxDepth - 1);
    out.push({ key, value: { start: vStart, end: i } });
    i = skipWs(b, i);
    if (b[i] === 0x2c) { i = skipWs(b, i + 1); continue; }
    return out;
  }
}

/** The elements of the array spanning [start, end). */
export function arrayElements(b: Uint8Array, span: Span, maxDepth: number): Span[] {
  let i = skipWs(b, span.start);
  if (b[i] !== 0x5b) throw new JsonShapeError('not a JSON array');
  i = skipWs(b, i + 1);
  const out: Span[] = [];
  if (b[i] === 0x5d) return out;
  for (;;) {
    const start = i;
    i = skipValue(b, i, maxDepth - 1);
    out.push({ start, end: i });
    i = skipWs(b, i);
    if (b[i] === 0x2c) { i = skipWs(b, i + 1); continue; }
    return out;
  }
}

/**
 * Checks a whole (valid) JSON document from `start`: nesting at most `maxDepth` levels, no
 * object with the same member name twice and no `__proto__` member, at any level. For bodies
 * the hub reads itself as settings (admin, inbox): there, what a duplicate means would depend
 * on the parser. (A CloudEvent's `data` is not checked this way: it is the sender's, kept as sent.)
 */
export function checkJsonDocument(b: Uint8Array, start: number, maxDepth: number): void {
  const stack: Array<Set<string> | null> = [];
  let expectKey = false;
  for (let i = start; i < b.length; i++) {
    const c = b[i]!;
    if (c === 0x22) {
      const end = skipString(b, i);
      const top = stack.length > 0 ? stack[stack.length - 1] : null;
      if (top && expectKey) {
        const slice = Buffer.from(b.buffer, b.byteOffset + i, end - i);
        const key = slice.includes(0x5c) ? (JSON.parse(slice.toString('utf8')) as string) : slice.toString('utf8', 1, slice.length - 1);
        if (top.has(key)) throw new JsonShapeError(`duplicate member "${key.slice(0, 64)}"`);
        if (key === '__proto__') throw new JsonShapeError('a member may not be named "__proto__"');
        top.add(key);
        expectKey = false;
      }
      i = end - 1;
      continue;
    }
    if (c === 0x7b || c === 0x5b) {
      stack.push(c === 0x7b ? new Set() : null);
      if (stack.length > maxDepth) throw new JsonShapeError(`JSON nested deeper than ${maxDepth} levels`);
      expectKey = c === 0x7b;
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c) {
      expectKey = stack.length > 0 && stack[stack.length - 1] !== null;
    }
  }
}
