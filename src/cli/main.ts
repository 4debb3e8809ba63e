#!/usr/bin/env node
import { Command } from 'commander';
import { registerServe } from './serve-command.ts';
import { registerSend } from './send-command.ts';
import { registerStatus } from './status-command.ts';
import { registerDlq } from './dlq-command.ts';
import { registerReplay } from './replay-command.ts';
import { registerTail } from './tail-command.ts';
import { registerParticipants } from './participants-command.ts';
import { registerMeters } from './meters-command.ts';

const program = new Command('meterhub')
  .description('meterhub: the message hub for smart-meter data')
  .version('0.1.0');
registerServe(program);
registerSend(program);
registerStatus(program);
registerDlq(program);
registerReplay(program);
registerTail(program);
registerParticipants(program);
registerMeters(program);

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`meterhub: ${err.message}\n`);
  process.exit(1);
});
