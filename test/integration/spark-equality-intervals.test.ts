/**
 * The incremental (data-interval) cleaning of sql/incremental.ts on real Spark with Delta
 * Lake (test/tools/spark-delta.ts) gives exactly what the DuckDB path gives, date by date:
 * the same ledger of merged objects before every run, the same interval counts, the same
 * cleaned state as of each date's end, the same current tables, the same nine outputs of each
 * date, and in the end the same `<output>_by_date` tables. The Delta statements (CREATE TABLE
 * ... USING DELTA, MERGE INTO, INSERT OVERWRITE of a date partition) are the ones a Databricks
 * warehouse runs; only the reading of the landed objects differs (local text views here,
 * `read_files` there).
 *
 * Data: the real sample's rows spread over three dates and two partitions per topic, with
 * keys updated on later dates (and once twice within one object), and records left out on
 * the second date, one of them in a legacy array line next to an object that must be kept.
 * Runs: D1; D3 before D2 (out of order: D2's objects are merged as D3's catch-up); D2 (a
 * backfill, which must see only what lay below its own end); D1 again (a rerun, after later
 * dates). The Parquet exports (INSERT OVERWRITE DIRECTORY) are compared too, and the
 * session's current schema is the tables' (the as-of views must shadow them). The DuckDB side is the real adapter (readLedger, pickBatch,
 * runDuckdbIncremental); Spark runs every date in one session, on the batch DuckDB's ledger
 * chose, and the test checks that Spark's own ledger would have chosen the same. As a check
 * of the semantics, each date's cleaned state also equals the full cleaning of the objects
 * that lay below that date's end.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parquetToJson, runDuckdbCleaning } from '../../adapters/duckdb/cleaning';
import { literal, quoteId, withConnection } from '../../adapters/duckdb/connection';
import { localLandedObjects, readLedger, runDuckdbIncremental } from '../../adapters/duckdb/incremental';
import { ANALYTICS_NAMES, CLEANED_NAMES } from '../../common/cleaning';
import type { IntervalManifest } from '../../common/interval';
import { objectKey, parseObjectKey } from '../../common/landing';
import { SOURCE_TABLES } from '../../common/source-tables';
import {
  checkCollected,
  incrementalSparkPreamble,
  incrementalStatements,
  intervalOutcome,
  ledgerStatements,
  pickBatch,
  type BatchSources,
  type IncrementalStatement,
  type LedgerRow,
  type Topic,
} from '../../sql/incremental';
import { runSparkSql, type SparkRunResult, type SparkStatement } from '../tools/spark';
import { deltaConf, ensureDelta } from '../tools/spark-delta';
import { sampleMessages } from '../helpers/landed-fixture';

type Row = Record<string, unknown>;
type Msg = Record<string, unknown>;

const PREFIX = 'ivl';
const SCHEMA = 'ivl';
const DATES = ['2024-05-01', '2024-05-02', '2024-05-03'] as const;
/** The order the dates are run in: in order, out of order, a backfill, a rerun. */
const RUNS = ['2024-05-01', '2024-05-03', '2024-05-02', '2024-05-01'] as const;
const PARTITIONS = [0, 1];
/** Lines per landed object: several objects per partition and date. */
const FLUSH = 150;

// ---------------------------------------------------------------------------------------
// The landed data: per topic, partition and date, the lines of that interval.

/** Sample row `i` with some fields taken from other rows: a later version of the same key. */
function updated(topic: Topic, rows: Msg[], i: number, round: number): Msg {
  const other = (k: number) => rows[(i + k * round) % rows.length]!;
  const m = { ...rows[i]! };
  if (topic === 'pin') Object.assign(m, { category: other(11).category, follower_count: other(5).follower_count });
  if (topic === 'geo') Object.assign(m, { country: other(37).country, timestamp: other(3).timestamp });
  if (topic === 'user') Object.assign(m, { age: other(3).age, first_name: other(7).first_name });
  return m;
}

/** Lines of one date: new keys, updated keys, and on the second date records left out. */
function dateLines(topic: Topic, rows: Msg[], date: number): Array<{ row: number; line: string }> {
  const json = (row: number, m: Msg) => ({ row, line: JSON.stringify(m) });
  const out: Array<{ row: number; line: string }> = [];
  if (date === 0) for (let i = 0; i < 900; i++) out.push(json(i, rows[i]!));
  if (date === 1) {
    for (let i = 900; i < 1500; i++) out.push(json(i, rows[i]!));
    for (let i = 0; i < 900; i += 5) out.push(json(i, updated(topic, rows, i, 1)));
    // Key of row 10 twice more in a row (one object): the later line wins.
    out.push(json(10, updated(topic, rows, 10, 2)), json(10, updated(topic, rows, 10, 3)));
    // Left out: not a JSON object, an array of non-objects, no usable key.
    const key = SOURCE_TABLES.find((t) => t.topic === topic)!.key;
    out.push({ row: 0, line: 'not json at all' }, { row: 0, line: '[1, 2]' }, json(0, { ...rows[0]!, [key]: 'abc' }));
    // A legacy array line mixing an object (a new version of row 20's key) and a non-object.
    out.push({ row: 20, line: `[${JSON.stringify(updated(topic, rows, 20, 5))}, 2]` });
  }
  if (date === 2) {
    for (let i = 1500; i < rows.length; i++) out.push(json(i, rows[i]!));
    for (let i = 0; i < 1500; i += 7) out.push(json(i, updated(topic, rows, i, 4)));
  }
  return out;
}

interface Fixture {
  folders: Record<Topic, string>;
  manifests: Record<string, IntervalManifest>;
}

function writeFixture(root: string, messages: Record<Topic, Msg[]>): Fixture {
  const folders = {} as Record<Topic, string>;
  const ranges: Record<string, IntervalManifest['ranges']> = Object.fromEntries(DATES.map((d) => [d, []]));
  for (const t of SOURCE_TABLES) {
    const topic = `${PREFIX}.${t.topic}`;
    folders[t.topic] = path.join(root, 'topics', topic);
    const next = PARTITIONS.map(() => 0);
    DATES.forEach((date, d) => {
      const lines = dateLines(t.topic, messages[t.topic], d);
      for (const p of PARTITIONS) {
        // A key always lands in the same partition (row parity), as Kafka's keyed producer does.
        const mine = lines.filter((l) => l.row % PARTITIONS.length === p).map((l) => l.line);
        const start = next[p]!;
        for (let i = 0; i < mine.length; i += FLUSH) {
          const file = path.join(root, objectKey('topics', topic, p, start + i));
          fs.mkdirSync(path.dirname(file), { recursive: true });
          fs.writeFileSync(file, `${mine.slice(i, i + FLUSH).join('\n')}\n`);
        }
        next[p] = start + mine.length;
        ranges[date]!.push({ topic, partition: p, start, end: next[p]! });
      }
    });
  }
  const manifests = Object.fromEntries(
    DATES.map((date) => {
      const day = Date.parse(`${date}T00:00:00Z`);
      const m: IntervalManifest = {
        version: 1,
        prefix: PREFIX,
        date,
        startsAt: new Date(day).toISOString(),
        endsAt: new Date(day + 86_400_000).toISOString(),
        partial: false,
        resolvedAt: new Date(day + 90_000_000).toISOString(),
        ranges: ranges[date]!,
      };
      return [date, m];
    }),
  );
  return { folders, manifests };
}

// ---------------------------------------------------------------------------------------

const ledgerKey = (r: LedgerRow) => `${r.topic}/${Number(r.part)}/${Number(r.start_offset)}`;
const plainLedger = (rows: Row[]) => rows.map((r) => ({ ...r, part: Number(r.part), start_offset: Number(r.start_offset) })).sort((a, b) => ledgerKey(a as LedgerRow).localeCompare(ledgerKey(b as LedgerRow)));
const sortedRows = (rows: Row[]) => rows.map((r) => JSON.stringify(r)).sort();
const sparkTable = (name: string) => `spark_catalog.${SCHEMA}.\`${name}\``;
const duckTable = (name: string) => `${quoteId(SCHEMA)}.${quoteId(name)}`;

interface DuckRun {
  date: string;
  ledger: Row[];
  batch: BatchSources;
  outcome: ReturnType<typeof intervalOutcome>;
  outputs: Record<string, Row[]>;
  current: Record<string, Row[]>;
  asOf: Record<string, Row[]>;
}

async function readJson(files: string[], out: string, orderBy?: string): Promise<Row[]> {
  await parquetToJson(files, out, orderBy);
  return JSON.parse(fs.readFileSync(out, 'utf8')) as Row[];
}

/** One interval run on DuckDB through the adapter; then its as-of state, read back. */
async function duckRun(dir: string, dbPath: string, fx: Fixture, date: string, k: number): Promise<DuckRun> {
  const interval = fx.manifests[date]!;
  const ledger = (await readLedger(dbPath, SCHEMA)).map((r) => ({ ...r }));
  const picked = pickBatch(interval, localLandedObjects(fx.folders), ledger);
  const batch = Object.fromEntries(SOURCE_TABLES.map((t) => [t.topic, picked[t.topic].length ? { folder: fx.folders[t.topic], objects: picked[t.topic] } : null])) as BatchSources;
  const work = path.join(dir, 'duck', String(k));
  const run = await runDuckdbIncremental({ dbPath, schema: SCHEMA, interval, batch, exportDir: path.join(work, 'export') });
  const outputs: Record<string, Row[]> = {};
  for (const n of ANALYTICS_NAMES) outputs[n] = await readJson([run.parquet[n]!], path.join(work, `${n}.json`));
  const current: Record<string, Row[]> = {};
  for (const n of CLEANED_NAMES) current[n] = await readJson([run.parquet[n]!], path.join(work, `current.${n}.json`), 'ind');
  // The cleaned state as of the date: the plan's own as-of statements, on the versions the run left.
  const statements = incrementalStatements('duckdb', { interval, batch, table: (n) => duckTable(n) });
  await withConnection(dbPath, async (c) => {
    for (const s of statements.filter((x) => x.name === 'interval bounds' || x.name.startsWith('as of '))) await c.run(s.sql);
    for (const n of CLEANED_NAMES) await c.run(`COPY (SELECT * FROM ${n}) TO ${literal(path.join(work, `asof.${n}.parquet`))} (FORMAT parquet)`);
  });
  const asOf: Record<string, Row[]> = {};
  for (const n of CLEANED_NAMES) asOf[n] = await readJson([path.join(work, `asof.${n}.parquet`)], path.join(work, `asof.${n}.json`), 'ind');
  return { date, ledger: plainLedger(ledger as unknown as Row[]), batch, outcome: { tables: run.counts, rows: run.rows }, outputs, current, asOf };
}

/** Where run `k` on Spark writes its Parquet (the plan's INSERT OVERWRITE DIRECTORY statements). */
const exportDir = (sparkDir: string, k: number, kind: 'cleaned' | 'analytics', name: string) => path.join(sparkDir, 'export', String(k), kind, name);

/** The plan of run `k` for Spark, with its Parquet exports. */
function sparkPlan(fx: Fixture, run: DuckRun, k: number, sparkDir: string): IncrementalStatement[] {
  return incrementalStatements('spark', {
    interval: fx.manifests[run.date]!,
    batch: run.batch,
    table: sparkTable,
    exportTo: { cleaned: (n) => exportDir(sparkDir, k, 'cleaned', n), analytics: (n) => exportDir(sparkDir, k, 'analytics', n) },
  });
}

/** The statements of run `k` on Spark: the plan, plus what the test reads back (collect `<k>.<what>`). */
function sparkRun(plan: IncrementalStatement[], run: DuckRun, k: number): SparkStatement[] {
  const ledger = ledgerStatements('spark', sparkTable);
  const out: SparkStatement[] = [
    ...incrementalSparkPreamble(run.batch).map((sql) => ({ sql, name: `${k} preamble` })),
    ...ledger.setup.map((sql) => ({ sql, name: `${k} ledger setup` })),
    { sql: ledger.query, collect: `${k}.ledger` },
  ];
  for (const s of plan) {
    out.push({ sql: s.sql, name: `${k} ${s.name}`, ...(s.collect ? { collect: `${k}.${s.collect}` } : {}) });
  }
  for (const n of CLEANED_NAMES) out.push({ sql: `SELECT * FROM ${n} ORDER BY ind`, collect: `${k}.asof.${n}` });
  for (const n of CLEANED_NAMES) out.push({ sql: `SELECT * FROM ${sparkTable(n)} ORDER BY ind`, collect: `${k}.current.${n}` });
  for (const n of ANALYTICS_NAMES) out.push({ sql: `SELECT * FROM ${n}`, collect: `${k}.out.${n}` });
  return out;
}

describe('Spark (Delta) equality of the incremental path: every date, in and out of order, rerun', () => {
  let dir: string;
  let fx: Fixture;
  const duck: DuckRun[] = [];
  let sparkDir: string;
  const plans: IncrementalStatement[][] = [];
  let sparkResult: SparkRunResult;
  let sparkStatementCount = 0;
  const spark = (name: string): Row[] => JSON.parse(fs.readFileSync(path.join(sparkDir, `${name}.json`), 'utf8')) as Row[];
  const duckByDate: Record<string, Row[]> = {};
  let duckLedger: Row[] = [];
  const full: Record<string, Record<string, Row[]>> = {};

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-spark-ivl-'));
    fx = writeFixture(path.join(dir, 'landed'), await sampleMessages());
    const dbPath = path.join(dir, 'duck', 'warehouse.duckdb');
    for (const [k, date] of RUNS.entries()) duck.push(await duckRun(dir, dbPath, fx, date, k));
    await withConnection(dbPath, async (c) => {
      for (const n of ANALYTICS_NAMES) await c.run(`COPY (SELECT * FROM ${duckTable(`${n}_by_date`)}) TO ${literal(path.join(dir, 'duck', `${n}_by_date.parquet`))} (FORMAT parquet)`);
      duckLedger = plainLedger((await c.runAndReadAll(`SELECT * FROM ${duckTable('merged_objects')}`)).getRowObjectsJS() as Row[]);
    });
    for (const n of ANALYTICS_NAMES) duckByDate[n] = await readJson([path.join(dir, 'duck', `${n}_by_date.parquet`)], path.join(dir, 'duck', `${n}_by_date.json`));

    // The full (non-incremental) cleaning of what lay below each date's end.
    for (const date of DATES) {
      const ends = new Map(fx.manifests[date]!.ranges.map((r) => [`${r.topic}/${r.partition}`, r.end]));
      const sources = {} as Record<Topic, string | null>;
      for (const t of SOURCE_TABLES) {
        const folder = path.join(dir, 'full', date, 'topics', `${PREFIX}.${t.topic}`);
        for (const o of localLandedObjects(fx.folders)[t.topic]) {
          const p = parseObjectKey(o.key)!;
          if (p.startOffset >= ends.get(`${p.topic}/${p.partition}`)!) continue;
          fs.mkdirSync(path.join(folder, `partition=${p.partition}`), { recursive: true });
          fs.copyFileSync(o.key, path.join(folder, `partition=${p.partition}`, path.basename(o.key)));
        }
        sources[t.topic] = folder;
      }
      const run = await runDuckdbCleaning({ dbPath: ':memory:', schema: 'full', sources, exportDir: path.join(dir, 'full', date, 'export') });
      full[date] = {};
      for (const n of [...CLEANED_NAMES, ...ANALYTICS_NAMES]) {
        full[date]![n] = await readJson([run.parquet[n]!], path.join(dir, 'full', date, `${n}.json`), n.endsWith('_clean') ? 'ind' : undefined);
      }
    }

    // Spark: one session, the runs in the same order, then the dated tables and the ledger.
    // The session's current schema is the tables' (as a Databricks session's initial schema):
    // the as-of temporary views must shadow the current tables of the same names.
    const rt = await ensureDelta();
    sparkDir = path.join(dir, 'spark');
    const statements: SparkStatement[] = [{ sql: `CREATE SCHEMA IF NOT EXISTS spark_catalog.${SCHEMA}` }, { sql: `USE spark_catalog.${SCHEMA}` }];
    for (const [k, run] of duck.entries()) {
      plans.push(sparkPlan(fx, run, k, sparkDir));
      statements.push(...sparkRun(plans[k]!, run, k));
    }
    for (const n of ANALYTICS_NAMES) statements.push({ sql: `SELECT * FROM ${sparkTable(`${n}_by_date`)}`, collect: `by_date.${n}` });
    statements.push({ sql: `SELECT * FROM ${sparkTable('merged_objects')}`, collect: 'ledger' });
    sparkStatementCount = statements.length;
    sparkResult = await runSparkSql(statements, { outDir: sparkDir, conf: deltaConf(rt) });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('the data has keys updated on later dates, and each run merges what it should', () => {
    assert.deepEqual(
      duck.map((r) => r.date),
      [...RUNS],
    );
    const objects = (r: DuckRun) => SOURCE_TABLES.flatMap((t) => r.batch[t.topic]?.objects ?? []);
    // D1: its own objects. D3 before D2: D3's own and D2's as catch-up. D2 after D3: its own
    // again (a backfill replaces its merge). D1 rerun: its own only.
    const counts = duck.map((r) => ({ own: objects(r).filter((o) => o.own).length, earlier: objects(r).filter((o) => !o.own).length }));
    const [first, outOfOrder, backfill, rerun] = counts as [(typeof counts)[0], (typeof counts)[0], (typeof counts)[0], (typeof counts)[0]];
    assert.ok(first.own > 0 && first.earlier === 0, `run 0: ${JSON.stringify(first)}`);
    assert.ok(outOfOrder.own > 0 && outOfOrder.earlier > 0, `run 1 (D3 first) merges D2's objects too: ${JSON.stringify(outOfOrder)}`);
    assert.ok(backfill.own > 0 && backfill.earlier === 0, `run 2: ${JSON.stringify(backfill)}`);
    assert.deepEqual(rerun, first);
    // Keys replaced on later dates, and records left out on D2.
    for (const t of CLEANED_NAMES) {
      const replaced = duck.map((r) => r.outcome.tables[t].replaced ?? 0);
      assert.ok(replaced[1]! > 100 && replaced[2]! > 100, `${t}: D3 and D2 replace keys: ${replaced.join(', ')}`);
      // `[1, 2]` is two records, neither an object; `[{...}, 2]` one of each.
      assert.deepEqual(duck[2]!.outcome.tables[t].leftOut, { not_a_json_object: 4, no_usable_key: 1 }, t);
    }
    // A backfilled date does not see later dates: D1's state differs from the current one.
    assert.notDeepEqual(duck[3]!.asOf.pin_clean, duck[3]!.current.pin_clean);
  });

  for (const [k, date] of RUNS.entries()) {
    const label = `run ${k} (${date}${RUNS.indexOf(date) < k ? ', rerun' : ''})`;

    test(`${label}: Spark's ledger before the run is DuckDB's, so it picks the same objects`, () => {
      const run = duck[k]!;
      const ledger = plainLedger(spark(`${k}.ledger`));
      assert.deepEqual(ledger, run.ledger);
      const picked = pickBatch(fx.manifests[date]!, localLandedObjects(fx.folders), ledger as unknown as LedgerRow[]);
      for (const t of SOURCE_TABLES) assert.deepEqual(picked[t.topic], run.batch[t.topic]?.objects ?? [], t.topic);
    });

    test(`${label}: every object of the batch was read, and the interval counts and row counts`, () => {
      const files = plans[k]!.filter((s) => s.expectFiles !== undefined);
      assert.equal(files.length, SOURCE_TABLES.length);
      for (const s of files) checkCollected(s, spark(`${k}.${s.collect!}`));
      const collected = Object.fromEntries([...SOURCE_TABLES.map((t) => `${t.topic}_interval`), 'rows'].map((c) => [c, spark(`${k}.${c}`)]));
      assert.deepEqual(intervalOutcome(collected), duck[k]!.outcome);
    });

    for (const n of CLEANED_NAMES) {
      test(`${label}: ${n} as of the date's end, and current (also as exported)`, async () => {
        const run = duck[k]!;
        assert.ok(run.asOf[n]!.length > 500, `${n}: ${run.asOf[n]!.length} rows`);
        assert.deepEqual(spark(`${k}.asof.${n}`), run.asOf[n]);
        assert.deepEqual(spark(`${k}.current.${n}`), run.current[n]);
        const exported = await readJson([path.join(exportDir(sparkDir, k, 'cleaned', n), '*.parquet')], path.join(dir, 'spark-export', String(k), `${n}.json`), 'ind');
        assert.deepEqual(exported, run.current[n], `${n}: the Parquet export`);
        // Semantics: the incremental state is the full cleaning of what lay below the date's end.
        assert.deepEqual(run.asOf[n], full[date]![n]);
      });
    }

    for (const n of ANALYTICS_NAMES) {
      test(`${label}: ${n} (also as exported)`, async () => {
        const s = spark(`${k}.out.${n}`);
        const d = duck[k]!.outputs[n]!;
        assert.ok(d.length > 0, `${n}: no rows`);
        assert.equal(s.length, d.length, `${n}: ${s.length} rows on Spark, ${d.length} on DuckDB`);
        for (let i = 0; i < d.length; i++) assert.deepEqual(s[i], d[i], `${n} row ${i}`);
        assert.deepEqual(d, full[date]![n], `${n}: the full cleaning of what lay below ${date}'s end`);
        const exported = await readJson([path.join(exportDir(sparkDir, k, 'analytics', n), '*.parquet')], path.join(dir, 'spark-export', String(k), `${n}.json`));
        assert.deepEqual(sortedRows(exported), sortedRows(d), `${n}: the Parquet export`);
      });
    }
  }

  test('the dated output tables hold each date once, the same on both engines', () => {
    for (const n of ANALYTICS_NAMES) {
      const s = spark(`by_date.${n}`);
      const d = duckByDate[n]!;
      assert.deepEqual(sortedRows(s), sortedRows(d), n);
      // Each date's partition is its last run's output (reruns replaced, not appended).
      for (const date of DATES) {
        const last = duck[RUNS.lastIndexOf(date)]!.outputs[n]!;
        assert.equal(d.filter((r) => r.date === date).length, last.length, `${n} ${date}`);
      }
    }
  });

  test('the ledgers of merged objects end the same', () => {
    assert.ok(duckLedger.length > 30, `${duckLedger.length} objects`);
    assert.deepEqual(plainLedger(spark('ledger')), duckLedger);
  });

  test('Spark ran every statement (timings in the diagnostics)', (t) => {
    assert.equal(sparkResult.timings.length, sparkStatementCount);
    const byKind = new Map<string, number>();
    for (const x of sparkResult.timings) {
      // `<run> <step> <what>` (the plan's steps), or a collect name (what the test reads back).
      const kind = /^\d+ /.test(x.name) ? x.name.split(' ')[1]! : 'read back';
      byKind.set(kind, (byKind.get(kind) ?? 0) + x.ms);
    }
    const top = [...byKind].sort((a, b) => b[1] - a[1]).slice(0, 8);
    t.diagnostic(`Spark: ${sparkStatementCount} statements in ${(sparkResult.totalMs / 1000).toFixed(0)} s (start-up ${(sparkResult.startupMs / 1000).toFixed(0)} s); most time: ${top.map(([k, ms]) => `${k} ${(ms / 1000).toFixed(0)} s`).join(', ')}`);
  });

  test('the comparison can fail: a changed value is noticed', () => {
    const d = duck[1]!.asOf.geo_clean!;
    const changed = d.map((r, i) => (i === 3 ? { ...r, country: 'Nowhere' } : r));
    assert.throws(() => assert.deepEqual(spark('1.asof.geo_clean'), changed));
  });
});
