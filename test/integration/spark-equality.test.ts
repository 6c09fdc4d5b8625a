/**
 * The Spark-dialect SQL on real Apache Spark (PySpark from PyPI, local mode) gives exactly
 * what DuckDB gives: the three cleaned tables and the nine analytics outputs, over the real
 * sample and over the hand-written edge cases. This is what proves the SQL before it ever
 * reaches a Databricks warehouse (which runs the same text through the same dialect).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parquetToJson, runDuckdbCleaning } from '../../adapters/duckdb/cleaning';
import { ANALYTICS_OUTPUTS, CLEANED_TABLES } from '../../common/analytics';
import { sparkStatements, type TopicSources } from '../../sql/render';
import { ensureSpark, runSparkSql } from '../tools/spark';
import { writeCases } from '../helpers/cleaning-cases';
import { sampleMessages, writeLanded } from '../helpers/landed-fixture';

type Row = Record<string, unknown>;
const NAMES = [...CLEANED_TABLES.map((t) => t.name), ...ANALYTICS_OUTPUTS.map((o) => o.name)];

describe('Spark equality: the nine outputs and three cleaned tables on Spark equal DuckDB', () => {
  let dir: string;
  const datasets: Record<string, TopicSources> = {};
  const spark: Record<string, Record<string, Row[]>> = {};
  const duck: Record<string, Record<string, Row[]>> = {};
  const counts: Record<string, { spark: Row[]; duck: Row[] }> = {};

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-spark-eq-'));
    datasets.sample = writeLanded(path.join(dir, 'sample'), 'sample', await sampleMessages(), 700);
    writeCases(path.join(dir, 'cases'), 'cases');
    datasets.cases = Object.fromEntries((['pin', 'geo', 'user'] as const).map((t) => [t, path.join(dir, 'cases', 'topics', `cases.${t}`)])) as TopicSources;

    await ensureSpark();
    const statements = Object.entries(datasets).flatMap(([name, sources]) => sparkStatements(sources, { collect: true, collectPrefix: `${name}.` }));
    await runSparkSql(statements, { outDir: path.join(dir, 'spark') });
    for (const [name, sources] of Object.entries(datasets)) {
      spark[name] = Object.fromEntries(NAMES.map((n) => [n, JSON.parse(fs.readFileSync(path.join(dir, 'spark', `${name}.${n}.json`), 'utf8'))]));
      const run = await runDuckdbCleaning({ dbPath: ':memory:', schema: name, sources, exportDir: path.join(dir, 'duck', name) });
      counts[name] = {
        spark: (['pin', 'geo', 'user'] as const).map((t) => JSON.parse(fs.readFileSync(path.join(dir, 'spark', `${name}.${t}_counts.json`), 'utf8'))[0]),
        duck: (['pin', 'geo', 'user'] as const).map((t) => {
          const c = run.counts[`${t}_clean`];
          return { records_read: c.read, not_an_object: c.leftOut.not_a_json_object ?? 0, no_usable_key: c.leftOut.no_usable_key ?? 0, kept: c.rows };
        }),
      };
      duck[name] = {};
      for (const n of NAMES) {
        const file = path.join(dir, 'duck', name, `${n}.json`);
        await parquetToJson([run.parquet[n]!], file, n.endsWith('_clean') ? 'ind' : undefined);
        duck[name]![n] = JSON.parse(fs.readFileSync(file, 'utf8'));
      }
    }
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const dataset of ['sample', 'cases']) {
    for (const name of NAMES) {
      test(`${dataset}: ${name}`, () => {
        const s = spark[dataset]![name]!;
        const d = duck[dataset]![name]!;
        if (dataset === 'sample' && CLEANED_TABLES.some((t) => t.name === name)) assert.equal(d.length, 2019);
        assert.equal(s.length, d.length, `${name}: ${s.length} rows on Spark, ${d.length} on DuckDB`);
        // Row by row, in order (outputs are sorted by the spec's columns; cleaned tables by key).
        for (let i = 0; i < d.length; i++) assert.deepEqual(s[i], d[i], `${name} row ${i}`);
      });
    }
  }

  test('records read, left out and kept are counted alike', () => {
    for (const name of Object.keys(datasets)) assert.deepEqual(counts[name]!.spark, counts[name]!.duck, name);
    assert.deepEqual(counts.cases!.duck[0], { records_read: counts.cases!.duck[0]!.records_read, not_an_object: 4, no_usable_key: 5, kept: counts.cases!.duck[0]!.kept });
  });

  test('the comparison can fail: a changed value is noticed', () => {
    const d = duck.cases!.pin_clean!;
    const changed = d.map((r, i) => (i === 3 ? { ...r, follower_count: 1 } : r));
    assert.throws(() => assert.deepEqual(changed, spark.cases!.pin_clean));
  });
});
