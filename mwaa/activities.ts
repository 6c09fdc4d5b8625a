/**
 * The legacy-DAG activities (registered on the worker by activities/index.ts): let a Temporal
 * pipeline call an MWAA DAG while the migration is under way (dailyPipelineWorkflow's
 * `legacyDag` stage). `triggerMwaaDag` triggers (or adopts) the run with a deterministic
 * dag_run_id and can wait for it, `waitMwaaDagRun` follows it, `stopMwaaDagRun` fails a run
 * that is not finished, `pauseMwaaDag` / `describeMwaaDag` for tools. Bad input (no
 * environment, an invalid DAG or run id or date, a paused DAG) is a non-retryable bad-input
 * failure; a run that ends `failed` is the non-retryable MWAA_DAG_RUN_FAILED (mwaa/failures.ts).
 * Polls heartbeat `{dagRunId, state}` and stop when the activity is cancelled.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../config';
import { NonRetryable } from '../common/errors';
import { mwaaAdapter, type MwaaAdapter, type MwaaDagView } from './adapter';
import { MAX_REST_PATH, type AirflowApiOptions } from './api';
import { MWAA_DAG_RUN_FAILED, TERMINAL_DAG_RUN_STATES } from './failures';

/** A deterministic DAG run id for a logical date: `pinflow__20240102T000000Z` (short: InvokeRestApi paths are <= 64 chars). */
export function mwaaDagRunId(logicalDate: string | Date): string {
  const iso = new Date(logicalDate).toISOString();
  return `pinflow__${iso.replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z')}`;
}

export interface TriggerMwaaDagInput {
  /** Default: MWAA_ENVIRONMENT. */
  environment?: string;
  dagId: string;
  /** ISO-8601 date or date-time (UTC unless it has an offset). */
  logicalDate: string;
  conf?: Record<string, unknown>;
  /** Default: mwaaDagRunId(logicalDate). */
  dagRunId?: string;
  /** Between two polls of the run (each one heartbeats). Default 10 s. */
  pollIntervalMs?: number;
  /**
   * Default true: wait for the run's end. false: trigger (or adopt) the run and return its
   * current state at once (a run already `failed` still fails); follow it with waitMwaaDagRun.
   */
  wait?: boolean;
}

export interface TriggerMwaaDagResult {
  environment: string;
  dagId: string;
  dagRunId: string;
  logicalDate: string;
  state: string;
  /** True when the run already existed (an earlier attempt or call created it). */
  adopted: boolean;
  startDate?: string;
  endDate?: string;
}

export interface WaitMwaaDagRunInput {
  /** Default: MWAA_ENVIRONMENT. */
  environment?: string;
  dagId: string;
  dagRunId: string;
  /** The state the caller last saw: the activity returns as soon as the run's state differs. */
  since?: string;
  /** Return the current state after this long even when it has not changed. Default 5 min. */
  maxWaitMs?: number;
  /** Between two polls of the run (each one heartbeats). Default 10 s. */
  pollIntervalMs?: number;
}

export type MwaaDagRunStatus = Omit<TriggerMwaaDagResult, 'adopted'>;

const DAG_ID = /^[A-Za-z0-9_.-]{1,250}$/;

function badInput(message: string): never {
  throw ApplicationFailure.nonRetryable(message, NonRetryable.badInput);
}

function dagRunFailed(environment: string, dagId: string, dagRunId: string, logicalDate: string, state: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`MWAA environment ${environment}: DAG run ${dagId}/${dagRunId} (logical date ${logicalDate}) ended in state ${state}`, MWAA_DAG_RUN_FAILED);
}

const isoOf = (d: string) => {
  const t = new Date(d);
  return Number.isNaN(t.getTime()) ? d : t.toISOString();
};

/**
 * Activities on a legacy MWAA DAG. Give `triggerMwaaDag` a heartbeatTimeout of a few poll
 * intervals (so cancellation and worker loss reach it) and a startToCloseTimeout longer than
 * the DAG's runtime; or, to follow the run from a workflow (as dailyPipelineWorkflow does),
 * `triggerMwaaDag({wait: false})` then `waitMwaaDagRun` in a loop, and `stopMwaaDagRun` when
 * the workflow is cancelled. `opts.adapter`: share an adapter (the worker closes it).
 */
export function mwaaActivities(config: Config, opts: AirflowApiOptions & { adapter?: MwaaAdapter } = {}) {
  let adapter: MwaaAdapter | undefined = opts.adapter;
  const mwaa = () => (adapter ??= mwaaAdapter(config, opts));
  const envName = (e: string | undefined) => e ?? config.mwaa.environment ?? badInput('no MWAA environment given (input.environment or MWAA_ENVIRONMENT)');
  const checkDag = (dagId: string) => (DAG_ID.test(dagId) ? dagId : badInput(`invalid DAG id ${JSON.stringify(dagId)}`));
  const checkRunId = (runId: string) => (typeof runId === 'string' && /^[A-Za-z0-9_.~:+-]{1,250}$/.test(runId) ? runId : badInput(`invalid DAG run id ${JSON.stringify(runId)}`));

  return {
    /**
     * Triggers `dagId` for `logicalDate` with a deterministic dag_run_id (an existing run with
     * that id is adopted, so retries and repeated calls never start a second run), then polls
     * the run, heartbeating `{dagRunId, state}`, until it succeeds (returned) or fails
     * (non-retryable `PinflowMwaaDagRunFailed` naming the run and its state). Cancelling the
     * activity marks the Airflow run failed (Airflow >= 2.4.3) and stops. With `wait: false`
     * it returns right after the trigger.
     */
    async triggerMwaaDag(input: TriggerMwaaDagInput): Promise<TriggerMwaaDagResult> {
      const ctx = Context.current();
      const environment = envName(input.environment);
      const dagId = checkDag(input.dagId);
      const when = new Date(input.logicalDate);
      if (Number.isNaN(when.getTime())) badInput(`invalid logical date ${JSON.stringify(input.logicalDate)}`);
      const logicalDate = when.toISOString();
      const dagRunId = checkRunId(input.dagRunId ?? mwaaDagRunId(when));
      const pollMs = input.pollIntervalMs ?? 10_000;
      const m = mwaa();

      ctx.heartbeat({ dagRunId, state: 'triggering' });
      // The run must be followable once triggered: over InvokeRestApi its path has a length limit.
      const runPath = `/dags/${encodeURIComponent(dagId)}/dagRuns/${encodeURIComponent(dagRunId)}`;
      if (runPath.length > MAX_REST_PATH && (await m.getEnvironment(environment)).restApi) {
        badInput(
          `MWAA environment ${environment}: DAG run path ${runPath} would be ${runPath.length} characters, over InvokeRestApi's limit of ${MAX_REST_PATH}, so the run could be started but never followed; nothing was triggered (use a DAG id of at most ${MAX_REST_PATH - runPath.length + dagId.length} characters, or a shorter run id)`,
        );
      }
      // Airflow accepts a run for a paused DAG but never starts it: fail now, not after the timeout.
      if (await m.isDagPaused(environment, dagId)) {
        badInput(`MWAA environment ${environment}: DAG ${dagId} is paused (cut over to Temporal?), so a run for ${logicalDate} would stay queued; unpause it first (npm run mwaa -- rollback) or stop calling it`);
      }
      const { run: first, adopted } = await m.triggerRun(environment, dagId, dagRunId, logicalDate, input.conf);
      let run = first;
      if (input.wait === false) {
        ctx.heartbeat({ dagRunId, state: run.state });
        if (run.state === 'failed') throw dagRunFailed(environment, dagId, dagRunId, logicalDate, run.state);
        return { environment, dagId, dagRunId, logicalDate, state: run.state, adopted, startDate: run.startDate, endDate: run.endDate };
      }
      const signal = ctx.cancellationSignal;
      try {
        for (;;) {
          ctx.heartbeat({ dagRunId, state: run.state });
          if (run.state === 'success') {
            return { environment, dagId, dagRunId, logicalDate, state: run.state, adopted, startDate: run.startDate, endDate: run.endDate };
          }
          if (run.state === 'failed') throw dagRunFailed(environment, dagId, dagRunId, logicalDate, run.state);
          await delay(pollMs, undefined, { signal });
          run = await m.getRun(environment, dagId, dagRunId);
        }
      } catch (err) {
        if (signal.aborted) {
          await m.markRunFailed(environment, dagId, dagRunId).catch((e: Error) => ctx.log.warn(`MWAA: could not mark ${dagId}/${dagRunId} failed after cancellation: ${e.message}`));
          throw signal.reason ?? err;
        }
        throw err;
      }
    },

    /**
     * Follows an existing DAG run, heartbeating `{dagRunId, state}` every poll: returns when the
     * run succeeds, when its state differs from `since`, or after `maxWaitMs` (then, if the DAG
     * is paused, fails non-retryably: Airflow would never finish the run). A `failed` run fails
     * non-retryably (`PinflowMwaaDagRunFailed`). Read-only: cancelling it only stops waiting.
     */
    async waitMwaaDagRun(input: WaitMwaaDagRunInput): Promise<MwaaDagRunStatus> {
      const ctx = Context.current();
      const environment = envName(input.environment);
      const dagId = checkDag(input.dagId);
      const dagRunId = checkRunId(input.dagRunId);
      const pollMs = input.pollIntervalMs ?? 10_000;
      const maxWaitMs = input.maxWaitMs ?? 300_000;
      const started = Date.now();
      const m = mwaa();
      for (;;) {
        const run = await m.getRun(environment, dagId, dagRunId);
        ctx.heartbeat({ dagRunId, state: run.state });
        const logicalDate = isoOf(run.logicalDate);
        if (run.state === 'failed') throw dagRunFailed(environment, dagId, dagRunId, logicalDate, run.state);
        const status: MwaaDagRunStatus = { environment, dagId, dagRunId, logicalDate, state: run.state, startDate: run.startDate, endDate: run.endDate };
        if (TERMINAL_DAG_RUN_STATES.includes(run.state) || (input.since !== undefined && run.state !== input.since)) return status;
        if (Date.now() - started + pollMs > maxWaitMs) {
          if (await m.isDagPaused(environment, dagId)) {
            badInput(`MWAA environment ${environment}: DAG ${dagId} is paused while its run ${dagRunId} is ${run.state}, so Airflow will not finish it; unpause the DAG (the run then goes on) and run the caller again`);
          }
          return status;
        }
        // Cancelled while waiting: end with the cancellation's own reason (Temporal's CancelledFailure).
        const signal = ctx.cancellationSignal;
        await delay(pollMs, undefined, { signal }).catch((err: unknown) => {
          throw signal.aborted ? (signal.reason ?? err) : err;
        });
      }
    },

    /**
     * Stops a DAG run that is not finished by marking it failed (Airflow >= 2.4.3; older
     * environments cannot: `stopped: false`). Idempotent: a finished run is left as it is.
     */
    async stopMwaaDagRun(input: { environment?: string; dagId: string; dagRunId: string }): Promise<{ dagRunId: string; state: string; stopped: boolean }> {
      const environment = envName(input.environment);
      const dagId = checkDag(input.dagId);
      const dagRunId = checkRunId(input.dagRunId);
      const m = mwaa();
      const run = await m.getRun(environment, dagId, dagRunId);
      if (TERMINAL_DAG_RUN_STATES.includes(run.state)) return { dagRunId, state: run.state, stopped: false };
      const stopped = await m.markRunFailed(environment, dagId, dagRunId);
      return { dagRunId, state: stopped ? 'failed' : run.state, stopped };
    },

    /** Pauses (default) or unpauses a DAG; idempotent. */
    async pauseMwaaDag(input: { environment?: string; dagId: string; paused?: boolean }): Promise<{ environment: string; dagId: string; isPaused: boolean; changed: boolean }> {
      const environment = envName(input.environment);
      const dagId = checkDag(input.dagId);
      const res = await mwaa().setDagPaused(environment, dagId, input.paused ?? true);
      return { environment, dagId, ...res };
    },

    /** The DAG's scheduling facts, pause state, next run and recent runs. */
    async describeMwaaDag(input: { environment?: string; dagId: string }): Promise<MwaaDagView> {
      return mwaa().describeDag(envName(input.environment), checkDag(input.dagId));
    },
  };
}
