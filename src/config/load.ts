import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { hubConfigSchema, type HubConfig, type HubConfigInput } from './hub-config.ts';

export class ConfigError extends Error {
  constructor(message: string) { super(message); this.name = 'ConfigError'; }
}

export function formatZodError(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}

/** Environment variables that override the file (the spec's usual ones). */
export function applyEnv(input: HubConfigInput, env: NodeJS.ProcessEnv): HubConfigInput {
  const out: HubConfigInput = { ...input, server: { ...input.server }, storage: { ...input.storage } };
  if (env.METERHUB_PORT) {
    const port = Number(env.METERHUB_PORT);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`METERHUB_PORT is not a port: ${env.METERHUB_PORT}`);
    out.server!.port = port;
  }
  if (env.METERHUB_HOST) out.server!.host = env.METERHUB_HOST;
  if (env.METERHUB_DATA_DIR) out.storage!.dataDir = env.METERHUB_DATA_DIR;
  if (env.METERHUB_DATABASE_URL) out.storage!.databaseUrl = env.METERHUB_DATABASE_URL;
  applyBodiesEnv(out, env);
  if (env.METERHUB_ADMIN_KEY) out.adminKey = env.METERHUB_ADMIN_KEY;
  if (env.METERHUB_ALLOW_PRIVATE_TARGETS !== undefined) out.allowPrivateTargets = ['1', 'true', 'yes'].includes(env.METERHUB_ALLOW_PRIVATE_TARGETS.toLowerCase());
  return out;
}

/** storage.bodies from the environment (docs/configuration.md, "Body store"). */
function applyBodiesEnv(out: HubConfigInput, env: NodeJS.ProcessEnv): void {
  const set = <T>(name: string, apply: (value: string) => T): T | undefined => (env[name] ? apply(env[name]!) : undefined);
  const bodies = { ...out.storage!.bodies };
  const s3 = { ...bodies.s3 };
  const postgres = { ...bodies.postgres };
  let changed = false;
  const kind = set('METERHUB_BODIES', (v) => {
    if (v !== 'files' && v !== 's3' && v !== 'postgres') throw new ConfigError(`METERHUB_BODIES is files, s3 or postgres, not ${v}`);
    return v;
  });
  if (kind) { bodies.kind = kind; changed = true; }
  const s3Vars = {
    METERHUB_S3_ENDPOINT: 'endpoint', METERHUB_S3_REGION: 'region', METERHUB_S3_BUCKET: 'bucket', METERHUB_S3_PREFIX: 'prefix',
    METERHUB_S3_ACCESS_KEY_ID: 'accessKeyId', METERHUB_S3_SECRET_ACCESS_KEY: 'secretAccessKey',
  } as const;
  for (const [name, field] of Object.entries(s3Vars)) {
    const v = env[name];
    if (v !== undefined && v !== '') { s3[field] = v; changed = true; }
  }
  if (env.METERHUB_S3_FORCE_PATH_STYLE !== undefined && env.METERHUB_S3_FORCE_PATH_STYLE !== '') {
    s3.forcePathStyle = ['1', 'true', 'yes'].includes(env.METERHUB_S3_FORCE_PATH_STYLE.toLowerCase());
    changed = true;
  }
  if (env.METERHUB_BODIES_DATABASE_URL) { postgres.url = env.METERHUB_BODIES_DATABASE_URL; changed = true; }
  if (changed) out.storage!.bodies = { ...bodies, s3, postgres };
}

export function parseConfig(input: unknown): HubConfig {
  const result = hubConfigSchema.safeParse(input ?? {});
  if (!result.success) throw new ConfigError(`invalid configuration: ${formatZodError(result.error)}`);
  return result.data;
}

/**
 * Reads the YAML file (if any), applies the environment, validates. Meter CSV paths in the file are
 * resolved against the file's folder; dataDir against the working directory.
 */
export function loadConfig(path: string | undefined, env: NodeJS.ProcessEnv = process.env): { config: HubConfig; baseDir: string } {
  let raw: unknown = {};
  let baseDir = process.cwd();
  if (path) {
    let text: string;
    try { text = readFileSync(path, 'utf8'); } catch (e) { throw new ConfigError(`cannot read config file ${path}: ${(e as Error).message}`); }
    try { raw = parseYaml(text) ?? {}; } catch (e) { throw new ConfigError(`config file ${path} is not valid YAML: ${(e as Error).message}`); }
    if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`config file ${path} must hold a mapping`);
    baseDir = dirname(resolve(path));
  }
  const config = parseConfig(applyEnv(raw as HubConfigInput, env));
  // dataDir is relative to the working directory (like ./data in the spec); meter files to the config file.
  config.storage.dataDir = resolve(config.storage.dataDir);
  config.meters = config.meters.map((m) => resolve(baseDir, m));
  return { config, baseDir };
}
