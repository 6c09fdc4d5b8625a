/**
 * The daily pipeline's alerts through dailyPipelineWorkflow on the stack's dev server, with a
 * worker in its own process (`npm run worker`: its metrics endpoint, JSON log lines and config
 * with ALERT_WEBHOOK_URL, a URL carrying a token in its path and query) and a local endpoint
 * that records the webhook calls (test/helpers/webhook-endpoint.ts):
 *
 * - `npm run pipeline -- --deadline 1m` for a past date: late at once; the webhook gets one
 *   `late` body (run ids, deadline instant, UI link), `PipelineLate='true'` finds the run, the
 *   run still completes (result and output say late); metric and log line recorded;
 * - a deadline far away (today's date, 6h): a timer, cancelled when the run ends; no alert;
 * - a run that fails (its legacy stage names an unknown MWAA environment, on the MWAA stand-in):
 *   one `failed` alert, and the run fails as it did without alerts;
 * - the webhook answering 500 then 200: retried, delivered; answering 404 (echoing the URL):
 *   not retried, logged, and the run completes;
 * - `npm run schedule -- create --deadline`: scheduled runs carry it (a triggered run's
 *   canonical child alerts), update changes or removes it;
 * - no form of the webhook URL or its token in any history of these runs, nor in the worker's
 *   log lines (a control: the webhook's origin is found in the 404's failure event).
 * Parsing, the adapter's answers and the activity's body alone: test/unit/alerts.test.ts.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { PROJECT_ROOT } from '../../config';
import type { AlertBody } from '../../common/alerts';
import { logicalDateOf, type DailyPipelineInput, type DailyPipelineResult, type DailyStatus } from '../../common/daily';
import { dailyWorkflowId } from '../../common/ids';
import { PIPELINE_METRICS } from '../../common/metrics';
import { deleteSchedule, describeSchedule } from '../../cli/schedule-ops';
import { parseScheduleArgs, runSchedule } from '../../scripts/schedule';
import { spawnWorker } from '../helpers/data';
import { ensureStack, freePort, until, utcDay, quietRuntime, runScriptAsync, testConfig, uniqueName, workflowTestEnv } from '../helpers/env';
import { addDays } from '../../common/interval';
import { occurrences } from '../helpers/history-scan';
import { startMwaaStandin, type MwaaStandin } from '../helpers/mwaa-standin';
import { startWebhookEndpoint, type WebhookEndpoint } from '../helpers/webhook-endpoint';
import { recordHistories } from '../helpers/histories';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
const day = utcDay;
const nextDay = (date: string) => addDays(date, 1);



/** `name{labels} value` lines of a Prometheus scrape, summed over the series matching `labels`. */
function metricTotal(text: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\}\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (Object.entries(labels).every(([k, v]) => m[2]!.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

describe('daily pipeline alerts: late and failed runs', () => {
  let env: TestWorkflowEnvironment;
  let endpoint: WebhookEndpoint;
  let standin: MwaaStandin;
  let worker: ReturnType<typeof spawnWorker> | undefined;
  let metricsPort: number;
  let vars: Record<string, string>;
  let config: ReturnType<typeof testConfig>;
  const taskQueue = uniqueName('tq-alerts');
  const dir = path.join(PROJECT_ROOT, '.cache', 'tmp', `alerts-${process.pid}`);
  const token = `Tok${randomBytes(10).toString('hex')}`;
  const sig = `sig-${randomBytes(8).toString('hex')}`;
  let webhookUrl: string;
  /** The prefix of each test's runs, by stem (the last test reads them all). */
  const prefixes = new Map<string, string>();
  const schedules: string[] = [];

  const newPrefix = (stem: string) => {
    const p = uniqueName(`alerts-${stem}`);
    prefixes.set(stem, p);
    return p;
  };

  before(async () => {
    quietRuntime();
    await ensureStack();
    fs.mkdirSync(dir, { recursive: true });
    endpoint = await startWebhookEndpoint();
    webhookUrl = `${endpoint.origin}/hooks/T0ALERTS/${token}?sig=${sig}`;
    standin = await startMwaaStandin();
    metricsPort = await freePort();
    vars = {
      TEMPORAL_TASK_QUEUE: taskQueue,
      MWAA_ENDPOINT: standin.endpoint,
      ALERT_WEBHOOK_URL: webhookUrl,
      DUCKDB_PATH: path.join(dir, 'w.duckdb'),
      METRICS_PORT: String(metricsPort),
      LOG_LEVEL: 'INFO',
      LOG_FORMAT: 'json',
    };
    config = testConfig(vars);
    env = await workflowTestEnv(config);
    worker = spawnWorker(vars);
    await worker.ready;
  });
  after(async () => {
    while (schedules.length) await deleteSchedule(env.client, schedules.pop()!).catch(() => undefined);
    const child: ChildProcess | undefined = worker?.child;
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await env?.teardown();
    await standin?.close();
    await endpoint?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function start(input: DailyPipelineInput & { date: string }): Promise<WorkflowHandle> {
    return env.client.workflow.start('dailyPipelineWorkflow', { taskQueue, workflowId: dailyWorkflowId(input.prefix, input.date), args: [{ outputRoot: `${input.prefix}/`, ...input }] });
  }
  const events = async (h: WorkflowHandle): Promise<HistoryEvent[]> => (await h.fetchHistory()).events ?? [];
  /** sendAlert's attempts: [attempt, outcome] per started attempt. */
  function alertAttempts(evs: HistoryEvent[]): Array<{ attempt: number }> {
    const scheduled = new Set(evs.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'sendAlert').map((e) => String(e.eventId)));
    return evs.filter((e) => e.activityTaskStartedEventAttributes && scheduled.has(String(e.activityTaskStartedEventAttributes.scheduledEventId))).map((e) => ({ attempt: e.activityTaskStartedEventAttributes!.attempt! }));
  }
  const lateRuns = async (prefix: string) => {
    const ids: string[] = [];
    for await (const w of env.client.workflow.list({ query: `PipelineLate = 'true' AND PipelinePrefix = '${prefix}'` })) ids.push(w.workflowId);
    return ids;
  };
  const searchAttribute = async (h: WorkflowHandle, name: string) => (await h.describe()).searchAttributes[name];

  /** Checks the one webhook call of `prefix`: a `kind` alert of `handle`'s run. */
  async function assertOneAlert(prefix: string, h: WorkflowHandle, expected: Pick<AlertBody, 'kind' | 'date' | 'deadline'> & { message: RegExp }): Promise<void> {
    const calls = await until(`the ${expected.kind} alert of ${prefix}`, async () => (endpoint.callsFor(prefix).length ? endpoint.callsFor(prefix) : undefined));
    await new Promise((r) => setTimeout(r, 500)); // nothing more follows
    assert.equal(endpoint.callsFor(prefix).length, 1, `one call: ${JSON.stringify(calls.map((c) => c.body))}`);
    const call = calls[0]!;
    const { runId } = await h.describe();
    assert.equal(call.method, 'POST');
    assert.equal(call.url, webhookUrl.slice(endpoint.origin.length), 'the whole configured URL, token and query included');
    assert.equal(call.headers['content-type'], 'application/json');
    assert.equal(call.headers['idempotency-key'], `${h.workflowId}/${runId}/${expected.kind}`);
    const { message, ...rest } = call.body as unknown as AlertBody;
    assert.deepEqual(rest, {
      kind: expected.kind,
      prefix,
      date: expected.date,
      workflowId: h.workflowId,
      runId,
      deadline: expected.deadline,
      uiUrl: `${config.temporal.uiUrl}/namespaces/${config.temporal.namespace}/workflows/${h.workflowId}/${runId}/history`,
    });
    assert.match(message, expected.message);
  }

  it('npm run pipeline -- --deadline 1m for a past date: a late alert at once (webhook, PipelineLate, metric, log line), and the run completes', async () => {
    const prefix = newPrefix('late');
    const date = day(-2);
    const res = await runScriptAsync('pipeline', ['--date', date, '--wait', '--prefix', prefix, '--output-root', `${prefix}/`, '--deadline', '1m'], vars);
    assert.equal(res.code, 0, res.stderr + res.stdout);
    assert.match(res.stdout, /\nlate: the run was not done by its deadline; a late alert was raised\n/);
    const h = env.client.workflow.getHandle(dailyWorkflowId(prefix, date));
    const result = (await h.result()) as DailyPipelineResult;
    assert.equal(result.late, true);
    const status = await h.query<DailyStatus>('stage');
    assert.deepEqual([status.stage, status.deadline, status.late], ['done', `${nextDay(date)}T00:01:00.000Z`, true], 'the status query (what --wait shows) says late');
    assert.equal((await h.describe()).status.name, 'COMPLETED');
    await assertOneAlert(prefix, h, {
      kind: 'late',
      date,
      deadline: `${nextDay(date)}T00:01:00.000Z`,
      message: new RegExp(`^daily pipeline ${prefix} ${date} is late: not done by ${nextDay(date)}T00:01:00\\.000Z \\(1m after the end of its interval\\); still running, in stage (starting|landing)$`),
    });
    assert.deepEqual(await searchAttribute(h, 'PipelineLate'), ['true']);
    assert.deepEqual(await until('the late run in visibility', async () => ((await lateRuns(prefix)).length ? lateRuns(prefix) : undefined)), [h.workflowId]);
    // The alert came at once: no timer, and before landing finished.
    const evs = await events(h);
    assert.equal(evs.filter((e) => e.timerStartedEventAttributes).length, 0, 'no timer for a deadline already past');
    const firstAlert = evs.findIndex((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'sendAlert');
    const landingDone = evs.findIndex((e) => e.childWorkflowExecutionCompletedEventAttributes);
    assert.ok(firstAlert >= 0 && firstAlert < landingDone, 'the alert was sent while landing ran');
    await recordHistories(env.client, h.workflowId, (await h.describe()).runId, 'daily-late', { children: true });
  });

  it('a deadline far away: a timer beside the stages, cancelled when the run ends; no alert, no PipelineLate', async () => {
    const prefix = newPrefix('ontime');
    const date = day(0);
    const h = await start({ prefix, date, deadline: '6h' });
    const result = (await h.result()) as DailyPipelineResult;
    assert.equal(result.late, undefined);
    const evs = await events(h);
    const timer = evs.find((e) => e.timerStartedEventAttributes)?.timerStartedEventAttributes;
    assert.ok(timer, 'a timer to the deadline');
    const dueMs = Date.parse(`${nextDay(date)}T06:00:00Z`);
    const fireSeconds = Number(String(timer.startToFireTimeout?.seconds ?? 0));
    const startedAt = Number(String(evs[0]!.eventTime!.seconds)) * 1000;
    assert.ok(Math.abs(startedAt + fireSeconds * 1000 - dueMs) < 60_000, `the timer fires at the deadline (${fireSeconds} s after the start)`);
    assert.ok(evs.some((e) => e.timerCanceledEventAttributes), 'the timer is cancelled when the run is done');
    assert.equal(alertAttempts(evs).length, 0, 'no alert sent');
    assert.equal(await searchAttribute(h, 'PipelineLate'), undefined);
    assert.equal(endpoint.callsFor(prefix).length, 0);
    await recordHistories(env.client, h.workflowId, (await h.describe()).runId, 'daily-on-time');
  });

  it('a failing run (its legacy stage names an unknown MWAA environment) sends one failed alert, then fails as before', async () => {
    const prefix = newPrefix('failed');
    const date = day(-1);
    const environment = uniqueName('NoSuchEnv');
    const h = await start({ prefix, date, legacyDag: { environment, dagId: 'nightly' } });
    const err = await h.result().then(
      () => assert.fail('the run should fail'),
      (e: Error) => e,
    );
    assert.ok(err instanceof WorkflowFailedError && err.cause, String(err));
    assert.match(err.cause.message, new RegExp(`^legacy DAG ${environment}/nightly run pinflow__\\d{8}_[0-9a-z]{7}: the legacy DAG stage failed \\(while triggering the run\\): `));
    await assertOneAlert(prefix, h, {
      kind: 'failed',
      date,
      deadline: null,
      message: new RegExp(`^daily pipeline ${prefix} ${date} failed in stage legacy-dag: legacy DAG ${environment}/nightly run .*the legacy DAG stage failed`),
    });
    assert.deepEqual(await searchAttribute(h, 'PipelineStage'), ['failed']);
    assert.equal(await searchAttribute(h, 'PipelineLate'), undefined, 'failed, not late');
    await recordHistories(env.client, h.workflowId, (await h.describe()).runId, 'daily-failed');
  });

  it('the webhook answering 500, then 200: the alert is retried and delivered once it is accepted', async () => {
    const prefix = newPrefix('retry');
    const date = day(-2);
    endpoint.script(prefix, { status: 500, body: 'try again' });
    const h = await start({ prefix, date, deadline: '1m' });
    assert.equal(((await h.result()) as DailyPipelineResult).late, true);
    const calls = endpoint.callsFor(prefix);
    assert.equal(calls.length, 2, 'two calls: the 500 and the retry');
    assert.equal(calls[0]!.raw, calls[1]!.raw, 'the same body');
    assert.equal(calls[0]!.headers['idempotency-key'], calls[1]!.headers['idempotency-key']);
    const evs = await events(h);
    assert.deepEqual(alertAttempts(evs), [{ attempt: 2 }], 'one activity, delivered on its second attempt');
    assert.ok(evs.some((e) => e.activityTaskCompletedEventAttributes), 'sendAlert completed');
  });

  it('the webhook answering 404: not retried, the run goes on and completes', async () => {
    const prefix = newPrefix('gone');
    const date = day(-2);
    endpoint.script(prefix, { status: 404, body: `no such hook: ${webhookUrl}` });
    const h = await start({ prefix, date, deadline: '1m' });
    assert.equal(((await h.result()) as DailyPipelineResult).late, true);
    assert.equal((await h.describe()).status.name, 'COMPLETED');
    await new Promise((r) => setTimeout(r, 2_000)); // a retry would have come by now
    assert.equal(endpoint.callsFor(prefix).length, 1, 'one call: 404 is not retried');
    const evs = await events(h);
    const failed = evs.find((e) => e.activityTaskFailedEventAttributes)?.activityTaskFailedEventAttributes?.failure;
    assert.ok(failed, 'sendAlert failed');
    assert.equal(failed.applicationFailureInfo?.nonRetryable, true);
    assert.equal(failed.message, `Alert webhook at ${endpoint.origin}: POST answered 404 Not Found: no such hook: [redacted]`);
    assert.deepEqual(alertAttempts(evs), [{ attempt: 1 }]);
  });

  it('npm run schedule -- create --deadline: scheduled runs carry it (the canonical run of a triggered date alerts); update changes or removes it', async () => {
    const prefix = newPrefix('sched');
    const lines: string[] = [];
    const create = parseScheduleArgs(['create', '--prefix', prefix, '--output-root', `${prefix}/`, '--deadline', '0m'], config);
    schedules.push(create.scheduleId);
    await runSchedule(config, create, (l) => lines.push(l));
    assert.match(lines.join('\n'), new RegExp(`created schedule ${create.scheduleId}: .*, deadline 0m$`));
    const args = async () => {
      const d = (await describeSchedule(env.client, create.scheduleId))!;
      return d.action.type === 'startWorkflow' ? d.action.args : undefined;
    };
    assert.deepEqual(await args(), [{ prefix, outputRoot: `${prefix}/`, deadline: '0m' }]);
    await runSchedule(config, parseScheduleArgs(['describe', '--prefix', prefix], config), (l) => lines.push(l));
    assert.ok(lines.includes('  deadline: 0m after the end of each date (a late alert, the run goes on)'), lines.join('\n'));

    // The scheduled run hands the date to its canonical run, which is past its deadline at once.
    await env.client.schedule.getHandle(create.scheduleId).trigger();
    const date = logicalDateOf(new Date());
    const canonical = env.client.workflow.getHandle(dailyWorkflowId(prefix, date));
    const result = await until('the scheduled run', () => canonical.result() as Promise<DailyPipelineResult>, 120_000);
    assert.equal(result.late, true);
    await assertOneAlert(prefix, canonical, { kind: 'late', date, deadline: `${nextDay(date)}T00:00:00.000Z`, message: /is late: not done by .* \(0m after the end of its interval\)/ });

    await runSchedule(config, parseScheduleArgs(['update', '--prefix', prefix, '--deadline', '2h'], config), (l) => lines.push(l));
    assert.equal(lines.at(-1), `updated schedule ${create.scheduleId}: deadline 2h`);
    assert.deepEqual(await args(), [{ prefix, outputRoot: `${prefix}/`, deadline: '2h' }]);
    await runSchedule(config, parseScheduleArgs(['update', '--prefix', prefix, '--no-deadline'], config), (l) => lines.push(l));
    assert.equal(lines.at(-1), `updated schedule ${create.scheduleId}: no deadline`);
    assert.deepEqual(await args(), [{ prefix, outputRoot: `${prefix}/` }]);
  });

  it('metrics and log lines: one pinflow_pipeline_alerts per alert; no form of the webhook URL in any history or log line', async () => {
    const ranFirst = (stem: string): string => prefixes.get(stem) ?? assert.fail(`the ${stem} test runs first`);
    const [late, ontime, failed] = [ranFirst('late'), ranFirst('ontime'), ranFirst('failed')];
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.equal(metricTotal(text, PIPELINE_METRICS.alerts, { kind: 'late', prefix: late }), 1, 'late counted');
    assert.equal(metricTotal(text, PIPELINE_METRICS.alerts, { kind: 'failed', prefix: failed }), 1, 'failed counted');
    assert.equal(metricTotal(text, PIPELINE_METRICS.alerts, { prefix: ontime }), 0, 'nothing for the run on time');

    const logs = worker!.output();
    const lines = logs.split('\n').filter((l) => l.includes('"alert"'));
    assert.ok(lines.some((l) => l.includes(`daily pipeline ${late} `) && l.includes('is late') && /"level":"WARN"/i.test(l)), `a WARN line for the late run:\n${lines.join('\n')}`);
    assert.ok(lines.some((l) => l.includes(`daily pipeline ${failed} `) && l.includes('failed in stage legacy-dag') && /"level":"ERROR"/i.test(l)), `an ERROR line for the failed run:\n${lines.join('\n')}`);

    // Every history of these prefixes: the daily runs, their landing and cleaning children, the scheduled parent.
    const secrets = { url: webhookUrl, token, sig, path: new URL(webhookUrl).pathname };
    const found: string[] = [];
    let originInFailure = false;
    for (const prefix of prefixes.values()) {
      for await (const w of env.client.workflow.list({ query: `PipelinePrefix = '${prefix}'` })) {
        const history = await env.client.workflow.getHandle(w.workflowId, w.runId).fetchHistory();
        for (const o of occurrences(history, secrets, w.workflowId)) found.push(`${o.label} at ${o.where}`);
        if (occurrences(history, { origin: endpoint.origin }).some((o) => !o.inBytes && /activityTaskFailedEventAttributes\.failure\.message$/.test(o.where))) originInFailure = true;
      }
    }
    assert.deepEqual(found, [], 'no form of the webhook URL in any history');
    assert.ok(originInFailure, 'control: the scan finds the webhook origin in the 404 failure event');
    assert.deepEqual(occurrences(logs, secrets), [], 'no form of the webhook URL in the worker log lines');
  });
});
