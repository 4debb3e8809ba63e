import type { Scenario } from '../lib/scenario.ts';

export const backlogScenario: Scenario = {
  name: 'backlog',
  description: 'a receiver down while 1,000,000 deliveries pile up: ingest rate as the backlog grows, RSS, drain rate',
  async run() {
    throw new Error('the backlog scenario is not built yet');
  },
};
