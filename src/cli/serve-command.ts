import type { Command } from 'commander';
import { loadConfig } from '../config/load.ts';
import { serve } from '../hub/serve.ts';

/** Past the grace period, the shutdown itself (closing the server and the store) gets this long before the process gives up and exits. */
const STOP_BACKSTOP_MS = 15_000;

export function registerServe(program: Command): void {
  program.command('serve')
    .description('run the hub')
    .option('-c, --config <file>', 'YAML config file (or METERHUB_CONFIG)')
    .action(async (opts: { config?: string }) => {
      const { config } = loadConfig(opts.config ?? process.env.METERHUB_CONFIG);
      const { close } = await serve(config);
      let signals = 0;
      const onSignal = (sig: string) => {
        signals++;
        if (signals > 1) {
          // Safe: every acknowledged message is committed (fsync'd) before its 202, and push leases
          // left behind are released at the next start; in-flight deliveries are sent again then.
          process.stderr.write(`meterhub: second ${sig}, exiting now (in-flight deliveries are sent again after the restart)\n`);
          process.exit(130);
        }
        const graceMs = config.server.shutdownGraceMs;
        process.stderr.write(`meterhub: ${sig}, stopping: refusing new requests, in-flight requests and deliveries get ${graceMs} ms (send ${sig} again to exit now)\n`);
        setTimeout(() => {
          process.stderr.write('meterhub: the shutdown did not finish in time, exiting now\n');
          process.exit(1);
        }, graceMs + STOP_BACKSTOP_MS).unref();
        close().then((report) => {
          process.stderr.write(`meterhub: stopped in ${report.tookMs} ms${report.graceful ? '' : ` (grace period over: ${report.released} in-flight push deliveries put back to pending)`}\n`);
          process.exit(0);
        }, (err) => {
          process.stderr.write(`meterhub: stop failed: ${err}\n`);
          process.exit(1);
        });
      };
      process.on('SIGTERM', () => onSignal('SIGTERM'));
      process.on('SIGINT', () => onSignal('SIGINT'));
    });
}
