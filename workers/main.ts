/**
 * `npm run worker`: the long-running pinflow worker. Fails at start-up on bad configuration
 * (exit 2, naming every bad setting); shuts down gracefully on SIGINT/SIGTERM.
 */
import { ConfigError, loadConfig } from '../config';
import { redactText } from '../common/redact';
import { describeConnection } from './connection';
import { installWorkerRuntime, lifecycleLine } from './runtime';
import { createWorker } from './worker';

async function main(): Promise<void> {
  const config = loadConfig();
  // SIGINT/SIGTERM make worker.run() resolve after in-flight tasks finish (Temporal's default).
  // The runtime also carries the JSON logger and the Prometheus endpoint (workers/runtime.ts).
  installWorkerRuntime(config, ['SIGINT', 'SIGTERM']);
  const w = await createWorker(config);
  const { taskQueue, namespace, uiUrl } = config.temporal;
  process.stdout.write(
    lifecycleLine(config, `pinflow worker polling task queue "${taskQueue}" in namespace "${namespace}" at ${describeConnection(config)} (UI ${uiUrl})`, {
      taskQueue,
      namespace,
      encryption: config.encryption ? `AES-256-GCM, key ${config.encryption.keyId}` : 'off',
      metrics: config.metrics.port !== undefined ? `http://${config.metrics.host}:${config.metrics.port}/metrics` : 'off',
    }),
  );
  try {
    await w.worker.run();
  } finally {
    await w.close();
  }
  process.stdout.write(lifecycleLine(config, 'pinflow worker stopped'));
}

main().catch((err) => {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  console.error(redactText(`pinflow worker failed: ${err instanceof Error ? err.message : String(err)}`));
  process.exit(1);
});
