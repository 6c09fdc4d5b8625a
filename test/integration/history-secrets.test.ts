/**
 * No secrets and no raw rows in Temporal history, failures included.
 *
 * 1. The whole pipeline (emulation, then the daily pipeline: landing, cleaning, analytics) runs
 *    through the commands with recognisable fake secrets in its configuration (a MySQL user and
 *    password of its own, a Databricks token, REST proxy basic auth and an API key header, a
 *    codec server token); every event of every workflow of the run is read back and searched,
 *    payload bytes decoded, for those secrets and for the sample's rows (every unique_id and
 *    every long title). Payloads carry keys, offsets and counts only.
 * 2. Two worker processes (`npm run worker`, DEBUG JSON logs) with those secrets run, under the
 *    same prefix: the rest-proxy sink against a checking proxy (basic auth + `x-api-key`) that
 *    first answers 500 with the credentials it received echoed in its error body, then accepts;
 *    cleaning on the Databricks SQL warehouse stand-in with the fake token; and runs that FAIL:
 *    the REST proxy answering 401 (a wrong password, echoed back by the proxy) and landing with
 *    fake S3 credentials. Every event of every history of the prefix (failures, causes and last
 *    failures of retried activities included), the describe answers, the commands' output and
 *    the workers' log lines are searched for every secret in raw, URL-encoded and base64 forms
 *    (test/helpers/history-scan.ts).
 *
 * Controls (the scan can find things): a value that only appears inside payloads (the output
 * root) is found, and only in payload bytes; the failures' messages (naming the proxy's
 * address and the S3 endpoint) are found in failure events.
 *
 * Not set here, on purpose: TEMPORAL_API_KEY (it turns on TLS, which the local dev server
 * does not speak), TEMPORAL_ENCRYPTION_KEY(S_OLD) (payloads would be ciphertext and the scan
 * blind; test/integration/codec.test.ts covers encrypted histories and failures), KAFKA_SASL_* (the local
 * broker's plain listener takes no SASL).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Kafka } from 'kafkajs';
import { createKafka } from '../../adapters/kafka';
import type { EmulationInput } from '../../common/emulation';
import { MYSQL_SOCKET } from '../../stack/mysql-server';
import { spawnWorker, testDatabase } from '../helpers/data';
import { startSqlWarehouse, type SqlWarehouse } from '../helpers/databricks-standin';
import { ensureStack, quietRuntime, runScriptAsync, testConfig, uniqueName, workflowTestEnv } from '../helpers/env';
import { needleForms, occurrences } from '../helpers/history-scan';
import { sampleMessages } from '../helpers/landed-fixture';
import { startRestProxy, type RestProxy } from '../helpers/rest-proxy';

/** Every string in an event, with byte arrays (payload data) decoded as UTF-8. */
function* strings(value: unknown): Generator<string> {
  if (typeof value === 'string') yield value;
  else if (value instanceof Uint8Array) yield Buffer.from(value).toString('utf8');
  else if (Array.isArray(value)) for (const v of value) yield* strings(v);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) yield* strings(v);
}

describe('history holds no secrets and no raw rows', () => {
  let env: TestWorkflowEnvironment;
  let kafka: Kafka;
  let proxy: RestProxy;
  let wh: SqlWarehouse;
  let caFile: string;
  const marker = randomBytes(6).toString('hex');
  const secrets = {
    mysqlPassword: `Hist-Mysql-Secret-${marker}`,
    databricksToken: `dapi-hist-secret-${marker}`,
    restProxyPassword: `rest-proxy-secret-${marker}`,
  };
  // The further secret settings (part 2), each recognisable.
  const more = {
    restProxyApiKey: `hist-api-key-${marker}-x`,
    restProxyWrongPassword: `rest-proxy-wrong-${marker}`,
    s3AccessKeyId: `AKIAHIST${marker.toUpperCase()}`,
    s3SecretKey: `hist-s3-secret/${marker}+key`,
    codecServerToken: `hist-codec-token-${marker}`,
  };
  const user = `hist_${marker}`;
  const prefix = uniqueName('hist');
  // Only ever inside payloads (workflow inputs and results): the scan's positive control.
  const payloadOnly = `ctl-${marker}`;
  let db: string;
  const outputs: string[] = [];

  before(async () => {
    quietRuntime();
    await ensureStack();
    const c = testConfig();
    env = await workflowTestEnv(c);
    kafka = createKafka(c);
    proxy = await startRestProxy(kafka, { basic: { username: 'hist-svc', password: secrets.restProxyPassword }, apiKey: { header: 'x-api-key', value: more.restProxyApiKey }, echoCredentials: true });
    wh = await startSqlWarehouse({
      token: secrets.databricksToken,
      handler: (sql) => {
        if (/^SELECT\s+count\(\*\) AS records_read/.test(sql)) {
          return { columns: [{ name: 'records_read', type: 'bigint' }, { name: 'not_an_object', type: 'bigint' }, { name: 'no_usable_key', type: 'bigint' }, { name: 'kept', type: 'bigint' }], rows: [[3, 0, 0, 3]] };
        }
        if (/^SELECT count\(\*\) AS n FROM /.test(sql)) return { columns: [{ name: 'n', type: 'bigint' }], rows: [[3]] };
        return undefined;
      },
    });
    caFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-hist-dbx-')), 'ca.pem');
    fs.writeFileSync(caFile, wh.ca);
  });
  after(async () => {
    await proxy?.close();
    await wh?.close();
    await env?.teardown();
    if (caFile) fs.rmSync(path.dirname(caFile), { recursive: true, force: true });
  });

  /** The settings every run gets: every secret setting filled with a recognisable value. */
  const baseVars = () => ({
    MYSQL_URL: `mysql://${user}:${secrets.mysqlPassword}@127.0.0.1:3306/${db}`,
    DATABRICKS_TOKEN: secrets.databricksToken,
    REST_PROXY_URL: proxy.url,
    REST_PROXY_USERNAME: 'hist-svc',
    REST_PROXY_PASSWORD: secrets.restProxyPassword,
    REST_PROXY_HEADERS: JSON.stringify({ 'x-api-key': more.restProxyApiKey }),
    CODEC_SERVER_TOKEN: more.codecServerToken,
    PIPELINE_PREFIX: prefix,
  });

  it('runs the pipeline with fake credentials and finds none of them, nor any sample row, in any event', async () => {
    ({ db } = await testDatabase({ sample: true }));
    const root = await mysql.createConnection({ socketPath: MYSQL_SOCKET, user: 'root' });
    try {
      for (const host of ['localhost', '127.0.0.1']) {
        await root.query('CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?', [user, host, secrets.mysqlPassword]);
        await root.query(`GRANT ALL PRIVILEGES ON \`${db}\`.* TO ?@?`, [user, host]);
      }
    } finally {
      await root.end();
    }
    const vars = { ...baseVars(), TEMPORAL_TASK_QUEUE: uniqueName('tq-hist') };
    const emulated = await runScriptAsync('emulate', ['--all', '--wait'], vars);
    assert.equal(emulated.code, 0, emulated.stderr);
    const piped = await runScriptAsync('pipeline', ['--wait', '--output-root', `${prefix}/${payloadOnly}/`], vars, 300_000);
    assert.equal(piped.code, 0, piped.stderr);
    assert.match(piped.stdout, /pin_clean: 2,019 rows/);
    outputs.push(emulated.stdout, emulated.stderr, piped.stdout, piped.stderr);

    const msgs = await sampleMessages();
    const rowMarkers = [
      ...msgs.pin.map((p) => String(p.unique_id)),
      ...msgs.pin.map((p) => String(p.title ?? '')).filter((t) => t.length >= 25),
    ];
    const needles = [...Object.values(secrets), ...rowMarkers];
    let workflows = 0;
    let events = 0;
    const found: string[] = [];
    for await (const w of env.client.workflow.list({ query: `PipelinePrefix = '${prefix}'` })) {
      workflows++;
      const history = await env.client.workflow.getHandle(w.workflowId, w.runId).fetchHistory();
      for (const event of history.events ?? []) {
        events++;
        for (const s of strings(event)) {
          for (const n of needles) if (s.includes(n)) found.push(`${w.workflowId} event ${event.eventId}: ${n.slice(0, 40)}`);
        }
      }
    }
    assert.ok(workflows >= 4, `emulation, daily, landing and cleaning workflows scanned (${workflows})`);
    assert.ok(events > 50, `${events} events scanned`);
    assert.deepEqual(found.slice(0, 10), [], `${found.length} secret or row occurrences in history`);
    // The scan can find things: the prefix itself is in the history.
    let sawPrefix = false;
    for await (const w of env.client.workflow.list({ query: `PipelinePrefix = '${prefix}'` })) {
      const history = await env.client.workflow.getHandle(w.workflowId, w.runId).fetchHistory();
      if ([...strings(history)].some((s) => s.includes(prefix))) sawPrefix = true;
    }
    assert.ok(sawPrefix, 'the scan sees payload contents');
  });

  it('REST proxy (basic auth + API key, 500s echoing them), Databricks and failing runs (401, bad S3 credentials): no secret in any event, failure, describe, command output or log line', async () => {
    assert.ok(db, 'the pipeline above ran (its landed data is cleaned on Databricks here)');
    const all = { ...secrets, ...more };
    const workerVars = (extra: Record<string, string>) => ({ ...baseVars(), LOG_LEVEL: 'DEBUG', LOG_FORMAT: 'json', ...extra });
    const good = { ...workerVars({ WAREHOUSE: 'databricks', DATABRICKS_HOST: wh.host, DATABRICKS_HTTP_PATH: wh.httpPath, DATABRICKS_CA_FILE: caFile }), TEMPORAL_TASK_QUEUE: uniqueName('tq-hist-good') };
    const bad = {
      ...workerVars({ REST_PROXY_PASSWORD: more.restProxyWrongPassword, S3_ACCESS_KEY_ID: more.s3AccessKeyId, S3_SECRET_ACCESS_KEY: more.s3SecretKey }),
      TEMPORAL_TASK_QUEUE: uniqueName('tq-hist-bad'),
    };
    const workers: Array<{ child: ChildProcess; output: () => string }> = [];
    const handles: WorkflowHandle[] = [];
    const emulation = (posts: number): EmulationInput => ({ prefix, sink: 'rest-proxy', rate: 'max', selection: { mode: 'random', seed: 5 }, stop: { posts } });
    try {
      const g = spawnWorker(good);
      const b = spawnWorker(bad);
      workers.push(g, b);
      await Promise.all([g.ready, b.ready]);

      // The proxy answers 500 four times (echoing the credentials it got), then accepts: the
      // first attempt fails and its failure is the retried activity's last failure in history.
      proxy.failNext(4, 500);
      const start = async (taskQueue: string, type: string, args: unknown[]) => {
        const h = await env.client.workflow.start(type, { taskQueue, workflowId: uniqueName(`hist-${type}`), args });
        handles.push(h);
        return h;
      };
      const [restOk, dbx, rest401, landBadS3] = await Promise.all([
        start(good.TEMPORAL_TASK_QUEUE, 'emulationWorkflow', [emulation(30)]),
        start(good.TEMPORAL_TASK_QUEUE, 'batchCleaningWorkflow', [{ prefix, outputRoot: `${prefix}/dbx/${payloadOnly}/` }]),
        start(bad.TEMPORAL_TASK_QUEUE, 'emulationWorkflow', [emulation(10)]),
        start(bad.TEMPORAL_TASK_QUEUE, 'landingWorkflow', [{ prefix, mode: 'untilNow' }]),
      ]);
      const outcome = (h: WorkflowHandle) =>
        h.result().then(
          (r: unknown) => ({ ok: true as const, r }),
          (e: Error) => ({ ok: false as const, e }),
        );
      const [o1, o2, o3, o4] = await Promise.all([restOk, dbx, rest401, landBadS3].map(outcome));
      assert.ok(o1!.ok, `the REST proxy run rode out the 500s: ${!o1!.ok && String((o1!.e.cause as Error | undefined)?.message)}`);
      assert.equal(proxy.pendingFailures(), 0);
      assert.ok((o1!.r as { failed: number }).failed >= 1, 'an attempt failed on the 500s and was retried');
      assert.ok(proxy.rejected.some((m) => m === 'injected failure 500'));
      assert.ok(o2!.ok, `cleaning on Databricks: ${!o2!.ok && String((o2!.e.cause as Error | undefined)?.message)}`);
      assert.ok(wh.statements.length > 10 && wh.tokensSeen.has(secrets.databricksToken), 'the warehouse ran the statements with the token');
      assert.ok(!o3!.ok, 'the run with a wrong REST proxy password fails');
      assert.ok(!o4!.ok, 'landing with bad S3 credentials fails');
      const rootOf = (e: Error) => {
        let x = e as Error & { cause?: Error; type?: string };
        while (x.cause) x = x.cause as typeof x;
        return x;
      };
      assert.equal(rootOf(o3!.e).type, 'PinflowAuthError');
      assert.match(rootOf(o3!.e).message, /answered 401.*received: Basic \[redacted\] \[redacted\]/);
      assert.equal(rootOf(o4!.e).type, 'PinflowAuthError');
      assert.match(rootOf(o4!.e).message, /^S3 at /);
    } finally {
      for (const w of workers) {
        if (w.child.exitCode !== null) continue;
        const exited = new Promise((r) => w.child.once('exit', r));
        w.child.kill('SIGTERM');
        const force = setTimeout(() => w.child.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(force);
      }
    }

    // Every history of the prefix: the pipeline's above and these.
    const runs = new Map<string, { workflowId: string; runId?: string }>();
    for await (const w of env.client.workflow.list({ query: `PipelinePrefix = '${prefix}'` })) runs.set(`${w.workflowId}/${w.runId}`, w);
    for (const h of handles) {
      const d = await h.describe();
      runs.set(`${h.workflowId}/${d.runId}`, { workflowId: h.workflowId, runId: d.runId });
    }
    const found: string[] = [];
    let events = 0;
    let failureEvents = 0;
    const controls = { payloadOnly: [] as Array<{ where: string; inBytes: boolean }>, failureNamesProxy: 0, lastFailureNamesProxy: 0, failureNamesS3: 0 };
    for (const w of runs.values()) {
      const handle = env.client.workflow.getHandle(w.workflowId, w.runId);
      const history = await handle.fetchHistory();
      const describe = await handle.describe();
      for (const o of occurrences(describe.raw, all, 'describe')) found.push(`${w.workflowId} ${o.where}: ${o.label}`);
      for (const event of history.events ?? []) {
        events++;
        const where = `${w.workflowId} event ${event.eventId}`;
        for (const o of occurrences(event, all, where)) found.push(`${o.where}: ${o.label}`);
        const failures = occurrences(event, { proxy: proxy.url, s3: 'S3 at http://127.0.0.1:7070' }).filter((o) => /\.(failure|lastFailure|cause)\b/.test(o.where));
        if (failures.length) failureEvents++;
        controls.failureNamesProxy += failures.filter((o) => o.label === 'proxy').length;
        controls.lastFailureNamesProxy += failures.filter((o) => o.label === 'proxy' && o.where.includes('.lastFailure')).length;
        controls.failureNamesS3 += failures.filter((o) => o.label === 's3').length;
        controls.payloadOnly.push(...occurrences(event, { payloadOnly }, where));
      }
    }
    assert.ok(runs.size >= 8, `${runs.size} workflows scanned`);
    assert.ok(events > 80, `${events} events scanned`);
    assert.deepEqual(found.slice(0, 10), [], `${found.length} secret occurrences in histories or describe answers`);
    // Controls: the scan reads failures and payload bytes.
    assert.ok(failureEvents >= 3, `failure events scanned (${failureEvents})`);
    assert.ok(controls.failureNamesProxy >= 2, 'the 401 failures (naming the proxy) were read');
    assert.ok(controls.lastFailureNamesProxy >= 1, "the retried 500's failure (the activity's last failure) was read");
    assert.ok(controls.failureNamesS3 >= 1, 'the S3 failure was read');
    assert.ok(controls.payloadOnly.length >= 2, 'the payload-only value is found');
    assert.deepEqual(controls.payloadOnly.filter((o) => !o.inBytes), [], 'and only inside payload bytes');

    // The commands' output and the workers' log lines (DEBUG, JSON).
    const logs = [...outputs, ...workers.map((w) => w.output())].join('\n');
    assert.ok(logs.includes('"level":"WARN"') && logs.includes('Activity failed'), 'the workers logged the failures');
    for (const [label, value] of Object.entries(all)) {
      const hits = needleForms(value).filter((f) => logs.includes(f));
      assert.deepEqual(hits, [], `${label} in a command's output or a log line`);
    }
  });
});
