/**
 * dailyPipelineWorkflow: what the MWAA DAG did every day (load_data >> clean_* >> query_data),
 * as one durable workflow: landing (child landingWorkflow, untilNow) then cleaning and the
 * analytics (child batchCleaningWorkflow: the cleaned and analytics tables are built in one
 * warehouse transaction, so they never disagree). Each stage is a child workflow with its own
 * history, retries and UI page; this workflow shows the stage (search attribute PipelineStage,
 * the `stage` query, current details) and returns the counts.
 *
 * Data interval (common/interval.ts): the run for date D first resolves D's interval (activity
 * resolveInterval: the stored manifest, or one resolved now and stored when D is over), lands
 * up to its end offsets and gives it to the cleaning, so a rerun of D covers the same records
 * whatever was produced since. Today's interval is partial: up to the moment it is resolved.
 *
 * Optional legacy stage (`input.legacyDag`), between landing and cleaning: one run of an MWAA
 * DAG for the same logical date, while tasks move off MWAA one at a time. Sequential on
 * purpose: the DAG's remaining tasks read what landing wrote, and a failed DAG run stops the
 * pipeline before cleaning publishes outputs for that date. `triggerMwaaDag` (wait: false)
 * creates the run with an id derived from this workflow's id (retries and reruns adopt it,
 * never a second run); `waitMwaaDagRun` then follows it, heartbeating every poll and returning
 * on each state change (or every 30 polls, at most 5 min), so the `stage` query shows the
 * run's state while the history grows by one activity per change, not per poll. A `failed`
 * run fails the pipeline non-retryably naming the environment, DAG and run id; cancelling the
 * pipeline marks the run failed in Airflow.
 *
 * One run per date: the canonical id is `daily-pipeline-<prefix>-<date>`. A schedule's run
 * (id `daily-pipeline-<prefix>-<scheduled time>`) hands the work to a child with the canonical
 * id, so a manual run and a scheduled run of the same date can never run in parallel: the
 * second is rejected while the first runs. A rerun of a finished date replaces its outputs.
 *
 * Alerts (canonical run only; workflows/alerts.ts): with `input.deadline`, a run not done by
 * then raises a `late` alert and goes on; a run that fails raises a `failed` alert, then fails.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  executeChild,
  isCancellation,
  log,
  metricMeter,
  ParentClosePolicy,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Activities } from '../activities';
import {
  dateProblems,
  LEGACY_DAG_DEFAULTS,
  legacyDagProblems,
  legacyDagRunId,
  legacyLogicalDate,
  logicalDateOf,
  type DailyPipelineInput,
  type DailyPipelineResult,
  type DailyStatus,
  type LegacyDagInput,
  type LegacyDagStatus,
} from '../common/daily';
import { deadlineProblems } from '../common/alerts';
import { NonRetryable } from '../common/errors';
import { cleaningWorkflowId, dailyWorkflowId, landingWorkflowId, prefixProblem } from '../common/ids';
import { MWAA_DAG_RUN_FAILED, MWAA_DAG_RUN_TIMED_OUT, TERMINAL_DAG_RUN_STATES } from '../mwaa/failures';
import { cleaningSearchAttributes, dailySearchAttributes, landingSearchAttributes } from '../common/search-attributes';
import type { CleaningResult } from '../common/cleaning';
import { pipelineMetrics } from '../common/metrics';
import type { LandingResult } from '../common/landing';
import { intervalEnds, intervalSummary } from '../common/interval';
import { dailyAlerts } from './alerts';
import { batchCleaningWorkflow } from './cleaning';
import { landingWorkflow } from './landing';
import { INTERVAL_RESOLVE, LEGACY_DAG_STOP, LEGACY_DAG_TRIGGER, legacyDagWait, rejectInvalidInput } from './policies';

const ScheduledStart = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);

export const dailyStageQuery = defineQuery<DailyStatus>('stage');

const intervals = proxyActivities<Activities>(INTERVAL_RESOLVE);

/** A wait activity returns at least this often (a state change returns it sooner). */
const LEGACY_MAX_WAIT_MS = 300_000;

const duration = (ms: number) => (ms >= 120_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 100) / 10} s`);

function resolveDate(input: DailyPipelineInput): string {
  if (input.date) return input.date;
  const scheduled = workflowInfo().typedSearchAttributes.get(ScheduledStart);
  if (!scheduled) throw ApplicationFailure.nonRetryable('no date given and not started by a schedule: pass { date: "YYYY-MM-DD" }', NonRetryable.badInput);
  return logicalDateOf(scheduled);
}

export async function dailyPipelineWorkflow(input: DailyPipelineInput): Promise<DailyPipelineResult> {
  rejectInvalidInput('pipeline', [prefixProblem(input.prefix)]);
  const date = resolveDate(input);
  rejectInvalidInput('pipeline', [...dateProblems(date, Date.now()), ...legacyDagProblems(input.legacyDag), ...deadlineProblems(input.deadline)]);

  const canonical = dailyWorkflowId(input.prefix, date);
  if (workflowInfo().workflowId !== canonical) {
    // A scheduled (or otherwise named) run: the canonical child does the work, once per date.
    upsertSearchAttributes(dailySearchAttributes(input.prefix, date, 'delegated'));
    setCurrentDetails(`runs ${canonical}`);
    try {
      return await executeChild(dailyPipelineWorkflow, {
        workflowId: canonical,
        args: [{ ...input, date }],
        parentClosePolicy: ParentClosePolicy.TERMINATE,
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        typedSearchAttributes: dailySearchAttributes(input.prefix, date, 'starting'),
        staticSummary: `daily pipeline ${input.prefix} ${date}`,
      });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        throw ApplicationFailure.nonRetryable(`${canonical} is already running; this run did nothing`, NonRetryable.conflict);
      }
      throw err;
    }
  }

  const status: DailyStatus = { date, stage: 'starting', children: {}, stageMs: {} };
  setHandler(dailyStageQuery, () => status);
  const enter = (stage: DailyStatus['stage'], details: string) => {
    status.stage = stage;
    upsertSearchAttributes(dailySearchAttributes(input.prefix, date, stage));
    setCurrentDetails(details);
  };

  const alerts = patched('daily-alerts') ? dailyAlerts(input, status) : undefined;
  let result: DailyPipelineResult;
  try {
    result = await runStages();
  } catch (err) {
    const failedIn = status.stage === 'failed' ? 'unknown' : status.stage;
    enter('failed', `failed in stage ${failedIn}: ${(err as Error).message}`);
    await alerts?.failed(err, failedIn);
    throw err;
  }
  await alerts?.done();
  return status.late ? { ...result, late: true } : result;

  async function runStages(): Promise<DailyPipelineResult> {
    // Stage 1: land the date's data interval, up to its end offsets (common/interval.ts; one
    // lander per prefix: its fixed id).
    const landingId = landingWorkflowId(input.prefix);
    status.children.landing = landingId;
    enter('landing', `landing ${input.prefix}.pin|geo|user to S3 (${landingId})`);
    let t0 = Date.now();
    const interval = patched('daily-intervals') ? (await intervals.resolveInterval({ prefix: input.prefix, date })).manifest : undefined;
    if (interval) {
      status.interval = intervalSummary(interval);
      setCurrentDetails(`landing the interval of ${date} (${status.interval.records} offsets${interval.partial ? ', partial: the date is not over' : ''}) to S3 (${landingId})`);
    }
    let landed: LandingResult;
    try {
      landed = await executeChild(landingWorkflow, {
        workflowId: landingId,
        args: [{ prefix: input.prefix, mode: 'untilNow', ...(interval ? { endOffsets: intervalEnds(interval) } : {}) }],
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        typedSearchAttributes: landingSearchAttributes(input.prefix, 'untilNow'),
        staticSummary: `landing for ${canonical}`,
      });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        throw ApplicationFailure.nonRetryable(`${landingId} is already running (a follow-mode lander, or another run): stop it or wait, then rerun ${canonical}`, NonRetryable.conflict);
      }
      throw err;
    }
    status.stageMs.landing = Date.now() - t0;
    pipelineMetrics(metricMeter).stageDuration('daily_landing', status.stageMs.landing);

    // Optional stage: the legacy DAG for this date (see the module comment).
    let legacy: LegacyDagStatus | undefined;
    if (input.legacyDag) {
      t0 = Date.now();
      legacy = await legacyStage(input.legacyDag);
      status.stageMs.legacyDag = Date.now() - t0;
      pipelineMetrics(metricMeter).stageDuration('daily_legacy_dag', status.stageMs.legacyDag);
    }

    // Stage 2: clean + analytics (one run per prefix at a time: the cleaning workflow's fixed id).
    const cleaningId = cleaningWorkflowId(input.prefix);
    status.children.cleaning = cleaningId;
    enter('cleaning', `cleaning + analytics (${cleaningId}); landed ${landed.records} new records${legacy ? `; legacy DAG run ${legacy.dagRunId} ${legacy.state}` : ''}`);
    t0 = Date.now();
    let cleaned: CleaningResult;
    try {
      cleaned = await executeChild(batchCleaningWorkflow, {
        workflowId: cleaningId,
        args: [{ prefix: input.prefix, outputRoot: input.outputRoot, ...(interval ? { interval } : {}) }],
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        typedSearchAttributes: cleaningSearchAttributes(input.prefix),
        staticSummary: `cleaning + analytics for ${canonical}`,
      });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        throw ApplicationFailure.nonRetryable(`${cleaningId} is already running (a manual clean?): wait for it, then rerun ${canonical}`, NonRetryable.conflict);
      }
      throw err;
    }
    status.stageMs.cleaning = Date.now() - t0;
    pipelineMetrics(metricMeter).stageDuration('daily_cleaning', status.stageMs.cleaning);

    const rows = Object.entries(cleaned.tables).map(([n, t]) => `${n} ${t.rows}`).join(', ');
    enter('done', `done: landed ${landed.records} records; ${legacy ? `legacy DAG ${legacy.environment}/${legacy.dagId} run ${legacy.dagRunId} ${legacy.state}; ` : ''}${rows}; 9 analytics outputs`);
    return {
      date,
      prefix: input.prefix,
      landing: { records: landed.records, objects: landed.objects, deadLetters: landed.deadLetters },
      cleaning: cleaned,
      stageMs: { landing: status.stageMs.landing, cleaning: status.stageMs.cleaning, ...(legacy ? { legacyDag: status.stageMs.legacyDag } : {}) },
      ...(legacy ? { legacyDag: { ...legacy } } : {}),
      ...(interval ? { interval: intervalSummary(interval) } : {}),
    };
  }

  /** Runs the legacy DAG for `date` to its end; returns the run (state success) or throws. */
  async function legacyStage(legacyInput: LegacyDagInput): Promise<LegacyDagStatus> {
    const { environment, dagId } = legacyInput;
    const pollIntervalMs = legacyInput.pollIntervalMs ?? LEGACY_DAG_DEFAULTS.pollIntervalMs;
    const timeoutMs = legacyInput.timeoutMs ?? LEGACY_DAG_DEFAULTS.timeoutMs;
    const maxWaitMs = Math.min(LEGACY_MAX_WAIT_MS, pollIntervalMs * 30);
    const run: LegacyDagStatus = { environment, dagId, dagRunId: legacyDagRunId(canonical, date), logicalDate: legacyLogicalDate(date), state: 'triggering' };
    status.legacyDag = run;
    const label = `legacy DAG ${environment}/${dagId} run ${run.dagRunId}`;
    const show = () => setCurrentDetails(`${label}: ${run.state}${run.adopted ? ' (adopted: it already existed)' : ''}`);
    enter('legacy-dag', `${label}: triggering`);

    const triggerer = proxyActivities<Activities>(LEGACY_DAG_TRIGGER);
    const follower = proxyActivities<Activities>(legacyDagWait(maxWaitMs, pollIntervalMs));
    const stopper = proxyActivities<Activities>(LEGACY_DAG_STOP);

    const deadline = Date.now() + timeoutMs;
    try {
      const t = await triggerer.triggerMwaaDag({ environment, dagId, logicalDate: run.logicalDate, conf: legacyInput.conf ?? {}, dagRunId: run.dagRunId, wait: false });
      Object.assign(run, { state: t.state, adopted: t.adopted, startDate: t.startDate, endDate: t.endDate });
      show();
      while (!TERMINAL_DAG_RUN_STATES.includes(run.state)) {
        const left = deadline - Date.now();
        if (left <= 0) {
          throw ApplicationFailure.nonRetryable(
            `${label} is still ${run.state} after ${duration(timeoutMs)} (legacyDag.timeoutMs); cleaning was not run. The run goes on in Airflow: rerunning this date adopts it and waits again (or mark it failed in Airflow)`,
            MWAA_DAG_RUN_TIMED_OUT,
          );
        }
        const w = await follower.waitMwaaDagRun({ environment, dagId, dagRunId: run.dagRunId, since: run.state, maxWaitMs: Math.min(maxWaitMs, left), pollIntervalMs });
        Object.assign(run, { state: w.state, startDate: w.startDate, endDate: w.endDate });
        show();
      }
      return run;
    } catch (err) {
      if (isCancellation(err)) {
        // The pipeline was cancelled: stop the DAG run too (as a cancelled triggerMwaaDag does).
        await CancellationScope.nonCancellable(async () => {
          try {
            const stop = await stopper.stopMwaaDagRun({ environment, dagId, dagRunId: run.dagRunId });
            run.state = stop.state;
            if (!stop.stopped && !TERMINAL_DAG_RUN_STATES.includes(stop.state)) log.warn(`${label}: could not be marked failed (Airflow < 2.4.3); it goes on in Airflow`);
          } catch (e) {
            log.warn(`${label}: could not be stopped after the pipeline was cancelled: ${(e as Error).message}`);
          }
        });
        throw err;
      }
      if (err instanceof ApplicationFailure) throw err; // the timeout above
      const cause = err instanceof ActivityFailure && err.cause ? err.cause : (err as Error);
      const type = cause instanceof ApplicationFailure ? cause.type : undefined;
      if (type === MWAA_DAG_RUN_FAILED) {
        run.state = 'failed';
        throw ApplicationFailure.create({
          message: `legacy DAG stage failed: ${cause.message}; cleaning was not run. See the run in Airflow; to run it again, clear it there, then rerun this date (the pipeline adopts run ${run.dagRunId} and waits for it)`,
          type: MWAA_DAG_RUN_FAILED,
          nonRetryable: true,
          cause: err as Error,
        });
      }
      throw ApplicationFailure.create({
        message: `${label}: the legacy DAG stage failed (${run.state === 'triggering' ? 'while triggering the run' : `last state ${run.state}`}): ${cause.message}; cleaning was not run`,
        type: type ?? 'PinflowLegacyDagStageFailed',
        nonRetryable: true,
        cause: err as Error,
      });
    }
  }
}
