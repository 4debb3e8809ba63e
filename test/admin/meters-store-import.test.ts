/**
 * store.importMeters on both adapters: chunks applied in order with running totals, the last
 * entry of a key wins, and what a failure midway leaves: nothing on PostgreSQL (one
 * transaction), the chunks before it on SQLite (one transaction per chunk, so that ingest goes
 * between them; the import checks every row first, so only a storage fault or a crash gets here).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../../src/store/store.ts';
import type { MeterEntry } from '../../src/store/types.ts';
import { freshStore, inCi, probePostgres, skipMessage, testDatabaseUrl } from '../support/postgres.ts';

const entry = (meter: string, participant: string): MeterEntry => ({ meter, role: 'FRMP', participant, validFrom: null, validTo: null });

async function* chunks(list: MeterEntry[][], failAfter = Infinity): AsyncGenerator<MeterEntry[]> {
  for (let i = 0; i < list.length; i++) {
    if (i >= failAfter) throw new Error('the source failed');
    yield list[i]!;
  }
}

function suite(name: string, open: () => Promise<{ store: Store; cleanup: () => Promise<void> }>, keepsEarlierChunks: boolean) {
  describe(`${name} importMeters`, () => {
    it('applies every chunk in order, reporting running totals; the last entry of a key wins', async () => {
      const { store, cleanup } = await open();
      try {
        const totals: number[] = [];
        const n = await store.importMeters(chunks([
          [entry('M1', 'A'), entry('M2', 'A'), entry('M1', 'B')],
          [entry('M3', 'A')],
          [entry('M2', 'C')],
        ]), (applied) => totals.push(applied));
        assert.equal(n, 5);
        assert.deepEqual(totals, [3, 4, 5]);
        assert.deepEqual((await store.getMeterEntries('M1', null)).map((e) => e.participant), ['B']);
        assert.deepEqual((await store.getMeterEntries('M2', null)).map((e) => e.participant), ['C']);
        assert.equal(await store.importMeters(chunks([])), 0);
      } finally {
        await cleanup();
      }
    });

    it(keepsEarlierChunks ? 'a failure midway keeps the chunks before it' : 'a failure midway applies nothing', async () => {
      const { store, cleanup } = await open();
      try {
        await store.upsertMeters([entry('M1', 'OLD')]);
        await assert.rejects(store.importMeters(chunks([[entry('M1', 'NEW'), entry('M2', 'NEW')], [entry('M3', 'NEW')], [entry('M4', 'NEW')]], 2)), /the source failed/);
        const m1 = (await store.getMeterEntries('M1', null)).map((e) => e.participant);
        const m3 = await store.getMeterEntries('M3', null);
        if (keepsEarlierChunks) {
          assert.deepEqual(m1, ['NEW']);
          assert.equal(m3.length, 1);
        } else {
          assert.deepEqual(m1, ['OLD'], 'the registry as it was');
          assert.equal(m3.length, 0);
        }
        // The store still takes writes afterwards (PostgreSQL: the connection went back clean).
        assert.equal(await store.importMeters(chunks([[entry('M9', 'A')]])), 1);
        assert.equal((await store.getMeterEntries('M9', null)).length, 1);
      } finally {
        await cleanup();
      }
    });
  });
}

suite('SqliteStore', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meterhub-import-'));
  const store = new SqliteStore(join(dir, 'meterhub.db'));
  return { store, cleanup: async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); } };
}, true);

const unreachable = await probePostgres(testDatabaseUrl());
if (unreachable === null) {
  suite('PostgresStore', () => freshStore(), false);
} else if (inCi()) {
  it('PostgreSQL is reachable (CI must run the PostgreSQL suite)', () => assert.fail(skipMessage(testDatabaseUrl(), unreachable)));
} else {
  describe('PostgresStore importMeters', { skip: skipMessage(testDatabaseUrl(), unreachable) }, () => {});
}
