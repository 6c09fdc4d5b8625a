/**
 * `npm run worker`: the long-running pinflow worker. Fails at start-up on bad configuration
 * (exit 2, naming every bad setting); shuts down gracefully on SIGINT/SIGTERM.
 */
import { loadConfig } from '../config';
import { defineCommand, parseCommandLine } from '../cli/args';
import { runCommand } from '../cli/command';
import { describeConnection } from './connection';
import { installWorkerRuntime, lifecycleLine } from './runtime';
import { buildIdOf } from './version';
import { createWorker, DEPLOYMENT_NAME, workflowBundle } from './worker';

export const COMMAND = defineCommand({
  script: 'worker',
  name: 'pinflow worker',
  options: { version: { help: 'print the build id of the workflow code this worker runs (workers/version.ts) and exit' } },
  about:
    'The long-running pinflow worker: polls the configured task queue and runs every workflow and activity. ' +
    'Fails at start-up on bad configuration (exit 2, naming every bad setting); on SIGINT/SIGTERM it finishes the tasks in flight and exits 0.',
});

async function main(argv: string[]): Promise<void> {
  if (parseCommandLine(COMMAND, argv).values.version) {
    const config = loadConfig();
    process.stdout.write(`${buildIdOf(await workflowBundle({ encodeFailures: config.encryption !== undefined }))}\n`);
    return;
  }
  const config = loadConfig();
  // SIGINT/SIGTERM make worker.run() resolve after in-flight tasks finish (Temporal's default).
  // The runtime also carries the JSON logger and the Prometheus endpoint (workers/runtime.ts).
  installWorkerRuntime(config, ['SIGINT', 'SIGTERM']);
  const w = await createWorker(config);
  const { taskQueue, namespace, uiUrl } = config.temporal;
  process.stdout.write(
    lifecycleLine(config, `pinflow worker (build ${w.buildId}) polling task queue "${taskQueue}" in namespace "${namespace}" at ${describeConnection(config)} (UI ${uiUrl})`, {
      taskQueue,
      namespace,
      buildId: w.buildId,
      deployment: DEPLOYMENT_NAME,
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

if (require.main === module) runCommand(COMMAND, main);
