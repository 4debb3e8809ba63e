import { z } from 'zod';

/** Retry settings a receiver may override; the rest come from the hub's delivery defaults. */
export const retrySchema = z.strictObject({
  maxAttempts: z.number().int().min(1).max(1000).optional(),
  maxAgeSeconds: z.number().int().min(1).max(30 * 86400).optional(),
  initialDelayMs: z.number().int().min(0).max(86_400_000).optional(),
  maxDelayMs: z.number().int().min(0).max(86_400_000).optional(),
  multiplier: z.number().min(1).max(10).optional(),
  retryAfterCapMs: z.number().int().min(0).max(86_400_000).optional(),
});

const ordering = z.enum(['none', 'subject']).default('none');

export const pushReceiverSchema = z.strictObject({
  mode: z.literal('push'),
  url: z.url({ protocol: /^https?$/ }).max(2048),
  secret: z.string().regex(/^whsec_[A-Za-z0-9+/=]{16,}$/, 'a secret is whsec_ followed by base64').optional(),
  /** The previous secret, still signed with while receivers rotate (two signatures). */
  previousSecret: z.string().regex(/^whsec_[A-Za-z0-9+/=]{16,}$/).optional(),
  ordering,
  timeoutMs: z.number().int().min(100).max(300_000).default(10_000),
  maxInFlight: z.number().int().min(1).max(1000).default(16),
  ratePerSecond: z.number().positive().max(100_000).nullable().default(null),
  retry: retrySchema.default({}),
});

export const pullReceiverSchema = z.strictObject({
  mode: z.literal('pull'),
  ordering,
  visibilityTimeoutSeconds: z.number().int().min(1).max(43_200).default(30),
  maxReceives: z.number().int().min(1).max(1000).default(10),
});

export const receiverSchema = z.discriminatedUnion('mode', [pushReceiverSchema, pullReceiverSchema]);

export const participantIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'participant IDs are 1-64 letters, digits, dot, dash or underscore');

export const participantBodySchema = z.strictObject({
  name: z.string().min(1).max(200),
  receiver: receiverSchema.nullable().optional(),
});

export type PushReceiverInput = z.input<typeof pushReceiverSchema>;
export type PushReceiverSettings = z.output<typeof pushReceiverSchema>;
export type PullReceiverSettings = z.output<typeof pullReceiverSchema>;
export type ReceiverSettings = z.output<typeof receiverSchema>;
export type ParticipantBody = z.output<typeof participantBodySchema>;
