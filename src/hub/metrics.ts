import { Counter, Registry, collectDefaultMetrics } from 'prom-client';

/** The hub's Prometheus metrics (GET /metrics). */
export class Metrics {
  readonly registry = new Registry();
  readonly accepted = new Counter({ name: 'meterhub_ingest_commits_total', help: 'Ingest commits that created deliveries', registers: [this.registry] });
  readonly attempts = new Counter({ name: 'meterhub_push_attempts_total', help: 'Push attempts by receiver and result', labelNames: ['receiver', 'result'], registers: [this.registry] });
  readonly deadLettered = new Counter({ name: 'meterhub_deliveries_dead_total', help: 'Deliveries that went to the dead-letter queue', labelNames: ['receiver'], registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'meterhub_' });
  }
}
