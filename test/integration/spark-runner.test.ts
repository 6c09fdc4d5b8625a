/**
 * The local Spark SQL runner (test/tools/spark.ts): a real PySpark in local mode reads NDJSON
 * files the way the cleaning SQL does, and writes exact JSON. One Spark start for the whole
 * file (about 15 s on 2 cores): the last statement fails on purpose, so the same run also
 * shows how a failure is reported.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PROJECT_ROOT } from '../../config';
import { ensureSpark, PYSPARK_VERSION, runSparkSql, SparkSqlError, type SparkStatement } from '../tools/spark';
import { uniqueName } from '../helpers/env';

const FILES: Record<string, string> = {
  // Kafka Connect S3 sink style names: <topic>+<partition>+<start offset>.json
  'pinflow.pin+0+0000000000.json':
    '{"id":"a1","ts":"2020-08-28 03:52:47","n":3,"tags":["x","y"],"title":"Café 😀"}\n' +
    '{"id":"a2","ts":"2020-08-28T03:52:47.500","n":"7","tags":[],"extra":{"k": 1}}\n',
  // no newline at the end of the last line
  'pinflow.pin+0+0000000002.json':
    '{"id":"b1","ts":"not a time","n":1.5,"tags":["z"],"title":null}\n' +
    '{"id":"b2","ts":"2021-02-03 04:05:06.123456","n":10}',
};

const BAD_SQL = 'SELECT CAST(id AS INT) AS id_number FROM events';

function statements(dataDir: string): SparkStatement[] {
  return [
    { sql: `CREATE OR REPLACE TEMPORARY VIEW t USING text OPTIONS (path '${dataDir}/*.json', wholetext 'true')` },
    {
      name: 'events view',
      sql: String.raw`
        CREATE OR REPLACE TEMPORARY VIEW events AS
        WITH lines AS (
          SELECT input_file_name() AS path, pos, line
          FROM t LATERAL VIEW posexplode(split(value, chr(10))) l AS pos, line
        ), parsed AS (
          SELECT path, pos, from_json(line, 'map<string,string>') AS m FROM lines WHERE trim(line) <> ''
        )
        SELECT
          regexp_extract(path, '([^/]+)$', 1) AS file,
          CAST(regexp_extract(path, '\\+(\\d+)\\.json$', 1) AS BIGINT) AS start_offset,
          pos AS line_no,
          m['id'] AS id,
          try_cast(m['ts'] AS TIMESTAMP_NTZ) AS ts,
          to_date(try_cast(m['ts'] AS TIMESTAMP_NTZ)) AS day,
          try_cast(m['n'] AS BIGINT) AS n,
          try_cast(m['n'] AS DECIMAL(10, 2)) AS amount,
          from_json(m['tags'], 'array<string>') AS tags,
          m['title'] AS title,
          m['extra'] AS extra
        FROM parsed`,
    },
    { sql: 'SELECT * FROM events ORDER BY file, line_no', collect: 'events' },
    {
      sql: `
        SELECT count(*) AS rows,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY n) AS median_n,
               sort_array(collect_list(id)) AS ids,
               max(ts) AS max_ts,
               sum(amount) AS total_amount,
               double('NaN') AS nan,
               double('-Infinity') AS neg_inf,
               CAST(12345678901 AS BIGINT) AS big
        FROM events`,
      collect: 'stats',
    },
    { sql: 'SELECT current_timezone() AS tz, CAST(TIMESTAMP_NTZ\'2020-01-01 00:00:00\' AS TIMESTAMP) AS ltz', collect: 'tz' },
    { sql: BAD_SQL, collect: 'never' },
  ];
}

describe('local Spark SQL runner', () => {
  const root = path.join(PROJECT_ROOT, '.cache', 'tmp', uniqueName('spark-runner-test'));
  const dataDir = path.join(root, 'data');
  const outDir = path.join(root, 'out');
  let error: unknown;
  let runMs = 0;

  before(async () => {
    await ensureSpark();
    fs.mkdirSync(dataDir, { recursive: true });
    for (const [name, text] of Object.entries(FILES)) fs.writeFileSync(path.join(dataDir, name), text);
    const started = Date.now();
    try {
      await runSparkSql(statements(dataDir), { outDir });
    } catch (err) {
      error = err;
    }
    runMs = Date.now() - started;
  });

  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('ensureSpark is a fast no-op once pyspark is installed', async () => {
    const started = Date.now();
    const got = await ensureSpark(() => assert.fail('a warm ensureSpark must not log (no pip call)'));
    assert.equal(got.version, PYSPARK_VERSION);
    assert.ok(fs.existsSync(got.python));
    assert.ok(Date.now() - started < 2_000, `warm ensureSpark took ${Date.now() - started} ms`);
  });

  it('reads NDJSON files through a text view and writes exact JSON rows', () => {
    const text = fs.readFileSync(path.join(outDir, 'events.json'), 'utf8');
    // Exact formats: TIMESTAMP_NTZ without zone, fraction only when non-zero; DECIMAL keeps its digits.
    assert.match(text, /"ts":"2020-08-28T03:52:47","day":"2020-08-28","n":3,"amount":3\.00,/);
    assert.match(text, /"ts":"2020-08-28T03:52:47\.5",/);
    assert.match(text, /"ts":"2021-02-03T04:05:06\.123456",/);
    const a1 = { file: 'pinflow.pin+0+0000000000.json', start_offset: 0 };
    const b = { file: 'pinflow.pin+0+0000000002.json', start_offset: 2 };
    assert.deepEqual(JSON.parse(text), [
      { ...a1, line_no: 0, id: 'a1', ts: '2020-08-28T03:52:47', day: '2020-08-28', n: 3, amount: 3, tags: ['x', 'y'], title: 'Café 😀', extra: null },
      // "n":"7" (a JSON string) casts like 7; a nested object comes back as compact JSON text
      { ...a1, line_no: 1, id: 'a2', ts: '2020-08-28T03:52:47.5', day: '2020-08-28', n: 7, amount: 7, tags: [], title: null, extra: '{"k":1}' },
      // try_cast: an unparsable timestamp and "1.5" AS BIGINT are NULL (ANSI), 1.5 AS DECIMAL is not
      { ...b, line_no: 0, id: 'b1', ts: null, day: null, n: null, amount: 1.5, tags: ['z'], title: null, extra: null },
      { ...b, line_no: 1, id: 'b2', ts: '2021-02-03T04:05:06.123456', day: '2021-02-03', n: 10, amount: 10, tags: null, title: null, extra: null },
    ]);
  });

  it('writes aggregates: percentile_cont as a double, DECIMAL sums, NaN and infinities as strings', () => {
    const text = fs.readFileSync(path.join(outDir, 'stats.json'), 'utf8');
    assert.equal(
      text,
      '[\n{"rows":4,"median_n":7.0,"ids":["a1","a2","b1","b2"],"max_ts":"2021-02-03T04:05:06.123456","total_amount":21.50,"nan":"NaN","neg_inf":"-Infinity","big":12345678901}\n]\n',
    );
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(outDir, 'tz.json'), 'utf8')), [{ tz: 'UTC', ltz: '2020-01-01T00:00:00' }]);
  });

  it('a failing statement is an Error naming its index and Spark\'s error class, with the timings so far', () => {
    assert.ok(error instanceof SparkSqlError, `expected a SparkSqlError, got ${String(error)}`);
    assert.equal(error.statementIndex, 5);
    assert.equal(error.errorClass, 'CAST_INVALID_INPUT'); // ANSI mode is Spark 4's default
    assert.match(error.message, /^Spark SQL statement 5 \(0-based\) of 6 "never" failed: \[CAST_INVALID_INPUT\] The value '[ab][12]' of the type "STRING" cannot be cast to "INT"/);
    assert.ok(error.message.includes(`SQL: ${BAD_SQL}`), error.message);
    assert.doesNotMatch(error.message, /Traceback|\tat org\.apache|py4j/);
    assert.ok(!fs.existsSync(path.join(outDir, 'never.json')));

    const result = error.result;
    assert.deepEqual(result.timings.map((t) => t.name), ['#0', 'events view', 'events', 'stats', 'tz']);
    assert.ok(result.timings.every((t) => t.ms > 0));
    assert.ok(result.startupMs > 1_000 && result.startupMs < result.totalMs, JSON.stringify(result));
    // python (~50 MB) + a JVM with a 4 GiB heap limit that has run a few queries
    assert.ok(result.peakRssBytes > 200e6 && result.peakRssBytes < 6e9, `peak RSS ${result.peakRssBytes}`);
    process.stderr.write(
      `spark-runner: run ${(runMs / 1000).toFixed(1)} s, Spark start-up ${(result.startupMs / 1000).toFixed(1)} s, ` +
        `statements ${result.timings.map((t) => `${t.name} ${t.ms.toFixed(0)} ms`).join(', ')}, peak RSS ${(result.peakRssBytes / 2 ** 20).toFixed(0)} MiB\n`,
    );
  });
});
