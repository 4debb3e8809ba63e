import { z } from 'zod';
import { participantBodySchema, participantIdSchema } from './receiver-schema.ts';
import { meterIdSchemeSchema } from './route-schema.ts';
import { routesSchema } from './route-schema.ts';
import { DEFAULT_BREAKER } from '../delivery/circuit-breaker.ts';
import { DEFAULT_RETRY_POLICY } from '../delivery/retry-policy.ts';

/**
 * The hub's whole configuration. Every setting has a documented default (docs/configuration.md);
 * a config file needs only what it changes.
 */
export const hubConfigSchema = z.strictObject({
  server: z.strictObject({
    host: z.string().default('0.0.0.0'),
    port: z.number().int().min(0).max(65535).default(8080),
    /** Largest accepted message body (structured envelope, binary data or batch). */
    bodyLimitBytes: z.number().int().min(1024).max(2 ** 31).default(16 * 1024 * 1024),
    /** Most events in one batch request. */
    maxBatchEvents: z.number().int().min(1).max(100_000).default(10_000),
    /** Requests slower than this in total are cut off (slowloris). */
    requestTimeoutMs: z.number().int().min(1000).default(120_000),
    /** Socket idle timeout between requests. */
    keepAliveTimeoutMs: z.number().int().min(100).default(72_000),
    /** Log one line per request (costs throughput; errors are always logged). */
    logRequests: z.boolean().default(false),
  }).prefault({}),
  storage: z.strictObject({
    dataDir: z.string().default('./data'),
    /** postgres:// URL; unset means the embedded SQLite file under dataDir. */
    databaseUrl: z.string().nullable().default(null),
    /** Bodies up to this size live in the database; larger ones are files under dataDir/bodies. */
    inlineBodyMaxBytes: z.number().int().min(0).max(16 * 1024 * 1024).default(256 * 1024),
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
});

export type HubConfig = z.output<typeof hubConfigSchema>;
export type HubConfigInput = z.input<typeof hubConfigSchema>;
