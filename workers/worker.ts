/**
 * Builds the pinflow worker: one task queue, every workflow in workflows/, every activity
 * from activities/ bound to one Config. Used by `npm run worker`, by the commands that wait for
 * a workflow and the doctor (`withWorker`: in-process when no live worker takes the run) and by tests.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PROJECT_ROOT, type Config } from '../config';
import { dataConverterOf } from './codec';
import { temporalConnectionOptions } from './connection';
import { livePollers, registerOwnWorker, type Poller } from './pollers';
import { redactingActivityInterceptor } from './redaction';
import { buildIdOf, workerIdentity } from './version';

// The TypeScript sources, also in a compiled worker (workers/build.ts): every worker bundles the same code.
const workflowsPath = path.join(PROJECT_ROOT, 'workflows', 'index.ts');
const FAILURE_CONVERTER_SOURCE = path.join(PROJECT_ROOT, 'workers', 'failure-converter.ts');
/**
 * The process's bundles by cache file (source hash): every worker this process creates (the doctor's, a
 * test's many) shares one load or build. Per process on purpose; `workflowBundle` is its only user.
 */
const bundles = new Map<string, Promise<WorkflowBundleWithSourceMap>>();

/** The project folders the workflow bundle is built from (test/unit/workflow-bundle.test.ts checks it against the bundle). */
export const WORKFLOW_SOURCE_DIRS = ['workflows', 'common', 'mwaa'];

/**
 * A hash of everything that goes into the bundle: workflow code, what it imports, the SDK, the
 * failure converter; `root`: the project folder (a test hashes a copy).
 */
export function sourceHash(encodeFailures: boolean, root = PROJECT_ROOT): string {
  const h = createHash('sha256');
  if (encodeFailures) h.update('encode-failures').update(fs.readFileSync(FAILURE_CONVERTER_SOURCE));
  const walk = (dir: string) => {
    for (const f of fs.readdirSync(dir).sort()) {
      const p = path.join(dir, f);
      if (fs.statSync(p).isDirectory()) walk(p);
      else if (f.endsWith('.ts')) h.update(p).update(fs.readFileSync(p));
    }
  };
  for (const dir of WORKFLOW_SOURCE_DIRS) walk(path.join(root, dir));
  h.update(fs.readFileSync(path.join(root, 'node_modules', '@temporalio', 'workflow', 'package.json')));
  return h.digest('hex').slice(0, 16);
}

/** Where the bundle of today's sources is cached: `.cache/workflow-bundle/<source hash>.json` under `root`. */
export function bundleCacheFile(encodeFailures: boolean, root = PROJECT_ROOT): string {
  return path.join(root, '.cache', 'workflow-bundle', `${sourceHash(encodeFailures, root)}.json`);
}

/**
 * The workflow bundle. Webpack runs once per version of the workflow code (content-hashed
 * under .cache/workflow-bundle/); every later worker loads the built bundle, which keeps the
 * bundler's time and memory out of long-running workers (as Temporal's production sample does).
 * `encodeFailures` (encryption on): the bundle carries the failure converter that encodes
 * failure messages and stack traces (workers/failure-converter.ts), so failures raised inside
 * workflows are encrypted like those of activities; a bundle of its own.
 */
export function workflowBundle(opts: { encodeFailures?: boolean } = {}): Promise<WorkflowBundleWithSourceMap> {
  const encodeFailures = opts.encodeFailures ?? false;
  const file = bundleCacheFile(encodeFailures);
  let bundle = bundles.get(file);
  if (bundle) return bundle;
  bundle = (async () => {
    if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')) as WorkflowBundleWithSourceMap;
    const built = await bundleWorkflowCode({
      workflowsPath,
      logger: quietBundlerLogger,
      ...(encodeFailures && { failureConverterPath: FAILURE_CONVERTER_SOURCE }),
    });
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(built));
    fs.renameSync(tmp, file);
    return built;
  })();
  bundles.set(file, bundle);
  return bundle;
}

const quietBundlerLogger = {
  log: () => {},
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: (m: string) => process.stderr.write(`[bundler] ${m}\n`),
  error: (m: string) => process.stderr.write(`[bundler] ${m}\n`),
};

/** The Temporal worker deployment every pinflow worker reports its build id under. */
export const DEPLOYMENT_NAME = 'pinflow';

export interface PinflowWorker {
  worker: Worker;
  /** The build id of the workflow code this worker runs (workers/version.ts). */
  buildId: string;
  connection: NativeConnection;
  /** Stops polling, waits for running activities, closes clients and the connection. */
  close(): Promise<void>;
}

/**
 * `bundle`: run this workflow bundle instead of the project's (a test runs two versions of the
 * workflow code side by side, as a deploy does).
 */
export async function createWorker(
  config: Config,
  opts: { taskQueue?: string; connection?: NativeConnection; deps?: ActivityDeps; bundle?: WorkflowBundleWithSourceMap } = {},
): Promise<PinflowWorker> {
  const connection = opts.connection ?? (await NativeConnection.connect(temporalConnectionOptions(config)));
  // With a key, the bundle whose failure converter encodes failures (workers/failure-converter.ts).
  const bundle = opts.bundle ?? (await workflowBundle({ encodeFailures: config.encryption !== undefined }));
  const buildId = buildIdOf(bundle);
  const acts = createActivities(config, opts.deps);
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: opts.taskQueue ?? config.temporal.taskQueue,
    // Recorded on every workflow task this worker completes: the history says which code ran each step.
    identity: workerIdentity(buildId, os.hostname(), process.pid),
    // Reported to Temporal as this worker's deployment version (no task routing by version:
    // pinflow deploys by rolling restarts with patched() guards, docs/upgrading.md).
    workerDeploymentOptions: { version: { deploymentName: DEPLOYMENT_NAME, buildId }, useWorkerVersioning: false },
    workflowBundle: bundle,
    activities: acts.activities,
    // Payload encryption (and encoded failures) when a key is configured (workers/codec.ts); the default converter otherwise.
    dataConverter: dataConverterOf(config),
    // Whatever an activity throws is redacted before it is logged or becomes a failure (workers/redaction.ts).
    interceptors: { activity: [redactingActivityInterceptor] },
    // Two cores here: a handful of concurrent activities saturates them.
    maxConcurrentActivityTaskExecutions: 16,
  });
  // Until closed, this process's pollers on the queue count as live (workers/pollers.ts).
  const release = registerOwnWorker(opts.taskQueue ?? config.temporal.taskQueue);
  return {
    worker,
    buildId,
    connection,
    async close() {
      release();
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await acts.close();
      if (!opts.connection) await connection.close();
    },
  };
}

/**
 * How long a listed poller that may be live gets to take a run up before this process runs a
 * worker itself. A live worker takes a new workflow task within milliseconds (its long polls
 * wait for one); a stale listing never does (workers/pollers.ts).
 */
export const PICKUP_MS = 2_000;

/** True once a worker has started the workflow's first task (checked every 100 ms, up to `timeoutMs`). */
async function pickedUp(handle: WorkflowHandle, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await handle.describe()).historyLength > 2) return true;
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
}

/**
 * Waits for `until()` while making sure some worker runs the workflow. With no live poller
 * listed for the task queue (workers/pollers.ts: stale listings of workers gone from this host
 * left out), a worker starts in this process at once. Otherwise the polling worker is used if
 * it takes the run up within PICKUP_MS, and a worker starts in this process if not (a listed
 * poller on another host may have exited). Both polling at once runs nothing twice: Temporal
 * hands each task to one poller. `live`: the listing, when the caller took it beside the start.
 */
export async function withWorker<T>(
  config: Config,
  client: Client,
  handle: WorkflowHandle,
  until: () => Promise<T>,
  log: (line: string) => void = () => {},
  live?: Promise<Poller[]>,
): Promise<T> {
  const taskQueue = config.temporal.taskQueue;
  const pollers = await (live ?? livePollers(client, taskQueue));
  if (pollers.length && (await pickedUp(handle, PICKUP_MS))) {
    log(`using the worker polling "${taskQueue}"`);
    return until();
  }
  log(
    pollers.length
      ? `no worker polling "${taskQueue}" took the run up within ${PICKUP_MS / 1000} s: starting one in this process`
      : `no worker polls "${taskQueue}": starting one in this process`,
  );
  const w = await createWorker(config);
  try {
    return await w.worker.runUntil(until());
  } finally {
    await w.close();
  }
}
