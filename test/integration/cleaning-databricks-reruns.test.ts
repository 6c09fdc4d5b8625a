/**
 * batchCleaningWorkflow in notebook mode (`databricksJob`) on Databricks: one Jobs API run per
 * cleaning run. The cleaning's workflow id is the same for every cleaning of a prefix
 * (`cleaning-<prefix>`), and Databricks answers a `runs/submit` whose idempotency token it has
 * seen with the run that token launched; so the token must differ per cleaning run (two
 * cleanings of a prefix, one after the other, launch two notebook runs, each with its own
 * parameters, each cleaning's result naming its own run) yet stay the same across the
 * activity's retries (a submit whose answer is lost launches exactly one run, which the retried
 * activity adopts).
 *
 * Set-up: the SQL warehouse and Jobs API stand-ins behind one HTTPS address (a workspace serves
 * both on its host, and DATABRICKS_HOST names one), a worker process of its own whose `fetch`
 * trusts the stand-in's certificate (NODE_EXTRA_CA_CERTS), workflows started with the ids
 * pinflow gives them.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { CleaningInput, CleaningResult } from '../../common/cleaning';
import { cleaningWorkflowId } from '../../common/ids';
import { objectKey } from '../../common/landing';
import { spawnWorker } from '../helpers/data';
import { selfSignedCertificate, startJobsApi, startSqlWarehouse, type JobsApi, type SqlWarehouse } from '../helpers/databricks-standin';
import { stackTestContext, uniqueName } from '../helpers/env';

const TOKEN = 'dapi-cleaning-reruns-token-17';
const NOTEBOOK = '/Shared/pinflow/clean';

/** One HTTPS address in front of both stand-ins: `/api/2.1/jobs/...` to the Jobs API, the rest to the warehouse. */
async function startWorkspace(jobs: JobsApi, wh: SqlWarehouse): Promise<{ host: string; close(): Promise<void> }> {
  const tls = selfSignedCertificate();
  const server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const toJobs = (req.url ?? '').startsWith('/api/2.1/jobs/');
    const target = new URL(req.url ?? '/', toJobs ? jobs.url : wh.url);
    const options = { method: req.method, headers: req.headers, ...(toJobs ? {} : { ca: wh.ca }) };
    const forward = (answer: http.IncomingMessage) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    };
    const upstream = toJobs ? http.request(target, options, forward) : https.request(target, options, forward);
    // An answer the stand-in dropped is dropped here too.
    upstream.on('error', () => res.socket?.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('notebook-mode cleaning on Databricks: one job run per cleaning run', () => {
  const ctx = stackTestContext();
  let wh: SqlWarehouse;
  let api: JobsApi;
  let workspace: Awaited<ReturnType<typeof startWorkspace>>;
  let caDir: string;
  let worker: ReturnType<typeof spawnWorker>;
  const taskQueue = uniqueName('tq-dbx-reruns');

  before(async () => {
    wh = await startSqlWarehouse({
      token: TOKEN,
      handler: (sql) => (/^SELECT count\(\*\) AS n FROM /.test(sql) ? { columns: [{ name: 'n', type: 'bigint' }], rows: [[5]] } : undefined),
    });
    api = await startJobsApi({ token: TOKEN });
    workspace = await startWorkspace(api, wh);
    caDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-dbx-reruns-'));
    const caFile = path.join(caDir, 'ca.pem');
    fs.writeFileSync(caFile, wh.ca);
    worker = spawnWorker({
      TEMPORAL_TASK_QUEUE: taskQueue,
      WAREHOUSE: 'databricks',
      DATABRICKS_HOST: workspace.host,
      DATABRICKS_TOKEN: TOKEN,
      DATABRICKS_HTTP_PATH: wh.httpPath,
      DATABRICKS_CA_FILE: caFile,
      DATABRICKS_CLUSTER_ID: '0101-000000-standin1',
      NODE_EXTRA_CA_CERTS: caFile,
    });
    await worker.ready;
  });

  after(async () => {
    if (worker && worker.child.exitCode === null) {
      const exited = new Promise((r) => worker.child.once('exit', r));
      worker.child.kill('SIGTERM');
      const force = setTimeout(() => worker.child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(force);
    }
    await workspace?.close();
    await api?.close();
    await wh?.close();
    if (caDir) fs.rmSync(caDir, { recursive: true, force: true });
  });

  async function landSomething(prefix: string): Promise<string> {
    const topicsDir = `${uniqueName('dbx-reruns-landed')}/topics`;
    for (const t of ['pin', 'geo', 'user']) {
      const key = objectKey(topicsDir, `${prefix}.${t}`, 0, 0);
      await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.config.s3.bucket, Key: key, Body: `{"${t === 'pin' ? 'index' : 'ind'}":1}\n` }));
    }
    return topicsDir;
  }

  /** One cleaning run under the id pinflow gives it (the daily pipeline's child and `clean` use the same). */
  async function clean(input: CleaningInput) {
    const handle = await ctx.env.client.workflow.start('batchCleaningWorkflow', { taskQueue, workflowId: cleaningWorkflowId(input.prefix), args: [input] });
    const result = (await handle.result()) as CleaningResult;
    return { handle, result };
  }

  /** The runs/submit requests of a prefix's cleanings, in order. */
  const submissionsOf = (prefix: string) => api.submissions.filter((s) => s.body.run_name === `pinflow cleaning ${prefix}`);
  const notebookParameters = (body: Record<string, unknown>) => (body.tasks as Array<{ notebook_task: { base_parameters: Record<string, string> } }>)[0]!.notebook_task.base_parameters;

  it('two cleanings of the same prefix, one after the other, launch two notebook runs, each reported by its own cleaning', { timeout: 180_000 }, async () => {
    const prefix = uniqueName('dbx-rerun');
    const topicsDir = await landSomething(prefix);
    const input = (day: string): CleaningInput => ({ prefix, source: { kind: 's3', topicsDir }, outputRoot: `${prefix}/`, databricksJob: { notebookPath: NOTEBOOK, parameters: { day } } });

    const first = await clean(input('2024-05-01'));
    const second = await clean(input('2024-05-02'));
    assert.equal(first.handle.workflowId, second.handle.workflowId, 'both cleanings ran under cleaning-<prefix>');

    const submitted = submissionsOf(prefix);
    const launched = [...new Set(submitted.map((s) => s.runId))];
    const seen = submitted.map((s) => `run ${s.runId} token ${String(s.body.idempotency_token)} parameters ${JSON.stringify(notebookParameters(s.body))}`);
    assert.equal(launched.length, 2, `one notebook run per cleaning run; runs/submit answered:\n${seen.join('\n')}`);
    const [run1, run2] = launched.map((id) => api.runs.get(id)!);
    assert.deepEqual(notebookParameters(run1!.submission), { prefix, day: '2024-05-01' }, 'the first run has the first cleaning\'s parameters');
    assert.deepEqual(notebookParameters(run2!.submission), { prefix, day: '2024-05-02' }, 'the second run has the second cleaning\'s parameters');
    for (const run of [run1!, run2!]) {
      assert.ok(run.idempotencyToken && run.idempotencyToken.length <= 64, `token of at most 64 characters: ${run.idempotencyToken}`);
      assert.equal(run.answered.at(-1), 'TERMINATED', `run ${run.runId} was followed to its end`);
    }
    assert.notEqual(run1!.idempotencyToken, run2!.idempotencyToken);

    assert.match(first.result.jobRunUrl ?? '', new RegExp(`/run/${run1!.runId}$`), 'the first cleaning names its run');
    assert.match(second.result.jobRunUrl ?? '', new RegExp(`/run/${run2!.runId}$`), 'the second cleaning names its own run, not the first one');
    assert.equal(second.result.tables.pin_clean.rows, 5);
    assert.ok(!JSON.stringify([first.result, second.result]).includes(TOKEN));
  });

  it('a submit whose answers are lost launches one run, which the retried activity adopts', { timeout: 180_000 }, async () => {
    const prefix = uniqueName('dbx-lost');
    const topicsDir = await landSomething(prefix);
    // The client's three tries of the first activity attempt all lose their answer: the
    // attempt fails (retryable), and Temporal runs the activity again.
    api.dropResponses(3, { only: '/runs/submit' });
    const { handle, result } = await clean({ prefix, source: { kind: 's3', topicsDir }, outputRoot: `${prefix}/`, databricksJob: { notebookPath: NOTEBOOK } });

    const submitted = submissionsOf(prefix);
    assert.equal(submitted.length, 4, 'three lost answers, then one answered');
    const launched = new Set(submitted.map((s) => s.runId));
    assert.equal(launched.size, 1, `exactly one notebook run (runs ${[...launched].join(', ')})`);
    assert.equal(new Set(submitted.map((s) => s.body.idempotency_token)).size, 1, 'every try sent the same token');
    const runId = [...launched][0]!;
    assert.equal(api.requests.filter((r) => r.dropped).length, 3, 'the stand-in dropped three answers');
    assert.match(result.jobRunUrl ?? '', new RegExp(`/run/${runId}$`));

    const history = await handle.fetchHistory();
    const attempts = (history.events ?? []).map((e) => e.activityTaskStartedEventAttributes?.attempt).filter((a): a is number => typeof a === 'number');
    assert.ok(attempts.includes(2), `the cleaning activity was retried (attempts started: ${attempts.join(', ')})`);
  });
});
