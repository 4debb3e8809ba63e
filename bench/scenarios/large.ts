import type { Scenario } from '../lib/scenario.ts';

export const largeScenario: Scenario = {
  name: 'large',
  description: 'a 50 MB binary body and a 20 MB JSON body accepted and delivered: peak RSS growth',
  async run() {
    throw new Error('the large scenario is not built yet');
  },
};
