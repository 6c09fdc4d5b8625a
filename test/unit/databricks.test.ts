/**
 * The Databricks adapter against protocol-level stand-ins: the real `@databricks/sql` driver
 * speaks Thrift over HTTPS to a TCLIService endpoint, and `fetch` speaks to a Jobs API 2.1
 * endpoint, both on loopback (test/helpers/databricks-standin.ts). No Databricks account needed.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createDatabricksJobs, DATABRICKS_RUN_FAILED, databricksActivities, type DatabricksRunResult, type RunState } from '../../adapters/databricks/jobs';
import { createDatabricksSql, type DatabricksConfig, type DatabricksSql } from '../../adapters/databricks/sql';
import { loadConfig, readEnv } from '../../config';
import { NonRetryable } from '../../common/errors';
import { startJobsApi, startSqlWarehouse, type JobsApi, type ResultSet, type SqlWarehouse } from '../helpers/databricks-standin';

const TOKEN = 'dapi-test-0123456789abcdef';
const FAST_RETRY = { delayMinMs: 10, delayMaxMs: 50 };

function sqlConfig(wh: SqlWarehouse, overrides: Partial<DatabricksConfig> = {}): DatabricksConfig {
  return { host: wh.host, token: TOKEN, httpPath: wh.httpPath, catalog: 'main', schema: 'pinflow', ...overrides };
}

function expectFailure(type: string, check?: (err: ApplicationFailure) => void) {
  return (err: unknown) => {
    assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
    assert.equal(err.nonRetryable, true, err.message);
    assert.equal(err.type, type, err.message);
    check?.(err);
    return true;
  };
}

function expectRetryable(check?: (err: Error) => void) {
  return (err: unknown) => {
    assert.ok(err instanceof Error, `expected an Error, got ${String(err)}`);
    assert.ok(!(err instanceof ApplicationFailure), `expected a plain (retryable) Error, got ApplicationFailure ${(err as Error).message}`);
    check?.(err);
    return true;
  };
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

const PIN_ROWS: unknown[][] = Array.from({ length: 20 }, (_, i) => [
  i + 1,
  i % 4 === 0 ? null : `title ${i}`,
  i % 5 === 0 ? null : 1000 * i + 0.5,
  `2020-01-${String((i % 28) + 1).padStart(2, '0')} 10:11:12`,
  i % 3 === 0 ? null : [i + 0.25, -(i + 0.75)],
  2 ** 40 + i,
]);
const PIN_RESULT: ResultSet = {
  columns: [
    { name: 'ind', type: 'bigint' },
    { name: 'title', type: 'string' },
    { name: 'follower_count', type: 'double' },
    { name: 'timestamp', type: 'timestamp' },
    { name: 'coordinates', type: 'array' },
    { name: 'big', type: 'bigint' },
  ],
  rows: PIN_ROWS,
};

describe('Databricks SQL warehouse client (@databricks/sql against a TCLIService stand-in)', () => {
  let wh: SqlWarehouse;
  let sql: DatabricksSql;

  before(async () => {
    wh = await startSqlWarehouse({
      token: TOKEN,
      batchSize: 7,
      handler: (s) => {
        if (/^SELECT \* FROM pin_clean/.test(s)) return PIN_RESULT;
        if (/^SELECT 1/.test(s)) return { columns: [{ name: 'one', type: 'int' }], rows: [[1]] };
        if (/nope/.test(s)) {
          return { error: { message: '[TABLE_OR_VIEW_NOT_FOUND] The table or view `nope` cannot be found. SQLSTATE: 42P01; line 1 pos 14', sqlState: '42P01', at: 'status' } };
        }
        if (/^SELEC /.test(s)) {
          return { error: { message: "[PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'. SQLSTATE: 42601 (line 1, pos 0)", sqlState: '42601', at: 'execute' } };
        }
        if (/conflict/.test(s)) return { error: { message: '[DELTA_CONCURRENT_APPEND] Files were added to the root of the table by a concurrent update. SQLSTATE: 2D521', sqlState: '2D521', at: 'status' } };
        if (/serial/.test(s)) return { error: { message: 'could not serialize access due to concurrent update', sqlState: '40001', at: 'status' } };
        return undefined;
      },
    });
    sql = createDatabricksSql(sqlConfig(wh), { ca: wh.ca, retry: FAST_RETRY });
  });

  after(async () => {
    await sql?.close();
    await wh?.close();
  });

  it('runs statements in order through one session, then closes it', async () => {
    const before = wh.statements.length;
    const statements = ['CREATE SCHEMA IF NOT EXISTS main.pinflow', 'CREATE OR REPLACE TABLE pin_clean (ind BIGINT)', 'INSERT INTO pin_clean VALUES (1)'];
    await sql.run(statements);
    await sql.run(['OPTIMIZE pin_clean']);
    const seen = wh.statements.slice(before);
    assert.deepEqual(seen.map((s) => s.sql), [...statements, 'OPTIMIZE pin_clean']);
    assert.equal(new Set(seen.map((s) => s.sessionId)).size, 1, 'one session for all statements');
    assert.deepEqual(new Set(seen.map((s) => s.token)), new Set([TOKEN]));
    const session = wh.sessions.find((s) => s.id === seen[0]!.sessionId)!;
    assert.equal(session.initialCatalog, 'main');
    assert.equal(session.initialSchema, 'pinflow');
    assert.equal(session.clientProtocol, 0xa508, 'SPARK_CLI_SERVICE_PROTOCOL_V8');
    // Every operation was asked for asynchronously and closed.
    const ops = wh.operations.filter((o) => o.sessionId === session.id);
    assert.ok(ops.every((o) => o.request.runAsync === true && o.closed), JSON.stringify(ops));
    // What went over the wire: Thrift binary in POSTs to the warehouse path, with a bearer token.
    const req = wh.requests.find((r) => r.call === 'ExecuteStatement')!;
    assert.equal(req.path, wh.httpPath);
    assert.equal(req.headers['content-type'], 'application/x-thrift');
    assert.equal(req.headers.authorization, `Bearer ${TOKEN}`);
    assert.match(String(req.headers['user-agent']), /^NodejsDatabricksSqlConnector\/2\.0\.0 \(pinflow; Node\.js /);
    assert.equal(wh.requests.filter((r) => r.call === 'OpenSession').length, 1);

    await sql.close();
    assert.equal(session.closed, true, 'session closed by close()');
    assert.equal(wh.calls('CloseSession'), 1);
    await sql.close(); // idempotent
  });

  it('returns rows with the right values and types across several fetch batches', async () => {
    const rows = await sql.query('SELECT * FROM pin_clean ORDER BY ind');
    assert.equal(rows.length, 20);
    rows.forEach((row, i) => {
      const src = PIN_ROWS[i]!;
      assert.deepEqual(row, { ind: src[0], title: src[1], follower_count: src[2], timestamp: src[3], coordinates: src[4], big: src[5] });
    });
    assert.equal(typeof rows[1]!.ind, 'number');
    assert.equal(typeof rows[1]!.follower_count, 'number');
    assert.equal(typeof rows[1]!.timestamp, 'string');
    assert.ok(Array.isArray(rows[1]!.coordinates));
    assert.equal(rows[0]!.title, null);
    assert.equal(rows[19]!.big, 2 ** 40 + 19);
    const op = wh.operations.at(-1)!;
    // The first 7 rows come with the direct results, the rest through FetchResults.
    assert.deepEqual(op.batches, [7, 7, 6]);
    assert.ok(op.fetches >= 2, `fetches: ${op.fetches}`);
    assert.equal(op.request.directResultsMaxRows, 100_000);
    assert.equal(op.closed, true);
  });

  it('keeps polling the status through PENDING and several RUNNING answers', async () => {
    wh.setPollsBeforeFinish(5);
    try {
      const rows = await sql.query('SELECT * FROM pin_clean');
      assert.equal(rows.length, 20);
      assert.equal(wh.operations.at(-1)!.polls, 6, '1 PENDING + 4 RUNNING + FINISHED');
      await sql.run(['CREATE TABLE IF NOT EXISTS geo_clean (ind BIGINT)']);
      assert.equal(wh.operations.at(-1)!.polls, 6);
    } finally {
      wh.setPollsBeforeFinish(0);
    }
  });

  it('429 then 503 on ExecuteStatement, then success: the statement runs exactly once', async () => {
    const stmt = `INSERT INTO pin_clean VALUES (${Date.now()})`;
    const reqsBefore = wh.requests.length;
    wh.failNext(1, 429, { retryAfter: 1, only: 'ExecuteStatement' });
    wh.failNext(1, 503, { retryAfter: 1, only: 'ExecuteStatement' });
    await sql.run([stmt]);
    assert.equal(wh.statements.filter((s) => s.sql === stmt).length, 1);
    const statuses = wh.requests.slice(reqsBefore).filter((r) => r.call === 'ExecuteStatement').map((r) => r.status);
    assert.deepEqual(statuses, [429, 503, 200]);
  });

  it('429 then 503 on GetOperationStatus are retried by the driver; the statement runs once', async () => {
    const stmt = `SELECT * FROM pin_clean /* ${Date.now()} */`;
    wh.setPollsBeforeFinish(2);
    wh.failNext(1, 429, { retryAfter: 1, only: 'GetOperationStatus' });
    wh.failNext(1, 503, { only: 'GetOperationStatus' });
    try {
      const rows = await sql.query(stmt);
      assert.equal(rows.length, 20);
    } finally {
      wh.setPollsBeforeFinish(0);
    }
    assert.equal(wh.statements.filter((s) => s.sql === stmt).length, 1);
    assert.equal(wh.pendingFaults(), 0);
  });

  it('a 503 without Retry-After on ExecuteStatement is not re-sent (it may have run): retryable failure', async () => {
    const stmt = `INSERT INTO pin_clean VALUES (${Date.now()})`;
    wh.failNext(1, 503, { only: 'ExecuteStatement' });
    await assert.rejects(
      sql.run([stmt]),
      expectRetryable((err) => assert.match(err.message, new RegExp(`^Databricks at ${wh.host.replace(/\./g, '\\.')}: statement 1 of 1 \\(INSERT`))),
    );
    assert.equal(wh.statements.filter((s) => s.sql === stmt).length, 0);
    await sql.run([stmt]); // the next attempt (Temporal's) goes through on a fresh session
    assert.equal(wh.statements.filter((s) => s.sql === stmt).length, 1);
  });

  it('a SQL error reported in the operation status is non-retryable badInput with the server message', async () => {
    await assert.rejects(
      sql.run(['CREATE TABLE a AS SELECT 1', 'SELECT * FROM nope', 'SELECT 1 AS never']),
      expectFailure(NonRetryable.badInput, (err) => {
        assert.match(err.message, /^Databricks at 127\.0\.0\.1:\d+: statement 2 of 3 \(SELECT \* FROM nope\) failed \(SQLSTATE 42P01\): \[TABLE_OR_VIEW_NOT_FOUND\] The table or view `nope` cannot be found/);
        assert.ok(!err.message.includes(TOKEN));
      }),
    );
    assert.ok(!wh.statements.some((s) => s.sql === 'SELECT 1 AS never'), 'later statements are not run');
    // The same error seen through GetOperationStatus after RUNNING polls (not in the direct results).
    wh.setPollsBeforeFinish(2);
    try {
      await assert.rejects(
        sql.query('SELECT count(*) FROM nope'),
        expectFailure(NonRetryable.badInput, (err) => assert.match(err.message, /\(SQLSTATE 42P01\): \[TABLE_OR_VIEW_NOT_FOUND\]/)),
      );
      assert.equal(wh.operations.at(-1)!.polls, 3);
    } finally {
      wh.setPollsBeforeFinish(0);
    }
  });

  it('a syntax error answered to ExecuteStatement (ERROR_STATUS) is non-retryable badInput; the session stays usable', async () => {
    const sessionsBefore = wh.sessions.length;
    await assert.rejects(
      sql.query('SELEC 1'),
      expectFailure(NonRetryable.badInput, (err) => assert.match(err.message, /failed \(SQLSTATE 42601\): \[PARSE_SYNTAX_ERROR\] Syntax error at or near 'SELEC'/)),
    );
    assert.deepEqual(await sql.query('SELECT 1 AS one'), [{ one: 1 }]);
    assert.equal(wh.sessions.length, sessionsBefore, 'no new session after a statement error');
  });

  it('a commit conflict (SQLSTATE 2D521 Delta concurrent append, 40001) is retryable', async () => {
    await assert.rejects(sql.run(['MERGE INTO conflict USING x ON true WHEN MATCHED THEN DELETE']), expectRetryable((err) => assert.match(err.message, /\(SQLSTATE 2D521\): \[DELTA_CONCURRENT_APPEND\]/)));
    await assert.rejects(sql.run(['UPDATE serial SET a = 1']), expectRetryable((err) => assert.match(err.message, /SQLSTATE 40001/)));
  });

  it('cancels the running statement when the signal aborts', async () => {
    wh.setPollsBeforeFinish(10_000);
    const ac = new AbortController();
    try {
      const done = sql.query('SELECT * FROM pin_clean /* slow */', { signal: ac.signal });
      while (!(wh.operations.at(-1)?.sql.includes('slow') && wh.operations.at(-1)!.polls >= 2)) await new Promise((r) => setTimeout(r, 20));
      ac.abort(new Error('stop'));
      await assert.rejects(done, /stop/);
    } finally {
      wh.setPollsBeforeFinish(0);
    }
    assert.equal(wh.operations.at(-1)!.cancelled, true);
    assert.ok(wh.calls('CancelOperation') >= 1);
  });

  it('a wrong token is non-retryable auth naming Databricks and the host, never the token', async () => {
    const wrong = 'dapi-wrong-secret-42';
    for (const status of [401, 403] as const) {
      const w = await startSqlWarehouse({ token: TOKEN, wrongTokenStatus: status });
      const bad = createDatabricksSql(sqlConfig(w, { token: wrong }), { ca: w.ca, retry: FAST_RETRY });
      try {
        await assert.rejects(
          bad.run(['SELECT 1']),
          expectFailure(NonRetryable.auth, (err) => {
            assert.match(err.message, new RegExp(`^Databricks at ${w.host.replace(/\./g, '\\.')}: .*HTTP ${status}`));
            assert.ok(!err.message.includes(wrong), 'token must not appear');
            assert.ok(!err.message.includes(TOKEN));
          }),
        );
        assert.ok(w.tokensSeen.has(wrong), 'the driver sent the token as a bearer token');
        assert.equal(w.statements.length, 0);
      } finally {
        await bad.close();
        await w.close();
      }
    }
  });

  it('connection refused is a retryable error naming Databricks and the host', async () => {
    const port = await closedPort();
    const down = createDatabricksSql({ host: `127.0.0.1:${port}`, token: TOKEN, httpPath: '/sql/1.0/warehouses/x', catalog: 'main', schema: 'pinflow' }, { retry: FAST_RETRY });
    await assert.rejects(
      down.query('SELECT 1'),
      expectRetryable((err) => {
        assert.match(err.message, new RegExp(`^Databricks at 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
        assert.ok(!err.message.includes(TOKEN));
      }),
    );
    await down.close();
  });

  it('verifies the TLS certificate: an untrusted server never receives the token', async () => {
    const untrusting = createDatabricksSql(sqlConfig(wh), { retry: FAST_RETRY }); // no `ca`
    const reqsBefore = wh.requests.length;
    await assert.rejects(
      untrusting.query('SELECT 1'),
      expectFailure(NonRetryable.config, (err) => assert.match(err.message, /TLS certificate is not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\)/)),
    );
    assert.equal(wh.requests.length, reqsBefore, 'no HTTP request reached the server');
    await untrusting.close();
  });

  it('can open the session in the catalog only (for statements that create the schema)', async () => {
    const catalogOnly = createDatabricksSql(sqlConfig(wh), { ca: wh.ca, retry: FAST_RETRY, initialSchema: null });
    try {
      await catalogOnly.run(['CREATE SCHEMA IF NOT EXISTS pinflow']);
      const session = wh.sessions.find((s) => s.id === wh.statements.at(-1)!.sessionId)!;
      assert.equal(session.initialCatalog, 'main');
      assert.equal(session.initialSchema, undefined);
    } finally {
      await catalogOnly.close();
    }
  });

  it('missing settings are non-retryable config failures', () => {
    assert.throws(() => createDatabricksSql({ ...sqlConfig(wh), httpPath: undefined }), expectFailure(NonRetryable.config, (e) => assert.match(e.message, /DATABRICKS_HTTP_PATH/)));
    assert.throws(() => createDatabricksSql({ ...sqlConfig(wh), token: undefined }), expectFailure(NonRetryable.config, (e) => assert.match(e.message, /DATABRICKS_TOKEN/)));
    assert.throws(() => createDatabricksJobs({ ...sqlConfig(wh), host: 'http://example.com' }), expectFailure(NonRetryable.config, (e) => assert.match(e.message, /only https/)));
  });
});

describe('Databricks Jobs API client (fetch against a Jobs API 2.1 stand-in)', () => {
  let api: JobsApi;
  let config: DatabricksConfig;
  const warnings: string[] = [];
  const jobs = () => createDatabricksJobs(config, { retry: FAST_RETRY, warn: (m) => warnings.push(m) });
  const notebook = { kind: 'notebook' as const, notebookPath: '/Repos/pinflow/clean', parameters: { date: '2024-01-01' } };

  before(async () => {
    api = await startJobsApi({ token: TOKEN });
    config = { host: api.host, token: TOKEN, httpPath: '/sql/1.0/warehouses/abc123', catalog: 'main', schema: 'pinflow', clusterId: '0101-000000-abcdefgh' };
  });
  after(() => api?.close());

  it('submitting twice with the same idempotency token gives one run', async () => {
    const client = jobs();
    const input = { runName: 'clean', idempotencyToken: `tok-${Date.now()}`, task: notebook };
    const a = await client.submitRun(input);
    const b = await client.submitRun(input);
    assert.equal(a, b);
    const subs = api.submissions.filter((s) => s.body.idempotency_token === input.idempotencyToken);
    assert.equal(subs.length, 2);
    assert.equal(new Set(subs.map((s) => s.runId)).size, 1);
    assert.deepEqual(subs[0]!.body.tasks, [
      { task_key: 'main', existing_cluster_id: config.clusterId, notebook_task: { notebook_path: '/Repos/pinflow/clean', base_parameters: { date: '2024-01-01' }, source: 'WORKSPACE' } },
    ]);
    const c = await client.submitRun({ ...input, idempotencyToken: `${input.idempotencyToken}-2` });
    assert.notEqual(c, a);
  });

  it('an SQL-file task runs on the warehouse of DATABRICKS_HTTP_PATH', async () => {
    const token = `sql-${Date.now()}`;
    await jobs().submitRun({ runName: 'analytics', idempotencyToken: token, task: { kind: 'sqlFile', path: '/Workspace/pinflow/analytics.sql', parameters: { d: '1' } } });
    const body = api.submissions.find((s) => s.body.idempotency_token === token)!.body;
    assert.deepEqual(body.tasks, [{ task_key: 'main', sql_task: { warehouse_id: 'abc123', file: { path: '/Workspace/pinflow/analytics.sql', source: 'WORKSPACE' }, parameters: { d: '1' } } }]);
  });

  it('polls PENDING -> RUNNING -> TERMINATED/SUCCESS and returns the final state', async () => {
    const client = jobs();
    const runId = await client.submitRun({ runName: 'ok', idempotencyToken: `ok-${Date.now()}`, task: notebook });
    const seen: string[] = [];
    const final = await client.waitForRun(runId, { pollMs: 5, onPoll: (s) => void seen.push(s.lifeCycleState) });
    assert.deepEqual(seen, ['PENDING', 'RUNNING', 'TERMINATED']);
    assert.equal(final.resultState, 'SUCCESS');
    assert.equal(final.runPageUrl, `${api.url}/?o=0#job/0/run/${runId}`);
  });

  it('accepts every active life-cycle state of the API without warnings', async () => {
    api.scriptNext(['QUEUED', 'PENDING', 'BLOCKED', 'WAITING_FOR_RETRY', 'RUNNING', 'TERMINATING'].map((s) => ({ lifeCycleState: s })).concat([{ lifeCycleState: 'TERMINATED', resultState: 'SUCCESS_WITH_FAILURES' } as never]));
    const client = jobs();
    const runId = await client.submitRun({ runName: 'all', idempotencyToken: `all-${Date.now()}`, task: notebook });
    const w = warnings.length;
    const final = await client.waitForRun(runId, { pollMs: 2 });
    assert.equal(final.resultState, 'SUCCESS_WITH_FAILURES');
    assert.equal(api.runs.get(runId)!.answered.length, 7);
    assert.equal(warnings.length, w);
  });

  it('keeps polling through an unknown life-cycle state (and logs it once)', async () => {
    api.scriptNext([{ lifeCycleState: 'PENDING' }, { lifeCycleState: 'HIBERNATING', polls: 3 }, { lifeCycleState: 'TERMINATED', resultState: 'SUCCESS' }]);
    const client = jobs();
    const runId = await client.submitRun({ runName: 'new-state', idempotencyToken: `new-${Date.now()}`, task: notebook });
    const w = warnings.length;
    const final = await client.waitForRun(runId, { pollMs: 2 });
    assert.equal(final.resultState, 'SUCCESS');
    assert.deepEqual(api.runs.get(runId)!.answered, ['PENDING', 'HIBERNATING', 'HIBERNATING', 'HIBERNATING', 'TERMINATED']);
    const logged = warnings.slice(w);
    assert.equal(logged.length, 1);
    assert.match(logged[0]!, new RegExp(`run ${runId} is in unexpected state HIBERNATING; still polling`));
  });

  for (const [lc, rs, msg] of [
    ['TERMINATED', 'FAILED', 'Notebook raised: KeyError: follower_count'],
    ['TERMINATED', 'TIMEDOUT', 'Run timed out after 3600 seconds'],
    ['TERMINATED', 'MAXIMUM_CONCURRENT_RUNS_REACHED', 'Maximum concurrent runs reached'],
    ['INTERNAL_ERROR', 'FAILED', 'Cluster 0101-000000-abcdefgh was terminated: DRIVER_UNREACHABLE'],
    ['SKIPPED', undefined, 'An active run for this job already exists'],
  ] as const) {
    it(`${lc}${rs ? `/${rs}` : ''} is a non-retryable failure with the state message and run page`, async () => {
      api.scriptNext([{ lifeCycleState: 'RUNNING' }, { lifeCycleState: lc, resultState: rs, stateMessage: msg }]);
      const client = jobs();
      const runId = await client.submitRun({ runName: 'bad', idempotencyToken: `bad-${lc}-${rs}-${Date.now()}`, task: notebook });
      await assert.rejects(
        client.waitForRun(runId, { pollMs: 2 }),
        expectFailure(DATABRICKS_RUN_FAILED, (err) => {
          assert.ok(err.message.includes(`run ${runId} ended ${lc}${rs ? `/${rs}` : ''}: ${msg}`), err.message);
          assert.ok(err.message.includes(`${api.url}/?o=0#job/0/run/${runId}`), err.message);
          assert.equal((err.details?.[0] as RunState).lifeCycleState, lc);
        }),
      );
    });
  }

  it('aborting the signal cancels the run, which ends CANCELED', async () => {
    api.scriptNext([{ lifeCycleState: 'PENDING' }, { lifeCycleState: 'RUNNING', polls: 10_000 }]);
    const client = jobs();
    const runId = await client.submitRun({ runName: 'long', idempotencyToken: `long-${Date.now()}`, task: notebook });
    const ac = new AbortController();
    const seen: RunState[] = [];
    await assert.rejects(
      client.waitForRun(runId, {
        pollMs: 5,
        signal: ac.signal,
        onPoll: (s) => {
          seen.push(s);
          if (s.lifeCycleState === 'RUNNING' && !ac.signal.aborted) ac.abort(new Error('workflow cancelled'));
        },
      }),
      /workflow cancelled/,
    );
    assert.deepEqual(api.cancels, [runId]);
    assert.deepEqual(seen.slice(-2).map((s) => `${s.lifeCycleState}/${s.resultState}`), ['TERMINATING/undefined', 'TERMINATED/CANCELED']);
    const after = await client.getRun(runId);
    assert.equal(after.lifeCycleState, 'TERMINATED');
    assert.equal(after.resultState, 'CANCELED');
  });

  it('retries 429 and 503 (Retry-After honoured up to the cap) and then succeeds', async () => {
    const client = jobs();
    const runId = await client.submitRun({ runName: 'thr', idempotencyToken: `thr-${Date.now()}`, task: notebook });
    api.failNext(1, 429, { retryAfter: 1, only: '/runs/get' });
    api.failNext(1, 503, { only: '/runs/get' });
    const state = await client.getRun(runId);
    assert.equal(state.lifeCycleState, 'PENDING');
    const gets = api.requests.filter((r) => r.call === 'GET /api/2.1/jobs/runs/get').slice(-3).map((r) => r.status);
    assert.deepEqual(gets, [429, 503, 200]);
  });

  it('503 on every attempt is a retryable error', async () => {
    api.failNext(3, 503, { only: '/runs/get' });
    await assert.rejects(jobs().getRun(1), expectRetryable((err) => assert.match(err.message, /^Databricks at 127\.0\.0\.1:\d+: GET \/api\/2\.1\/jobs\/runs\/get answered 503 TEMPORARILY_UNAVAILABLE/)));
  });

  it('classifies refusals: wrong token -> auth, bad parameters -> badInput, unknown run -> missingResource', async () => {
    const wrong = 'dapi-not-the-right-one';
    await assert.rejects(
      createDatabricksJobs({ ...config, token: wrong }, { retry: FAST_RETRY }).getRun(1),
      expectFailure(NonRetryable.auth, (err) => {
        assert.match(err.message, /^Databricks at 127\.0\.0\.1:\d+: GET \/api\/2\.1\/jobs\/runs\/get answered 401/);
        assert.ok(!err.message.includes(wrong));
      }),
    );
    await assert.rejects(
      jobs().submitRun({ runName: 'x', idempotencyToken: `x-${Date.now()}`, task: { kind: 'notebook', notebookPath: '' } }),
      expectFailure(NonRetryable.badInput, (err) => assert.match(err.message, /INVALID_PARAMETER_VALUE: notebook_task\.notebook_path is required/)),
    );
    await assert.rejects(jobs().getRun(987654321), expectFailure(NonRetryable.missingResource, (err) => assert.match(err.message, /Run 987654321 does not exist/)));
    await assert.rejects(jobs().submitRun({ runName: 'x', idempotencyToken: 'x'.repeat(65), task: notebook }), expectFailure(NonRetryable.badInput));
    await assert.rejects(
      createDatabricksJobs({ ...config, clusterId: undefined }).submitRun({ runName: 'x', idempotencyToken: 'y', task: notebook }),
      expectFailure(NonRetryable.config, (err) => assert.match(err.message, /DATABRICKS_CLUSTER_ID/)),
    );
  });

  it('connection refused is retryable', async () => {
    const port = await closedPort();
    await assert.rejects(
      createDatabricksJobs({ ...config, host: `http://127.0.0.1:${port}` }, { retry: FAST_RETRY }).getRun(1),
      expectRetryable((err) => assert.match(err.message, new RegExp(`^Databricks at 127\\.0\\.0\\.1:${port}: GET /api/2\\.1/jobs/runs/get failed: ECONNREFUSED`))),
    );
  });

  describe('runDatabricksJob activity (MockActivityEnvironment)', () => {
    const fullConfig = () =>
      loadConfig({ ...readEnv(), DATABRICKS_HOST: api.host, DATABRICKS_TOKEN: TOKEN, DATABRICKS_HTTP_PATH: '/sql/1.0/warehouses/abc123', DATABRICKS_CLUSTER_ID: '0101-000000-abcdefgh' });

    it('submits, heartbeats every poll with {runId, lifeCycleState}, and returns the result', async () => {
      const { runDatabricksJob } = databricksActivities(fullConfig(), { retry: FAST_RETRY });
      const env = new MockActivityEnvironment();
      const beats: unknown[] = [];
      env.on('heartbeat', (d: unknown) => beats.push(d));
      const token = `act-${Date.now()}`;
      const result: DatabricksRunResult = await env.run(runDatabricksJob, { runName: 'clean', idempotencyToken: token, task: notebook, pollMs: 2 });
      assert.equal(result.resultState, 'SUCCESS');
      assert.deepEqual(beats, [
        { runId: result.runId, lifeCycleState: 'SUBMITTED' },
        { runId: result.runId, lifeCycleState: 'PENDING' },
        { runId: result.runId, lifeCycleState: 'RUNNING' },
        { runId: result.runId, lifeCycleState: 'TERMINATED' },
      ]);
      // A retried attempt resumes from the heartbeat's run id: no new submission.
      const subs = api.submissions.length;
      const resumed: DatabricksRunResult = await new MockActivityEnvironment({ heartbeatDetails: { runId: result.runId } }).run(runDatabricksJob, {
        runName: 'clean',
        idempotencyToken: token,
        task: notebook,
        pollMs: 2,
      });
      assert.equal(resumed.runId, result.runId);
      assert.equal(api.submissions.length, subs);
    });

    it('cancelling the activity cancels the run', async () => {
      api.scriptNext([{ lifeCycleState: 'QUEUED' }, { lifeCycleState: 'RUNNING', polls: 10_000 }]);
      const { runDatabricksJob } = databricksActivities(fullConfig(), { retry: FAST_RETRY });
      const env = new MockActivityEnvironment();
      let runId = 0;
      env.on('heartbeat', (d: { runId: number; lifeCycleState: string }) => {
        runId = d.runId;
        if (d.lifeCycleState === 'RUNNING') env.cancel();
      });
      await assert.rejects(env.run(runDatabricksJob, { runName: 'long', idempotencyToken: `cancel-${Date.now()}`, task: notebook, pollMs: 2 }), (err: unknown) => {
        assert.ok(err instanceof CancelledFailure, `got ${String(err)}`);
        return true;
      });
      assert.ok(api.cancels.includes(runId));
      const run = api.runs.get(runId)!;
      assert.equal(run.cancelRequested, true);
      assert.deepEqual(run.answered.slice(-2), ['TERMINATING', 'TERMINATED']);
      const final = await jobs().getRun(runId);
      assert.equal(`${final.lifeCycleState}/${final.resultState}`, 'TERMINATED/CANCELED');
    });
  });
});
