import type { Scenario } from '../lib/scenario.ts';

export const registryScenario: Scenario = {
  name: 'registry',
  description: '5,000,000 meters imported through the CLI (rows/s); routing lookup cost vs a 1,000-meter registry',
  async run() {
    throw new Error('the registry scenario is not built yet');
  },
};
