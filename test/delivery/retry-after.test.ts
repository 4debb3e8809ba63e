import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRetryAfter } from '../../src/delivery/retry-after.ts';

const now = new Date('2025-03-01T12:00:00.000Z');

const cases: Array<[string, string | string[] | undefined, number | null]> = [
  // delay-seconds
  ['zero seconds', '0', 0],
  ['plain seconds', '120', 120_000],
  ['surrounding whitespace', '  30 ', 30_000],
  ['leading zeros', '007', 7_000],
  ['array takes first value', ['5', '99'], 5_000],
  ['huge seconds returned as-is', '31536000000', 31_536_000_000_000],
  ['overflowing digits capped', '9'.repeat(400), Number.MAX_SAFE_INTEGER],
  // junk
  ['undefined', undefined, null],
  ['empty', '', null],
  ['blank', '   ', null],
  ['empty array', [], null],
  ['negative', '-5', null],
  ['plus sign', '+5', null],
  ['fractional', '1.5', null],
  ['exponent', '1e3', null],
  ['hex', '0x10', null],
  ['units', '10s', null],
  ['words', 'soon', null],
  ['free-form date (Date.parse would accept)', 'March 2, 2025', null],
  ['date-only (Date.parse would accept)', '2025-03-02', null],
  ['ISO 8601 is not an HTTP-date', '2025-03-01T12:01:00Z', null],
  ['IMF-fixdate without GMT', 'Sat, 01 Mar 2025 12:01:00', null],
  ['IMF-fixdate non-GMT zone', 'Sat, 01 Mar 2025 12:01:00 PST', null],
  ['impossible date', 'Sat, 31 Feb 2025 12:01:00 GMT', null],
  ['hour 24', 'Sat, 01 Mar 2025 24:00:00 GMT', null],
  ['bad month', 'Sat, 01 Foo 2025 12:01:00 GMT', null],
  // HTTP-date
  ['IMF-fixdate in 60 s', 'Sat, 01 Mar 2025 12:01:00 GMT', 60_000],
  ['IMF-fixdate lower case', 'sat, 01 mar 2025 12:01:00 gmt', 60_000],
  ['IMF-fixdate equal to now', 'Sat, 01 Mar 2025 12:00:00 GMT', 0],
  ['IMF-fixdate in the past', 'Sun, 06 Nov 1994 08:49:37 GMT', 0],
  ['IMF-fixdate a year ahead', 'Sun, 01 Mar 2026 12:00:00 GMT', 365 * 86_400_000],
  ['leap second', 'Sat, 01 Mar 2025 12:01:60 GMT', 119_000],
  ['RFC 850 in 60 s', 'Saturday, 01-Mar-25 12:01:00 GMT', 60_000],
  ['RFC 850 two-digit year in the past century', 'Sunday, 06-Nov-94 08:49:37 GMT', 0],
  ['asctime in 60 s (UTC, not local)', 'Sat Mar  1 12:01:00 2025', 60_000],
  ['asctime two-digit day', 'Mon Mar 10 12:00:00 2025', 9 * 86_400_000],
  ['asctime single space before day', 'Sat Mar 1 12:01:00 2025', 60_000],
];

for (const [name, input, expected] of cases) {
  test(`parseRetryAfter: ${name}`, () => {
    assert.equal(parseRetryAfter(input, now), expected);
  });
}

test('parseRetryAfter: sub-second now is honoured for dates', () => {
  const n = new Date('2025-03-01T12:00:59.250Z');
  assert.equal(parseRetryAfter('Sat, 01 Mar 2025 12:01:00 GMT', n), 750);
});

test('parseRetryAfter: RFC 850 year near a century edge stays within 50 years', () => {
  const n = new Date('2099-06-01T00:00:00Z');
  // '01' → 2101 (2 years ahead), not 2001
  assert.equal(parseRetryAfter('Saturday, 01-Jan-01 00:00:00 GMT', n), Date.UTC(2101, 0, 1) - n.getTime());
});
