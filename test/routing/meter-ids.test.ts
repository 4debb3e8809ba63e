import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isValidMeterId, nmiChecksum, type MeterIdScheme } from '../../src/routing/meter-ids.ts';

/** All strings that differ from `id` in exactly one digit position. */
function singleDigitChanges(id: string, positions = id.length): string[] {
  const out: string[] = [];
  for (let i = 0; i < positions; i++) {
    for (const d of '0123456789') if (d !== id[i]) out.push(id.slice(0, i) + d + id.slice(i + 1));
  }
  return out;
}

describe('nmiChecksum', () => {
  const vectors: Array<[string, number, string]> = [
    ['2001985732', 8, "AEMO's published example"],
    ['QAAAVZZZZZ', 3, 'AEMO example'],
    ['QCDWW00010', 2, 'AEMO example'],
    ['4102335210', 7, 'AEMO example'],
    ['NMI1234567', 5, 'samples/SOURCES.md (placeholder NMI of nem12_month_solar_5min.csv)'],
  ];
  for (const [nmi, checksum, source] of vectors) {
    it(`${nmi} -> ${checksum} (${source})`, () => assert.equal(nmiChecksum(nmi), checksum));
  }

  for (const bad of ['200198573', '20019857321', 'qaaavzzzzz', '2001-85732', '']) {
    it(`throws RangeError for '${bad}'`, () => assert.throws(() => nmiChecksum(bad), RangeError));
  }
});

describe('isValidMeterId', () => {
  const table: Array<[MeterIdScheme, string, boolean, string]> = [
    // NMI: 10 chars, or 11 with a matching checksum digit
    ['nmi', '2001985732', true, '10 digits, no checksum'],
    ['nmi', '20019857328', true, 'with correct checksum 8'],
    ['nmi', '20019857327', false, 'with wrong checksum'],
    ['nmi', 'QAAAVZZZZZ3', true, 'letters, correct checksum'],
    ['nmi', 'QCDWW000102', true, 'mixed, correct checksum'],
    ['nmi', 'QCDWW000109', false, 'mixed, wrong checksum'],
    ['nmi', '41023352107', true, 'correct checksum 7'],
    ['nmi', 'NEM1210187', true, 'NMI of scenario10 sample'],
    ['nmi', 'NCDE001111', true, 'NMI of multiple_meters sample'],
    ['nmi', 'NMI1234567', false, 'contains I, which NMIs exclude'],
    ['nmi', 'NMO1234567', false, 'contains O'],
    ['nmi', 'qaaavzzzzz', false, 'lower case'],
    ['nmi', '200198573', false, '9 chars'],
    ['nmi', '200198573288', false, '12 chars'],
    ['nmi', '2001985732A', false, 'non-digit checksum'],
    ['nmi', '2001 85732', false, 'space'],
    ['nmi', '', false, 'empty'],
    // MPAN core: 13 digits, prime-weighted mod 11 mod 10
    ['mpan', '1200023305967', true, 'reference vector'],
    ['mpan', '1234567890126', true, 'computed'],
    ['mpan', '9999999999993', true, 'computed'],
    ['mpan', '2012345678906', true, 'computed'],
    ['mpan', '1600000123459', true, 'computed'],
    ['mpan', '0000000000010', true, 'computed: sum mod 11 = 10 gives check digit 0'],
    ['mpan', '1200023305968', false, 'wrong check digit'],
    ['mpan', '1020023305967', false, 'digits 2 and 3 swapped'],
    ['mpan', '1300023305967', false, 'second digit changed'],
    ['mpan', '120002330596', false, '12 digits'],
    ['mpan', '12000233059670', false, '14 digits'],
    ['mpan', '12 0002 3305 967', false, 'spaces are not allowed'],
    ['mpan', '120002330596A', false, 'letter'],
    // GSRN: 18 digits, GS1 mod 10
    ['gsrn', '571313000000002000', true, 'samples/cim_json_notify_validated_measure_data_two_series.json'],
    ['gsrn', '123456789012345675', true, 'computed'],
    ['gsrn', '735999100000000010', true, 'computed'],
    ['gsrn', '999999999999999995', true, 'computed'],
    ['gsrn', '571313000000002001', false, 'wrong check digit'],
    ['gsrn', '571313000000020000', false, 'adjacent digits swapped'],
    ['gsrn', '57131300000000200', false, '17 digits'],
    ['gsrn', '5713130000000020000', false, '19 digits'],
    ['gsrn', '57131300000000200X', false, 'letter'],
  ];
  for (const [scheme, id, expected, why] of table) {
    it(`${scheme} '${id}' is ${expected ? 'valid' : 'invalid'} (${why})`, () => {
      assert.equal(isValidMeterId(scheme, id), expected);
    });
  }

  it('returns false for an unknown scheme', () => {
    assert.equal(isValidMeterId('eic' as MeterIdScheme, '2001985732'), false);
  });

  it('nmi: every wrong checksum digit is rejected', () => {
    for (const base of ['2001985732', 'QAAAVZZZZZ', 'QCDWW00010', '4102335210']) {
      const check = nmiChecksum(base);
      for (let d = 0; d <= 9; d++) assert.equal(isValidMeterId('nmi', `${base}${d}`), d === check, `${base}${d}`);
    }
  });

  it('mpan: every single-digit change is detected when the check digit is not 0', () => {
    for (const valid of ['1200023305967', '1234567890126', '9999999999993', '2012345678906', '1600000123459']) {
      for (const changed of singleDigitChanges(valid)) {
        assert.equal(isValidMeterId('mpan', changed), false, `${valid} -> ${changed}`);
      }
    }
  });

  it('mpan: with check digit 0 (sum mod 11 = 0 or 10) some single-digit changes go undetected', () => {
    // A known weakness of the MPAN scheme: remainders 0 and 10 both map to check digit 0.
    const undetected = singleDigitChanges('0000000000010').filter((c) => isValidMeterId('mpan', c));
    assert.ok(undetected.length > 0);
    assert.ok(undetected.every((c) => c.endsWith('0')));
  });

  it('gsrn: every single-digit change is detected', () => {
    for (const valid of ['571313000000002000', '123456789012345675', '735999100000000010']) {
      for (const changed of singleDigitChanges(valid)) {
        assert.equal(isValidMeterId('gsrn', changed), false, `${valid} -> ${changed}`);
      }
    }
  });
});
