/**
 * The near-real-time path: the real sample emulated to Kinesis, streamed into the DuckDB stream
 * tables by the streaming workflows (managed with `npm run stream`), compared with the batch
 * path's cleaning of the very same records; the Databricks statements on the SQL-warehouse
 * stand-in. The pure rules: test/unit/streaming.test.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { runDuckdbCleaning } from '../../adapters/duckdb/cleaning';
import { createKinesisClient, type ReadRecord } from '../../adapters/kinesis';
import { listKeys, s3Adapter } from '../../adapters/s3';
import { prefixTableName } from '../../adapters/databricks/sql';
import { databricksBatchStatements, openDatabricksWriter } from '../../adapters/databricks/stream-writer';
import type { StreamRecord } from '../../adapters/warehouse';
import { toStreamRecord } from '../../activities/streaming';
import { CLEANED_TABLES } from '../../common/analytics';
import { STREAM_TOPICS, streamName, streamTable } from '../../common/streaming';
import { cleanedSql, recordsSql } from '../../sql/render';
import { SOURCE_TABLES } from '../../common/source-tables';
import { createWorker } from '../../workers/worker';
import { testDatabase } from '../helpers/data';
import { startSqlWarehouse, type SqlWarehouse } from '../helpers/databricks-standin';
import { ensureStack, quietRuntime, testConfig, uniqueName, workflowTestEnv } from '../helpers/env';
import { writeLanded } from '../helpers/landed-fixture';
import { assertStreamExactlyOnce, deleteStreams, duckRows, removeStreamingDirs, runScriptAsync, streamingConfig, waitForStatus } from '../helpers/streaming';

describe('streaming: the real sample through Kinesis', () => {
  let env: TestWorkflowEnvironment;
  const streams: string[] = [];
  const kinesis = createKinesisClient(testConfig());

  before(async () => {
    quietRuntime();
    await ensureStack();
    env = await workflowTestEnv();
  });
  after(async () => {
    await deleteStreams(kinesis, streams);
    kinesis.destroy();
    await env?.teardown();
    removeStreamingDirs();
  });

  it('emulate --all --sink kinesis + stream start|status|stop: 2,019 rows per stream table, each record once, equal to the batch path', async () => {
    const { url } = await testDatabase({ sample: true });
    const s = streamingConfig('stream-sample', { MYSQL_URL: url });
    streams.push(...STREAM_TOPICS.map((t) => streamName(s.prefix, t)));
    const w = await createWorker(s.config, { connection: env.nativeConnection, taskQueue: s.vars.TEMPORAL_TASK_QUEUE! });
    const records = {} as Record<string, ReadRecord[]>;
    try {
      await w.worker.runUntil(async () => {
        const log = (m: string) => process.env.DEBUG_STREAM_TEST && process.stderr.write(`[${new Date().toISOString()}] ${m}\n`);
        log('stream start');
        const start = await runScriptAsync('stream', ['start', '--topic', 'all', '--span-ms', '2000'], s.vars);
        assert.equal(start.code, 0, start.stderr);
        for (const t of STREAM_TOPICS) assert.match(start.stdout, new RegExp(`started streaming-${s.prefix}-${t}\\n  http://127\\.0\\.0\\.1:8233/namespaces/default/workflows/streaming-${s.prefix}-${t}/`));

        log(`started: ${start.stdout}`);
        const emu = await runScriptAsync('emulate', ['--all', '--sink', 'kinesis', '--wait'], s.vars);
        assert.equal(emu.code, 0, emu.stderr);
        assert.match(emu.stdout, /done: 2019 posts sent \(6057 records\), 0 skipped/);

        log(`emulated: ${emu.stdout} ${emu.stderr}`);
        for (const t of STREAM_TOPICS) {
          await waitForStatus(env.client.workflow.getHandle(streamName(s.prefix, t)), (st) => st.totals.rows >= 2019, `${t}: 2,019 rows`);
        }
        const again = await runScriptAsync('stream', ['start', '--topic', 'pin'], s.vars);
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, new RegExp(`streaming-${s.prefix}-pin is already running \\(not started again\\)`));

        const status = await runScriptAsync('stream', ['status'], s.vars);
        assert.equal(status.code, 0, status.stderr);
        for (const t of STREAM_TOPICS) {
          assert.match(status.stdout, new RegExp(`streaming-${s.prefix}-${t} -> duckdb ${s.prefix}\\.${t}_clean_stream \\(running\\): 2,019 rows from 2,019 records, 0 dead letters`));
        }
        assert.match(status.stdout, /^ {2}shardId-000000000000: lag \d[\d,]* ms, checkpoint \d+, \d+ records/m);
        assert.match(status.stdout, /^ {2}shardId-000000000001: lag /m);

        const stop = await runScriptAsync('stream', ['stop', '--topic', 'all'], s.vars);
        assert.equal(stop.code, 0, stop.stderr);
        assert.match(stop.stdout, new RegExp(`streaming-${s.prefix}-user -> duckdb .*\\(stopped\\): 2,019 rows`));
        const after = await runScriptAsync('stream', ['status', '--topic', 'geo'], s.vars);
        assert.match(after.stdout, /: not running/);
      });
    } finally {
      await w.close();
    }

    // Each table holds each of its stream's records once, and only its own stream's.
    for (const t of STREAM_TOPICS) {
      const key = SOURCE_TABLES.find((x) => x.topic === t)!.key;
      const { records: recs } = await assertStreamExactlyOnce(kinesis, streamName(s.prefix, t), s.config.warehouse.duckdbPath, s.prefix, t, { keyOf: (d) => (d as Record<string, unknown>)[key] });
      assert.equal(recs.length, 2019, `${t}: 2,019 records in the stream`);
      records[t] = recs;
      const [n] = await duckRows(s.config.warehouse.duckdbPath, s.prefix, `SELECT count(*) AS n, count(DISTINCT ind) AS keys FROM ${streamTable(t)}`);
      assert.deepEqual(n, { n: '2019', keys: '2019' }, `${t}: 2,019 rows, one per key`);
    }

    // The batch path over the very same records, written as landed objects.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-stream-batch-'));
    try {
      const sources = writeLanded(dir, s.prefix, Object.fromEntries(STREAM_TOPICS.map((t) => [t, records[t]!.map((r) => r.data.toString('utf8'))])));
      const batchDb = path.join(dir, 'batch.duckdb');
      await runDuckdbCleaning({ dbPath: batchDb, schema: 'batch', sources, exportDir: path.join(dir, 'export') });
      for (const t of CLEANED_TABLES) {
        const topic = t.name.replace('_clean', '') as (typeof STREAM_TOPICS)[number];
        const cols = t.columns.map((c) => `"${c}"`).join(', ');
        const streamed = await duckRows(s.config.warehouse.duckdbPath, s.prefix, `SELECT ${cols} FROM ${streamTable(topic)} ORDER BY ind`);
        const batch = await duckRows(batchDb, 'batch', `SELECT ${cols} FROM ${t.name} ORDER BY ind`);
        assert.equal(batch.length, 2019);
        assert.deepEqual(streamed, batch, `${t.name}: the stream table equals the batch path's cleaned rows`);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('streaming: Databricks statements (SQL warehouse stand-in)', () => {
  const TOKEN = 'dapi-streaming-test-token';
  let wh: SqlWarehouse;
  let caFile: string;

  before(async () => {
    await ensureStack();
    wh = await startSqlWarehouse({
      token: TOKEN,
      handler: (sql) =>
        /^MERGE INTO `main`\.`pinflow`\.`[a-z0-9_]+__pin_clean_stream`/.test(sql)
          ? { columns: [{ name: 'num_affected_rows', type: 'bigint' }, { name: 'num_updated_rows', type: 'bigint' }, { name: 'num_deleted_rows', type: 'bigint' }, { name: 'num_inserted_rows', type: 'bigint' }], rows: [[3, 0, 0, 3]] }
          : undefined,
    });
    caFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-stream-dbx-')), 'ca.pem');
    fs.writeFileSync(caFile, wh.ca);
  });
  after(async () => {
    await wh?.close();
    if (caFile) fs.rmSync(path.dirname(caFile), { recursive: true, force: true });
  });

  it('stages the batch in S3, cleans it with the Spark-dialect stream SQL and MERGEs on (_shard, _sequence_number); a replay sends the same MERGE', async () => {
    const config = testConfig({ WAREHOUSE: 'databricks', DATABRICKS_HOST: wh.host, DATABRICKS_TOKEN: TOKEN, DATABRICKS_HTTP_PATH: wh.httpPath, DATABRICKS_CA_FILE: caFile });
    const s3 = s3Adapter(config);
    const prefix = uniqueName('stream-dbx');
    // The prefix's tables in the configured catalog and schema (`<prefix>__<table>`).
    const table = (n: string) => `\`main\`.\`pinflow\`.\`${prefixTableName(prefix, n)}\``;
    const at = new Date('2026-01-02T03:04:05.678Z');
    const rec = (seq: string, data: string): StreamRecord => toStreamRecord({ SequenceNumber: seq, PartitionKey: seq.slice(-2), Data: Buffer.from(data), ApproximateArrivalTimestamp: at });
    const batch = [
      rec('49600000000000000000000000000000000000000000000000000001', JSON.stringify({ index: 1, title: 'A', follower_count: '1.5k' })),
      rec('49600000000000000000000000000000000000000000000000000002', 'not json'),
      rec('49600000000000000000000000000000000000000000000000000003', JSON.stringify([{ index: 2 }, { index: 3 }])),
    ];
    const writer = await openDatabricksWriter({ databricks: config.warehouse.databricks, s3, topic: 'pin', prefix });
    try {
      wh.statements.length = 0;
      const first = await writer.write('shardId-000000000000', batch);
      assert.deepEqual(first, { records: 3, rows: 3, deadLetters: 1, noKey: 0, replayed: 0, checkpoint: batch[2]!.sequenceNumber });
      const sent = wh.statements.map((x) => x.sql);
      const folder = `s3://${config.s3.bucket}/streaming-staging/streaming-${prefix}-pin/shardId-000000000000/${batch[0]!.sequenceNumber}-${batch[2]!.sequenceNumber}`;
      const expected = databricksBatchStatements({
        table,
        topic: 'pin',
        shardId: 'shardId-000000000000',
        location: folder,
        lineRecords: [batch[0]!, batch[2]!],
        dead: [{ record: batch[1]!, reason: 'not JSON: ' }],
      });
      assert.equal(sent[0], `CREATE OR REPLACE TEMPORARY VIEW pin_records AS ${recordsSql('databricks', SOURCE_TABLES[0]!, folder)}`, 'the batch path reader, over the staged batch');
      assert.equal(sent[1], expected.setup[1]);
      assert.ok(sent[1]!.startsWith(`CREATE TABLE IF NOT EXISTS ${table('pin_clean_stream')} USING DELTA AS SELECT c.\`ind\`, `), sent[1]);
      assert.match(sent[1]!, /c\.`category`, CAST\(NULL AS STRING\) AS _shard/s);
      assert.ok(sent[2]!.startsWith(`CREATE TABLE IF NOT EXISTS ${table('pin_stream_dead_letter')} (`), sent[2]);
      assert.equal(sent[3], expected.merge, 'one MERGE for the rows');
      assert.ok(sent[3]!.includes(cleanedSql('databricks', 'pin_clean', { stream: true })), 'the rows are cleaned by the batch SQL in stream mode');
      assert.match(sent[3]!, /ON t\._shard = s\._shard AND t\._sequence_number = s\._sequence_number\nWHEN NOT MATCHED THEN INSERT \*$/);
      assert.match(sent[3]!, /VALUES \(0, '4960+1', TIMESTAMP_NTZ '2026-01-02 03:04:05\.678'\), \(1, '4960+3', TIMESTAMP_NTZ '2026-01-02 03:04:05\.678'\)\) AS m/);
      assert.ok(sent[4]!.startsWith(`MERGE INTO ${table('pin_stream_dead_letter')} AS t\n`), sent[4]);
      assert.match(sent[4]!, /^MERGE INTO \S+ AS t\nUSING \(SELECT \* FROM \(VALUES \('shardId-000000000000', '4960+2', '02', 'not JSON: .*?', 'bm90IGpzb24=',/);
      assert.equal(sent.length, 5);
      assert.deepEqual(await listKeys(s3.client(), config.s3.bucket, `streaming-staging/streaming-${prefix}-pin/`), [], 'the staged object is removed after the MERGE');

      // A replay (a retried span) stages the same object and sends the same idempotent MERGE; the tables exist by then.
      wh.statements.length = 0;
      await writer.write('shardId-000000000000', batch);
      assert.deepEqual(
        wh.statements.map((x) => x.sql.split('\n')[0]!.slice(0, 60)),
        [sent[0]!.slice(0, 60), sent[3]!.split('\n')[0]!.slice(0, 60), sent[4]!.split('\n')[0]!.slice(0, 60)],
      );
      assert.equal(wh.statements[1]!.sql, sent[3]);
    } finally {
      await writer.close();
      await s3.close();
    }
  });
});
