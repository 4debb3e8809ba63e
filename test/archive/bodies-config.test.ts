import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBodyStore } from '../../src/archive/body-stores.ts';
import { FileBodies } from '../../src/archive/file-bodies.ts';
import { PostgresBodies } from '../../src/archive/postgres-bodies.ts';
import { S3Bodies } from '../../src/archive/s3-bodies.ts';
import { applyEnv, ConfigError, parseConfig } from '../../src/config/load.ts';

describe('storage.bodies configuration', () => {
  it('defaults to files under dataDir/bodies', () => {
    const config = parseConfig({});
    assert.equal(config.storage.bodies.kind, 'files');
    assert.equal(config.storage.bodies.s3.partSizeBytes, 8 * 1024 * 1024);
    assert.equal(config.storage.bodies.postgres.chunkBytes, 1024 * 1024);
    const dir = mkdtempSync(join(tmpdir(), 'meterhub-bodies-config-'));
    try {
      assert.ok(createBodyStore({ ...config.storage, dataDir: dir }) instanceof FileBodies);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the environment overrides the file', () => {
    const file = { storage: { bodies: { kind: 'files' as const, s3: { bucket: 'from-file', region: 'eu-west-1' } } } };
    const config = parseConfig(applyEnv(file, {
      METERHUB_BODIES: 's3', METERHUB_S3_ENDPOINT: 'http://127.0.0.1:18090', METERHUB_S3_BUCKET: 'from-env',
      METERHUB_S3_ACCESS_KEY_ID: 'test:tester', METERHUB_S3_SECRET_ACCESS_KEY: 'testing', METERHUB_S3_FORCE_PATH_STYLE: '1',
      METERHUB_S3_PREFIX: 'hub/',
    }));
    assert.deepEqual({ ...config.storage.bodies.s3 }, {
      endpoint: 'http://127.0.0.1:18090', region: 'eu-west-1', bucket: 'from-env', accessKeyId: 'test:tester', secretAccessKey: 'testing',
      forcePathStyle: true, prefix: 'hub/', partSizeBytes: 8 * 1024 * 1024, queueSize: 2, requestTimeoutMs: 60_000,
    });
    assert.equal(config.storage.bodies.kind, 's3');
    const store = createBodyStore(config.storage);
    assert.ok(store instanceof S3Bodies);
    void store.close();
    const pg = parseConfig(applyEnv({}, { METERHUB_BODIES: 'postgres', METERHUB_BODIES_DATABASE_URL: 'postgres://x@127.0.0.1:9/db' }));
    assert.equal(pg.storage.bodies.postgres.url, 'postgres://x@127.0.0.1:9/db');
    const pgStore = createBodyStore(pg.storage);
    assert.ok(pgStore instanceof PostgresBodies);
    void pgStore.close();
  });

  it('refuses what cannot work, saying what is missing', () => {
    assert.throws(() => applyEnv({}, { METERHUB_BODIES: 'tape' }), ConfigError);
    assert.throws(() => parseConfig({ storage: { bodies: { kind: 's3' } } }), /storage\.bodies\.s3\.bucket: an S3 bucket is required/);
    assert.throws(() => parseConfig({ storage: { bodies: { s3: { accessKeyId: 'only-the-id' } } } }), /together, or neither/);
    assert.throws(() => parseConfig({ storage: { bodies: { s3: { partSizeBytes: 1024 } } } }), /partSizeBytes/);
    assert.throws(() => parseConfig({ storage: { bodies: { s3: { prefix: '/abs/' } } } }), /prefix/);
    assert.throws(() => parseConfig({ storage: { bodies: { kind: 'nfs' } } }), /kind/);
    assert.throws(() => createBodyStore(parseConfig({ storage: { bodies: { kind: 'postgres' } } }).storage), /METERHUB_BODIES_DATABASE_URL.*METERHUB_DATABASE_URL/);
  });
});
