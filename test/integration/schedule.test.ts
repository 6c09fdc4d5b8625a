/**
 * The daily pipeline and its Temporal Schedule, through the commands users run
 * (`npm run schedule`, `npm run pipeline`) against the dev server, with a worker on a task
 * queue of the test's own: create is idempotent, trigger produces a completed run, backfill
 * over 3 dates produces 3 completed runs in date order, pause/unpause/delete work, one run per
 * date at a time, bad input is refused before anything starts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { logicalDateOf } from '../../common/daily';
import { backgroundWorker, until, utcDay, ensureStack, quietRuntime, runScript, runScriptAsync, testConfig, uniqueName, workflowTestEnv } from '../helpers/env';
import { recordHistories } from '../helpers/histories';

const day = utcDay;


/** Completed canonical daily runs of a prefix: date -> close time. */
async function completedRuns(client: Client, prefix: string): Promise<Map<string, { start: Date; close: Date }>> {
  const out = new Map<string, { start: Date; close: Date }>();
  for await (const w of client.workflow.list({ query: `WorkflowType = 'dailyPipelineWorkflow' AND PipelinePrefix = '${prefix}' AND ExecutionStatus = 'Completed'` })) {
    const m = new RegExp(`^daily-pipeline-${prefix}-(\\d{4}-\\d{2}-\\d{2})$`).exec(w.workflowId);
    if (m && w.closeTime) out.set(m[1]!, { start: w.startTime, close: w.closeTime });
  }
  return out;
}

describe('daily pipeline schedule', () => {
  let env: TestWorkflowEnvironment;
  let worker: { stop: () => Promise<void> } | undefined;
  const prefix = uniqueName('daily');
  const taskQueue = uniqueName('tq-daily');
  const vars = { PIPELINE_PREFIX: prefix, TEMPORAL_TASK_QUEUE: taskQueue };
  const config = testConfig(vars);

  before(async () => {
    quietRuntime();
    await ensureStack();
    env = await workflowTestEnv(config);
    worker = await backgroundWorker(env, config);
  });
  after(async () => {
    runScript('schedule', ['delete'], vars);
    await worker?.stop();
    await env?.teardown();
  });

  it('create is idempotent, refuses a different spec, describe shows it', () => {
    const created = runScript('schedule', ['create', '--output-root', `${prefix}/`], vars);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, new RegExp(`created schedule daily-pipeline-${prefix}: cron "0 0 \\* \\* \\*" UTC, overlap BUFFER_ONE, catch-up window 1 day`));
    const again = runScript('schedule', ['create', '--output-root', `${prefix}/`], vars);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /exists with this spec: unchanged \(active\)/);
    const different = runScript('schedule', ['create', '--cron', '30 1 * * *'], vars);
    assert.equal(different.code, 2);
    assert.match(different.stderr, /exists with a different spec .*npm run schedule -- update/);
    const described = runScript('schedule', ['describe'], vars);
    assert.equal(described.code, 0, described.stderr);
    assert.match(described.stdout, /: active\n {2}cron "0 0 \* \* \*" UTC, overlap BUFFER_ONE, catch-up window 86400 s/);
    assert.match(described.stdout, new RegExp(`next: ${day(1)}T00:00:00\\.000Z`));
  });

  it('trigger runs the pipeline now for yesterday (the logical date of a run started today)', async () => {
    const res = runScript('schedule', ['trigger'], vars);
    assert.equal(res.code, 0, res.stderr);
    const yesterday = logicalDateOf(new Date());
    const runs = await until('the triggered run', async () => {
      const r = await completedRuns(env.client, prefix);
      return r.has(yesterday) ? r : undefined;
    }, 120_000);
    const daily = env.client.workflow.getHandle(`daily-pipeline-${prefix}-${yesterday}`);
    const result = await daily.result();
    assert.equal(result.date, yesterday);
    // The schedule's own run delegates to the date's run: record both, and the date's children.
    const scheduled = (await daily.describe()).parentExecution;
    if (scheduled?.workflowId && scheduled.runId) await recordHistories(env.client, scheduled.workflowId, scheduled.runId, 'daily-scheduled', { children: true });
    assert.equal(result.cleaning.tables.pin_clean.rows, 0, 'nothing landed for this prefix: empty outputs');
    assert.ok(runs.get(yesterday)!.close >= runs.get(yesterday)!.start);
  });

  it('backfill over 3 dates: 3 completed runs, one per date, in date order', async () => {
    const dates = [day(-7), day(-6), day(-5)];
    const res = runScript('schedule', ['backfill', '--from', dates[0]!, '--to', dates[2]!], vars);
    assert.equal(res.code, 0, res.stderr);
    const runs = await until('3 backfilled runs', async () => {
      const r = await completedRuns(env.client, prefix);
      return dates.every((d) => r.has(d)) ? r : undefined;
    }, 240_000);
    const starts = dates.map((d) => runs.get(d)!);
    assert.ok(starts[0]!.close <= starts[1]!.start && starts[1]!.close <= starts[2]!.start, `in order, one after the other: ${JSON.stringify(starts)}`);
    assert.ok(!runs.has(day(-8)) && !runs.has(day(-4)), 'no date outside the range');
  });

  it('pause and unpause show in describe; delete removes the schedule', () => {
    assert.equal(runScript('schedule', ['pause', '--note', 'maintenance'], vars).code, 0);
    assert.match(runScript('schedule', ['describe'], vars).stdout, /PAUSED \(maintenance\)/);
    assert.equal(runScript('schedule', ['unpause'], vars).code, 0);
    assert.match(runScript('schedule', ['describe'], vars).stdout, /: active/);
    const updated = runScript('schedule', ['update', '--cron', '30 1 * * *', '--overlap', 'SKIP'], vars);
    assert.equal(updated.code, 0, updated.stderr);
    const after = runScript('schedule', ['describe'], vars).stdout;
    assert.match(after, /cron "30 1 \* \* \*" UTC, overlap SKIP/);
    assert.match(after, /next: \d{4}-\d{2}-\d{2}T01:30:00\.000Z/);
  });

  it('one run per date: a second start is rejected, the pipeline command attaches instead', async () => {
    const date = day(-20);
    const id = `daily-pipeline-${prefix}-${date}`;
    // Delayed start: the run exists (and holds the id) while the command below starts.
    const first = await env.client.workflow.start('dailyPipelineWorkflow', { taskQueue, workflowId: id, args: [{ prefix, date, outputRoot: `${prefix}/` }], startDelay: '8 seconds' });
    await assert.rejects(env.client.workflow.start('dailyPipelineWorkflow', { taskQueue, workflowId: id, args: [{ prefix, date }] }), WorkflowExecutionAlreadyStartedError);
    const attached = await runScriptAsync('pipeline', ['--date', date, '--wait', '--output-root', `${prefix}/`], vars);
    assert.equal(attached.code, 0, attached.stderr);
    assert.match(attached.stdout, /is already running: attaching to it \(no second run\)/);
    await first.result();
    let runsOfDate = 0;
    for await (const _ of env.client.workflow.list({ query: `WorkflowId = '${id}'` })) runsOfDate++;
    assert.equal(runsOfDate, 1, 'one execution of that date');
  });

  it('bad input is refused before anything starts', () => {
    const cron = runScript('schedule', ['create', '--cron', '0 0 * *', '--schedule-id', uniqueName('nope')], vars);
    assert.equal(cron.code, 2);
    assert.match(cron.stderr, /cron "0 0 \* \*" must have 5 fields/);
    const future = runScript('schedule', ['backfill', '--from', day(-1), '--to', day(3)], vars);
    assert.equal(future.code, 2);
    assert.match(future.stderr, new RegExp(`--to: date ${day(3)} is in the future`));
    const unknown = runScript('schedule', ['trigger', '--schedule-id', 'no-such-schedule'], vars);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no schedule "no-such-schedule" in this namespace/);
    const date = runScript('pipeline', ['--date', '2026-02-30'], vars);
    assert.equal(date.code, 2);
    assert.match(date.stderr, /--date: date 2026-02-30 does not exist/);
    const del = runScript('schedule', ['delete', '--schedule-id', 'no-such-schedule'], vars);
    assert.equal(del.code, 2);
  });
});
