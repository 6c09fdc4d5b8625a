/**
 * batchCleaningWorkflow with WAREHOUSE=databricks, against the Thrift-over-HTTP stand-in of a
 * SQL warehouse (the real @databricks/sql driver on the wire): the statements it sends are the
 * Spark-dialect SQL proven on real Spark (spark-equality.test.ts) plus Databricks' file reading,
 * in dependency order through one session; counts come back from the warehouse; throttling is
 * ridden out without running a statement twice; a bad token fails fast without leaking it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import type { CleaningResult } from '../../common/cleaning';
import { prefixTableName } from '../../adapters/databricks/sql';
import { objectKey } from '../../common/landing';
import { cleaningStatements } from '../../sql/render';
import { startSqlWarehouse, type SqlWarehouse } from '../helpers/databricks-standin';
import { runWorkflow, stackTestContext, testConfig, uniqueName } from '../helpers/env';
import { recordHistories } from '../helpers/histories';

const TOKEN = 'dapi-cleaning-test-token-42';

describe('batch cleaning on Databricks (SQL warehouse stand-in)', () => {
  const ctx = stackTestContext();
  const base = ctx.config;
  let wh: SqlWarehouse;
  let caFile: string;

  before(async () => {
    wh = await startSqlWarehouse({
      token: TOKEN,
      pollsBeforeFinish: 1,
      handler: (sql) => {
        if (/^SELECT\s+count\(\*\) AS records_read/.test(sql)) {
          return { columns: [{ name: 'records_read', type: 'bigint' }, { name: 'not_an_object', type: 'bigint' }, { name: 'no_usable_key', type: 'bigint' }, { name: 'kept', type: 'bigint' }], rows: [[12, 1, 1, 9]] };
        }
        const m = /^SELECT count\(\*\) AS n FROM `main`\.`pinflow`\.`[a-z0-9_]+__([a-z_]+)`$/.exec(sql);
        if (m) return { columns: [{ name: 'n', type: 'bigint' }], rows: [[m[1]!.endsWith('_clean') ? 9 : 2]] };
        return undefined;
      },
    });
    caFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-dbx-')), 'ca.pem');
    fs.writeFileSync(caFile, wh.ca);
  });
  after(async () => wh?.close());

  const dbxConfig = (token = TOKEN) =>
    testConfig({ WAREHOUSE: 'databricks', DATABRICKS_HOST: wh.host, DATABRICKS_TOKEN: token, DATABRICKS_HTTP_PATH: wh.httpPath, DATABRICKS_CA_FILE: caFile });

  async function landSomething(prefix: string, topicsDir: string) {
    for (const t of ['pin', 'geo', 'user']) {
      const topic = `${prefix}.${t}`;
      await ctx.s3.send(new PutObjectCommand({ Bucket: base.s3.bucket, Key: objectKey(topicsDir, topic, 0, 0), Body: `{"${t === 'pin' ? 'index' : 'ind'}":1}\n` }));
    }
  }

  it('sends the Spark-proven statements through one session, publishes Parquet, reports the warehouse counts; 429s are ridden out', async () => {
    const prefix = uniqueName('dbx');
    // The prefix's tables in the configured catalog and schema (`<prefix>__<table>`).
    const table = (n: string) => `\`main\`.\`pinflow\`.\`${prefixTableName(prefix, n)}\``;
    const topicsDir = `${uniqueName('dbx-landed')}/topics`;
    await landSomething(prefix, topicsDir);
    wh.statements.length = 0;
    wh.failNext(2, 429, { retryAfter: 1, only: 'ExecuteStatement' });
    const input = { prefix, source: { kind: 's3' as const, topicsDir }, outputRoot: `${prefix}/` };
    const { handle, result } = await runWorkflow<CleaningResult>(ctx.env, dbxConfig(), 'batchCleaningWorkflow', [input]);
    assert.equal(wh.pendingFaults(), 0, 'the 429s were served');
    await recordHistories(ctx.env.client, handle.workflowId, handle.firstExecutionRunId, 'cleaning-databricks');

    const sent = wh.statements.map((s) => s.sql);
    assert.equal(new Set(wh.statements.slice(1).map((s) => s.sessionId)).size, 1, 'one session for the run');
    assert.equal(sent[0], 'CREATE SCHEMA IF NOT EXISTS `main`.`pinflow`');
    // Records: Databricks reads the landed objects straight from S3.
    const bucket = base.s3.bucket;
    for (const [i, t] of ['pin', 'geo', 'user'].entries()) {
      assert.match(sent[1 + i]!, new RegExp(`^CREATE OR REPLACE TEMPORARY VIEW ${t}_records AS `));
      assert.ok(sent[1 + i]!.includes(`read_files('s3://${bucket}/${topicsDir}/${prefix}.${t}/partition=*/*.json', format => 'text', wholeText => true)`), sent[1 + i]);
    }
    // Every other statement is exactly the Spark rendering, materialised as a Delta table and Parquet.
    const spark = cleaningStatements('spark', { pin: 'x', geo: 'x', user: 'x' }).filter((s) => s.kind !== 'records');
    const dbx = cleaningStatements('databricks', { pin: 'x', geo: 'x', user: 'x' }).filter((s) => s.kind !== 'records');
    assert.deepEqual(dbx, spark, 'the Databricks dialect renders the proven SQL unchanged');
    for (const s of spark) {
      if (s.kind === 'view') {
        assert.ok(sent.includes(`CREATE OR REPLACE TEMPORARY VIEW ${s.name} AS ${s.sql}`), s.name);
        continue;
      }
      const create = sent.indexOf(`CREATE OR REPLACE TABLE ${table(s.name)} AS ${s.sql}`);
      assert.ok(create > 0, `${s.name} created`);
      const kind = s.kind === 'cleaned' ? 'cleaned' : 'analytics';
      assert.equal(sent[create + 1], `INSERT OVERWRITE DIRECTORY 's3://${bucket}/${prefix}/${kind}/${s.name}/' USING PARQUET SELECT * FROM ${table(s.name)}`);
    }
    assert.ok(sent.indexOf(`CREATE OR REPLACE TABLE ${table('pin_clean')} AS ` + spark.find((s) => s.name === 'pin_clean')!.sql) < sent.findIndex((x) => x.startsWith('CREATE OR REPLACE TEMPORARY VIEW joined')));
    assert.equal(sent.length, new Set(sent.filter((x) => !x.startsWith('SELECT count(*)'))).size + sent.filter((x) => x.startsWith('SELECT count(*)')).length, 'no statement ran twice');

    assert.equal(result.warehouse, 'databricks');
    assert.deepEqual(result.tables.pin_clean, { read: 12, rows: 9, duplicates: 1, leftOut: { not_a_json_object: 1, no_usable_key: 1 }, location: `s3://${bucket}/${prefix}/cleaned/pin_clean/` });
    assert.equal(result.analytics.top_country_by_followers.rows, 2);
    assert.ok(!JSON.stringify(result).includes(TOKEN));
  });

  it('a wrong token fails the run at once, naming Databricks and the host, never the token', async () => {
    const prefix = uniqueName('dbx-auth');
    const topicsDir = `${uniqueName('dbx-landed')}/topics`;
    await landSomething(prefix, topicsDir);
    const wrong = 'dapi-wrong-token-777';
    const started = Date.now();
    await assert.rejects(runWorkflow(ctx.env, dbxConfig(wrong), 'batchCleaningWorkflow', [{ prefix, source: { kind: 's3', topicsDir }, outputRoot: `${prefix}/` }]), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      const inner = (err.cause?.cause ?? err.cause) as Error & { type?: string };
      assert.match(inner.message, new RegExp(`Databricks at ${wh.host.replace(/\./g, '\\.')}`));
      assert.equal(inner.type, 'PinflowAuthError');
      assert.ok(!inner.message.includes(wrong), 'token not in the message');
      return true;
    });
    assert.ok(Date.now() - started < 30_000, 'not retried for long');
  });
});
