/**
 * Amazon MWAA adapter: the DAG operations pinflow needs from the Airflow inside an MWAA
 * environment (describe a DAG's schedule and runs, pause/unpause it, trigger/adopt, read and
 * fail a run), on mwaa/api.ts's `airflowRest`, which is InvokeRestApi or, for Airflow < 2.4.3,
 * the CLI-token flow. Used by `npm run mwaa` (mwaa/cli.ts) and the legacy-DAG activities
 * (mwaa/activities.ts). Errors are classified ApplicationFailures (see mwaa/api.ts) naming MWAA,
 * the endpoint and the environment.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../config';
import { NonRetryable } from '../common/errors';
import { airflowApi, runTypeOf, type AirflowApiOptions, type RawDagRun } from './api';
import type { AirflowDagFacts, AirflowRunFacts, AirflowTaskRetry } from './translate';

export interface DagRunView extends AirflowRunFacts {
  runType: string;
  startDate?: string;
  endDate?: string;
  conf?: Record<string, unknown>;
}

export interface MwaaDagView {
  environment: string;
  dagId: string;
  isPaused: boolean;
  /** The scheduling facts (translator input). */
  facts: AirflowDagFacts;
  nextDagrun?: string;
  nextDagrunCreateAfter?: string;
  /** Most recent runs first (up to 25), any type. */
  recentRuns: DagRunView[];
  /** The most recent scheduled (or backfill) run: the one the schedule continues from. */
  lastScheduledRun?: DagRunView;
  via: 'rest-api' | 'cli';
}

const ACTIVE_RUN_STATES = new Set(['queued', 'running', 'scheduled', 'restarting', 'up_for_retry']);
export const isActiveRunState = (state: string) => ACTIVE_RUN_STATES.has(state);

function toRunView(r: RawDagRun): DagRunView {
  return {
    runId: r.dag_run_id ?? r.run_id ?? '',
    logicalDate: r.logical_date ?? r.execution_date ?? '',
    state: r.state ?? 'unknown',
    runType: runTypeOf(r),
    dataIntervalEnd: r.data_interval_end || undefined,
    startDate: r.start_date || undefined,
    endDate: r.end_date || undefined,
    conf: r.conf ?? undefined,
  };
}

const seconds = (td: unknown): number | undefined => {
  if (!td || typeof td !== 'object') return undefined;
  const t = td as { days?: number; seconds?: number; microseconds?: number };
  return (t.days ?? 0) * 86_400 + (t.seconds ?? 0) + (t.microseconds ?? 0) / 1e6;
};

export function mwaaAdapter(config: Config, opts: AirflowApiOptions = {}) {
  const api = airflowApi(config, opts);
  const { where, getEnvironment, airflowRest } = api;

  const dagPath = (dagId: string, rest = '') => `/dags/${encodeURIComponent(dagId)}${rest}`;

  async function listRuns(environment: string, dagId: string, limit = 25): Promise<DagRunView[]> {
    const res = await airflowRest<{ dag_runs?: RawDagRun[] }>(environment, 'GET', dagPath(dagId, '/dagRuns'), undefined, { order_by: '-execution_date', limit });
    return (res.body.dag_runs ?? []).map(toRunView);
  }

  async function describeDag(environment: string, dagId: string): Promise<MwaaDagView> {
    const env = await getEnvironment(environment);
    const details = await airflowRest<Record<string, unknown>>(environment, 'GET', dagPath(dagId, env.restApi ? '/details' : ''));
    const d = details.body;
    let tasks: AirflowTaskRetry[] | undefined;
    if (env.restApi) {
      const t = await airflowRest<{ tasks?: Array<Record<string, unknown>> }>(environment, 'GET', dagPath(dagId, '/tasks'));
      tasks = (t.body.tasks ?? []).map((x) => ({
        taskId: String(x.task_id),
        retries: typeof x.retries === 'number' ? x.retries : undefined,
        retryDelaySeconds: seconds(x.retry_delay),
        retryExponentialBackoff: typeof x.retry_exponential_backoff === 'boolean' ? x.retry_exponential_backoff : undefined,
        maxRetryDelaySeconds: seconds(x.max_retry_delay),
      }));
    }
    const recentRuns = await listRuns(environment, dagId);
    const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
    return {
      environment,
      dagId,
      isPaused: d.is_paused === true,
      facts: {
        dagId,
        scheduleInterval: 'schedule_interval' in d ? (d.schedule_interval as AirflowDagFacts['scheduleInterval']) : undefined,
        timetableDescription: str(d.timetable_description),
        catchup: typeof d.catchup === 'boolean' ? d.catchup : undefined,
        startDate: str(d.start_date),
        endDate: str(d.end_date),
        timezone: str(d.timezone),
        maxActiveRuns: typeof d.max_active_runs === 'number' ? d.max_active_runs : undefined,
        tasks,
      },
      nextDagrun: str(d.next_dagrun),
      nextDagrunCreateAfter: str(d.next_dagrun_create_after),
      recentRuns,
      lastScheduledRun: recentRuns.find((r) => r.runType === 'scheduled' || r.runType === 'backfill'),
      via: details.via,
    };
  }

  async function isDagPaused(environment: string, dagId: string): Promise<boolean> {
    const res = await airflowRest<{ is_paused?: boolean }>(environment, 'GET', dagPath(dagId));
    return res.body.is_paused === true;
  }

  /** Pauses or unpauses a DAG; idempotent. Returns whether it changed. */
  async function setDagPaused(environment: string, dagId: string, paused: boolean): Promise<{ isPaused: boolean; changed: boolean }> {
    if ((await isDagPaused(environment, dagId)) === paused) return { isPaused: paused, changed: false };
    const res = await airflowRest<{ is_paused?: boolean }>(environment, 'PATCH', dagPath(dagId), { is_paused: paused }, { update_mask: 'is_paused' });
    return { isPaused: res.body.is_paused ?? paused, changed: true };
  }

  async function getRun(environment: string, dagId: string, runId: string): Promise<DagRunView> {
    const res = await airflowRest<RawDagRun>(environment, 'GET', dagPath(dagId, `/dagRuns/${encodeURIComponent(runId)}`));
    return toRunView(res.body);
  }

  /**
   * Creates the DAG run `runId` for `logicalDate`, or adopts it when it already exists (a
   * retry, or a second call for the same date): Airflow's 409 is not an error then. A 409 for
   * another reason (another run holds that logical date) is a conflict naming it.
   */
  async function triggerRun(environment: string, dagId: string, runId: string, logicalDate: string, conf?: Record<string, unknown>): Promise<{ run: DagRunView; adopted: boolean }> {
    try {
      const res = await airflowRest<RawDagRun>(environment, 'POST', dagPath(dagId, '/dagRuns'), { dag_run_id: runId, logical_date: logicalDate, conf: conf ?? {} });
      return { run: toRunView(res.body), adopted: false };
    } catch (err) {
      if (!(err instanceof ApplicationFailure && err.type === NonRetryable.conflict)) throw err;
      let existing: DagRunView;
      try {
        existing = await getRun(environment, dagId, runId);
      } catch (e) {
        if (!(e instanceof ApplicationFailure && e.type === NonRetryable.missingResource)) throw e;
        throw ApplicationFailure.nonRetryable(`${err.message} (and no run ${runId} exists: another run holds logical date ${logicalDate})`, NonRetryable.conflict);
      }
      if (new Date(existing.logicalDate).getTime() !== new Date(logicalDate).getTime()) {
        throw ApplicationFailure.nonRetryable(`MWAA at ${where(environment)}: DAG run ${dagId}/${runId} exists for logical date ${existing.logicalDate}, not ${logicalDate}`, NonRetryable.conflict);
      }
      if (conf !== undefined && existing.conf !== undefined && JSON.stringify(existing.conf) !== JSON.stringify(conf)) {
        throw ApplicationFailure.nonRetryable(`MWAA at ${where(environment)}: DAG run ${dagId}/${runId} exists with a different conf`, NonRetryable.conflict);
      }
      return { run: existing, adopted: true };
    }
  }

  /** Marks a run failed (REST only: Airflow >= 2.4.3); used when a trigger is cancelled. */
  async function markRunFailed(environment: string, dagId: string, runId: string): Promise<boolean> {
    const env = await getEnvironment(environment);
    if (!env.restApi) return false;
    await airflowRest(environment, 'PATCH', dagPath(dagId, `/dagRuns/${encodeURIComponent(runId)}`), { state: 'failed' });
    return true;
  }

  return {
    ...api,
    describeDag,
    isDagPaused,
    setDagPaused,
    listRuns,
    getRun,
    triggerRun,
    markRunFailed,
  };
}

export type MwaaAdapter = ReturnType<typeof mwaaAdapter>;
