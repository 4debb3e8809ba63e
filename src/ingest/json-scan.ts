/**
 * A validating scan of a JSON object, without building it: the byte spans of its top-level
 * members, or null when the text is not exactly what JSON.parse accepts (or is nested more than
 * `maxDepth` levels, or more than SCAN_DEPTH). It lets a structured CloudEvent be read without
 * materialising its `data` (native JSON.parse builds every object of a 20 MB reading array).
 * Null only ever means "take the slow path": the caller then parses with JSON.parse, which
 * gives every error answer exactly as before. UTF-8 validity is checked by the caller.
 */
export interface TopMember { keyStart: number; keyEnd: number; valueStart: number; valueEnd: number }

/** Deeper documents go the slow path (the scan recurses once per level). */
const SCAN_DEPTH = 256;

const QUOTE = 0x22, BACKSLASH = 0x5c, COMMA = 0x2c, COLON = 0x3a;
const LBRACE = 0x7b, RBRACE = 0x7d, LBRACKET = 0x5b, RBRACKET = 0x5d;
const ZERO = 0x30, NINE = 0x39, MINUS = 0x2d, PLUS = 0x2b, DOT = 0x2e;

const WS = new Uint8Array(256);
WS[0x20] = WS[0x0a] = WS[0x0d] = WS[0x09] = 1;
/** The characters that may follow a backslash, besides 'u'. */
const ESCAPE = new Uint8Array(256);
for (const c of '"\\/bfnrt') ESCAPE[c.charCodeAt(0)] = 1;
const HEX = new Uint8Array(256);
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1;
const DIGIT = new Uint8Array(256);
for (let c = ZERO; c <= NINE; c++) DIGIT[c] = 1;
/** Bytes that go into a string as they are: not a control character, quote or backslash. */
const PLAIN = new Uint8Array(256).fill(1, 0x20);
PLAIN[QUOTE] = PLAIN[BACKSLASH] = 0;

function ws(b: Uint8Array, i: number): number {
  while (WS[b[i]!]) i++;
  return i;
}

function digits(b: Uint8Array, i: number): number {
  while (DIGIT[b[i]!]) i++;
  return i;
}

/** Index past the string starting at b[i] === '"', or -1. */
function string(b: Uint8Array, i: number): number {
  for (let j = i + 1; ;) {
    while (PLAIN[b[j]!]) j++;
    const c = b[j];
    if (c === QUOTE) return j + 1;
    if (c !== BACKSLASH) return -1; // the end, or a control character
    const e = b[j + 1]!;
    if (ESCAPE[e]) { j += 2; continue; }
    if (e !== 0x75 || !HEX[b[j + 2]!] || !HEX[b[j + 3]!] || !HEX[b[j + 4]!] || !HEX[b[j + 5]!]) return -1;
    j += 6;
  }
}

function number(b: Uint8Array, i: number): number {
  if (b[i] === MINUS) i++;
  if (b[i] === ZERO) i++;
  else if (DIGIT[b[i]!]) i = digits(b, i + 1);
  else return -1;
  if (b[i] === DOT) {
    if (!DIGIT[b[i + 1]!]) return -1;
    i = digits(b, i + 2);
  }
  if (b[i] === 0x65 || b[i] === 0x45) {
    i++;
    if (b[i] === PLUS || b[i] === MINUS) i++;
    if (!DIGIT[b[i]!]) return -1;
    i = digits(b, i + 1);
  }
  return i;
}

function literal(b: Uint8Array, i: number, word: string): number {
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word.charCodeAt(k)) return -1;
  return i + word.length;
}

/** Index past the value starting at b[i] (no whitespace before it), or -1; `levels` containers may still open. */
function value(b: Uint8Array, i: number, levels: number): number {
  const c = b[i];
  if (c === QUOTE) return string(b, i);
  if (c === LBRACE || c === LBRACKET) {
    if (levels <= 0) return -1;
    const close = c === LBRACE ? RBRACE : RBRACKET;
    i = ws(b, i + 1);
    if (b[i] === close) return i + 1;
    for (;;) {
      if (c === LBRACE) {
        if (b[i] !== QUOTE) return -1;
        i = string(b, i);
        if (i < 0) return -1;
        i = ws(b, i);
        if (b[i] !== COLON) return -1;
        i = ws(b, i + 1);
      }
      i = value(b, i, levels - 1);
      if (i < 0) return -1;
      i = ws(b, i);
      if (b[i] === COMMA) { i = ws(b, i + 1); continue; }
      return b[i] === close ? i + 1 : -1;
    }
  }
  if (c === MINUS || DIGIT[c!]) return number(b, i);
  if (c === 0x74) return literal(b, i, 'true');
  if (c === 0x66) return literal(b, i, 'false');
  if (c === 0x6e) return literal(b, i, 'null');
  return -1;
}

/** The top-level members of the JSON object that is the whole of b[start..] (whitespace around it allowed), or null. */
export function scanObject(b: Uint8Array, start: number, maxDepth: number): TopMember[] | null {
  const levels = Math.min(maxDepth, SCAN_DEPTH) - 1; // the object itself is level 1
  if (levels < 0) return null;
  let i = ws(b, start);
  if (b[i] !== LBRACE) return null;
  i = ws(b, i + 1);
  const members: TopMember[] = [];
  if (b[i] !== RBRACE) {
    for (;;) {
      if (b[i] !== QUOTE) return null;
      const keyStart = i;
      i = string(b, i);
      if (i < 0) return null;
      const keyEnd = i;
      i = ws(b, i);
      if (b[i] !== COLON) return null;
      i = ws(b, i + 1);
      const valueStart = i;
      i = value(b, i, levels);
      if (i < 0) return null;
      members.push({ keyStart, keyEnd, valueStart, valueEnd: i });
      i = ws(b, i);
      if (b[i] === COMMA) { i = ws(b, i + 1); continue; }
      if (b[i] !== RBRACE) return null;
      break;
    }
  }
  return ws(b, i + 1) === b.length ? members : null;
}
