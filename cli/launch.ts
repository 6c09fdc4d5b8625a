/**
 * How a command starts its workflow, one way for all of them:
 * - `startWorkflow` starts it and prints `started <id><detail>` with its Web UI link. When a run
 *   with that id is already running it either attaches to it (`ifRunning: 'attach'`: prints
 *   that it did; no second run) or refuses with a UsageError (exit 2) naming the run and how
 *   to wait for it or cancel it; with `usedOnce`, an id that was ever used is refused (the
 *   start must carry WorkflowIdReusePolicy.REJECT_DUPLICATE) and the message says why.
 * - `launchWorkflow` connects, starts (as above), then without `wait` notes when no live worker
 *   polls the task queue (workers/pollers.ts); with `wait` it shows a progress line from the
 *   workflow's status query every second until the result is in, with a worker sure to run it
 *   (workers/worker.ts withWorker: a live polling one, or one in this process), and returns the
 *   result. The worker SDK and the activities are loaded only when this process may run the
 *   worker: while the start is on its way when no live worker is listed; otherwise only once
 *   the listed ones have not taken the run.
 */
import { WorkflowExecutionAlreadyStartedError, type Client, type QueryDefinition, type WorkflowHandle, type WorkflowStartOptions } from '@temporalio/client';
import type { Workflow, WorkflowResultType } from '@temporalio/common';
import type { Config } from '../config';
import { connectClient, uiLink } from '../workers/client';
import { livePollers, type Poller } from '../workers/pollers';
import { UsageError } from './args';
import { pollEvery, ProgressPrinter } from './progress';

export type IfRunning = 'attach' | { refuse: string; usedOnce?: string };

export interface StartRequest<W extends Workflow> {
  workflowType: string;
  /** The start options (task queue: the configured one unless given); `workflowId` names the run. */
  options: Omit<WorkflowStartOptions<W>, 'taskQueue'> & { taskQueue?: string };
  /** A run with this id already running: attach to it, or refuse naming it (`refuse`: "a landing workflow for prefix X"). */
  ifRunning: IfRunning;
  /** After the id in the `started` line, e.g. " (untilNow)". */
  detail?: string;
  /** Whether the caller waits for the result (the attach line says so). */
  wait: boolean;
}

export interface Progress<W extends Workflow, S> {
  query: QueryDefinition<S>;
  /** The progress line of a status. */
  line: (status: S) => string;
  /** The last line, from the result (default: none). */
  final?: (result: WorkflowResultType<W>) => string;
}

export interface Started<W extends Workflow> {
  workflowId: string;
  handle: WorkflowHandle<W>;
  /** True when the run was already running and this command attached to it. */
  attached: boolean;
}

export async function startWorkflow<W extends Workflow>(config: Config, client: Client, req: StartRequest<W>, log: (s: string) => void): Promise<Started<W>> {
  const workflowId = req.options.workflowId;
  try {
    const options = { taskQueue: config.temporal.taskQueue, ...req.options } as WorkflowStartOptions<W>;
    const handle = await client.workflow.start<W>(req.workflowType, options);
    log(`started ${workflowId}${req.detail ?? ''}\n  ${uiLink(config, workflowId, handle.firstExecutionRunId)}`);
    return { workflowId, handle, attached: false };
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    const running = req.ifRunning;
    if (running === 'attach') {
      log(`${workflowId} is already running${req.wait ? ': attaching to it (no second run)' : ' (not started again)'}\n  ${uiLink(config, workflowId)}`);
      return { workflowId, handle: client.workflow.getHandle<W>(workflowId), attached: true };
    }
    if (running.usedOnce) throw new UsageError(`${running.refuse} already exists (${workflowId}, running or finished); ${running.usedOnce}`);
    throw new UsageError(`${running.refuse} is already running (${workflowId}); wait for it, or cancel it: temporal workflow cancel -w ${workflowId}`);
  }
}

/** Prints a note when no live worker polls the task queue (a started run waits for one). */
export async function noteIfNoWorker(config: Config, client: Client, log: (s: string) => void): Promise<void> {
  const taskQueue = config.temporal.taskQueue;
  if (!(await livePollers(client, taskQueue)).length) log(`note: no worker polls "${taskQueue}" yet; start one with: npm run worker`);
}

/**
 * Waits for the run's result, redrawing its progress line; a worker is sure to run it.
 * `live`: the task queue's live pollers, when the caller listed them beside the start.
 */
export async function awaitWorkflow<W extends Workflow, S>(
  config: Config,
  client: Client,
  handle: WorkflowHandle<W>,
  progress: Progress<W, S>,
  log: (s: string) => void,
  live?: Promise<Poller[]>,
): Promise<WorkflowResultType<W>> {
  const printer = new ProgressPrinter();
  const poll = pollEvery(1_000, () => handle.query(progress.query).then((s) => printer.update(progress.line(s))));
  let result: WorkflowResultType<W>;
  try {
    const { withWorker } = await import('../workers/worker');
    result = await withWorker(config, client, handle, () => handle.result(), log, live);
  } finally {
    await poll.stop();
  }
  if (progress.final) printer.update(progress.final(result), true);
  return result;
}

/** Connects, starts (or attaches), then notes a missing worker or waits with progress (see the top of this file). */
export async function launchWorkflow<W extends Workflow, S>(
  config: Config,
  req: StartRequest<W> & { progress: Progress<W, S> },
  log: (s: string) => void,
): Promise<{ workflowId: string; attached: boolean; result?: WorkflowResultType<W> }> {
  const client = await connectClient(config);
  try {
    const starting = startWorkflow(config, client, req, log);
    let live: Promise<Poller[]> | undefined;
    if (req.wait) {
      // Listed beside the start; with no live poller this process runs the worker, so its code
      // loads while the start is on its way.
      live = livePollers(client, config.temporal.taskQueue);
      const preload = live.then((p) => (p.length ? undefined : import('../workers/worker')));
      // Either failure surfaces where it is awaited (the start's first, as the command's error).
      preload.catch(() => {});
    }
    const { workflowId, handle, attached } = await starting;
    if (!req.wait) {
      await noteIfNoWorker(config, client, log);
      return { workflowId, attached };
    }
    return { workflowId, attached, result: await awaitWorkflow(config, client, handle, req.progress, log, live) };
  } finally {
    await client.connection.close();
  }
}
