import { z } from 'zod';

/** A match field: exact string, any of a list, or a prefix. */
export const matcherSchema = z.union([
  z.string().min(1).max(256),
  z.array(z.string().min(1).max(256)).min(1).max(10_000),
  z.strictObject({ prefix: z.string().min(1).max(256) }),
]);

export const meterIdSchemeSchema = z.enum(['nmi', 'mpan', 'gsrn']);

export const routeRuleSchema = z.strictObject({
  name: z.string().min(1).max(200),
  match: z.strictObject({
    type: matcherSchema.optional(),
    source: matcherSchema.optional(),
    subject: matcherSchema.optional(),
    /** Extension attributes, by name. */
    extensions: z.record(z.string().regex(/^[a-z0-9]{1,20}$/), matcherSchema).optional(),
  }).default({}),
  to: z.strictObject({
    participants: z.array(z.string().min(1).max(64)).max(1000).optional(),
    roles: z.array(z.string().min(1).max(32)).max(100).optional(),
  }).refine((t) => (t.participants?.length ?? 0) + (t.roles?.length ?? 0) > 0, 'a rule needs at least one participant or role'),
  /** Check the subject's check digit per scheme; a failing meter ID is refused with 400. */
  validateSubject: meterIdSchemeSchema.optional(),
});

export const routesSchema = z.array(routeRuleSchema).max(10_000).superRefine((rules, ctx) => {
  const seen = new Set<string>();
  for (const [i, r] of rules.entries()) {
    if (seen.has(r.name)) ctx.addIssue({ code: 'custom', message: `duplicate rule name '${r.name}'`, path: [i, 'name'] });
    seen.add(r.name);
  }
});

export type Matcher = z.output<typeof matcherSchema>;
export type RouteRule = z.output<typeof routeRuleSchema>;
