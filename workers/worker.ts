/**
 * Builds the pinflow worker: one task queue, every workflow in workflows/, every activity
 * from activities/ bound to one Config. Used by `npm run worker`, by the doctor (in-process
 * when no worker is polling) and by tests.
 */
import { bundleWorkflowCode, NativeConnection, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities } from '../activities';
import type { Config } from '../common/config';

const workflowsPath = require.resolve('../workflows');
let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

/** The workflow bundle, built once per process (webpack takes a few seconds). */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  return (bundle ??= bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger }));
}

const quietBundlerLogger = {
  log: () => {},
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: (m: string) => process.stderr.write(`[bundler] ${m}\n`),
  error: (m: string) => process.stderr.write(`[bundler] ${m}\n`),
};

export interface PinflowWorker {
  worker: Worker;
  connection: NativeConnection;
  /** Stops polling, waits for running activities, closes clients and the connection. */
  close(): Promise<void>;
}

export async function createWorker(config: Config, opts: { taskQueue?: string; connection?: NativeConnection } = {}): Promise<PinflowWorker> {
  const connection = opts.connection ?? (await NativeConnection.connect({ address: config.temporal.address }));
  const acts = createActivities(config);
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: opts.taskQueue ?? config.temporal.taskQueue,
    workflowBundle: await workflowBundle(),
    activities: acts.activities,
    // Two cores here: a handful of concurrent activities saturates them.
    maxConcurrentActivityTaskExecutions: 16,
  });
  return {
    worker,
    connection,
    async close() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await acts.close();
      if (!opts.connection) await connection.close();
    },
  };
}
