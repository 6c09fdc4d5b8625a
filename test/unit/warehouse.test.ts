/**
 * The Warehouse port (adapters/warehouse.ts) without a stack: the factory's choice, and the
 * Databricks implementation's stream writers against the SQL-warehouse stand-in
 * (test/helpers/databricks-standin.ts). The batches here hold only dead letters, so nothing is
 * staged in S3.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { toStreamRecord } from '../../activities/streaming';
import { prefixTableName } from '../../adapters/databricks/sql';
import { s3Adapter } from '../../adapters/s3';
import { createWarehouse, type StreamRecord, type Warehouse } from '../../adapters/warehouse';
import { loadConfig, readEnv, type Config } from '../../config';
import { startSqlWarehouse, type SqlWarehouse } from '../helpers/databricks-standin';

const TOKEN = 'dapi-test-warehouse-0123456789';
const PREFIX = 'wh-unit';
/** The prefix's stream tables in the configured catalog and schema (`<prefix>__<table>`). */
const table = (name: string) => `\`main\`.\`pinflow\`.\`${prefixTableName(PREFIX, name)}\``;
const rec = (seq: string): StreamRecord => toStreamRecord({ SequenceNumber: seq, PartitionKey: 'k', Data: Buffer.from('not json') });

describe('Warehouse port', () => {
  let wh: SqlWarehouse;
  let dir: string;
  let config: Config;
  let failDeadLetters = false;

  before(async () => {
    wh = await startSqlWarehouse({
      token: TOKEN,
      handler: (sql) =>
        failDeadLetters && sql.startsWith(`MERGE INTO ${table('pin_stream_dead_letter')} `)
          ? { error: { message: '[DELTA_CONCURRENT_APPEND] Files were added by a concurrent update. SQLSTATE: 2D521', sqlState: '2D521', at: 'status' } }
          : undefined,
    });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-warehouse-'));
    fs.writeFileSync(path.join(dir, 'ca.pem'), wh.ca);
    config = loadConfig({
      ...readEnv(),
      WAREHOUSE: 'databricks',
      DATABRICKS_HOST: wh.host,
      DATABRICKS_TOKEN: TOKEN,
      DATABRICKS_HTTP_PATH: wh.httpPath,
      DATABRICKS_CA_FILE: path.join(dir, 'ca.pem'),
      DUCKDB_PATH: path.join(dir, 'w.duckdb'),
    });
  });
  after(async () => {
    await wh?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('createWarehouse picks the implementation WAREHOUSE names', async () => {
    const s3 = s3Adapter(config);
    const picked: string[] = [];
    for (const kind of ['duckdb', 'databricks']) {
      const w = createWarehouse({ ...config, warehouse: { ...config.warehouse, kind: kind as Config['warehouse']['kind'] } }, { s3 });
      picked.push(w.kind);
      await w.close();
    }
    assert.deepEqual(picked, ['duckdb', 'databricks']);
    await s3.close();
  });

  it('Databricks: one writer session per stream across calls, a fresh one after a failed write, all closed by close()', async () => {
    const s3 = s3Adapter(config);
    const warehouse: Warehouse = createWarehouse(config, { s3 });
    const target = { prefix: PREFIX, topic: 'pin' as const, streamCreatedAt: null };
    const statementsFrom = (i: number) => wh.statements.slice(i).map((s) => s.sql.split('\n')[0]!.split(' AS ')[0]!);
    try {
      const start = wh.statements.length;
      const first = await warehouse.openStreamWriter(target);
      assert.deepEqual(await first.write('shardId-000000000000', [rec('1')]), { records: 1, rows: 0, deadLetters: 1, noKey: 0, replayed: 0, checkpoint: '1' });
      await first.close();
      const second = await warehouse.openStreamWriter(target);
      await second.write('shardId-000000000000', [rec('2')]);
      assert.deepEqual(statementsFrom(start), [
        'CREATE SCHEMA IF NOT EXISTS `main`.`pinflow`',
        'CREATE OR REPLACE TEMPORARY VIEW pin_records',
        `CREATE TABLE IF NOT EXISTS ${table('pin_clean_stream')} USING DELTA`,
        `CREATE TABLE IF NOT EXISTS ${table('pin_stream_dead_letter')} (_shard STRING, _sequence_number STRING, _partition_key STRING, reason STRING, data_base64 STRING, _approximate_arrival TIMESTAMP_NTZ, _arrival TIMESTAMP_NTZ) USING DELTA`,
        `MERGE INTO ${table('pin_stream_dead_letter')}`,
        'CREATE OR REPLACE TEMPORARY VIEW pin_records',
        `MERGE INTO ${table('pin_stream_dead_letter')}`,
      ]);
      const writerSession = wh.statements[start + 1]!.sessionId;
      assert.ok(wh.statements.slice(start + 1).every((s) => s.sessionId === writerSession), 'both calls write through one session');
      assert.notEqual(wh.statements[start]!.sessionId, writerSession, 'the schema is created from a session of its own');

      failDeadLetters = true;
      const failing = await warehouse.openStreamWriter(target);
      await assert.rejects(failing.write('shardId-000000000000', [rec('3')]), (err: Error) => {
        assert.ok(!(err instanceof ApplicationFailure), 'a commit conflict is retryable');
        assert.match(err.message, /^Databricks at 127\.0\.0\.1:\d+: statement 1 of 1 \(MERGE INTO .*\) failed \(SQLSTATE 2D521\): \[DELTA_CONCURRENT_APPEND\]/);
        return true;
      });
      assert.equal(wh.sessions.find((s) => s.id === writerSession)?.closed, true, 'the failed writer closed its session');

      failDeadLetters = false;
      const afterFailure = wh.statements.length;
      const fresh = await warehouse.openStreamWriter(target);
      await fresh.write('shardId-000000000000', [rec('3')]);
      const again = statementsFrom(afterFailure);
      assert.equal(again[0], 'CREATE SCHEMA IF NOT EXISTS `main`.`pinflow`', 'a new writer is opened');
      assert.equal(again.length, 5, 'and creates its tables (if missing) before its first batch');
      const freshSession = wh.statements[afterFailure + 1]!.sessionId;
      assert.notEqual(freshSession, writerSession);
      assert.equal(wh.sessions.find((s) => s.id === freshSession)?.closed, false, 'kept open between calls');
    } finally {
      await warehouse.close();
      await s3.close();
    }
    assert.ok(wh.sessions.every((s) => s.closed), 'close() ends every session');
  });
});
