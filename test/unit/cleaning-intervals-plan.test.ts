/**
 * The incremental cleaning plan (sql/incremental.ts) without a stack: interval validation, the
 * choice of objects to merge, the plan run on DuckDB over local folders (dates out of order,
 * a rerun, a failed run that changes nothing) against the independent computation of
 * test/helpers/cleaning-oracle.ts, and the Spark/Databricks renderings' shape.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parquetToJson, runDuckdbCleaning } from '../../adapters/duckdb/cleaning';
import { quoteId, withConnection } from '../../adapters/duckdb/connection';
import { localLandedObjects, readLedger, runDuckdbIncremental } from '../../adapters/duckdb/incremental';
import { ANALYTICS_NAMES, validateCleaningInput } from '../../common/cleaning';
import type { IntervalManifest } from '../../common/interval';
import { objectKey } from '../../common/landing';
import { SOURCE_TABLES } from '../../common/source-tables';
import { filesGlob } from '../../sql/render';
import { asOfIsCurrent, incrementalStatements, pickBatch, type BatchSources, type LedgerRow } from '../../sql/incremental';
import { analytics, cleanTables } from '../helpers/cleaning-oracle';
import { DATES, intervalFixture, valuesUpTo, type IntervalFixture } from '../helpers/interval-fixture';
import { sampleMessages, writeTopicObjects, type Topic } from '../helpers/landed-fixture';

const manifest = (prefix: string, ranges: IntervalManifest['ranges'], date = '2024-03-02'): IntervalManifest => ({
  version: 1,
  prefix,
  date,
  startsAt: `${date}T00:00:00.000Z`,
  endsAt: '',
  partial: false,
  resolvedAt: '',
  ranges,
});

describe('incremental cleaning plan', () => {
  it('validates the interval of a cleaning input', () => {
    const good = manifest('pf', [{ topic: 'pf.pin', partition: 0, start: 0, end: 10 }]);
    assert.deepEqual(validateCleaningInput({ prefix: 'pf', interval: good }), []);
    const problems = validateCleaningInput({
      prefix: 'pf',
      databricksJob: { notebookPath: '/x' },
      interval: {
        ...good,
        prefix: 'other',
        date: '2024-02-30',
        ranges: [
          { topic: 'pf.pin', partition: 0, start: 5, end: 2 },
          { topic: 'pf.geo', partition: 1, start: 0, end: 1 },
          { topic: 'pf.geo', partition: 1, start: 1, end: 2 },
          { topic: 'other.pin', partition: 0, start: 0, end: 1 },
        ],
      },
    });
    assert.deepEqual(problems, [
      'interval.prefix "other" is not the cleaning prefix "pf"',
      'interval.date "2024-02-30" is not YYYY-MM-DD',
      'interval range {"topic":"pf.pin","partition":0,"start":5,"end":2}: partition, start and end must be integers >= 0 with start <= end',
      'interval range {"topic":"pf.geo","partition":1,"start":1,"end":2}: partition 1 of pf.geo is listed twice',
      'interval range {"topic":"other.pin","partition":0,"start":0,"end":1}: topic must be pf.pin, pf.geo or pf.user',
      'interval and databricksJob cannot be combined: a notebook rebuilds the tables whole',
    ]);
  });

  it('merges what the ledger lacks below the end, and the interval own objects again', () => {
    const m = manifest('pf', [
      { topic: 'pf.pin', partition: 0, start: 100, end: 200 },
      { topic: 'pf.pin', partition: 1, start: 50, end: 50 },
    ]);
    const key = (p: number, o: number) => ({ key: objectKey('topics', 'pf.pin', p, o) });
    const landed = {
      pin: [key(0, 150), key(0, 0), key(0, 40), key(0, 100), key(0, 200), key(1, 0), key(1, 50), key(2, 0), { key: 'topics/pf.pin/partition=0/junk.json' }, { key: objectKey('topics', 'pf.geo', 0, 0) }],
      geo: [],
      user: [],
    };
    const ledger = [
      { topic: 'pin', part: 0, start_offset: 0 },
      { topic: 'pin', part: 0, start_offset: 100 },
      { topic: 'pin', part: 1, start_offset: 0 },
    ];
    const picked = pickBatch(m, landed, ledger);
    assert.deepEqual(
      picked.pin.map((o) => [o.partition, o.startOffset, o.own]),
      [
        [0, 40, false], // earlier, not merged yet
        [0, 100, true], // own, merged before: merged again
        [0, 150, true],
      ],
    );
    assert.deepEqual([picked.geo, picked.user], [[], []]);
  });

  it('reads the current tables as the state as of the end only when nothing merged lies at or beyond the end', () => {
    const m = manifest('pf', [
      { topic: 'pf.pin', partition: 0, start: 100, end: 200 },
      { topic: 'pf.geo', partition: 0, start: 100, end: 200 },
    ]);
    const obj = (startOffset: number) => ({ key: objectKey('topics', 'pf.pin', 0, startOffset), partition: 0, startOffset, own: startOffset >= 100 });
    const batch: BatchSources = { pin: { folder: '/x', objects: [obj(100), obj(150)] }, geo: null, user: null };
    const ledger: LedgerRow[] = [
      { topic: 'pin', part: 0, start_offset: 0 },
      { topic: 'pin', part: 0, start_offset: 100 },
      { topic: 'geo', part: 0, start_offset: 50 },
    ];
    const later = (row: LedgerRow) => [...ledger, row];
    assert.equal(asOfIsCurrent(m, batch, ledger), true, 'the newest date: everything merged lies below its end');
    assert.equal(asOfIsCurrent(m, batch, later({ topic: 'pin', part: 0, start_offset: 200 })), false, 'an object of a later date was merged');
    assert.equal(asOfIsCurrent(m, batch, later({ topic: 'pin', part: 1, start_offset: 0 })), false, 'a partition the interval does not list');
    assert.equal(asOfIsCurrent(m, batch, later({ topic: 'user', part: 0, start_offset: 0 })), false, 'a topic the interval does not list');
    assert.equal(asOfIsCurrent(m, batch, later({ topic: 'pin', part: 0, start_offset: 120 })), false, 'an object of the interval merged before and not merged again: its versions go');
    assert.equal(asOfIsCurrent(m, { ...batch, pin: { folder: '/x', objects: [obj(100), obj(200)] } }, ledger), false, 'a batch object at the end');
    for (const dialect of ['duckdb', 'spark'] as const) {
      const plan = (asOfCurrent?: boolean) => incrementalStatements(dialect, { interval: m, batch, table: (n) => `cat.sch.${n}`, ...(asOfCurrent === undefined ? {} : { asOfCurrent }) });
      const asOf = (asOfCurrent?: boolean) => plan(asOfCurrent).find((s) => s.name === 'as of pin_clean')!.sql;
      assert.match(asOf(true), /^CREATE OR REPLACE TEMP(ORARY)? VIEW pin_clean AS SELECT .*ind.* FROM cat\.sch\.pin_clean$/, dialect);
      for (const computed of [asOf(false), asOf()]) assert.match(computed, /row_number\(\) OVER \(PARTITION BY v\.ind/, dialect);
      // The current state: a MERGE on Delta; on DuckDB the touched keys deleted and appended again.
      const merge = plan().filter((s) => ['replace pin_clean keys', 'merge pin_clean'].includes(s.name)).map((s) => s.sql.split(' ').slice(0, 3).join(' '));
      assert.deepEqual(merge, dialect === 'spark' ? ['MERGE INTO cat.sch.pin_clean'] : ['DELETE FROM cat.sch.pin_clean', 'INSERT INTO cat.sch.pin_clean']);
    }
  });

  it('on Spark, where each statement commits alone, the batch leaves the ledger before its versions are replaced and rejoins it last', () => {
    const m = manifest('pf', [{ topic: 'pf.pin', partition: 0, start: 0, end: 10 }]);
    const batch: BatchSources = { pin: { folder: 's3://b/topics/pf.pin', objects: [{ key: 'topics/pf.pin/partition=0/pf.pin+0+0000000000.json', partition: 0, startOffset: 0, own: true }] }, geo: null, user: null };
    for (const dialect of ['spark', 'databricks'] as const) {
      const names = incrementalStatements(dialect, { interval: m, batch, table: (n) => `cat.sch.${n}` }).map((s) => s.name);
      const unmark = names.indexOf('unmark batch');
      assert.ok(unmark >= 0, `${dialect}: the plan unmarks its batch in the ledger`);
      const touches = names.map((n, i) => [n, i] as const).filter(([n]) => /^(replace|insert) \w+ versions$/.test(n)).map(([, i]) => i);
      assert.ok(touches.length === 6 && touches.every((i) => i > unmark), `${dialect}: before any version is replaced (${names.join(', ')})`);
      assert.ok(names.indexOf('ledger merge') > Math.max(...touches), `${dialect}: marked again after the last insert`);
      const sql = incrementalStatements(dialect, { interval: m, batch, table: (n) => `cat.sch.${n}` })[unmark]!.sql;
      assert.match(sql, /^MERGE INTO cat\.sch\.merged_objects l\s+USING batch_objects o\s+ON l\.topic = o\.topic AND l\.part = o\.part AND l\.start_offset = o\.start_offset\s+WHEN MATCHED THEN DELETE$/m);
    }
  });

  it('renders the Spark and Databricks plans with every placeholder filled and Delta statements', () => {
    const m = manifest('pf', [{ topic: 'pf.pin', partition: 0, start: 0, end: 10 }]);
    const batch: BatchSources = { pin: { folder: 's3://b/topics/pf.pin', objects: [{ key: 'topics/pf.pin/partition=0/pf.pin+0+0000000000.json', partition: 0, startOffset: 0, own: true }] }, geo: null, user: null };
    for (const dialect of ['spark', 'databricks'] as const) {
      const plan = incrementalStatements(dialect, { interval: m, batch, table: (n) => `cat.sch.${n}` });
      for (const s of plan) {
        assert.doesNotMatch(s.sql, /\{[a-z_]+\}|::|TEMP TABLE|"/, `${dialect} ${s.name}`);
      }
      assert.ok(plan.some((s) => s.sql.startsWith('CREATE TABLE IF NOT EXISTS cat.sch.pin_clean_versions USING DELTA AS SELECT')));
      assert.ok(plan.some((s) => s.sql === "INSERT OVERWRITE TABLE cat.sch.users_joined_by_year_by_date PARTITION (`date` = '2024-03-02') SELECT * FROM users_joined_by_year"));
      assert.deepEqual(plan.filter((s) => s.collect).map((s) => s.collect), ['pin_files', 'geo_files', 'user_files', 'pin_interval', 'geo_interval', 'user_interval', 'rows']);
    }
    const dbx = incrementalStatements('databricks', { interval: m, batch, table: (n) => n }).find((s) => s.name === 'records pin')!;
    assert.ok(dbx.sql.includes("read_files('s3://b/topics/pf.pin/partition=*/{pf.pin+0+0000000000.json}', format => 'text', wholeText => true)"));
    assert.throws(() => filesGlob('/x', ['partition=0/a{b}.json']), /cannot glob/);
  });

  describe('on DuckDB over local folders', () => {
    const prefix = 'pf';
    let dir: string;
    let f: IntervalFixture;
    let dbPath: string;

    before(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-iv-plan-'));
      // Named like the schema, as the defaults are (DUCKDB_PATH .data/warehouse/pinflow.duckdb,
      // prefix pinflow): catalog and schema share a name, so names must be fully qualified.
      dbPath = path.join(dir, `${prefix}.duckdb`);
      f = intervalFixture(prefix, await sampleMessages(), 300);
      for (const o of f.objects) writeTopicObjects(dir, o.topic, o.lines, { partition: o.partition, firstOffset: o.firstOffset, flushSize: o.lines.length });
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    const folders = () => Object.fromEntries(SOURCE_TABLES.map((t) => [t.topic, path.join(dir, 'topics', `${prefix}.${t.topic}`)])) as Record<Topic, string>;

    async function run(d: number, mangle?: (b: BatchSources) => void, db = dbPath) {
      const picked = pickBatch(f.manifests[d]!, localLandedObjects(folders()), await readLedger(db, prefix));
      const batch = Object.fromEntries(SOURCE_TABLES.map((t) => [t.topic, picked[t.topic].length ? { folder: folders()[t.topic], objects: picked[t.topic] } : null])) as BatchSources;
      mangle?.(batch);
      const exportDir = path.join(dir, `export-${d}-${Math.random().toString(36).slice(2)}`);
      const result = await runDuckdbIncremental({ dbPath: db, schema: prefix, interval: f.manifests[d]!, batch, exportDir });
      const outputs: Record<string, unknown[]> = {};
      for (const name of ANALYTICS_NAMES) {
        await parquetToJson([result.parquet[name]!], `${result.parquet[name]}.json`);
        outputs[name] = JSON.parse(fs.readFileSync(`${result.parquet[name]}.json`, 'utf8')) as unknown[];
      }
      return { result, outputs, picked };
    }
    const expected = (d: number) => analytics(cleanTables(valuesUpTo(f, Array.from({ length: d + 1 }, (_, i) => i))));
    const versions = async () =>
      withConnection(dbPath, async (c) => Number((await c.runAndReadAll(`SELECT count(*) AS n FROM ${quoteId(prefix)}.${quoteId(prefix)}.pin_clean_versions`)).getRowObjectsJS()[0]!.n));

    it('D2 first merges D1 too; then D1 and a rerun of D1 see only what lay below D1 end, identically', async () => {
      const d2 = await run(1);
      assert.deepEqual(d2.outputs, expected(1));
      assert.equal(d2.picked.pin.filter((o) => !o.own).length, f.objects.filter((o) => o.topic === `${prefix}.pin` && o.firstOffset < f.manifests[0]!.ranges.find((r) => r.topic === o.topic && r.partition === o.partition)!.end).length);
      const first = await run(0);
      assert.ok(first.picked.pin.every((o) => o.own), 'D1 merges only its own objects again');
      assert.deepEqual(first.outputs, expected(0));
      const stored = await versions();
      const again = await run(0);
      assert.deepEqual(again.outputs, first.outputs);
      assert.deepEqual(again.result.counts, first.result.counts);
      assert.equal(await versions(), stored, 'a rerun replaces its versions, never adds');
      const ledger = await readLedger(dbPath, prefix);
      assert.equal(ledger.length, f.objects.filter((o) => DATES.slice(0, 2).some((_, d) => o.firstOffset < f.manifests[d]!.ranges.find((r) => r.topic === o.topic && r.partition === o.partition)!.end)).length);
    });

    it('dates in order read the current tables and keep joined_current; a backfill computes the state and drops it', async () => {
      const db = path.join(dir, 'in-order.duckdb');
      const ran = (r: Awaited<ReturnType<typeof run>>, step: string) => r.result.timings.some((t) => t.name === step);
      for (let d = 0; d < DATES.length; d++) {
        const r = await run(d, undefined, db);
        assert.deepEqual(r.outputs, expected(d), DATES[d]);
        assert.ok(ran(r, d === 0 ? 'create joined_current' : 'merge joined_current'), `${DATES[d]}: the state as of the end is the current tables`);
      }
      const back = await run(0, undefined, db);
      assert.deepEqual(back.outputs, expected(0));
      assert.ok(ran(back, 'drop joined_current') && !ran(back, 'merge joined_current'));
      const last = await run(2, undefined, db);
      assert.deepEqual(last.outputs, expected(2));
      assert.ok(ran(last, 'merge joined_current'));
    });

    it('after a full recompute of the prefix, the state as of the end is computed, not read from the tables it replaced', async () => {
      // The full recompute cleans all three dates into the current tables; D2's run then merges
      // D1 and D2 (the ledger is empty), and the current tables still hold keys only D3 brought.
      const db = path.join(dir, 'after-full.duckdb');
      await runDuckdbCleaning({ dbPath: db, schema: prefix, sources: folders(), exportDir: path.join(dir, 'full-export') });
      const d2 = await run(1, undefined, db);
      assert.ok(d2.result.rows.pin_clean_current! > d2.result.rows.pin_clean!, 'the current table holds keys beyond D2');
      assert.deepEqual(d2.outputs, expected(1));
    });

    it('a run that fails part-way changes nothing (one transaction)', async () => {
      const stored = await versions();
      const ledger = await readLedger(dbPath, prefix);
      await assert.rejects(
        run(2, (b) => b.user!.objects.push({ key: 'missing', partition: 0, startOffset: 999_999, own: true })),
        /files user: read \d+ of the \d+ landed objects to merge; an object listed may be missing/,
      );
      assert.equal(await versions(), stored);
      assert.equal((await readLedger(dbPath, prefix)).length, ledger.length);
      const d3 = await run(2);
      assert.deepEqual(d3.outputs, expected(2));
      assert.equal(d3.result.counts.pin_clean.leftOut.not_a_json_object, 2);
      assert.equal(d3.result.counts.pin_clean.leftOut.no_usable_key, 1);
    });
  });
});
