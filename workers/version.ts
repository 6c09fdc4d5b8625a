/**
 * The worker's build id: the first 12 hex digits of the SHA-256 of the workflow bundle it runs
 * (workers/worker.ts `workflowBundle`). Two workers share a build id exactly when they run the
 * same workflow code, which is what decides whether a history replays on them; activity-only
 * changes keep it. Logged at start, shown by `npm run worker -- --version`, and carried in the
 * worker's identity (`pinflow@<build id>`), which Temporal records on every workflow task
 * completion: the Web UI and `temporal workflow show` tell which code ran each step.
 */
import { createHash } from 'node:crypto';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';

export function buildIdOf(bundle: Pick<WorkflowBundleWithSourceMap, 'code'>): string {
  return createHash('sha256').update(bundle.code).digest('hex').slice(0, 12);
}

/** The identity a worker reports to Temporal: the process and host, plus the build id. */
export function workerIdentity(buildId: string, host: string, pid: number): string {
  return `pinflow@${buildId} ${pid}@${host}`;
}
