/**
 * npm run stack -- up|down|status|logs [temporal|kafka|mysql|s3|kinesis ...]
 *
 * The local stack without Docker: installs each part into .cache/ on first use, runs it in
 * the background with its data in .data/, and waits until it is healthy.
 */
import path from 'node:path';
import { loadConfig, PROJECT_ROOT, readEnv } from '../config';
import { stackDown, stackLogs, stackStatus, stackUp } from '../stack';
import { ensureStackCa, STACK_CA } from '../stack/tls';
import { defineCommand, parseCommandLine, UsageError } from '../cli/args';
import { runCommand } from '../cli/command';

const PARTS = ['temporal', 'kafka', 'mysql', 's3', 'kinesis'];

export const COMMAND = defineCommand({
  script: 'stack',
  args: `up|down|status|logs [${PARTS.join('|')} ...]`,
  options: {},
  about:
    'The local stack without Docker: up installs each part into .cache/ on first use, runs it in the background with its data in .data/ and waits until it is healthy; ' +
    'down stops it; status checks each part (exit 1 when one is down); logs prints the end of each part\'s log. Without names: every part.',
});

async function main(argv: string[]): Promise<number> {
  const [command, ...names] = parseCommandLine(COMMAND, argv).positionals;
  if (command !== 'up' && command !== 'down' && command !== 'status' && command !== 'logs') throw new UsageError(`expected up, down, status or logs${command ? `, got ${JSON.stringify(command)}` : ''}`);
  // A setting that names the stack's CA (KAFKA_SSL_CA=.data/kafka/tls/ca.pem for the secured
  // Kafka listener) must be readable to pass validation: on a fresh clone, make the CA first.
  if (command === 'up' && Object.values(readEnv()).some((v) => v !== undefined && v.trim() !== '' && path.resolve(PROJECT_ROOT, v.trim()) === STACK_CA)) ensureStackCa();
  const config = loadConfig();
  switch (command) {
    case 'up': {
      const started = Date.now();
      await stackUp(config, names);
      console.log(`stack up in ${((Date.now() - started) / 1000).toFixed(1)} s; Temporal UI: ${config.temporal.uiUrl}`);
      return 0;
    }
    case 'down':
      await stackDown(config, names);
      return 0;
    case 'status':
      return (await stackStatus(config, names)) ? 0 : 1;
    case 'logs':
      stackLogs(names);
      return 0;
  }
}

if (require.main === module) runCommand(COMMAND, main);
