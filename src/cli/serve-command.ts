import type { Command } from 'commander';
import { loadConfig } from '../config/load.ts';
import { serve } from '../hub/serve.ts';

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
          process.stderr.write(`meterhub: second ${sig}, exiting now\n`);
          process.exit(130);
        }
        process.stderr.write(`meterhub: ${sig}, stopping (in-flight deliveries finish, then exit)\n`);
        close().then(() => process.exit(0), (err) => { process.stderr.write(`meterhub: stop failed: ${err}\n`); process.exit(1); });
      };
      process.on('SIGTERM', () => onSignal('SIGTERM'));
      process.on('SIGINT', () => onSignal('SIGINT'));
    });
}
