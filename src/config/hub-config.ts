import { z } from 'zod';
import { participantBodySchema, participantIdSchema } from './receiver-schema.ts';
import { meterIdSchemeSchema } from './route-schema.ts';
import { routesSchema } from './route-schema.ts';
import { DEFAULT_BREAKER } from '../delivery/circuit-breaker.ts';
import { DEFAULT_RETRY_POLICY } from '../delivery/retry-policy.ts';

const MIB = 1024 * 1024;

/** storage.bodies: files under dataDir (default), an S3-compatible bucket, or PostgreSQL tables. */
export const bodiesConfigSchema = z.strictObject({
  kind: z.enum(['files', 's3', 'postgres']).default('files'),
  s3: z.strictObject({
    /** e.g. http://127.0.0.1:18090 (MinIO, Ceph, Swift); null: AWS's own endpoint for the region. */
    endpoint: z.url({ protocol: /^https?$/ }).nullable().default(null),
    region: z.string().min(1).default('us-east-1'),
    bucket: z.string().min(3).max(255).nullable().default(null),
    /** Both null: the AWS SDK's default credential chain (AWS_* environment, profile, instance or task role). */
    accessKeyId: z.string().min(1).nullable().default(null),
    secretAccessKey: z.string().min(1).nullable().default(null),
    forcePathStyle: z.boolean().default(false),
    /** Prepended to every object key. */
    prefix: z.string().max(512).regex(/^([^/].*\/)?$/, 'empty, or ending in / and not starting with /').default('bodies/'),
    partSizeBytes: z.number().int().min(5 * MIB).max(5 * 1024 * MIB).default(8 * MIB),
    queueSize: z.number().int().min(1).max(16).default(2),
    requestTimeoutMs: z.number().int().min(1000).max(3_600_000).default(60_000),
  }).prefault({}),
  postgres: z.strictObject({
    /** postgres:// URL; null: storage.databaseUrl. */
    url: z.string().min(1).nullable().default(null),
    /** Schema of the body tables; null: the connection's search_path. */
    schema: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/).nullable().default(null),
    chunkBytes: z.number().int().min(64 * 1024).max(64 * MIB).default(MIB),
    poolSize: z.number().int().min(1).max(1000).default(10),
    connectTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
  }).prefault({}),
}).superRefine((b, ctx) => {
  if (b.kind === 's3' && !b.s3.bucket) ctx.addIssue({ code: 'custom', path: ['s3', 'bucket'], message: 'an S3 bucket is required with kind s3' });
  if ((b.s3.accessKeyId === null) !== (b.s3.secretAccessKey === null)) {
    ctx.addIssue({ code: 'custom', path: ['s3'], message: 'accessKeyId and secretAccessKey are set together, or neither (default credential chain)' });
  }
});

/**
 * The hub's whole configuration. Every setting has a documented default (docs/configuration.md);
 * a config file needs only what it changes.
 */
export const hubConfigSchema = z.strictObject({
  server: z.strictObject({
    host: z.string().default('0.0.0.0'),
    port: z.number().int().min(0).max(65535).default(8080),
    /** Largest accepted message body in any mode; binary-mode bodies are streamed, never held whole. */
    bodyLimitBytes: z.number().int().min(1024).max(2 ** 31).default(64 * MIB),
    /** Largest structured or batch body, held and parsed in memory (several times its size); bodyLimitBytes caps it too. */
    jsonBodyLimitBytes: z.number().int().min(1024).max(2 ** 31).default(16 * MIB),
    /** Most events in one batch request. */
    maxBatchEvents: z.number().int().min(1).max(100_000).default(10_000),
    /** Requests slower than this in total are cut off (slowloris). */
    requestTimeoutMs: z.number().int().min(1000).default(120_000),
    /** The request line and headers must arrive within this (slowloris); requestTimeoutMs if that is shorter. */
    headersTimeoutMs: z.number().int().min(100).default(30_000),
    /** A connection on which nothing is sent or received for this long is closed. */
    connectionTimeoutMs: z.number().int().min(1000).default(120_000),
    /** Socket idle timeout between requests. */
    keepAliveTimeoutMs: z.number().int().min(100).default(72_000),
    /** Largest request line plus header block (Node's maxHeaderSize); 431 above. */
    maxHeaderBytes: z.number().int().min(1024).max(1024 * 1024).default(16 * 1024),
    /** Most header fields in one request; 431 above. */
    maxHeaders: z.number().int().min(16).max(10_000).default(200),
    /** Deepest nesting of a CloudEvents JSON document (the event object is level 1); 400 above. */
    maxJsonDepth: z.number().int().min(2).max(10_000).default(64),
    /** Per API key token bucket on ingested events (a batch of n costs n): see src/limits/rate-limiter.ts. */
    ingestRateLimit: z.strictObject({
      /** Events a second each key may send, sustained; null: no limit. */
      eventsPerSecond: z.number().positive().max(1_000_000).nullable().default(1000),
      /** Events a key may send at once after being idle. */
      burst: z.number().int().min(1).max(10_000_000).default(2000),
    }).prefault({}),
    /** Log one line per request (costs throughput; errors are always logged). */
    logRequests: z.boolean().default(false),
    /** On SIGTERM/SIGINT, how long in-flight requests and push deliveries get to finish before they are cut (and their deliveries put back to pending). */
    shutdownGraceMs: z.number().int().min(0).max(3_600_000).default(10_000),
  }).prefault({}),
  storage: z.strictObject({
    dataDir: z.string().default('./data'),
    /** postgres:// URL; unset means the embedded SQLite file under dataDir. */
    databaseUrl: z.string().nullable().default(null),
    /**
     * Embedded store only: `worker` commits in a worker thread (the event loop never waits for an
     * fsync; reads stay on the main thread), `main` commits on the event loop (one thread).
     */
    sqliteWrites: z.enum(['worker', 'main']).default('worker'),
    /** Bodies up to this size live in the database; larger ones in the body store (`bodies`). */
    inlineBodyMaxBytes: z.number().int().min(0).max(16 * 1024 * 1024).default(256 * 1024),
    /** Where bodies over inlineBodyMaxBytes are kept: see src/archive/body-store.ts and docs/configuration.md. */
    bodies: bodiesConfigSchema.prefault({}),
  }).prefault({}),
  /** The first admin key; METERHUB_ADMIN_KEY overrides it. */
  adminKey: z.string().min(24).nullable().default(null),
  /** Let receivers be on private, loopback or link-local addresses (tests, closed networks). */
  allowPrivateTargets: z.boolean().default(false),
  delivery: z.strictObject({
    /** How often the scheduler looks for due push deliveries when nothing woke it. */
    pollIntervalMs: z.number().int().min(5).max(60_000).default(250),
    /** Extra lease beyond a receiver's timeout before another worker may take a delivery over. */
    leaseMarginMs: z.number().int().min(100).default(15_000),
    /** Hub-wide cap on push requests in flight. */
    maxInFlight: z.number().int().min(1).max(100_000).default(512),
    /** Defaults for every push receiver (each may override): see src/delivery/retry-policy.ts for the reasoning. */
    retry: z.strictObject({
      maxAttempts: z.number().int().min(1).max(1000).default(DEFAULT_RETRY_POLICY.maxAttempts),
      maxAgeSeconds: z.number().int().min(1).default(DEFAULT_RETRY_POLICY.maxAgeSeconds),
      initialDelayMs: z.number().int().min(0).default(DEFAULT_RETRY_POLICY.initialDelayMs),
      maxDelayMs: z.number().int().min(0).default(DEFAULT_RETRY_POLICY.maxDelayMs),
      multiplier: z.number().min(1).max(10).default(DEFAULT_RETRY_POLICY.multiplier),
      retryAfterCapMs: z.number().int().min(0).default(DEFAULT_RETRY_POLICY.retryAfterCapMs),
    }).prefault({}),
    /** Per-receiver circuit breaker: see src/delivery/circuit-breaker.ts. */
    breaker: z.strictObject({
      failureThreshold: z.number().int().min(1).max(10_000).default(DEFAULT_BREAKER.failureThreshold),
      cooldownMs: z.number().int().min(10).max(86_400_000).default(DEFAULT_BREAKER.cooldownMs),
      maxCooldownMs: z.number().int().min(10).max(86_400_000).default(DEFAULT_BREAKER.maxCooldownMs),
    }).prefault({}),
  }).prefault({}),
  inbox: z.strictObject({
    /** Longest long poll a receiver may ask for. */
    maxWaitSeconds: z.number().int().min(0).max(300).default(20),
    /** Most messages one poll returns. */
    maxMessages: z.number().int().min(1).max(1000).default(100),
  }).prefault({}),
  maintenance: z.strictObject({
    /** How often expired leases are rescued and exhausted pull deliveries ended. */
    intervalMs: z.number().int().min(10).default(1_000),
  }).prefault({}),
  /** Operator alerts when a delivery goes dead (besides the log line and metric): see src/dlq/dead-alerts.ts. */
  alerts: z.strictObject({
    /** POST {event: 'delivery.dead', sequence, receiver, delivery, reason, at} here; null: none. */
    webhookUrl: z.url({ protocol: /^https?$/ }).max(2048).nullable().default(null),
    timeoutMs: z.number().int().min(100).max(60_000).default(5_000),
    queueSize: z.number().int().min(1).max(1_000_000).default(1_000),
  }).prefault({}),
  /** Check every subject's check digit per scheme (rules may also ask for it). */
  validateSubject: meterIdSchemeSchema.nullable().default(null),
  participants: z.record(participantIdSchema, participantBodySchema.extend({
    /** Pre-shared API keys (stored hashed). Prefer keys made with the API or CLI. */
    keys: z.array(z.string().min(24).max(512)).max(100).optional(),
  })).default({}),
  routes: routesSchema.optional(),
  /** Meter registry CSV files imported at start (meter,role,participant,validFrom,validTo). */
  meters: z.array(z.string()).default([]),
}).superRefine((config, ctx) => {
  // A long poll sends nothing while it waits: the connection timeout would cut it off.
  if (config.server.connectionTimeoutMs <= config.inbox.maxWaitSeconds * 1000) {
    ctx.addIssue({ code: 'custom', path: ['server', 'connectionTimeoutMs'], message: `must be longer than inbox.maxWaitSeconds (${config.inbox.maxWaitSeconds} s), or long polls are cut off` });
  }
});

export type HubConfig = z.output<typeof hubConfigSchema>;
export type HubConfigInput = z.input<typeof hubConfigSchema>;
