/**
 * Metrics and logs of `npm run worker`: a worker in its own process (the Temporal runtime,
 * with its Prometheus exporter and logger, is installed once per process) runs the
 * emulation and the daily pipeline on a small seeded database; its /metrics endpoint then
 * carries the SDK's metrics and pinflow's counters, and its output is one JSON object per
 * line carrying the workflow and activity ids. The JSON logger alone:
 * test/unit/observability.test.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { PROJECT_ROOT } from '../../config';
import { dailyWorkflowId } from '../../common/ids';
import type { EmulationInput } from '../../common/emulation';
import { PIPELINE_METRICS } from '../../common/metrics';
import { connectClient } from '../../workers/client';
import { spawnWorker, testDatabase } from '../helpers/data';
import { ensureStack, freePort, testConfig, uniqueName } from '../helpers/env';

const ROWS = 40;


interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text format's samples. */
function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || line.startsWith('#')) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

const total = (samples: Sample[], name: string, where: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0);

describe('worker metrics and structured logs', () => {
  const prefix = uniqueName('obs');
  const taskQueue = uniqueName('tq-obs');
  const dir = path.join(PROJECT_ROOT, '.cache', 'tmp', `helper6-obs-${process.pid}`);
  let worker: ReturnType<typeof spawnWorker> | undefined;
  let port: number;
  let vars: Record<string, string>;

  before(async () => {
    await ensureStack();
    fs.mkdirSync(dir, { recursive: true });
    const { url } = await testDatabase({ seedRows: ROWS, seed: 11 });
    port = await freePort();
    vars = {
      MYSQL_URL: url,
      PIPELINE_PREFIX: prefix,
      TEMPORAL_TASK_QUEUE: taskQueue,
      DUCKDB_PATH: path.join(dir, 'w.duckdb'),
      METRICS_PORT: String(port),
      LOG_LEVEL: 'DEBUG',
      LOG_FORMAT: 'json',
    };
    worker = spawnWorker(vars);
    await worker.ready;
  });
  after(async () => {
    const child: ChildProcess | undefined = worker?.child;
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves SDK metrics and pinflow counters on METRICS_PORT after an emulation and a daily pipeline run', async () => {
    const config = testConfig(vars);
    const client = await connectClient(config);
    const emulationId = uniqueName('obs-emulation');
    const date = new Date().toISOString().slice(0, 10);
    try {
      const input: EmulationInput = { prefix, sink: 'kafka', rate: 'max', selection: { mode: 'all' } };
      const emulated = (await client.workflow.execute('emulationWorkflow', { taskQueue, workflowId: emulationId, args: [input], workflowExecutionTimeout: '5 minutes' })) as { sent: number };
      assert.equal(emulated.sent, ROWS);
      const daily = (await client.workflow.execute('dailyPipelineWorkflow', {
        taskQueue,
        workflowId: dailyWorkflowId(prefix, date),
        args: [{ prefix, date, outputRoot: `${prefix}/` }],
        workflowExecutionTimeout: '10 minutes',
      })) as { landing: { records: number }; cleaning: { tables: Record<string, { rows: number }> } };
      assert.equal(daily.landing.records, 3 * ROWS);
    } finally {
      await client.connection.close();
    }

    // Counters are exported as they are recorded; allow the exporter a moment.
    const scrape = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      assert.equal(res.status, 200);
      const text = await res.text();
      return parseMetrics(text);
    };
    let samples = await scrape();
    for (const deadline = Date.now() + 15_000; total(samples, PIPELINE_METRICS.cleaned, { taskQueue }) === 0 && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 500));
      samples = await scrape();
    }

    // The SDK's own metrics (core's labels are snake_case).
    const q = { task_queue: taskQueue };
    assert.ok(total(samples, 'temporal_workflow_completed', q) >= 4, 'emulation, daily, landing and cleaning workflows completed');
    assert.ok(total(samples, 'temporal_activity_execution_latency_count', q) > 0, 'activity latencies');
    assert.ok(total(samples, 'temporal_workflow_task_execution_latency_count', q) > 0);
    // pinflow's counters, per series (the SDK's meter tags them in camelCase).
    const p = { taskQueue };
    assert.equal(total(samples, PIPELINE_METRICS.emulated, { ...p, sink: 'kafka' }), 3 * ROWS, 'records emulated (3 per post)');
    assert.equal(total(samples, PIPELINE_METRICS.landed, p), 3 * ROWS, 'records landed');
    for (const t of ['pin', 'geo', 'user']) assert.equal(total(samples, PIPELINE_METRICS.landed, { ...p, topic: `${prefix}.${t}` }), ROWS, `${t} landed`);
    assert.equal(total(samples, PIPELINE_METRICS.deadLettered, p), 0, 'no dead letters in seeded data');
    for (const table of ['pin_clean', 'geo_clean', 'user_clean']) assert.equal(total(samples, PIPELINE_METRICS.cleaned, { ...p, table }), ROWS, `${table} rows cleaned`);
    for (const stage of ['emulation_batch', 'landing_topic', 'cleaning', 'daily_landing', 'daily_cleaning']) {
      assert.ok(total(samples, `${PIPELINE_METRICS.stageDuration}_count`, { ...p, stage }) >= 1, `stage duration of ${stage}`);
    }
    assert.ok(
      samples.some((s) => s.name === PIPELINE_METRICS.landed && s.labels.activityType === 'landTopic' && s.labels.namespace === 'default'),
      "pinflow series carry the SDK's tags",
    );

    // Structured logs: one JSON object per line, with the workflow and activity ids.
    const lines = worker!
      .output()
      .split('\n')
      .filter((l) => l.trim() !== '');
    const parsed = lines.map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return undefined;
      }
    });
    const notJson = lines.filter((_, i) => parsed[i] === undefined);
    assert.deepEqual(notJson.slice(0, 5), [], 'every line of the worker is a JSON object');
    const objects = parsed.filter((p): p is Record<string, unknown> => p !== undefined);
    for (const o of objects.filter((x) => x.sdkComponent !== undefined)) {
      assert.ok(typeof o.time === 'string' && typeof o.level === 'string' && typeof o.message === 'string', JSON.stringify(o).slice(0, 300));
    }
    const wf = objects.find((o) => o.message === 'Workflow completed' && o.workflowId === emulationId && typeof o.runId === 'string');
    assert.ok(wf, 'a workflow log line carries workflowId and runId');
    assert.equal(wf.workflowType, 'emulationWorkflow');
    const act = objects.find((o) => o.message === 'Activity completed' && o.workflowId === emulationId && o.activityType === 'emitKeyedBatch' && typeof o.activityId === 'string');
    assert.ok(act, 'an activity log line carries workflowId and activityId');
    assert.equal(typeof act.workflowRunId, 'string');
    assert.ok(!objects.some((o) => 'taskToken' in o), 'task tokens are left out of the logs');
    assert.ok(objects.some((o) => String(o.message).includes('polling task queue') && o.taskQueue === taskQueue), 'the start line is JSON too');
  });
});
