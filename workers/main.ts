/**
 * `npm run worker`: the long-running pinflow worker. Fails at start-up on bad configuration
 * (exit 2, naming every bad setting); shuts down gracefully on SIGINT/SIGTERM.
 */
import { Runtime } from '@temporalio/worker';
import { ConfigError, loadConfig } from '../common/config';
import { createWorker } from './worker';

async function main(): Promise<void> {
  const config = loadConfig();
  // SIGINT/SIGTERM make worker.run() resolve after in-flight tasks finish (Temporal's default).
  Runtime.install({ shutdownSignals: ['SIGINT', 'SIGTERM'] });
  const w = await createWorker(config);
  console.log(
    `pinflow worker polling task queue "${config.temporal.taskQueue}" in namespace "${config.temporal.namespace}" at ${config.temporal.address} (UI ${config.temporal.uiUrl})`,
  );
  try {
    await w.worker.run();
  } finally {
    await w.close();
  }
  console.log('pinflow worker stopped');
}

main().catch((err) => {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  console.error(`pinflow worker failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
