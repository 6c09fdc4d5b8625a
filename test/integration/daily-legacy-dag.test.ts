/**
 * The daily pipeline's legacy stage (`legacyDag`: an MWAA DAG run between landing and cleaning),
 * through dailyPipelineWorkflow on the stack's Temporal dev server, with the worker's real
 * activities talking to the protocol-level MWAA stand-in (test/helpers/mwaa-standin.ts: the
 * real SDK client, SigV4-checked, Airflow's REST API on in-memory DAGs) over MWAA_ENDPOINT:
 *
 * - success through `npm run pipeline -- --legacy-dag ENV/DAG`: one DAG run, with the id derived
 *   from the workflow id, created after landing and before cleaning; its id and state in the
 *   status query, the result, the current details and the command's output; a rerun of the
 *   date adopts the run (no second one);
 * - the live state in the status query, and cancelling the pipeline marks the run failed;
 * - a failed DAG run fails the pipeline non-retryably naming environment, DAG and run id, and
 *   cleaning never starts; a run that outlasts legacyDag.timeoutMs fails it too (the run goes on);
 * - a lost trigger response: the SDK and then Temporal retry the trigger, one DAG run in all;
 * - bad input, a paused or unknown DAG, a run path over InvokeRestApi's limit, access denied
 *   and a date another prefix's run holds fail clearly and non-retryably, nothing triggered;
 * - `npm run schedule -- create --legacy-dag` passes the stage to scheduled runs (a triggered
 *   run triggers the DAG for its logical date); `update --no-legacy-dag` removes it.
 *
 * The command's --legacy-dag options alone: test/unit/daily-legacy-dag.test.ts.
 *
 * Live (opt-in, skipped otherwise): with PINFLOW_LIVE_MWAA_ENVIRONMENT and PINFLOW_LIVE_MWAA_DAG
 * (a DAG kept for this test: unpaused, schedule None, quick and harmless) and AWS credentials,
 * the stage's activities trigger one real run for a fresh logical date, a repeat adopts it, and
 * the run is followed to success.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { WorkflowFailedError, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { MockActivityEnvironment, type TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { mwaaActivities, type MwaaDagRunStatus, type TriggerMwaaDagResult } from '../../mwaa/activities';
import { MAX_REST_PATH } from '../../mwaa/api';
import { loadConfig, readEnv } from '../../config';
import { dailyWorkflowId } from '../../common/ids';
import { legacyDagProblems, legacyDagRunId, logicalDateOf, type DailyPipelineInput, type DailyPipelineResult, type DailyStatus } from '../../common/daily';
import { NonRetryable } from '../../common/errors';
import { MWAA_DAG_RUN_FAILED, MWAA_DAG_RUN_TIMED_OUT, TERMINAL_DAG_RUN_STATES } from '../../mwaa/failures';
import { parseScheduleArgs, runSchedule } from '../../scripts/schedule';
import { deleteSchedule, describeSchedule } from '../../cli/schedule-ops';
import { backgroundWorker, until, utcDay, ensureStack, quietRuntime, runScriptAsync, testConfig, uniqueName, workflowTestEnv } from '../helpers/env';
import { startMwaaStandin, type MwaaStandin, type StandinDag } from '../helpers/mwaa-standin';
import { recordHistories } from '../helpers/histories';

const day = utcDay;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;


/** The workflow's failure: its cause (what the workflow threw). */
async function failureOf(handle: WorkflowHandle): Promise<Error> {
  try {
    await handle.result();
  } catch (err) {
    assert.ok(err instanceof WorkflowFailedError, `expected a failed workflow, got ${String(err)}`);
    assert.ok(err.cause, 'a failure with a cause');
    return err.cause;
  }
  return assert.fail('the pipeline should have failed');
}

describe('daily pipeline: the legacy DAG stage', () => {
  let standin: MwaaStandin;
  let env: TestWorkflowEnvironment;
  let worker: { stop: () => Promise<void> } | undefined;
  const taskQueue = uniqueName('tq-legacy');
  let vars: Record<string, string>;
  let config: ReturnType<typeof testConfig>;
  const environment = uniqueName('legacy-env');
  const schedules: string[] = [];

  before(async () => {
    quietRuntime();
    await ensureStack();
    standin = await startMwaaStandin();
    standin.addEnvironment(environment, '2.10.1');
    vars = { TEMPORAL_TASK_QUEUE: taskQueue, MWAA_ENDPOINT: standin.endpoint };
    config = testConfig(vars);
    env = await workflowTestEnv(config);
    worker = await backgroundWorker(env, config);
  });
  afterEach(() => standin.clearFaults());
  after(async () => {
    while (schedules.length) await deleteSchedule(env.client, schedules.pop()!).catch(() => undefined);
    await worker?.stop();
    await env?.teardown();
    await standin?.close();
  });

  /** A DAG of its own in the stand-in environment (id short enough for InvokeRestApi paths). */
  function newDag(extra: Partial<StandinDag> = {}): StandinDag {
    return standin.addDag(environment, { dagId: `dag_${uniqueName('l').slice(-12).replace(/-/g, '_')}`, ...extra });
  }
  const posts = (dag: StandinDag) => standin.calls.filter((c) => c.environment === environment && c.detail === `POST /dags/${dag.dagId}/dagRuns`).length;
  const onlyRun = (dag: StandinDag) => {
    const runs = [...dag.runs.values()];
    assert.equal(runs.length, 1, `exactly one DAG run, got ${runs.map((r) => r.dag_run_id).join(', ')}`);
    return runs[0]!;
  };

  function start(prefix: string, date: string, legacyDag: DailyPipelineInput['legacyDag']): Promise<WorkflowHandle> {
    const input: DailyPipelineInput = { prefix, date, outputRoot: `${prefix}/`, legacyDag };
    return env.client.workflow.start('dailyPipelineWorkflow', { taskQueue, workflowId: dailyWorkflowId(prefix, date), args: [input] });
  }
  const status = (h: WorkflowHandle) => h.query<DailyStatus>('stage');
  const details = async (h: WorkflowHandle) => (await h.query<{ currentDetails?: string }>('__temporal_workflow_metadata')).currentDetails ?? '';

  async function events(h: WorkflowHandle): Promise<HistoryEvent[]> {
    return (await h.fetchHistory()).events ?? [];
  }
  const childStarts = (evs: HistoryEvent[]) => evs.filter((e) => e.startChildWorkflowExecutionInitiatedEventAttributes).map((e) => e.startChildWorkflowExecutionInitiatedEventAttributes!.workflowType!.name!);
  const activityAttempts = (evs: HistoryEvent[]) => {
    const scheduled = new Map(evs.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!.activityType!.name!]));
    return evs.filter((e) => e.activityTaskStartedEventAttributes).map((e) => ({ name: scheduled.get(String(e.activityTaskStartedEventAttributes!.scheduledEventId))!, attempt: e.activityTaskStartedEventAttributes!.attempt! }));
  };
  async function assertCleaningNeverStarted(h: WorkflowHandle, prefix: string) {
    assert.deepEqual(childStarts(await events(h)), ['landingWorkflow'], 'landing only: cleaning never started');
    await assert.rejects(env.client.workflow.getHandle(`cleaning-${prefix}`).describe(), WorkflowNotFoundError);
  }

  it('npm run pipeline -- --legacy-dag: one DAG run with the derived id, after landing and before cleaning; id and state in status, result, details and output; a rerun adopts it', async () => {
    const dag = newDag();
    const prefix = uniqueName('legacy-ok');
    const date = day(-1);
    const workflowId = dailyWorkflowId(prefix, date);
    const runId = legacyDagRunId(workflowId, date);
    assert.match(runId, new RegExp(`^pinflow__${date.replace(/-/g, '')}_[0-9a-z]{7}$`));
    const res = await runScriptAsync(
      'pipeline',
      ['--date', date, '--wait', '--prefix', prefix, '--output-root', `${prefix}/`, '--legacy-dag', `${environment}/${dag.dagId}`, '--legacy-dag-conf', '{"team":"ads","retries":2}'],
      vars,
    );
    assert.equal(res.code, 0, res.stderr + res.stdout);
    assert.match(res.stdout, new RegExp(`legacy DAG ${environment}/${dag.dagId}: run ${runId} \\(logical date ${date}T00:00:00\\.000Z\\) success \\(\\d+\\.\\d s\\)`));

    // Airflow: one run, the derived id, the pipeline's logical date, the conf as given, finished.
    const run = onlyRun(dag);
    assert.equal(run.dag_run_id, runId);
    assert.equal(run.logical_date, `${date}T00:00:00+00:00`);
    assert.deepEqual(run.conf, { team: 'ads', retries: 2 });
    assert.equal(run.state, 'success');
    assert.equal(posts(dag), 1, 'triggered once');
    await recordHistories(env.client, workflowId, (await env.client.workflow.getHandle(workflowId).describe()).runId, 'daily-legacy-dag', { children: true });

    const h = env.client.workflow.getHandle(workflowId);
    const result = (await h.result()) as DailyPipelineResult;
    assert.deepEqual({ ...result.legacyDag, startDate: undefined, endDate: undefined }, {
      environment,
      dagId: dag.dagId,
      dagRunId: runId,
      logicalDate: `${date}T00:00:00.000Z`,
      state: 'success',
      adopted: false,
      startDate: undefined,
      endDate: undefined,
    });
    assert.ok(result.legacyDag!.endDate, 'the run end as Airflow reports it');
    assert.equal(typeof result.stageMs.legacyDag, 'number');
    const s = await status(h);
    assert.equal(s.stage, 'done');
    assert.equal(s.legacyDag?.dagRunId, runId);
    assert.equal(s.legacyDag?.state, 'success');
    assert.match(await details(h), new RegExp(`^done: landed 0 records; legacy DAG ${environment}/${dag.dagId} run ${runId} success; `));

    // Order in the history: landing child done -> DAG triggered and followed -> cleaning child.
    const evs = await events(h);
    const at = (pred: (e: HistoryEvent) => boolean) => evs.findIndex(pred);
    const landed = at((e) => !!e.childWorkflowExecutionCompletedEventAttributes);
    const triggered = at((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'triggerMwaaDag');
    const cleaning = at((e) => e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowType?.name === 'batchCleaningWorkflow');
    assert.ok(landed >= 0 && landed < triggered && triggered < cleaning, `landing (${landed}) < trigger (${triggered}) < cleaning (${cleaning})`);
    assert.deepEqual(
      activityAttempts(evs).map((a) => `${a.name}#${a.attempt}`),
      ['resolveInterval#1', 'triggerMwaaDag#1', 'waitMwaaDagRun#1', 'waitMwaaDagRun#1'],
      "the date's interval, then queued -> running -> success: one wait per state change, no retries",
    );

    // A rerun of the date (a new execution, same workflow id): the run is adopted, not repeated.
    const again = await start(prefix, date, { environment, dagId: dag.dagId, conf: { team: 'ads', retries: 2 } });
    const second = (await again.result()) as DailyPipelineResult;
    assert.equal(second.legacyDag?.dagRunId, runId);
    assert.equal(second.legacyDag?.state, 'success');
    assert.equal(second.legacyDag?.adopted, true);
    assert.equal(onlyRun(dag).dag_run_id, runId);
    assert.equal(posts(dag), 2, 'the rerun asked, Airflow answered 409, the run was adopted');
    assert.deepEqual(standin.rejected, [], 'every request SigV4-signed');
  });

  it('the status query shows the live DAG run state; cancelling the pipeline marks the DAG run failed and skips cleaning', async () => {
    const dag = newDag({ runScript: Array.from({ length: 100_000 }, () => 'running') });
    const prefix = uniqueName('legacy-live');
    const date = day(-2);
    const h = await start(prefix, date, { environment, dagId: dag.dagId, pollIntervalMs: 100 });
    const runId = legacyDagRunId(dailyWorkflowId(prefix, date), date);
    const live = await until('the running DAG run in the status query', async () => {
      const s = await status(h);
      return s.legacyDag?.state === 'running' ? s : undefined;
    });
    assert.equal(live.stage, 'legacy-dag');
    const { startDate, ...shown } = live.legacyDag!;
    assert.deepEqual(shown, { environment, dagId: dag.dagId, dagRunId: runId, logicalDate: `${date}T00:00:00.000Z`, state: 'running', adopted: false });
    assert.ok(startDate, 'the start as Airflow reports it');
    assert.equal(await details(h), `legacy DAG ${environment}/${dag.dagId} run ${runId}: running`);
    const described = await h.describe();
    assert.deepEqual(described.searchAttributes.PipelineStage, ['legacy-dag']);
    // Polling does not grow the history: a wait activity returns only on a change (or every 30 polls).
    const polls = () => standin.calls.filter((c) => c.detail === `GET /dags/${dag.dagId}/dagRuns/${runId}`).length;
    await until('30 polls', async () => (polls() >= 30 ? true : undefined));
    const waits = (await events(h)).filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'waitMwaaDagRun').length;
    assert.ok(waits * 5 <= polls(), `${waits} wait activities for ${polls()} polls: not one per poll`);

    await h.cancel();
    const err = await failureOf(h);
    assert.ok(err instanceof CancelledFailure, `cancelled, got ${String(err)}`);
    assert.equal(onlyRun(dag).state, 'failed', 'the Airflow run was marked failed');
    assert.ok(standin.calls.some((c) => c.detail === `PATCH /dags/${dag.dagId}/dagRuns/${runId}`));
    await assertCleaningNeverStarted(h, prefix);
  });

  it('a failed DAG run fails the pipeline non-retryably, naming environment, DAG and run id; cleaning never starts', async () => {
    const dag = newDag({ runScript: ['running', 'failed'] });
    const prefix = uniqueName('legacy-fail');
    const date = day(-3);
    const h = await start(prefix, date, { environment, dagId: dag.dagId, pollIntervalMs: 100 });
    const runId = legacyDagRunId(dailyWorkflowId(prefix, date), date);
    const err = await failureOf(h);
    assert.ok(err instanceof ApplicationFailure, String(err));
    assert.equal(err.type, MWAA_DAG_RUN_FAILED);
    assert.equal(err.nonRetryable, true);
    assert.match(
      err.message,
      new RegExp(`^legacy DAG stage failed: MWAA environment ${environment}: DAG run ${dag.dagId}/${runId} \\(logical date ${date}T00:00:00\\.000Z\\) ended in state failed; cleaning was not run\\. .*clear it there, then rerun this date`),
    );
    assert.equal(onlyRun(dag).state, 'failed');
    const s = await status(h);
    assert.equal(s.stage, 'failed');
    assert.equal(s.legacyDag?.state, 'failed');
    assert.equal(s.legacyDag?.dagRunId, runId);
    assert.match(await details(h), new RegExp(`^failed in stage legacy-dag: legacy DAG stage failed: .*${runId}`));
    assert.ok(activityAttempts(await events(h)).every((a) => a.attempt === 1), 'not retried');
    await assertCleaningNeverStarted(h, prefix);
  });

  it('a DAG run that outlasts legacyDag.timeoutMs fails the pipeline non-retryably; the run goes on in Airflow', async () => {
    const dag = newDag({ runScript: Array.from({ length: 100_000 }, () => 'running') });
    const prefix = uniqueName('legacy-slow');
    const date = day(-4);
    const h = await start(prefix, date, { environment, dagId: dag.dagId, pollIntervalMs: 100, timeoutMs: 2_000 });
    const runId = legacyDagRunId(dailyWorkflowId(prefix, date), date);
    const err = await failureOf(h);
    assert.ok(err instanceof ApplicationFailure, String(err));
    assert.equal(err.type, MWAA_DAG_RUN_TIMED_OUT);
    assert.equal(err.nonRetryable, true);
    assert.match(err.message, new RegExp(`^legacy DAG ${environment}/${dag.dagId} run ${runId} is still running after 2 s \\(legacyDag.timeoutMs\\); cleaning was not run\\. The run goes on in Airflow`));
    assert.equal(onlyRun(dag).state, 'running', 'not stopped');
    await assertCleaningNeverStarted(h, prefix);
  });

  it('a lost trigger response: the SDK retries, then Temporal retries the activity; the 409s adopt the run, one DAG run in all', async () => {
    const dag = newDag();
    const prefix = uniqueName('legacy-lost');
    const date = day(-5);
    // Every one of the SDK's 4 attempts is carried out but its response lost: the first creates
    // the run, the next three hit 409; the activity attempt fails (retryable) and attempt 2 adopts.
    standin.inject({ fault: 'drop-response', airflow: new RegExp(`^POST /dags/${dag.dagId}/dagRuns$`), times: 4 });
    const h = await start(prefix, date, { environment, dagId: dag.dagId, pollIntervalMs: 100 });
    const result = (await h.result()) as DailyPipelineResult;
    const runId = legacyDagRunId(dailyWorkflowId(prefix, date), date);
    assert.equal(result.legacyDag?.state, 'success');
    assert.equal(result.legacyDag?.dagRunId, runId);
    assert.equal(result.legacyDag?.adopted, true, 'the second attempt found the run the first one created');
    assert.equal(onlyRun(dag).dag_run_id, runId);
    assert.equal(posts(dag), 5, '4 lost responses, then the retried activity');
    const triggers = activityAttempts(await events(h)).filter((a) => a.name === 'triggerMwaaDag');
    assert.deepEqual(triggers.map((a) => a.attempt), [2], 'the trigger activity completed on its second attempt');
  });

  it('a DAG paused while its run is in flight fails the pipeline non-retryably (Airflow would never finish the run)', async () => {
    const dag = newDag({ runScript: Array.from({ length: 100_000 }, () => 'running') });
    const prefix = uniqueName('legacy-paused');
    const date = day(-8);
    const h = await start(prefix, date, { environment, dagId: dag.dagId, pollIntervalMs: 100 });
    await until('the running DAG run', async () => ((await status(h)).legacyDag?.state === 'running' ? true : undefined));
    dag.isPaused = true; // e.g. someone ran `npm run mwaa -- cutover` meanwhile
    const err = await failureOf(h);
    const runId = legacyDagRunId(dailyWorkflowId(prefix, date), date);
    assert.ok(err instanceof ApplicationFailure, String(err));
    assert.equal(err.type, NonRetryable.badInput);
    assert.equal(err.nonRetryable, true);
    assert.match(err.message, new RegExp(`^legacy DAG ${environment}/${dag.dagId} run ${runId}: the legacy DAG stage failed \\(last state running\\): MWAA environment ${environment}: DAG ${dag.dagId} is paused while its run ${runId} is running, so Airflow will not finish it; unpause the DAG`));
    await assertCleaningNeverStarted(h, prefix);
  });

  it('Airflow 2.2.2 (no InvokeRestApi): the stage goes through the CLI token flow, same outcome', async () => {
    const old = uniqueName('legacy-old');
    standin.addEnvironment(old, '2.2.2');
    const dag = standin.addDag(old, { dagId: 'old_dag' });
    const prefix = uniqueName('legacy-cli');
    const date = day(-9);
    const h = await start(prefix, date, { environment: old, dagId: dag.dagId, pollIntervalMs: 100 });
    const result = (await h.result()) as DailyPipelineResult;
    const runId = legacyDagRunId(dailyWorkflowId(prefix, date), date);
    assert.equal(result.legacyDag?.state, 'success');
    assert.equal(onlyRun(dag).dag_run_id, runId);
    const cli = standin.calls.filter((c) => c.environment === old).map((c) => `${c.operation} ${c.detail}`);
    assert.ok(cli.includes(`CLI dags trigger old_dag -r ${runId} -e ${date}T00:00:00.000Z -c '{}'`), cli.join('\n'));
    assert.ok(!cli.some((c) => c.startsWith('InvokeRestApi')), 'never InvokeRestApi on Airflow 2.2.2');
  });

  it('bad input, a paused, unknown or too long DAG id, access denied, a date held by another run: clear non-retryable failures, nothing triggered', async () => {
    // Input checks, before anything runs.
    assert.deepEqual(legacyDagProblems({ environment: '9env', dagId: 'a b', conf: [], extra: 1 }), [
      'legacyDag.environment "9env" is not an MWAA environment name: a letter, then up to 79 letters, digits, - or _',
      'legacyDag.dagId "a b" is not an Airflow DAG id: 1-250 letters, digits, _ . -',
      'legacyDag.conf must be a JSON object',
      'legacyDag.extra is not a known field',
    ]);
    const badInput = await start(uniqueName('legacy-bad'), day(-6), { environment: '9env', dagId: '' });
    const bad = await failureOf(badInput);
    assert.ok(bad instanceof ApplicationFailure);
    assert.equal(bad.type, NonRetryable.badInput);
    assert.match(bad.message, /^invalid pipeline input: legacyDag\.environment "9env" is not an MWAA environment name.*; legacyDag\.dagId "" is not an Airflow DAG id/);
    assert.deepEqual(childStarts(await events(badInput)), [], 'refused before landing');

    const paused = newDag({ isPaused: true });
    const unknownId = 'no_such_dag';
    const long = newDag({ dagId: `dag_${'x'.repeat(MAX_REST_PATH - 15 - 25 - 3)}` }); // 25 = the run id's length: one character too many
    const denied = newDag();
    const held = newDag();
    const date = day(-7);
    // Another prefix's pipeline ran this DAG for this date first: Airflow holds one run per logical date.
    const first = await start(uniqueName('legacy-first'), date, { environment, dagId: held.dagId, pollIntervalMs: 100 });
    await first.result();
    standin.inject({ fault: 'deny', airflow: new RegExp(`^GET /dags/${denied.dagId}$`), times: 1 });

    const cases: Array<{ dagId: string; type: string; message: RegExp }> = [
      { dagId: paused.dagId, type: NonRetryable.badInput, message: new RegExp(`MWAA environment ${environment}: DAG ${paused.dagId} is paused .*would stay queued`) },
      { dagId: unknownId, type: NonRetryable.missingResource, message: new RegExp(`MWAA at http://127\\.0\\.0\\.1:\\d+ environment ${environment}: .*DAG with dag_id: '${unknownId}' not found`) },
      { dagId: long.dagId, type: NonRetryable.badInput, message: new RegExp(`would be 65 characters, over InvokeRestApi's limit of 64.*nothing was triggered \\(use a DAG id of at most ${long.dagId.length - 1} characters`) },
      { dagId: denied.dagId, type: NonRetryable.auth, message: new RegExp(`MWAA at .* environment ${environment}: .*not authorized to perform: airflow:InvokeRestApi`) },
      { dagId: held.dagId, type: NonRetryable.conflict, message: new RegExp(`DAGRun logical date: '${date}T00:00:00\\+00:00' already exists \\(and no run pinflow__${date.replace(/-/g, '')}_[0-9a-z]{7} exists: another run holds logical date`) },
    ];
    const handles = await Promise.all(cases.map((c) => start(uniqueName('legacy-no'), date, { environment, dagId: c.dagId, pollIntervalMs: 100 })));
    const failures = await Promise.all(handles.map((h) => failureOf(h)));
    for (const [i, c] of cases.entries()) {
      const err = failures[i]!;
      assert.ok(err instanceof ApplicationFailure, `${c.dagId}: ${String(err)}`);
      assert.equal(err.type, c.type, `${c.dagId}: ${err.message}`);
      assert.equal(err.nonRetryable, true);
      assert.match(err.message, new RegExp(`^legacy DAG ${environment}/${c.dagId} run pinflow__\\d{8}_[0-9a-z]{7}: the legacy DAG stage failed \\(while triggering the run\\): `), c.dagId);
      assert.match(err.message, c.message, c.dagId);
      assert.match(err.message, /; cleaning was not run$/);
      assert.ok(activityAttempts(await events(handles[i]!)).every((a) => a.attempt === 1), `${c.dagId}: not retried`);
      assert.deepEqual(childStarts(await events(handles[i]!)), ['landingWorkflow'], `${c.dagId}: cleaning never started`);
    }
    for (const d of [paused, long, denied]) assert.equal(d.runs.size, 0, `${d.dagId}: nothing triggered`);
    assert.equal(held.runs.size, 1, 'the other prefix keeps its run; no second one');
  });

  it('npm run schedule -- create --legacy-dag: scheduled runs carry the stage (a triggered run runs the DAG for its logical date); update --no-legacy-dag removes it', async () => {
    const dag = newDag();
    const prefix = uniqueName('legacy-sched');
    const lines: string[] = [];
    const create = parseScheduleArgs(['create', '--prefix', prefix, '--output-root', `${prefix}/`, '--legacy-dag', `${environment}/${dag.dagId}`], config);
    schedules.push(create.scheduleId);
    await runSchedule(config, create, (l) => lines.push(l));
    assert.match(lines.join('\n'), new RegExp(`created schedule ${create.scheduleId}: .*, legacy DAG ${environment}/${dag.dagId}$`));
    let d = (await describeSchedule(env.client, create.scheduleId))!;
    assert.deepEqual(d.action.type === 'startWorkflow' ? d.action.args : undefined, [{ prefix, outputRoot: `${prefix}/`, legacyDag: { environment, dagId: dag.dagId } }]);
    assert.equal(d.policies.overlap, 'BUFFER_ONE');
    await runSchedule(config, parseScheduleArgs(['describe', '--prefix', prefix], config), (l) => lines.push(l));
    assert.ok(lines.includes(`  legacy DAG: ${environment}/${dag.dagId} after landing, before cleaning`), lines.join('\n'));

    // A scheduled run delegates to the canonical run of its logical date, which runs the DAG.
    await env.client.schedule.getHandle(create.scheduleId).trigger();
    const date = logicalDateOf(new Date());
    const canonical = env.client.workflow.getHandle(dailyWorkflowId(prefix, date));
    const result = (await until('the scheduled run', () => canonical.result() as Promise<DailyPipelineResult>, 120_000))!;
    assert.equal(result.legacyDag?.state, 'success');
    assert.equal(onlyRun(dag).dag_run_id, legacyDagRunId(dailyWorkflowId(prefix, date), date));
    assert.equal(onlyRun(dag).logical_date, `${date}T00:00:00+00:00`);

    await runSchedule(config, parseScheduleArgs(['update', '--prefix', prefix, '--no-legacy-dag'], config), (l) => lines.push(l));
    assert.equal(lines.at(-1), `updated schedule ${create.scheduleId}: no legacy DAG`);
    d = (await describeSchedule(env.client, create.scheduleId))!;
    assert.deepEqual(d.action.type === 'startWorkflow' ? d.action.args : undefined, [{ prefix, outputRoot: `${prefix}/` }]);
    assert.throws(() => parseScheduleArgs(['trigger', '--legacy-dag', 'e/d'], config), /--legacy-dag and --no-legacy-dag apply to create and update, not trigger/);
    assert.throws(() => parseScheduleArgs(['create', '--no-legacy-dag'], config), /--no-legacy-dag \(update only\)/);
    assert.throws(() => parseScheduleArgs(['create', '--legacy-dag', 'nodag'], config), (err: Error) => err.constructor.name === 'UsageError' && /^--legacy-dag "nodag" must be ENVIRONMENT\/DAG_ID/.test(err.message));
  });
});

const liveEnv = readEnv();
const liveMissing = ['PINFLOW_LIVE_MWAA_ENVIRONMENT', 'PINFLOW_LIVE_MWAA_DAG'].filter((k) => !(liveEnv[k] ?? '').trim());
const liveSkip = liveMissing.length ? `needs a real MWAA environment and a test DAG: set ${liveMissing.join(', ')}` : liveEnv.MWAA_ENDPOINT ? 'MWAA_ENDPOINT is set (the live test talks to AWS itself)' : false;

describe('the legacy stage against a real MWAA environment (live)', () => {
  it('triggers the test DAG once for a fresh logical date, a repeat adopts the run, and follows it to success', { skip: liveSkip, timeout: 3_600_000 }, async () => {
    const config = loadConfig(liveEnv);
    const acts = mwaaActivities(config);
    const mock = () => new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
    const environment = liveEnv.PINFLOW_LIVE_MWAA_ENVIRONMENT!;
    const dagId = liveEnv.PINFLOW_LIVE_MWAA_DAG!;
    const logicalDate = new Date(Math.floor(Date.now() / 1000) * 1000).toISOString(); // fresh: one run per logical date
    const dagRunId = legacyDagRunId(uniqueName('daily-pipeline-live'), logicalDate.slice(0, 10));
    const input = { environment, dagId, logicalDate, dagRunId, conf: { pinflow_live_test: true }, wait: false };
    const first: TriggerMwaaDagResult = await mock().run(acts.triggerMwaaDag, input);
    assert.equal(first.adopted, false);
    const again: TriggerMwaaDagResult = await mock().run(acts.triggerMwaaDag, input);
    assert.equal(again.adopted, true, 'the real 409 is adopted');
    let state = again.state;
    while (!TERMINAL_DAG_RUN_STATES.includes(state)) {
      const w: MwaaDagRunStatus = await mock().run(acts.waitMwaaDagRun, { environment, dagId, dagRunId, since: state, pollIntervalMs: 10_000 });
      state = w.state;
    }
    assert.equal(state, 'success');
  });
});
