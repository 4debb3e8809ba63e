/**
 * For the tests of several hubs on one PostgreSQL database: whether the server is there (else
 * skip, or fail under CI: test/support/postgres.ts), and a schema shared by the hubs of a test.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import {
  dropSchema, freshSchemaName, inCi, markSuiteRan, probePostgres, skipMessage, testDatabaseUrl,
} from '../support/postgres.ts';

const url = testDatabaseUrl();
const unreachable = await probePostgres(url);

/**
 * `test(name, fn)` when PostgreSQL answers; otherwise a skipped test saying how to run it, or
 * under CI a failing one. Each file that ran leaves a line in the CI marker (`.ci/run` checks it).
 */
export function postgresTest(file: string, name: string, opts: { timeout?: number }, fn: () => Promise<void>): void {
  if (unreachable !== null) {
    const message = skipMessage(url, unreachable);
    if (inCi()) test(name, () => assert.fail(message));
    else test(name, { skip: message }, () => {});
    return;
  }
  let ran = 0;
  after(() => { if (ran > 0) markSuiteRan(file, `${ran} cases`); });
  test(name, opts, async () => {
    await fn();
    ran++;
  });
}

/** A fresh schema for the hubs of one test: its URL (`?schema=`, a small pool) and its cleanup. */
export function sharedSchema(poolSize = 6): { schema: string; databaseUrl: string; drop: () => Promise<void> } {
  const schema = freshSchemaName();
  const u = new URL(url);
  u.searchParams.set('schema', schema);
  u.searchParams.set('pool_size', String(poolSize));
  return { schema, databaseUrl: u.toString(), drop: () => dropSchema(schema) };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
