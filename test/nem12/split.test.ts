import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { NEM12_EVENT_TYPE, Nem12Error, splitNem12, type Nem12Message } from '../../src/nem12/split.ts';

const sample = (name: string) => readFileSync(new URL(`../../samples/${name}`, import.meta.url), 'utf8');
const SOLAR = sample('nem12_month_solar_5min.csv');            // LF
const MULTI = sample('nem12_multiple_meters.csv');             // CRLF
const SCENARIO10 = sample('nem12_nemmco_scenario10_powermdp.csv'); // CRLF

const ids = (messages: Nem12Message[]) => messages.map((m) => m.id);
const key = (m: Nem12Message) => `${m.subject}/${m.data.suffix}/${m.data.date}`;

/** Replaces line `n` (1-based) of a file, keeping its line endings. */
function editLine(text: string, n: number, edit: (line: string) => string): string {
  const lines = text.split('\n');
  lines[n - 1] = edit(lines[n - 1]!);
  return lines.join('\n');
}

function assertNem12Error(text: string, line: number, message: RegExp): void {
  assert.throws(() => splitNem12(text), (err: unknown) => {
    assert.ok(err instanceof Nem12Error, `expected Nem12Error, got ${String(err)}`);
    assert.equal(err.line, line);
    assert.match(err.message, message);
    return true;
  });
}

describe('splitNem12: nem12_month_solar_5min.csv', () => {
  const messages = splitNem12(SOLAR);

  it('gives 62 messages: 1 NMI, 2 channels x 31 days, 288 values each', () => {
    assert.equal(messages.length, 62);
    assert.deepEqual([...new Set(messages.map((m) => m.subject))], ['NMI1234567']);
    for (const suffix of ['B1', 'E1']) {
      const days = messages.filter((m) => m.data.suffix === suffix).map((m) => m.data.date);
      assert.equal(days.length, 31);
      assert.equal(days[0], '2023-03-01');
      assert.equal(days[30], '2023-03-31');
    }
    assert.ok(messages.every((m) => m.data.values.length === 288 && m.data.intervalLength === 5));
  });

  it('fills the CloudEvent fields and the header (empty ToParticipant)', () => {
    const first = messages[0]!;
    assert.equal(first.type, NEM12_EVENT_TYPE);
    assert.equal(first.type, 'au.com.aemo.nem12.interval-data');
    assert.equal(first.subject, 'NMI1234567');
    assert.equal(first.time, '2023-03-01T00:00:00+10:00');
    assert.match(first.id, /^nem12-[0-9a-f]{32}$/);
    assert.deepEqual(first.data.header, { fileCreated: '202304120954', fromParticipant: 'WBAYM', toParticipant: '' });
    assert.equal(first.data.format, 'NEM12');
    assert.equal(first.data.nmiConfiguration, 'B1E1');
    assert.equal(first.data.registerId, 'B1');
    assert.equal(first.data.mdmDataStreamIdentifier, 'B1');
    assert.equal(first.data.meterSerialNumber, 'SERNO1234');
    assert.equal(first.data.uom, 'kWh');
    assert.equal(first.data.quality, 'A');
    assert.equal(first.data.reasonCode, null);
    assert.equal(first.data.reasonDescription, null);
    assert.match(first.data.updateDateTime ?? '', /^\d{14}$/);
    assert.equal(first.data.msatsLoadDateTime, null);
    assert.deepEqual(first.data.events, []);
    assert.deepEqual(first.data.b2b, []);
  });

  it('parses leading-dot decimals (".005" -> 0.005)', () => {
    const values = messages[0]!.data.values;
    assert.deepEqual(values.slice(75, 80), [0, 0.005, 0.012, 0.021, 0.033]);
    assert.ok(values.every((v) => typeof v === 'number' && Number.isFinite(v)));
  });
});

describe('splitNem12: nem12_multiple_meters.csv', () => {
  const messages = splitNem12(MULTI);

  it('gives 12 messages: 2 NMIs, 6 datastreams x 2 days, 96 values each', () => {
    assert.equal(messages.length, 12);
    assert.equal(messages.filter((m) => m.subject === 'NCDE001111').length, 8);
    assert.equal(messages.filter((m) => m.subject === 'NDDD001888').length, 4);
    assert.deepEqual(
      [...new Set(messages.map((m) => `${m.subject}/${m.data.suffix}`))],
      ['NCDE001111/E1', 'NCDE001111/B1', 'NCDE001111/Q1', 'NCDE001111/E2', 'NDDD001888/B1', 'NDDD001888/K2'],
    );
    assert.ok(messages.every((m) => m.data.values.length === 96 && m.data.intervalLength === 15));
    assert.deepEqual([...new Set(messages.map((m) => m.time))], ['2003-12-04T00:00:00+10:00', '2003-12-05T00:00:00+10:00']);
  });

  it('keeps each datastream\'s unit, serial and values', () => {
    const q1 = messages.find((m) => m.data.suffix === 'Q1')!;
    assert.equal(q1.data.uom, 'VArh');
    assert.equal(q1.data.mdmDataStreamIdentifier, '');
    assert.ok(q1.data.values.every((v) => v === 50));
    assert.equal(q1.data.msatsLoadDateTime, null);
    const e2 = messages.find((m) => m.data.suffix === 'E2')!;
    assert.equal(e2.data.meterSerialNumber, 'METSER456');
    assert.ok(e2.data.values.every((v) => v === 100));
    assert.equal(e2.data.msatsLoadDateTime, '20031207011022');
    assert.deepEqual(messages[0]!.data.header, { fileCreated: '200402070911', fromParticipant: 'MDA1', toParticipant: 'Ret1' });
  });
});

describe('splitNem12: nem12_nemmco_scenario10_powermdp.csv', () => {
  const messages = splitNem12(SCENARIO10);
  const byKey = new Map(messages.map((m) => [key(m), m]));

  it('gives 8 messages (one per 300 record) across the NMI configuration changes', () => {
    assert.deepEqual(messages.map((m) => `${key(m)} ${m.data.nmiConfiguration}`), [
      'NEM1210187/E1/2005-01-10 E1',
      'NEM1210187/E1/2005-01-11 E1B2E2',
      'NEM1210187/E2/2005-01-11 E1B2E2',
      'NEM1210187/E2/2005-01-12 B2E2',
      'NEM1210187/E2/2005-01-13 B2E2',
      'NEM1210187/B2/2005-01-11 E1B2E2',
      'NEM1210187/B2/2005-01-12 B2E2',
      'NEM1210187/B2/2005-01-13 B2E2',
    ]);
    assert.ok(messages.every((m) => m.data.values.length === 48 && m.data.uom === 'KWH'));
    assert.deepEqual(messages.map((m) => m.data.quality), ['A', 'V', 'V', 'A', 'V', 'V', 'A', 'V']);
  });

  it('attaches all 10 400 events to the preceding 300 record', () => {
    assert.equal(messages.reduce((n, m) => n + m.data.events.length, 0), 10);
    assert.deepEqual(byKey.get('NEM1210187/E1/2005-01-11')!.data.events, [
      { startInterval: 1, endInterval: 10, quality: 'A', reasonCode: null, reasonDescription: null },
      { startInterval: 11, endInterval: 48, quality: 'F55', reasonCode: '1', reasonDescription: null },
    ]);
    assert.deepEqual(byKey.get('NEM1210187/E2/2005-01-13')!.data.events.map((e) => e.quality), ['A', 'E52']);
    assert.deepEqual(byKey.get('NEM1210187/E2/2005-01-12')!.data.events, []);
    assert.deepEqual(byKey.get('NEM1210187/E1/2005-01-10')!.data.events, []);
  });

  it('attaches all 5 500 records to the preceding 300 record', () => {
    assert.equal(messages.reduce((n, m) => n + m.data.b2b.length, 0), 5);
    assert.deepEqual(byKey.get('NEM1210187/E1/2005-01-11')!.data.b2b, [
      { transCode: 'D', retServiceOrder: 'SONEM1210187', readDateTime: '20050111051500', indexRead: '000950.0' },
    ]);
    assert.deepEqual(byKey.get('NEM1210187/E2/2005-01-13')!.data.b2b, [
      { transCode: 'N', retServiceOrder: '', readDateTime: '20050113121500', indexRead: '002027.0' },
    ]);
    assert.equal(byKey.get('NEM1210187/B2/2005-01-13')!.data.b2b[0]!.indexRead, '002188.0');
    assert.deepEqual(byKey.get('NEM1210187/E2/2005-01-12')!.data.b2b, []);
  });
});

describe('splitNem12: message ids', () => {
  it('are stable across two runs and unique within a file', () => {
    for (const text of [SOLAR, MULTI, SCENARIO10]) {
      const first = ids(splitNem12(text));
      assert.deepEqual(ids(splitNem12(text)), first);
      assert.equal(new Set(first).size, first.length);
    }
  });

  it('change when one value changes, and only for that reading', () => {
    // Line 5 of scenario10 is the 300 record for E1 2005-01-11; its first value is 30.
    const changed = editLine(SCENARIO10, 5, (l) => l.replace('300,20050111,30,', '300,20050111,31,'));
    const [before, after] = [ids(splitNem12(SCENARIO10)), ids(splitNem12(changed))];
    assert.notEqual(after[1], before[1]);
    assert.deepEqual(after.filter((_, i) => i !== 1), before.filter((_, i) => i !== 1));
  });

  it('change when a 400 event changes', () => {
    const changed = editLine(SCENARIO10, 6, () => '400,1,10,A,,\r');
    assert.deepEqual(ids(splitNem12(changed)), ids(splitNem12(SCENARIO10)));   // identical edit: same ids
    const different = editLine(SCENARIO10, 6, () => '400,1,9,A,,\r');
    assert.notEqual(ids(splitNem12(different))[1], ids(splitNem12(SCENARIO10))[1]);
  });

  it('are the same for CRLF and LF, with a BOM and blank lines', () => {
    const multiLf = MULTI.replace(/\r\n/g, '\n');
    assert.notEqual(multiLf, MULTI);
    assert.deepEqual(ids(splitNem12(multiLf)), ids(splitNem12(MULTI)));
    const solarCrlf = SOLAR.replace(/\n/g, '\r\n');
    assert.deepEqual(ids(splitNem12(solarCrlf)), ids(splitNem12(SOLAR)));
    const bomAndBlanks = '\uFEFF' + SCENARIO10.replace(/\r\n200,/g, '\r\n\r\n200,') + '\r\n\r\n';
    assert.deepEqual(ids(splitNem12(bomAndBlanks)), ids(splitNem12(SCENARIO10)));
  });
});

describe('splitNem12: malformed input throws Nem12Error with the line number', () => {
  it('a 300 record with one value too few', () => {
    const broken = editLine(SCENARIO10, 3, (l) => l.replace('300,20050110,11,', '300,20050110,'));
    assertNem12Error(broken, 3, /expected 48 interval values.*got 47/);
  });

  it('a 300 record with one value too many', () => {
    const broken = editLine(MULTI, 4, (l) => l.replace('300,20031205,10,', '300,20031205,10,10,'));
    assertNem12Error(broken, 4, /expected 96 interval values/);
  });

  it('a 300 record before any 200 record', () => {
    const lines = SCENARIO10.split('\r\n');
    const broken = [lines[0], lines[2], lines[1], ...lines.slice(3)].join('\r\n');
    assertNem12Error(broken, 2, /300 record before any 200/);
  });

  it('a garbage number', () => {
    const broken = editLine(SOLAR, 40, (l) => l.replace(/^(300,\d{8},(?:[^,]*,){9})[^,]*/, '$11.2.3'));
    assertNem12Error(broken, 40, /interval 10: invalid value '1\.2\.3'/);
    assertNem12Error(editLine(MULTI, 12, (l) => l.replace(',100,', ',abc,')), 12, /invalid value 'abc'/);
    assertNem12Error(editLine(MULTI, 12, (l) => l.replace(',100,', ',,')), 12, /invalid value ''/);
  });

  it('an unknown record type', () => {
    assertNem12Error(editLine(MULTI, 8, () => '250,NCDE001111,E1B1Q1E2,3,Q1,,METSER123,VArh,15,\r'), 8, /unknown record type '250'/);
  });

  it('a 400 or 500 record without a 300 record', () => {
    assertNem12Error(editLine(SCENARIO10, 3, () => '400,1,48,A,,\r'), 3, /400 record without a preceding 300/);
    assertNem12Error(editLine(SCENARIO10, 3, () => '500,N,,20050113121500,002027.0\r'), 3, /500 record without/);
  });

  it('a 400 event outside the day\'s intervals', () => {
    assertNem12Error(editLine(SCENARIO10, 7, () => '400,11,49,F55,1,\r'), 7, /invalid interval range/);
  });

  it('an invalid date or interval length', () => {
    assertNem12Error(editLine(SCENARIO10, 3, (l) => l.replace('20050110', '20050231')), 3, /invalid IntervalDate/);
    assertNem12Error(editLine(SCENARIO10, 2, (l) => l.replace(',KWH,30,', ',KWH,7,')), 2, /invalid IntervalLength/);
  });

  it('a file that is not NEM12', () => {
    assertNem12Error(SCENARIO10.replace('100,NEM12,', '100,NEM13,'), 1, /not a NEM12 file/);
    assertNem12Error('\uFEFF' + sample('cim_json_notify_validated_measure_data_two_series.json'), 1, /100 header/);
    assertNem12Error('', 1, /100 header/);
  });

  it('a truncated file (no 900) and records after 900', () => {
    const truncated = SCENARIO10.slice(0, SCENARIO10.indexOf('900'));
    assertNem12Error(truncated, 31, /missing 900/);
    assertNem12Error(SCENARIO10 + '\r\n200,X,E1,E1,E1,,1,KWH,30,\r\n', 33, /after the 900/);
  });
});
