/**
 * Delta Lake on the local Spark SQL runner (test/tools/spark-delta.ts): the statements the
 * Databricks warehouse relies on run for real on Delta tables - CREATE TABLE ... USING DELTA
 * PARTITIONED BY a date, MERGE INTO with update and insert, DELETE, INSERT OVERWRITE of one
 * date partition, INSERT INTO ... REPLACE WHERE, time travel - and the table holds exactly
 * what they should leave. One Spark start for the file; its last statement fails on purpose
 * (a MERGE whose source matches one target row twice), so the same run shows how Delta's
 * errors are reported.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runSparkSql, SparkSqlError, type SparkStatement } from '../tools/spark';
import { DELTA_IVY_DIR, DELTA_VERSION, deltaConf, ensureDelta, type DeltaRuntime } from '../tools/spark-delta';

type Row = Record<string, unknown>;

const STATEMENTS: SparkStatement[] = [
  { sql: 'CREATE TABLE pins (pin_id BIGINT, title STRING, followers BIGINT, dt DATE) USING DELTA PARTITIONED BY (dt)' },
  {
    sql: `INSERT INTO pins VALUES
      (1, 'one', 10, DATE'2024-03-01'), (2, 'two', 20, DATE'2024-03-01'), (3, 'three', 30, DATE'2024-03-01'),
      (4, 'four', 40, DATE'2024-03-02'), (5, 'five', 50, DATE'2024-03-02')`,
  },
  { sql: 'SELECT * FROM pins ORDER BY pin_id', collect: 'inserted' },
  {
    // Pin 2 changes; pins 6 and 7 are new.
    sql: `MERGE INTO pins AS t
      USING (SELECT * FROM VALUES (2L, 'two v2', 21L, DATE'2024-03-01'), (6L, 'six', 60L, DATE'2024-03-02'), (7L, 'seven', 70L, DATE'2024-03-03')
             AS s(pin_id, title, followers, dt)) AS s
      ON t.pin_id = s.pin_id
      WHEN MATCHED THEN UPDATE SET title = s.title, followers = s.followers, dt = s.dt
      WHEN NOT MATCHED THEN INSERT *`,
    collect: 'merge',
  },
  { sql: 'SELECT * FROM pins ORDER BY pin_id', collect: 'merged' },
  { sql: 'DELETE FROM pins WHERE followers < 15', collect: 'delete' },
  // A static partition overwrite: 2024-03-02 is replaced, the other dates stay.
  { sql: "INSERT OVERWRITE pins PARTITION (dt = DATE'2024-03-02') SELECT 8L AS pin_id, 'eight' AS title, 80L AS followers" },
  // replaceWhere in SQL: the rows matching the predicate are replaced by the query's.
  { sql: "INSERT INTO pins REPLACE WHERE dt = DATE'2024-03-03' SELECT 9L AS pin_id, 'nine' AS title, 90L AS followers, DATE'2024-03-03' AS dt" },
  { sql: 'SELECT * FROM pins ORDER BY pin_id', collect: 'final' },
  { sql: "SELECT dt, count(*) AS n FROM pins WHERE dt >= DATE'2024-03-02' GROUP BY dt ORDER BY dt", collect: 'by_date' },
  { sql: 'DESCRIBE DETAIL pins', collect: 'detail' },
  { sql: 'DESCRIBE HISTORY pins', collect: 'history' },
  // Version 2 is the table right after the MERGE (0 create, 1 insert, 2 merge).
  { sql: 'SELECT pin_id, title FROM pins VERSION AS OF 2 ORDER BY pin_id', collect: 'as_of_merge' },
  {
    name: 'ambiguous merge',
    sql: `MERGE INTO pins AS t
      USING (SELECT * FROM VALUES (9L, 'a'), (9L, 'b') AS s(pin_id, title)) AS s
      ON t.pin_id = s.pin_id
      WHEN MATCHED THEN UPDATE SET title = s.title`,
  },
];

describe('Delta Lake on local Spark: MERGE, DELETE, partition overwrite and replaceWhere', () => {
  let dir: string;
  let rt: DeltaRuntime;
  let failure: unknown;
  const read = (name: string): Row[] => JSON.parse(fs.readFileSync(path.join(dir, `${name}.json`), 'utf8')) as Row[];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-spark-delta-'));
    rt = await ensureDelta();
    try {
      await runSparkSql(STATEMENTS, { outDir: dir, conf: deltaConf(rt) });
    } catch (err) {
      failure = err;
    }
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('installs once: the jars are cached under .cache and a second ensureDelta returns them without resolving', async () => {
    assert.deepEqual(
      rt.jars.map((j) => path.basename(j)),
      [`io.delta_delta-spark_2.13-${DELTA_VERSION}.jar`, `io.delta_delta-storage-${DELTA_VERSION}.jar`],
    );
    for (const jar of rt.jars) assert.ok(jar.startsWith(`${DELTA_IVY_DIR}${path.sep}`) && fs.statSync(jar).size > 10_000, jar);
    const started = Date.now();
    const again = await ensureDelta(() => assert.fail('a cached install logs nothing'));
    assert.deepEqual(again, rt);
    assert.ok(Date.now() - started < 5_000, `cached ensureDelta took ${Date.now() - started} ms`);
  });

  it('creates and inserts into a Delta table partitioned by date', () => {
    assert.deepEqual(read('inserted'), [
      { pin_id: 1, title: 'one', followers: 10, dt: '2024-03-01' },
      { pin_id: 2, title: 'two', followers: 20, dt: '2024-03-01' },
      { pin_id: 3, title: 'three', followers: 30, dt: '2024-03-01' },
      { pin_id: 4, title: 'four', followers: 40, dt: '2024-03-02' },
      { pin_id: 5, title: 'five', followers: 50, dt: '2024-03-02' },
    ]);
    const [detail] = read('detail');
    assert.equal(detail!.format, 'delta');
    assert.deepEqual(detail!.partitionColumns, ['dt']);
  });

  it('MERGE INTO updates the matched rows and inserts the others, and reports its counts', () => {
    assert.deepEqual(read('merge'), [{ num_affected_rows: 3, num_updated_rows: 1, num_deleted_rows: 0, num_inserted_rows: 2 }]);
    assert.deepEqual(
      read('merged').map((r) => [r.pin_id, r.title, r.followers, r.dt]),
      [
        [1, 'one', 10, '2024-03-01'],
        [2, 'two v2', 21, '2024-03-01'],
        [3, 'three', 30, '2024-03-01'],
        [4, 'four', 40, '2024-03-02'],
        [5, 'five', 50, '2024-03-02'],
        [6, 'six', 60, '2024-03-02'],
        [7, 'seven', 70, '2024-03-03'],
      ],
    );
  });

  it('DELETE, a date partition overwrite and REPLACE WHERE leave exactly the expected rows', () => {
    assert.deepEqual(read('delete'), [{ num_affected_rows: 1 }]);
    assert.deepEqual(read('final'), [
      { pin_id: 2, title: 'two v2', followers: 21, dt: '2024-03-01' },
      { pin_id: 3, title: 'three', followers: 30, dt: '2024-03-01' },
      { pin_id: 8, title: 'eight', followers: 80, dt: '2024-03-02' },
      { pin_id: 9, title: 'nine', followers: 90, dt: '2024-03-03' },
    ]);
    assert.deepEqual(read('by_date'), [
      { dt: '2024-03-02', n: 1 },
      { dt: '2024-03-03', n: 1 },
    ]);
  });

  it('keeps the history: every operation is a version, and an old version reads as it was', () => {
    const ops = read('history')
      .map((h) => [h.version, h.operation] as const)
      .sort((a, b) => Number(a[0]) - Number(b[0]));
    assert.deepEqual(ops, [
      [0, 'CREATE TABLE'],
      [1, 'WRITE'],
      [2, 'MERGE'],
      [3, 'DELETE'],
      [4, 'WRITE'],
      [5, 'WRITE'],
    ]);
    assert.deepEqual(
      read('as_of_merge').map((r) => r.pin_id),
      [1, 2, 3, 4, 5, 6, 7],
    );
  });

  it("reports Delta's own error when a MERGE source matches one target row twice", () => {
    assert.ok(failure instanceof SparkSqlError, `expected a SparkSqlError, got ${String(failure)}`);
    assert.equal(failure.statementIndex, STATEMENTS.length - 1);
    assert.equal(failure.errorClass, 'DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE');
    assert.match(failure.message, /statement 13 \(0-based\) of 14 "ambiguous merge"/);
    assert.deepEqual(
      failure.result.timings.map((t) => t.name),
      STATEMENTS.slice(0, -1).map((s, i) => s.collect ?? `#${i}`),
    );
  });
});
