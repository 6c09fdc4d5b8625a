/**
 * npm run stack -- up|down|status|logs [temporal|kafka|mysql|s3|kinesis ...]
 *
 * The local stack without Docker: installs each part into .cache/ on first use, runs it in
 * the background with its data in .data/, and waits until it is healthy.
 */
import path from 'node:path';
import { ConfigError, loadConfig, PROJECT_ROOT, readEnv } from '../config';
import { stackDown, stackLogs, stackStatus, stackUp } from '../stack';
import { ensureStackCa, STACK_CA } from '../stack/tls';

const USAGE = 'usage: npm run stack -- up|down|status|logs [temporal|kafka|mysql|s3|kinesis ...]';

async function main(): Promise<number> {
  const [command, ...names] = process.argv.slice(2);
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
    default:
      console.error(USAGE);
      return 2;
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof ConfigError ? err.message : `stack: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  },
);
