import type { Scenario } from '../lib/scenario.ts';

export const bullmqScenario: Scenario = {
  name: 'bullmq',
  description: 'Fastify + BullMQ on Redis + undici worker, the usual alternative, beside the hub at the same load',
  async run() {
    throw new Error('the bullmq scenario is not built yet');
  },
};
