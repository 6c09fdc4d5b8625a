/**
 * Databricks one-time runs through the Jobs API 2.1 (`runs/submit` with an idempotency token,
 * `runs/get`, `runs/cancel`) over `fetch`, and the `runDatabricksJob` activity (submit, poll
 * with heartbeats, cancel the run when the activity is cancelled).
 *
 * Errors: HTTP 401/403 are auth failures; a rejected request is badInput or missingResource
 * (by the API's error_code); a run that ended without success is a non-retryable
 * `PinflowDatabricksRunFailed` carrying its state. 408, 429, 5xx and network errors are
 * retried here (every call is idempotent, submit by its token), then surface as retryable.
 * Messages name Databricks and the host, never the token.
 */
import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../../config';
import { NonRetryable } from '../../common/errors';
import { backoff, configFailure, defaultWarn, parseEndpoint, pause, requireToken, scrub, type DatabricksConfig, type RetryOptions } from './endpoint';

/** ApplicationFailure type of a job run that ended without success (non-retryable). */
export const DATABRICKS_RUN_FAILED = 'PinflowDatabricksRunFailed';

/**
 * What a one-time run executes (a single task, key `main`):
 * - `notebook`: a workspace notebook on the all-purpose cluster DATABRICKS_CLUSTER_ID
 *   (`notebook_task`, parameters are the notebook's widgets).
 * - `pythonFile`: a Python file on the same cluster (`spark_python_task`, argv parameters).
 * - `sqlFile`: a SQL file from the workspace on a SQL warehouse (`sql_task.file`): the
 *   warehouse of DATABRICKS_HTTP_PATH (`/sql/1.0/warehouses/<id>`) unless `warehouseId` is given.
 */
export type DatabricksTask =
  | { kind: 'notebook'; notebookPath: string; parameters?: Record<string, string> }
  | { kind: 'pythonFile'; pythonFile: string; parameters?: string[] }
  | { kind: 'sqlFile'; path: string; parameters?: Record<string, string>; warehouseId?: string };

/**
 * The idempotency token of the run a key stands for: its SHA-256 in hex, 64 characters (the
 * most the API takes) whatever the key's length. The same key gives the same token, so a
 * repeated submit adopts the run the first one launched; a new run needs a new key.
 */
export function idempotencyTokenFor(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export interface SubmitRunInput {
  runName: string;
  /** At most 64 characters. Databricks launches at most one run per token: a repeat returns the same run_id. */
  idempotencyToken: string;
  task: DatabricksTask;
  /** Databricks stops the run after this long (TIMEDOUT). Default: no limit. */
  timeoutSeconds?: number;
}

export interface RunState {
  runId: number;
  lifeCycleState: string;
  resultState?: string;
  stateMessage: string;
  runPageUrl?: string;
}

export interface WaitOptions {
  /** Between two runs/get. Default 5 s. */
  pollMs?: number;
  /** Called with every state seen (heartbeat here). */
  onPoll?: (state: RunState) => void | Promise<void>;
  /** Aborting cancels the run (runs/cancel), waits up to `cancelWaitMs` for it to end, then throws `signal.reason`. */
  signal?: AbortSignal;
  /** Default 30 s. */
  cancelWaitMs?: number;
}

export interface DatabricksJobsOptions {
  retry?: Partial<RetryOptions>;
  /** Timeout of one HTTP request. Default 30 s. */
  requestTimeoutMs?: number;
  warn?: (message: string) => void;
}

export interface DatabricksJobs {
  readonly address: string;
  submitRun(input: SubmitRunInput): Promise<number>;
  getRun(runId: number, signal?: AbortSignal): Promise<RunState>;
  cancelRun(runId: number): Promise<void>;
  waitForRun(runId: number, opts?: WaitOptions): Promise<RunState>;
}

/** Life-cycle states of a run still on its way (the Jobs API 2.1 list). */
export const ACTIVE_LIFE_CYCLE_STATES = new Set(['QUEUED', 'PENDING', 'RUNNING', 'TERMINATING', 'BLOCKED', 'WAITING_FOR_RETRY']);
/** Life-cycle states after which nothing changes. */
export const FINAL_LIFE_CYCLE_STATES = new Set(['TERMINATED', 'SKIPPED', 'INTERNAL_ERROR']);
/**
 * Result states counted as success. SUCCESS_WITH_FAILURES: every leaf task succeeded though
 * some task with a run-if condition failed (a single-task run cannot get it). Every other
 * result state (FAILED, TIMEDOUT, CANCELED, MAXIMUM_CONCURRENT_RUNS_REACHED, EXCLUDED,
 * UPSTREAM_FAILED, UPSTREAM_CANCELED, DISABLED, anything new) is a failure.
 */
export const SUCCESS_RESULT_STATES = new Set(['SUCCESS', 'SUCCESS_WITH_FAILURES']);

/** Default Jobs retry: all three calls are idempotent (submit by its token), so 429/5xx/network errors are retried. */
export const DEFAULT_JOBS_RETRY: RetryOptions = { maxAttempts: 3, delayMinMs: 250, delayMaxMs: 4_000 };

const JOBS_ERROR_KINDS: Record<string, keyof typeof NonRetryable> = {
  INVALID_PARAMETER_VALUE: 'badInput',
  MALFORMED_REQUEST: 'badInput',
  BAD_REQUEST: 'badInput',
  INVALID_STATE: 'badInput',
  RESOURCE_DOES_NOT_EXIST: 'missingResource',
  FEATURE_DISABLED: 'config',
  PERMISSION_DENIED: 'auth',
  UNAUTHENTICATED: 'auth',
};

function warehouseIdOf(httpPath: string | undefined): string | undefined {
  return httpPath ? /\/warehouses\/([0-9A-Za-z]+)/.exec(httpPath)?.[1] : undefined;
}

interface RawRun {
  run_id?: number;
  run_page_url?: string;
  state?: { life_cycle_state?: string; result_state?: string; state_message?: string };
  status?: { state?: string; termination_details?: { code?: string; message?: string } };
}

function toRunState(runId: number, raw: RawRun): RunState {
  // `state` is the documented field; `status` is its newer replacement (used if `state` is absent).
  const term = raw.status?.termination_details;
  return {
    runId,
    lifeCycleState: raw.state?.life_cycle_state ?? raw.status?.state ?? 'UNKNOWN',
    resultState: raw.state?.result_state ?? (raw.status?.state === 'TERMINATED' ? term?.code : undefined),
    stateMessage: raw.state?.state_message ?? term?.message ?? '',
    runPageUrl: raw.run_page_url,
  };
}

export function createDatabricksJobs(config: DatabricksConfig, opts: DatabricksJobsOptions = {}): DatabricksJobs {
  const endpoint = parseEndpoint(config.host);
  const address = endpoint.address;
  const token = requireToken(config, address);
  const retry = { ...DEFAULT_JOBS_RETRY, ...opts.retry };
  const warn = opts.warn ?? defaultWarn;
  const where = `Databricks at ${address}`;

  async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const what = `${method} ${path.split('?')[0]}`;
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        const timeout = AbortSignal.timeout(opts.requestTimeoutMs ?? 30_000);
        res = await fetch(`${endpoint.origin}${path}`, {
          method,
          headers: { Authorization: `Bearer ${token}`, Accept: 'application/json', 'User-Agent': 'pinflow', ...(body ? { 'Content-Type': 'application/json' } : {}) },
          body: body ? JSON.stringify(body) : undefined,
          signal: signal ? AbortSignal.any([timeout, signal]) : timeout,
        });
      } catch (err) {
        if (signal?.aborted) throw signal.reason ?? err;
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        const detail = cause?.code ? `${cause.code} ${cause.message ?? ''}`.trim() : (err as Error).message;
        if (attempt < retry.maxAttempts) {
          await pause(backoff(retry, attempt, undefined), signal);
          continue;
        }
        const wrapped = new Error(scrub(`${where}: ${what} failed: ${detail}`, token), { cause: err });
        wrapped.name = 'DatabricksError';
        throw wrapped;
      }
      const text = await res.text().catch(() => '');
      if (res.ok) {
        try {
          return (text ? JSON.parse(text) : {}) as T;
        } catch {
          throw new Error(`${where}: ${what} answered ${res.status} with a body that is not JSON`);
        }
      }
      let apiError: { error_code?: string; message?: string } = {};
      try {
        apiError = JSON.parse(text) as typeof apiError;
      } catch {
        /* not JSON: an HTML error page from a proxy, say */
      }
      const detail = scrub(apiError.message ?? text.slice(0, 300), token);
      const message = `${where}: ${what} answered ${res.status}${apiError.error_code ? ` ${apiError.error_code}` : ''}: ${detail}`;
      if (res.status === 401 || res.status === 403) {
        throw ApplicationFailure.nonRetryable(`${message} (check DATABRICKS_TOKEN and its permissions)`, NonRetryable.auth);
      }
      const transient = res.status === 408 || res.status === 429 || res.status >= 500;
      if (!transient) {
        const kind = (apiError.error_code && JOBS_ERROR_KINDS[apiError.error_code]) || (res.status === 404 ? 'missingResource' : 'badInput');
        throw ApplicationFailure.nonRetryable(message, NonRetryable[kind]);
      }
      if (attempt >= retry.maxAttempts) {
        const wrapped = new Error(message);
        wrapped.name = 'DatabricksError';
        throw wrapped;
      }
      await pause(backoff(retry, attempt, res.headers.get('Retry-After')), signal);
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
    }
  }

  function taskSpec(task: DatabricksTask): Record<string, unknown> {
    const needCluster = () => {
      if (!config.clusterId) throw configFailure(`${where}: DATABRICKS_CLUSTER_ID is not set; a ${task.kind} task runs on an existing cluster`);
      return config.clusterId;
    };
    switch (task.kind) {
      case 'notebook':
        return { task_key: 'main', existing_cluster_id: needCluster(), notebook_task: { notebook_path: task.notebookPath, base_parameters: task.parameters ?? {}, source: 'WORKSPACE' } };
      case 'pythonFile':
        return { task_key: 'main', existing_cluster_id: needCluster(), spark_python_task: { python_file: task.pythonFile, parameters: task.parameters ?? [] } };
      case 'sqlFile': {
        const warehouseId = task.warehouseId ?? warehouseIdOf(config.httpPath);
        if (!warehouseId) throw configFailure(`${where}: a sqlFile task needs a warehouse id (give warehouseId, or a DATABRICKS_HTTP_PATH like /sql/1.0/warehouses/<id>)`);
        return { task_key: 'main', sql_task: { warehouse_id: warehouseId, file: { path: task.path, source: 'WORKSPACE' }, parameters: task.parameters ?? {} } };
      }
    }
  }

  const jobs: DatabricksJobs = {
    address,

    async submitRun(input) {
      if (!input.idempotencyToken || input.idempotencyToken.length > 64) {
        throw ApplicationFailure.nonRetryable(`${where}: the idempotency token must be 1-64 characters (got ${input.idempotencyToken.length})`, NonRetryable.badInput);
      }
      const body = {
        run_name: input.runName,
        idempotency_token: input.idempotencyToken,
        tasks: [taskSpec(input.task)],
        ...(input.timeoutSeconds ? { timeout_seconds: input.timeoutSeconds } : {}),
      };
      const res = await call<{ run_id?: number }>('POST', '/api/2.1/jobs/runs/submit', body);
      if (typeof res.run_id !== 'number') throw new Error(`${where}: runs/submit answered without a run_id`);
      return res.run_id;
    },

    async getRun(runId, signal) {
      return toRunState(runId, await call<RawRun>('GET', `/api/2.1/jobs/runs/get?run_id=${encodeURIComponent(runId)}`, undefined, signal));
    },

    async cancelRun(runId) {
      await call('POST', '/api/2.1/jobs/runs/cancel', { run_id: runId });
    },

    async waitForRun(runId, w = {}) {
      const pollMs = w.pollMs ?? 5_000;
      const unknown = new Set<string>();
      const signal = w.signal;

      const cancelAndThrow = async (): Promise<never> => {
        let last: RunState | undefined;
        try {
          await jobs.cancelRun(runId);
          const deadline = Date.now() + (w.cancelWaitMs ?? 30_000);
          while (Date.now() < deadline) {
            last = await jobs.getRun(runId);
            await w.onPoll?.(last);
            if (FINAL_LIFE_CYCLE_STATES.has(last.lifeCycleState)) break;
            await pause(Math.min(pollMs, 1_000));
          }
        } catch (err) {
          warn(`${where}: cancelling run ${runId} after abort: ${(err as Error).message}`);
        }
        const reason: unknown = signal?.reason;
        if (reason instanceof Error) throw reason;
        throw new Error(`${where}: waiting for run ${runId} was aborted; run cancelled${last ? ` (now ${last.lifeCycleState}${last.resultState ? `/${last.resultState}` : ''})` : ''}`);
      };

      for (;;) {
        if (signal?.aborted) return cancelAndThrow();
        let state: RunState;
        try {
          state = await jobs.getRun(runId, signal);
        } catch (err) {
          if (signal?.aborted) return cancelAndThrow();
          throw err;
        }
        await w.onPoll?.(state);
        const { lifeCycleState: lc, resultState: rs } = state;
        if (FINAL_LIFE_CYCLE_STATES.has(lc) && (lc !== 'TERMINATED' || rs !== undefined)) {
          if (lc === 'TERMINATED' && SUCCESS_RESULT_STATES.has(rs!)) return state;
          throw ApplicationFailure.create({
            message: `${where}: run ${runId} ended ${lc}${rs ? `/${rs}` : ''}: ${scrub(state.stateMessage, token) || '(no state message)'}${state.runPageUrl ? ` - see ${state.runPageUrl}` : ''}`,
            type: DATABRICKS_RUN_FAILED,
            nonRetryable: true,
            details: [state],
          });
        }
        if (!ACTIVE_LIFE_CYCLE_STATES.has(lc) && !unknown.has(`${lc}/${rs}`)) {
          // A state this code does not know (a newer API), or TERMINATED without a result yet: keep polling.
          unknown.add(`${lc}/${rs}`);
          warn(`${where}: run ${runId} is in unexpected state ${lc}${rs ? `/${rs}` : ''}; still polling`);
        }
        await pause(pollMs, signal);
      }
    },
  };
  return jobs;
}

// ---------------------------------------------------------------------------------------------
// Activity

export interface RunDatabricksJobInput extends SubmitRunInput {
  /** Between two polls (each one heartbeats). Default 5 s. */
  pollMs?: number;
}

export interface DatabricksRunResult {
  runId: number;
  lifeCycleState: string;
  resultState?: string;
  stateMessage: string;
  runPageUrl?: string;
}

/**
 * The Databricks activities. `runDatabricksJob` submits a one-time run (idempotent by its
 * token: a retried attempt gets the same run back, and resumes from the run id in its last
 * heartbeat), polls it to the end heartbeating `{runId, lifeCycleState}`, and cancels the run
 * when the activity is cancelled. Give it a heartbeatTimeout (a few poll intervals) so
 * cancellation and worker loss reach it.
 */
export function databricksActivities(config: Config, opts: DatabricksJobsOptions = {}) {
  let jobs: DatabricksJobs | undefined;
  const client = () => (jobs ??= createDatabricksJobs(config.warehouse.databricks, opts));

  return {
    async runDatabricksJob(input: RunDatabricksJobInput): Promise<DatabricksRunResult> {
      const ctx = Context.current();
      const jobsClient = client();
      const resumed = (ctx.info.heartbeatDetails as { runId?: number } | undefined)?.runId;
      const runId = typeof resumed === 'number' ? resumed : await jobsClient.submitRun(input);
      ctx.heartbeat({ runId, lifeCycleState: 'SUBMITTED' });
      const final = await jobsClient.waitForRun(runId, {
        pollMs: input.pollMs,
        signal: ctx.cancellationSignal,
        onPoll: (s) => ctx.heartbeat({ runId, lifeCycleState: s.lifeCycleState }),
      });
      return { runId, lifeCycleState: final.lifeCycleState, resultState: final.resultState, stateMessage: final.stateMessage, runPageUrl: final.runPageUrl };
    },
  };
}
