/**
 * dailyPipelineWorkflow: what the MWAA DAG did every day (load_data >> clean_* >> query_data),
 * as one durable workflow: landing (child landingWorkflow, untilNow) then cleaning and the
 * analytics (child batchCleaningWorkflow: the cleaned and analytics tables are built in one
 * warehouse transaction, so they never disagree). Each stage is a child workflow with its own
 * history, retries and UI page; this workflow shows the stage (search attribute PipelineStage,
 * the `stage` query, current details) and returns the counts.
 *
 * One run per date: the canonical id is `daily-pipeline-<prefix>-<date>`. A schedule's run
 * (id `daily-pipeline-<prefix>-<scheduled time>`) hands the work to a child with the canonical
 * id, so a manual run and a scheduled run of the same date can never run in parallel: the
 * second is rejected while the first runs. A rerun of a finished date replaces its outputs.
 */
import {
  ApplicationFailure,
  defineQuery,
  executeChild,
  metricMeter,
  ParentClosePolicy,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { dailyWorkflowId, dateProblems, logicalDateOf, type DailyPipelineInput, type DailyPipelineResult, type DailyStatus } from '../common/daily';
import { NonRetryable } from '../common/errors';
import { PipelineDate, PipelinePrefix, PipelineStage } from '../common/search-attributes';
import type { CleaningResult } from '../common/cleaning';
import { pipelineMetrics } from '../common/metrics';
import type { LandingResult } from '../common/landing';

const ScheduledStart = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);

export const dailyStageQuery = defineQuery<DailyStatus>('stage');

function resolveDate(input: DailyPipelineInput): string {
  if (input.date) return input.date;
  const scheduled = workflowInfo().typedSearchAttributes.get(ScheduledStart);
  if (!scheduled) throw ApplicationFailure.nonRetryable('no date given and not started by a schedule: pass { date: "YYYY-MM-DD" }', NonRetryable.badInput);
  return logicalDateOf(scheduled);
}

export async function dailyPipelineWorkflow(input: DailyPipelineInput): Promise<DailyPipelineResult> {
  if (!/^[a-z0-9][a-z0-9_-]{0,47}$/.test(input.prefix ?? '')) {
    throw ApplicationFailure.nonRetryable(`invalid pipeline input: prefix ${JSON.stringify(input.prefix)} is not a pipeline prefix`, NonRetryable.badInput);
  }
  const date = resolveDate(input);
  const problems = dateProblems(date, Date.now());
  if (problems.length) throw ApplicationFailure.nonRetryable(`invalid pipeline input: ${problems.join('; ')}`, NonRetryable.badInput);

  const canonical = dailyWorkflowId(input.prefix, date);
  if (workflowInfo().workflowId !== canonical) {
    // A scheduled (or otherwise named) run: the canonical child does the work, once per date.
    upsertSearchAttributes([
      { key: PipelinePrefix, value: input.prefix },
      { key: PipelineDate, value: date },
      { key: PipelineStage, value: 'delegated' },
    ]);
    setCurrentDetails(`runs ${canonical}`);
    try {
      return await executeChild(dailyPipelineWorkflow, {
        workflowId: canonical,
        args: [{ ...input, date }],
        parentClosePolicy: ParentClosePolicy.TERMINATE,
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        typedSearchAttributes: [
          { key: PipelinePrefix, value: input.prefix },
          { key: PipelineDate, value: date },
          { key: PipelineStage, value: 'starting' },
        ],
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
    upsertSearchAttributes([
      { key: PipelinePrefix, value: input.prefix },
      { key: PipelineDate, value: date },
      { key: PipelineStage, value: stage },
    ]);
    setCurrentDetails(details);
  };

  try {
    return await runStages();
  } catch (err) {
    enter('failed', `failed in stage ${status.stage === 'failed' ? 'unknown' : status.stage}: ${(err as Error).message}`);
    throw err;
  }

  async function runStages(): Promise<DailyPipelineResult> {
    // Stage 1: land everything on the topics up to now (one lander per prefix: its fixed id).
    const landingId = `landing-${input.prefix}`;
    status.children.landing = landingId;
    enter('landing', `landing ${input.prefix}.pin|geo|user to S3 (${landingId})`);
    let t0 = Date.now();
    let landed: LandingResult;
    try {
      landed = await executeChild('landingWorkflow', {
        workflowId: landingId,
        args: [{ prefix: input.prefix, mode: 'untilNow' }],
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        typedSearchAttributes: [{ key: PipelinePrefix, value: input.prefix }],
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

    // Stage 2: clean + analytics (one run per prefix at a time: the cleaning workflow's fixed id).
    const cleaningId = `cleaning-${input.prefix}`;
    status.children.cleaning = cleaningId;
    enter('cleaning', `cleaning + analytics (${cleaningId}); landed ${landed.records} new records`);
    t0 = Date.now();
    let cleaned: CleaningResult;
    try {
      cleaned = await executeChild('batchCleaningWorkflow', {
        workflowId: cleaningId,
        args: [{ prefix: input.prefix, outputRoot: input.outputRoot }],
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        typedSearchAttributes: [{ key: PipelinePrefix, value: input.prefix }],
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
    enter('done', `done: landed ${landed.records} records; ${rows}; 9 analytics outputs`);
    return {
      date,
      prefix: input.prefix,
      landing: { records: landed.records, objects: landed.objects, deadLetters: landed.deadLetters },
      cleaning: cleaned,
      stageMs: { landing: status.stageMs.landing, cleaning: status.stageMs.cleaning },
    };
  }
}
