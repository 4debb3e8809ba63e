/**
 * `npm run chaos`: the crash-consistency harness (test/chaos/harness.ts) with 20 kills.
 * Options: --kills N, --seed S, --senders N, --keep (keep the data folder). Prints progress, a
 * summary line and the report as JSON; exits 1 if anything was lost, changed, left unended,
 * sent again outside a kill, or numbered out of order.
 */
import { parseArgs } from 'node:util';
import { passed, runChaos, summaryLine } from '../test/chaos/harness.ts';

const { values } = parseArgs({
  options: {
    kills: { type: 'string', default: '20' },
    seed: { type: 'string' },
    senders: { type: 'string', default: '4' },
    keep: { type: 'boolean', default: false },
  },
});
const report = await runChaos({
  kills: Number(values.kills),
  ...(values.seed === undefined ? {} : { seed: Number(values.seed) }),
  senders: Number(values.senders),
  keep: values.keep,
  log: (line) => process.stderr.write(`${line}\n`),
});
process.stdout.write(`${summaryLine(report)}\n${JSON.stringify(report, null, 2)}\n`);
process.exit(passed(report) ? 0 : 1);
