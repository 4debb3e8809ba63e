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

/** The bytes that matter inside a container: quote, braces, brackets. */
const STRUCTURAL = new Uint8Array(256);
STRUCTURAL[0x22] = STRUCTURAL[0x7b] = STRUCTURAL[0x7d] = STRUCTURAL[0x5b] = STRUCTURAL[0x5d] = 1;

function skipWs(b: Uint8Array, i: number): number {
  while (i < b.length && WS[b[i]!]) i++;
  return i;
}

/** Index just past the string that starts at b[i] === '"'. */
function skipString(b: Uint8Array, i: number): number {
  // Short strings (most attribute values) by hand; long ones jump quote to quote natively.
  const stop = Math.min(b.length, i + 32);
  for (i++; i < stop; i++) {
    const c = b[i]!;
    if (c === 0x5c) i++;
    else if (c === 0x22) return i + 1;
  }
  if (i >= b.length) throw new JsonShapeError('unterminated string');
  for (;;) {
    const q = b.indexOf(0x22, i);
    if (q < 0) throw new JsonShapeError('unterminated string');
    // The quote ends the string unless an odd number of backslashes precede it.
    let k = q - 1;
    while (b[k] === 0x5c) k--;
    if ((q - 1 - k) % 2 === 0) return q + 1;
    i = q + 1;
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
    if (!STRUCTURAL[d]) { i++; continue; }
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

/**
 * The fast path of objectMembers for a CloudEvent: the span of its `data` member (null when it
 * has none), after the same nesting checks. `uniqueKeys` is how many keys JSON.parse found in
 * this object: if the text has more members than that, some name is repeated. Answers
 * undefined whenever objectMembers could refuse the object (a repeated name, too deep), so that
 * the caller asks objectMembers itself, which throws the error it always threw, in its order.
 */
export function dataMember(b: Uint8Array, span: Span, maxDepth: number, uniqueKeys: number): Span | null | undefined {
  let i = skipWs(b, span.start);
  if (b[i] !== 0x7b) return undefined;
  i = skipWs(b, i + 1);
  if (b[i] === 0x7d) return uniqueKeys === 0 ? null : undefined;
  let members = 0;
  let data: Span | null = null;
  try {
    for (;;) {
      const keyStart = i;
      i = skipString(b, i);
      const isData = isDataKey(b, keyStart, i);
      members++;
      i = skipWs(b, i);
      i = skipWs(b, i + 1); // past ':'
      const vStart = i;
      i = skipValue(b, i, maxDepth - 1);
      if (isData) data = { start: vStart, end: i };
      i = skipWs(b, i);
      if (b[i] === 0x2c) { i = skipWs(b, i + 1); continue; }
      break;
    }
  } catch (e) {
    if (e instanceof JsonShapeError) return undefined;
    throw e;
  }
  return members === uniqueKeys ? data : undefined;
}

/** Whether the key string spanning [start, end) (quotes included) is "data", escapes and all. */
export function isDataKey(b: Uint8Array, start: number, end: number): boolean {
  if (end - start === 6) return b[start + 1] === 0x64 && b[start + 2] === 0x61 && b[start + 3] === 0x74 && b[start + 4] === 0x61;
  if (end - start < 6) return false;
  for (let i = start + 1; i < end - 1; i++) {
    if (b[i] === 0x5c) return JSON.parse(Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('utf8')) === 'data';
  }
  return false;
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
