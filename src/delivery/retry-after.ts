/**
 * Parse an HTTP `Retry-After` header (RFC 9110 §10.2.3) into a delay in ms.
 *
 * Accepted forms:
 *  - delay-seconds: a non-negative integer (`120`)
 *  - HTTP-date, IMF-fixdate:  `Sun, 06 Nov 1994 08:49:37 GMT`
 *  - obsolete RFC 850:        `Sunday, 06-Nov-94 08:49:37 GMT`
 *  - obsolete asctime:        `Sun Nov  6 08:49:37 1994` (always UTC)
 *
 * The dates are matched with strict patterns and built with `Date.UTC`,
 * rather than handed to `Date.parse`. `Date.parse` accepts junk such as
 * `"1"` or `"2024"`, and it reads asctime as local time.
 *
 * Returns null for junk, negative, fractional or empty values. A date in the
 * past gives 0. Large values come back unchanged (the retry policy caps them),
 * but never above Number.MAX_SAFE_INTEGER.
 */
export function parseRetryAfter(value: string | string[] | undefined, now: Date): number | null {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined) return null;
  const v = raw.trim();
  if (v === '') return null;

  if (/^[0-9]+$/.test(v)) {
    // Number() of a very long digit string is a huge float or Infinity; the cap handles both.
    return Math.min(Number(v) * 1000, Number.MAX_SAFE_INTEGER);
  }

  const dateMs = parseHttpDate(v, now);
  if (dateMs === null) return null;
  return Math.min(Math.max(0, dateMs - now.getTime()), Number.MAX_SAFE_INTEGER);
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAY = '(?:mon|tue|wed|thu|fri|sat|sun)';
const LONG_DAY = '(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)';
const MON = '(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)';
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';

// Sun, 06 Nov 1994 08:49:37 GMT
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MON} (\\d{4}) ${TIME} GMT$`, 'i');
// Sunday, 06-Nov-94 08:49:37 GMT
const RFC850 = new RegExp(`^${LONG_DAY}, (\\d{2})-${MON}-(\\d{2}) ${TIME} GMT$`, 'i');
// Sun Nov  6 08:49:37 1994   (day space-padded or 2 digits; a single space is tolerated)
const ASCTIME = new RegExp(`^${DAY} ${MON} (?: ?(\\d)|(\\d{2})) ${TIME} (\\d{4})$`, 'i');

/** The HTTP-date as epoch ms, or null if it is not a valid HTTP-date. */
function parseHttpDate(v: string, now: Date): number | null {
  let m = IMF_FIXDATE.exec(v);
  if (m) return build(+m[3]!, m[2]!, +m[1]!, +m[4]!, +m[5]!, +m[6]!);

  m = RFC850.exec(v);
  if (m) {
    // RFC 9110 §5.6.7: a two-digit year that looks more than 50 years in the
    // future is taken as the most recent past year with those digits. The
    // other 100-year window edge is handled the same way.
    const yy = +m[3]!;
    let year = Math.floor(now.getUTCFullYear() / 100) * 100 + yy;
    if (year > now.getUTCFullYear() + 50) year -= 100;
    else if (year <= now.getUTCFullYear() - 50) year += 100;
    return build(year, m[2]!, +m[1]!, +m[4]!, +m[5]!, +m[6]!);
  }

  m = ASCTIME.exec(v);
  if (m) return build(+m[7]!, m[1]!, +(m[2] ?? m[3])!, +m[4]!, +m[5]!, +m[6]!);

  return null;
}

function build(year: number, mon: string, day: number, h: number, mi: number, s: number): number | null {
  const month = MONTHS.indexOf(mon.toLowerCase());
  if (month < 0 || day < 1 || h > 23 || mi > 59 || s > 60) return null;
  const ms = Date.UTC(year, month, day, h, mi, Math.min(s, 59)); // leap second 60 → :59
  // Reject days the month does not have (e.g. 31 Feb), which Date.UTC would roll over.
  if (new Date(ms).getUTCDate() !== day) return null;
  return ms;
}
