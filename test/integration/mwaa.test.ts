/**
 * Migrating off MWAA, against a protocol-level MWAA stand-in (the real @aws-sdk/client-mwaa
 * client, SigV4-signed, via MWAA_ENDPOINT) and the stack's Temporal dev server: plan, cutover,
 * rollback, the CLI-token fallback for Airflow 2.2.2, throttling and access denied, and the
 * translator's cron forms against the server's own parser. The triggerMwaaDag activity on its
 * own: test/unit/mwaa.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { mwaaAdapter } from '../../mwaa/adapter';
import { mwaaActivities, type TriggerMwaaDagResult } from '../../mwaa/activities';
import { PROJECT_ROOT, type Config } from '../../config';
import { NonRetryable } from '../../common/errors';
import { translateDag } from '../../mwaa/translate';
import { fireTimes } from '../../common/cron';
import { parseMwaaArgs, runMwaa, type MwaaArgs } from '../../mwaa/cli';
import { deleteSchedule, describeSchedule, ensureSchedule } from '../../cli/schedule-ops';
import { dailyScheduleId } from '../../common/ids';
import { connectClient } from '../../workers/client';
import { ensureStack, testConfig, uniqueName, type CliResult } from '../helpers/env';
import { startMwaaStandin, type MwaaStandin } from '../helpers/mwaa-standin';

const DAY = 86_400_000;
/** Activity failures are asserted, not logged. */
const mockEnv = () => new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });

/** `npm run mwaa -- args`, asynchronously: the stand-in answers from this process meanwhile. */
function runMwaaCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn('npm', ['run', '--silent', 'mwaa', '--', ...args], { cwd: PROJECT_ROOT, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr: stderr.replace(/^npm warn.*\n/gm, '') });
    });
  });
}
const todayMidnight = () => new Date(Math.floor(Date.now() / DAY) * DAY);

function expectFailure(type: string, message: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
    assert.equal(err.nonRetryable, true, err.message);
    assert.equal(err.type, type, err.message);
    assert.match(err.message, message);
    return true;
  };
}

describe('MWAA migration', () => {
  let standin: MwaaStandin;
  let config: Config;
  let client: Client;
  const schedules: string[] = [];

  before(async () => {
    await ensureStack();
    standin = await startMwaaStandin();
    config = testConfig({ MWAA_ENDPOINT: standin.endpoint });
    client = await connectClient(config);
  });
  afterEach(async () => {
    standin.clearFaults();
    while (schedules.length) await deleteSchedule(client, schedules.pop()!);
  });
  after(async () => {
    await client?.connection.close();
    await standin?.close();
  });

  /** An environment with the original DAG (@daily, catchup=False), whose last run was yesterday's logical date. */
  function scenario(airflowVersion = '2.10.1') {
    const environment = uniqueName('env');
    const dagId = `pin_dag_${uniqueName('d').slice(-6)}`;
    const prefix = uniqueName('mw');
    standin.addEnvironment(environment, airflowVersion);
    const dag = standin.addDag(environment, { dagId });
    const lastLogical = new Date(todayMidnight().getTime() - DAY);
    standin.seedDailyRuns(environment, dagId, lastLogical, 3);
    const scheduleId = dailyScheduleId(prefix);
    schedules.push(scheduleId);
    const args = (command: MwaaArgs['command'], extra: string[] = []) =>
      parseMwaaArgs([command, '--environment', environment, '--dag', dagId, '--prefix', prefix, '--yes', ...extra], config);
    return { environment, dagId, prefix, dag, lastLogical, scheduleId, args };
  }

  const run = (args: MwaaArgs, lines: string[] = []) => runMwaa(config, args, (s) => lines.push(s), { client });
  const callsTo = (environment: string, pattern: RegExp) => standin.calls.filter((c) => c.environment === environment && pattern.test(`${c.operation} ${c.detail}`));

  it('plan (the CLI) prints the environment, the DAG and the equivalent schedule for @daily + catchup=False, and changes nothing', async () => {
    const s = scenario();
    const res = await runMwaaCli(['plan', '--environment', s.environment, '--dag', s.dagId, '--prefix', s.prefix], { MWAA_ENDPOINT: standin.endpoint });
    assert.equal(res.code, 0, res.stderr + res.stdout);
    const out = res.stdout;
    assert.match(out, new RegExp(`MWAA environment ${s.environment} \\(http://127\\.0\\.0\\.1:\\d+\\): Airflow 2\\.10\\.1, status AVAILABLE`));
    assert.match(out, /reached through InvokeRestApi/);
    assert.match(out, new RegExp(`DAG ${s.dagId}: active`));
    assert.match(out, /schedule "@daily" \(UTC\), catchup false, max_active_runs 1/);
    const last = s.lastLogical.toISOString().replace('.000Z', 'Z');
    assert.match(out, new RegExp(`last scheduled run: scheduled__.* \\(logical date ${last}, success\\)`));
    assert.match(out, new RegExp(`id ${s.scheduleId}\\n`));
    assert.match(out, /spec: cron "0 0 \* \* \*" UTC/);
    const startAt = new Date(todayMidnight().getTime() + 1000).toISOString().replace('.000Z', 'Z');
    const first = new Date(todayMidnight().getTime() + DAY).toISOString().replace('.000Z', 'Z');
    assert.match(out, new RegExp(`start at ${startAt} .*first action ${first} = the run for logical date ${todayMidnight().toISOString().replace('.000Z', 'Z')}`));
    assert.match(out, new RegExp(`action: start dailyPipelineWorkflow on task queue ${config.temporal.taskQueue}, workflow id ${s.scheduleId}-<scheduled time>, args \\[\\{"prefix":"${s.prefix}"\\}\\]`));
    assert.match(out, /policies: overlap BUFFER_ONE, catch-up window 1d/);
    assert.match(out, /activity retry policy .*maximumAttempts 2, initialInterval 2m, backoffCoefficient 1, maximumInterval 2m/);
    assert.match(out, new RegExp(`No schedule ${s.scheduleId} exists yet`));
    assert.match(out, /No changes made/);
    assert.equal(s.dag.isPaused, false);
    assert.deepEqual(callsTo(s.environment, /PATCH|POST \/dags/), []);
    assert.deepEqual(standin.rejected, []);
  });

  it('cutover: schedule created paused, DAG paused, start just after the last Airflow run, then unpaused; a second cutover is harmless; rollback reverses', async () => {
    const s = scenario();
    const lines: string[] = [];
    const res = await run(s.args('cutover'), lines);
    assert.deepEqual(
      res.steps.map((x) => x.replace(/\d{4}-\d\d-\d\dT[\d:]+Z/g, 'T')),
      [
        `schedule ${s.scheduleId}: created (paused)`,
        'no DAG run in flight, next run not due within 2 minutes',
        `pause DAG ${s.dagId}: paused`,
        `DAG's last scheduled run: scheduled__${s.lastLogical.toISOString().replace('.000Z', '+00:00')}, logical date T, success`,
        'schedule starts at T: first action T (logical date T)',
        `unpause schedule ${s.scheduleId}: unpaused`,
      ],
    );
    assert.equal(s.dag.isPaused, true);
    const d = (await describeSchedule(client, s.scheduleId))!;
    assert.equal(d.state.paused, false);
    assert.ok(d.spec.startAt! > s.lastLogical, 'starts after the last logical date');
    assert.equal(d.spec.startAt!.getTime(), todayMidnight().getTime() + 1000, "one second after the last run's data interval end");
    assert.equal(d.info.nextActionTimes[0]!.getTime(), todayMidnight().getTime() + DAY, 'first action: the next fire Airflow would have made');
    assert.equal(d.spec.timezone, 'UTC');
    assert.equal(d.spec.calendars?.length, 1);
    assert.deepEqual([d.spec.calendars![0]!.hour, d.spec.calendars![0]!.minute], [[{ start: 0, end: 0, step: 1 }], [{ start: 0, end: 0, step: 1 }]]);
    assert.equal(d.policies.overlap, 'BUFFER_ONE');
    assert.equal(d.policies.catchupWindow, DAY);
    assert.equal(d.action.workflowType, 'dailyPipelineWorkflow');
    assert.equal(d.action.workflowId, s.scheduleId);
    assert.deepEqual(d.action.args, [{ prefix: s.prefix }]);
    assert.match(d.state.note ?? '', new RegExp(`cut over from MWAA ${s.environment}/${s.dagId}: Airflow's last run scheduled__`));
    const patches = callsTo(s.environment, /PATCH/).length;

    // Again: nothing changes.
    const again = await run(s.args('cutover'));
    assert.deepEqual(
      again.steps.map((x) => x.replace(/\d{4}-\d\d-\d\dT[\d:]+Z/g, 'T')),
      [
        `schedule ${s.scheduleId}: reused, running`,
        'DAG already paused: nothing can start in Airflow',
        `pause DAG ${s.dagId}: already paused`,
        `DAG's last scheduled run: scheduled__${s.lastLogical.toISOString().replace('.000Z', '+00:00')}, logical date T, success`,
        'schedule starts at T: first action T (logical date T) (already set)',
        `unpause schedule ${s.scheduleId}: already running`,
      ],
    );
    assert.equal(callsTo(s.environment, /PATCH/).length, patches);
    assert.equal((await describeSchedule(client, s.scheduleId))!.spec.startAt!.getTime(), d.spec.startAt!.getTime());

    // Rollback, twice.
    const back = await run(s.args('rollback'));
    assert.deepEqual(back.steps, [`pause schedule ${s.scheduleId}: paused`, `unpause DAG ${s.dagId}: unpaused`]);
    assert.equal((await describeSchedule(client, s.scheduleId))!.state.paused, true);
    assert.equal(s.dag.isPaused, false);
    const back2 = await run(s.args('rollback'));
    assert.deepEqual(back2.steps, [`pause schedule ${s.scheduleId}: already paused`, `unpause DAG ${s.dagId}: already active`]);
  });

  it('access denied fails clearly and non-retryably naming MWAA and the environment; re-running cutover after that partial failure finishes the job', async () => {
    const s = scenario();
    standin.inject({ fault: 'deny', airflow: /^PATCH \/dags\//, times: 1 });
    await assert.rejects(
      run(s.args('cutover')),
      expectFailure(NonRetryable.auth, new RegExp(`^MWAA at http://127\\.0\\.0\\.1:\\d+ environment ${s.environment}: .*not authorized to perform: airflow:InvokeRestApi`)),
    );
    // Partial: the schedule exists, paused; the DAG still runs in Airflow. Nothing runs twice.
    assert.equal((await describeSchedule(client, s.scheduleId))!.state.paused, true);
    assert.equal(s.dag.isPaused, false);
    const res = await run(s.args('cutover'));
    assert.match(res.steps[0]!, /reused, paused/);
    assert.match(res.steps[5]!, /unpaused/);
    assert.equal(s.dag.isPaused, true);
    assert.equal((await describeSchedule(client, s.scheduleId))!.state.paused, false);

    // Denied everywhere, through the activity: PinflowAuthError, not retried.
    standin.inject({ fault: 'deny', operation: 'GetEnvironment', times: 1 });
    const { describeMwaaDag } = mwaaActivities(config);
    await assert.rejects(
      mockEnv().run(describeMwaaDag, { environment: s.environment, dagId: s.dagId }),
      expectFailure(NonRetryable.auth, new RegExp(`^MWAA at .* environment ${s.environment}: User: .* is not authorized to perform: airflow:GetEnvironment`)),
    );
    // Wrong secret: the stand-in recomputes the SigV4 signature and refuses it.
    const wrong = mwaaAdapter({ ...config, mwaa: { ...config.mwaa, credentials: { accessKeyId: config.mwaa.credentials!.accessKeyId, secretAccessKey: 'not-the-secret' } } });
    try {
      await assert.rejects(wrong.getEnvironment(s.environment), expectFailure(NonRetryable.auth, /InvalidSignature|signature/i));
    } finally {
      wrong.close();
    }
    assert.equal(standin.rejected.length, 1);
    standin.rejected.length = 0;
    // Unknown environment: missing resource.
    await assert.rejects(
      mockEnv().run(describeMwaaDag, { environment: 'no-such-env', dagId: s.dagId }),
      expectFailure(NonRetryable.missingResource, /environment no-such-env: Environment no-such-env not found/),
    );
  });

  it('throttling is retried by the client and succeeds; endless throttling stays a retryable error', async () => {
    const s = scenario();
    standin.inject({ fault: 'throttle', operation: 'GetEnvironment', times: 2 });
    standin.inject({ fault: 'throttle', operation: 'InvokeRestApi', times: 2 });
    const before = standin.calls.length;
    const res = await run(s.args('plan'));
    assert.equal(res.plan?.translation.cron[0], '0 0 * * *');
    const made = standin.calls.slice(before);
    assert.equal(made.filter((c) => c.operation === 'GetEnvironment').length, 3, 'two throttled attempts, then success');
    assert.equal(made.filter((c) => c.operation === 'InvokeRestApi').length, 3 + 2, 'details (3 attempts), tasks, dagRuns');

    standin.inject({ fault: 'throttle', operation: 'InvokeRestApi', times: 100 });
    const mwaa = mwaaAdapter(config);
    try {
      await assert.rejects(mwaa.isDagPaused(s.environment, s.dagId), (err: unknown) => {
        assert.ok(!(err instanceof ApplicationFailure), `retryable expected, got ${String(err)}`);
        assert.match((err as Error).message, new RegExp(`^MWAA at .* environment ${s.environment}: Rate exceeded`));
        return true;
      });
    } finally {
      mwaa.close();
    }
  });

  it('Airflow 2.2.2: the CLI-token fallback (no InvokeRestApi) for plan, cutover, rollback and triggerMwaaDag', async () => {
    const s = scenario('2.2.2');
    await assert.rejects(run(s.args('plan')), /did not report the schedule.*Airflow 2\.2\.2's CLI does not show.*--schedule and --catchup/);
    await assert.rejects(run(s.args('plan', ['--schedule', '@hourly', '--catchup', 'false'])), /--schedule @hourly would make the run after .* but Airflow's next execution is/);
    const lines: string[] = [];
    await run(s.args('plan', ['--schedule', '@daily', '--catchup', 'false']), lines);
    assert.match(lines.join('\n'), /through the CLI token flow/);
    assert.match(lines.join('\n'), /spec: cron "0 0 \* \* \*" UTC/);

    const res = await run(s.args('cutover', ['--schedule', '@daily', '--catchup', 'false', '--max-active-runs', '1']));
    assert.match(res.steps[2]!, /paused$/);
    assert.equal(s.dag.isPaused, true);
    const d = (await describeSchedule(client, s.scheduleId))!;
    assert.equal(d.state.paused, false);
    assert.equal(d.spec.startAt!.getTime(), todayMidnight().getTime() + 1000, 'derived from the logical date (the 2.2 CLI shows no data interval)');
    assert.equal(d.policies.overlap, 'BUFFER_ONE');
    await run(s.args('rollback'));
    assert.equal(s.dag.isPaused, false);

    const { triggerMwaaDag } = mwaaActivities(config);
    const logicalDate = '2024-02-01T00:00:00Z';
    const result: TriggerMwaaDagResult = await mockEnv().run(triggerMwaaDag, { environment: s.environment, dagId: s.dagId, logicalDate, pollIntervalMs: 5 });
    assert.equal(result.state, 'success');
    assert.equal(result.dagRunId, 'pinflow__20240201T000000Z');

    assert.deepEqual(callsTo(s.environment, /^InvokeRestApi/), [], 'never InvokeRestApi on Airflow 2.2.2');
    const cli = callsTo(s.environment, /^CLI/).map((c) => c.detail);
    for (const cmd of [`dags pause ${s.dagId}`, `dags unpause ${s.dagId}`, `dags list-runs -d ${s.dagId} -o json`, `dags trigger ${s.dagId} -r pinflow__20240201T000000Z -e 2024-02-01T00:00:00.000Z -c '{}'`]) {
      assert.ok(cli.includes(cmd), `CLI command ${cmd} (got ${cli.join(' | ')})`);
    }
    assert.ok(callsTo(s.environment, /^CreateCliToken/).length >= 1);
    assert.deepEqual(standin.rejected, []);
  });

  it('an existing schedule with a different definition is an error unless --update-schedule', async () => {
    const s = scenario();
    await ensureSchedule(client, {
      scheduleId: s.scheduleId,
      cron: '0 6 * * *',
      paused: true,
      workflowType: 'dailyPipelineWorkflow',
      taskQueue: config.temporal.taskQueue,
      workflowIdPrefix: s.scheduleId,
      args: [{ prefix: s.prefix }],
    });
    await assert.rejects(run(s.args('cutover')), /already exists with a different definition \(cron: \["0 6 \* \* \*"\] -> \["0 0 \* \* \*"\];.*--update-schedule/);
    assert.equal(s.dag.isPaused, false, 'nothing changed in Airflow');
    const res = await run(s.args('cutover', ['--update-schedule']));
    assert.match(res.steps[0]!, /updated/);
    assert.equal((await describeSchedule(client, s.scheduleId))!.info.nextActionTimes[0]!.getTime(), todayMidnight().getTime() + DAY);
  });

  it('bad input fails before anything changes: an unmappable schedule, usage mistakes', async () => {
    const s = scenario();
    s.dag.scheduleInterval = null;
    s.dag.timetableDescription = 'At 09:00 on business days (custom timetable)';
    await assert.rejects(run(s.args('cutover')), new RegExp(`^MwaaTranslationError: DAG ${s.dagId}: schedule None cannot be translated to a Temporal Schedule: a custom timetable`));
    s.dag.scheduleInterval = { __type: 'CronExpression', value: '0 0 L * *' };
    await assert.rejects(run(s.args('cutover')), new RegExp(`DAG ${s.dagId}: schedule "0 0 L \\* \\*" cannot be translated`));
    assert.equal(await describeSchedule(client, s.scheduleId), undefined);
    assert.equal(s.dag.isPaused, false);
    assert.throws(() => parseMwaaArgs(['migrate'], config), /unknown command migrate/);
    assert.throws(() => parseMwaaArgs(['plan', '--environment', 'e'], config), /--dag is required/);
    assert.throws(() => parseMwaaArgs(['plan', '--environment', '9bad', '--dag', 'd'], config), /not an MWAA environment name/);
    assert.throws(() => parseMwaaArgs(['plan', '--environment', 'e', '--dag', 'd', '--catchup', 'maybe'], config), /--catchup must be true or false/);
    s.dag.scheduleInterval = { __type: 'CronExpression', value: '@daily' };
    const noYes = await runMwaaCli(['cutover', '--environment', s.environment, '--dag', s.dagId, '--prefix', s.prefix], { MWAA_ENDPOINT: standin.endpoint });
    assert.equal(noYes.code, 2, noYes.stderr);
    assert.match(noYes.stderr, /pass --yes to confirm/);
    assert.equal(await describeSchedule(client, s.scheduleId), undefined);
    assert.equal(s.dag.isPaused, false);
  });

  it("translated crons fire exactly when the Temporal server's own parser says", async () => {
    const cases: Array<[string, string?]> = [['0 12 13 * FRI'], ['*/20 9-17 * * MON-FRI'], ['@quarterly'], ['5/15 0 1,15 * *'], ['0 9 * * *', 'Europe/Berlin']];
    for (const [expr, tz] of cases) {
      const t = translateDag({ dagId: 'x', scheduleInterval: expr, catchup: false, timezone: tz });
      const id = uniqueName('cron');
      schedules.push(id);
      const res = await ensureSchedule(client, { scheduleId: id, cron: t.cron, timezone: t.timezone, paused: true, workflowType: 'noop', taskQueue: 'none', workflowIdPrefix: id, args: [] });
      const server = res.description.info.nextActionTimes;
      assert.ok(server.length >= 5, expr);
      const ours = fireTimes(t, new Date(server[0]!.getTime() - 1), server.length);
      assert.deepEqual(ours.map((d) => d.toISOString()), server.map((d) => d.toISOString()), `${expr} -> ${t.cron.join(' + ')}`);
    }
  });
});
