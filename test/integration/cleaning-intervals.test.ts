/**
 * batchCleaningWorkflow with data intervals on the embedded warehouse: three dates of landed
 * objects (test/helpers/interval-fixture.ts) written straight to the bucket in the sink layout,
 * with their manifests; the dates cleaned out of order (D3, D1, D2, D1 again). Each run's nine
 * outputs, its cleaned state as of its end and the current state are compared with an
 * independent computation in plain JavaScript (test/helpers/cleaning-oracle.ts). With
 * WAREHOUSE=databricks (the SQL-warehouse stand-in, which records statements) the Spark-dialect
 * plan is sent for the objects the ledger lacks; spark-equality-intervals.test.ts runs that
 * plan on local Spark with Delta.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { prefixTableName } from '../../adapters/databricks/sql';
import { parquetToJson } from '../../adapters/duckdb/cleaning';
import { literal, quoteId, withConnection } from '../../adapters/duckdb/connection';
import { listKeys } from '../../adapters/s3';
import { ANALYTICS_NAMES, CLEANED_NAMES, type CleaningResult } from '../../common/cleaning';
import { objectKey } from '../../common/landing';
import { SOURCE_TABLES } from '../../common/source-tables';
import { analytics, cleanTables, keyOf, type Tables } from '../helpers/cleaning-oracle';
import { runWorkflow, stackTestContext, testConfig, uniqueName } from '../helpers/env';
import { DATES, intervalFixture, recordCount, valuesUpTo } from '../helpers/interval-fixture';
import { startSqlWarehouse } from '../helpers/databricks-standin';
import { sampleMessages } from '../helpers/landed-fixture';

type Row = Record<string, unknown>;

const TOKEN = 'dapi-interval-test-token-7';

describe('interval cleaning: dates merged out of order, backfills and reruns', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-intervals-'));
  // A warehouse file of this test's own: DuckDB locks its file against other processes.
  const ctx = stackTestContext(testConfig({ DUCKDB_PATH: path.join(tmp, 'warehouse.duckdb') }));
  const { config } = ctx;

  /** A Parquet object of the bucket as rows (parquetToJson: the form `--out` writes). */
  async function parquetRows(key: string, orderBy?: string): Promise<{ rows: Row[]; bytes: Buffer }> {
    const got = await ctx.s3.send(new GetObjectCommand({ Bucket: config.s3.bucket, Key: key }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    const file = path.join(tmp, `${uniqueName('p')}.parquet`);
    fs.writeFileSync(file, bytes);
    const json = `${file}.json`;
    await parquetToJson([file], json, orderBy);
    return { rows: JSON.parse(fs.readFileSync(json, 'utf8')) as Row[], bytes };
  }

  /**
   * The cleaned state as of `end` read from the warehouse's versions tables: per key the
   * version at the highest position among objects below the end offsets (written here, not
   * taken from the plan).
   */
  async function versionsAsOf(schema: string, ends: Map<string, number>): Promise<Tables> {
    const out = {} as Tables;
    for (const t of SOURCE_TABLES) {
      const name = `${t.topic}_clean` as const;
      const bounds = [0, 1].map((p) => `(v.part = ${p} AND v.start_offset < ${ends.get(`${t.topic}/${p}`) ?? 0})`).join(' OR ');
      const file = path.join(tmp, `${uniqueName(name)}.parquet`);
      await withConnection(config.warehouse.duckdbPath, (c) =>
        c.run(
          `COPY (SELECT * EXCLUDE (part, start_offset, line_no, elem_no, object, rn) FROM (SELECT v.*, row_number() OVER (PARTITION BY ind ORDER BY start_offset DESC, line_no DESC, elem_no DESC, object DESC) AS rn ` +
            `FROM ${quoteId(schema)}.${quoteId(`${name}_versions`)} v WHERE ${bounds}) WHERE rn = 1) TO ${literal(file)} (FORMAT parquet)`,
        ),
      );
      await parquetToJson([file], `${file}.json`, 'ind');
      out[name] = JSON.parse(fs.readFileSync(`${file}.json`, 'utf8')) as Row[];
    }
    return out;
  }

  it('D3 first (merging D1-D2 once), then D1, D2, D1 again: outputs, as-of and current state match an independent computation', async () => {
    const prefix = uniqueName('clean-iv');
    const topicsDir = `${uniqueName('iv')}/topics`;
    const root = `${prefix}/`;
    const f = intervalFixture(prefix, await sampleMessages());
    for (let i = 0; i < f.objects.length; i += 32) {
      await Promise.all(
        f.objects.slice(i, i + 32).map((o) =>
          ctx.s3.send(new PutObjectCommand({ Bucket: config.s3.bucket, Key: objectKey(topicsDir, o.topic, o.partition, o.firstOffset), Body: o.lines.join('\n') + '\n' })),
        ),
      );
    }
    // A full run's output beside the date folders: the first interval run removes it.
    const stray = `${root}analytics/users_joined_by_year/part-00000.parquet`;
    await ctx.s3.send(new PutObjectCommand({ Bucket: config.s3.bucket, Key: stray, Body: 'old' }));

    const current = cleanTables(valuesUpTo(f, [0, 1, 2]));
    const etags = async () => {
      const keys = (await listKeys(ctx.s3, config.s3.bucket, `${root}analytics/`)).sort();
      return new Map(await Promise.all(keys.map(async (k) => [k, (await ctx.s3.send(new HeadObjectCommand({ Bucket: config.s3.bucket, Key: k }))).ETag] as const)));
    };

    const outputsOf: Record<string, Record<string, { rows: Row[]; bytes: Buffer }>> = {};
    for (const [step, d] of [3, 1, 2, 1].map((x, i) => [i, x - 1] as const)) {
      const date = DATES[d]!;
      const input = { prefix, source: { kind: 's3' as const, topicsDir }, outputRoot: root, interval: f.manifests[d] };
      const result = (await runWorkflow<CleaningResult>(ctx.env, config, 'batchCleaningWorkflow', [input])).result;
      const label = `run ${step + 1} (${date})`;

      // What was merged: D3's first run also merges the earlier dates' objects, once.
      assert.equal(result.interval?.date, date, label);
      assert.equal(result.interval?.objects, f.objectsPerDate[d], `${label}: the interval's own objects`);
      assert.equal(result.interval?.earlierObjects, step === 0 ? f.objectsPerDate[0]! + f.objectsPerDate[1]! : 0, `${label}: earlier objects merged`);

      // The interval's counts, and the keys it inserted and replaced (vs the state before its start).
      const asOf = cleanTables(valuesUpTo(f, Array.from({ length: d + 1 }, (_, i) => i)));
      const before = valuesUpTo(f, Array.from({ length: d }, (_, i) => i));
      const own = valuesUpTo(f, [d]);
      for (const t of SOURCE_TABLES) {
        const name = `${t.topic}_clean` as const;
        const keysOf = (vs: Row[]) => new Set(vs.map((v) => keyOf(v[t.key])).filter((k) => k !== null));
        const mine = keysOf(own[t.topic]);
        const earlier = keysOf(before[t.topic]);
        const leftOut = t.topic === 'pin' && d === 2 ? { not_a_json_object: 2, no_usable_key: 1 } : {};
        const read = recordCount(f, d, t.topic);
        assert.deepEqual(
          result.tables[name],
          {
            read,
            rows: asOf[name].length,
            duplicates: read - mine.size - Object.values(leftOut).reduce((a, b) => a + b, 0),
            leftOut,
            inserted: [...mine].filter((k) => !earlier.has(k)).length,
            replaced: [...mine].filter((k) => earlier.has(k)).length,
            location: `s3://${config.s3.bucket}/${root}cleaned/${name}/`,
          },
          `${label}: ${name} counts`,
        );
        assert.equal(result.interval?.currentRows[name], current[name].length, `${label}: ${name} current rows`);
      }

      // The date's nine outputs, from the records up to its end.
      const expected = analytics(asOf);
      outputsOf[`${step}`] = {};
      for (const name of ANALYTICS_NAMES) {
        assert.equal(result.analytics[name].location, `s3://${config.s3.bucket}/${root}analytics/${name}/date=${date}/`);
        const got = await parquetRows(`${root}analytics/${name}/date=${date}/part-00000.parquet`);
        assert.deepEqual(got.rows, expected[name], `${label}: ${name}`);
        assert.equal(result.analytics[name].rows, expected[name]!.length, `${label}: ${name} rows`);
        outputsOf[`${step}`]![name] = got;
      }
      // The cleaned state as of the date, in the warehouse's versions.
      const ends = new Map(f.manifests[d]!.ranges.map((r) => [`${r.topic.slice(prefix.length + 1)}/${r.partition}`, r.end]));
      assert.deepEqual(await versionsAsOf(prefix, ends), asOf, `${label}: cleaned state as of ${date}`);
      // cleaned/<table>/: the current state (every date, since D3 ran first).
      for (const name of CLEANED_NAMES) {
        assert.deepEqual((await parquetRows(`${root}cleaned/${name}/part-00000.parquet`, 'ind')).rows, current[name], `${label}: cleaned/${name}/ is the current state`);
      }

      if (step === 2) {
        const after = await etags();
        assert.deepEqual(
          [...after.keys()].map((k) => k.slice(root.length)),
          ANALYTICS_NAMES.flatMap((n) => DATES.map((dt) => `analytics/${n}/date=${dt}/part-00000.parquet`)).sort(),
          'one object per output and date, the full run object removed',
        );
        outputsOf.etagsBeforeRerun = Object.fromEntries([...after].map(([k, v]) => [k, { rows: [], bytes: Buffer.from(String(v)) }]));
      }
    }

    // D1's two runs are identical, and the rerun replaced only D1's partition.
    for (const name of ANALYTICS_NAMES) {
      assert.deepEqual(outputsOf['3']![name]!.rows, outputsOf['1']![name]!.rows, `D1 rerun: ${name} rows`);
      assert.ok(outputsOf['3']![name]!.bytes.equals(outputsOf['1']![name]!.bytes), `D1 rerun: ${name} bytes`);
    }
    const final = await etags();
    for (const [key, etag] of Object.entries(outputsOf.etagsBeforeRerun!)) {
      if (key.includes(`/date=${DATES[0]}/`)) continue;
      assert.equal(final.get(key), etag.bytes.toString(), `${key} untouched by the D1 rerun`);
    }
    assert.equal(final.size, Object.keys(outputsOf.etagsBeforeRerun!).length);
  });

  it('WAREHOUSE=databricks sends the Spark-dialect plan: only the objects the ledger lacks below the end, Delta MERGEs, the date partition', async () => {
    const prefix = uniqueName('dbx-iv');
    // The prefix's tables in the configured catalog and schema (`<prefix>__<table>`): no other prefix's.
    const table = (n: string) => `\`main\`.\`pinflow\`.\`${prefixTableName(prefix, n)}\``;
    const topicsDir = `${uniqueName('dbx-iv')}/topics`;
    const f = intervalFixture(prefix, await sampleMessages(), 400);
    // Landed: D1 and D2 (D3 is not landed: D2's end is what bounds the run).
    const landed = f.objects.filter((o) => o.firstOffset < f.manifests[1]!.ranges.find((r) => r.topic === o.topic && r.partition === o.partition)!.end);
    for (const o of landed) await ctx.s3.send(new PutObjectCommand({ Bucket: config.s3.bucket, Key: objectKey(topicsDir, o.topic, o.partition, o.firstOffset), Body: o.lines.join('\n') + '\n' }));
    const d1 = landed.filter((o) => o.firstOffset < f.manifests[0]!.ranges.find((r) => r.topic === o.topic && r.partition === o.partition)!.end);
    const d2 = landed.filter((o) => !d1.includes(o));
    const wh = await startSqlWarehouse({
      token: TOKEN,
      handler: (sql) => {
        const files = /^SELECT count\(DISTINCT src_file\) AS files FROM (pin|geo|user)_records$/.exec(sql);
        if (files) return { columns: [{ name: 'files', type: 'bigint' }], rows: [[d2.filter((o) => o.topic === `${prefix}.${files[1]}`).length]] };
        if (sql === `SELECT topic, part, start_offset FROM ${table('merged_objects')}`) {
          // The ledger: D1's objects were merged by an earlier run, and one object of D2 by a partial run of D2.
          const merged = [...d1, landed.find((o) => !d1.includes(o))!];
          return { columns: [{ name: 'topic', type: 'string' }, { name: 'part', type: 'int' }, { name: 'start_offset', type: 'bigint' }], rows: merged.map((o) => [o.topic.slice(prefix.length + 1), o.partition, o.firstOffset]) };
        }
        const counts = /^WITH recs AS[\s\S]*'(pin|geo|user)' AS topic/.exec(sql);
        if (counts) {
          const columns = ['records_read', 'not_an_object', 'no_usable_key', 'kept', 'inserted', 'replaced'].map((name) => ({ name, type: 'bigint' as const }));
          return { columns: [{ name: 'topic', type: 'string' }, ...columns], rows: [[counts[1]!, 950, 0, 0, 900, 700, 200]] };
        }
        if (sql.startsWith("SELECT 'pin_clean' AS name")) {
          const names = [...CLEANED_NAMES, ...CLEANED_NAMES.map((n) => `${n}_current`), ...ANALYTICS_NAMES];
          return { columns: [{ name: 'name', type: 'string' }, { name: 'n', type: 'bigint' }], rows: names.map((n, i) => [n, 1000 + i]) };
        }
        return undefined;
      },
    });
    try {
      const caFile = path.join(tmp, 'dbx-ca.pem');
      fs.writeFileSync(caFile, wh.ca);
      const dbx = testConfig({ WAREHOUSE: 'databricks', DATABRICKS_HOST: wh.host, DATABRICKS_TOKEN: TOKEN, DATABRICKS_HTTP_PATH: wh.httpPath, DATABRICKS_CA_FILE: caFile });
      const input = { prefix, source: { kind: 's3' as const, topicsDir }, outputRoot: `${prefix}/`, interval: f.manifests[1] };
      const result = (await runWorkflow<CleaningResult>(ctx.env, dbx, 'batchCleaningWorkflow', [input])).result;
      const sent = wh.statements.map((x) => x.sql);
      const named = [...new Set(sent.flatMap((x) => [...x.matchAll(/`main`\.`pinflow`\.`[^`]*`/g)].map((m) => m[0])))];
      const own = table('x').slice(0, -'x`'.length);
      assert.deepEqual(named.filter((n) => !n.startsWith(own)), [], 'every table the run names is one of the prefix');
      for (const n of ['merged_objects', ...CLEANED_NAMES, ...CLEANED_NAMES.map((c) => `${c}_versions`)]) assert.ok(named.includes(table(n)), n);
      assert.ok(sent.includes(`CREATE TABLE IF NOT EXISTS ${table('merged_objects')} (topic STRING, part INT, start_offset BIGINT, object_key STRING, merged_for STRING) USING DELTA`));
      // Read: D2's objects (all of them, the one merged before included), nothing of D1.
      for (const t of SOURCE_TABLES) {
        const view = sent.find((x) => x.startsWith(`CREATE OR REPLACE TEMPORARY VIEW ${t.topic}_records AS`))!;
        const names = d2.filter((o) => o.topic === `${prefix}.${t.topic}`).map((o) => path.posix.basename(objectKey(topicsDir, o.topic, o.partition, o.firstOffset)));
        assert.ok(view.includes(`read_files('s3://${config.s3.bucket}/${topicsDir}/${prefix}.${t.topic}/partition=*/{${names.join(',')}}'`), view.slice(0, 2000));
        assert.ok(sent.some((x) => x.startsWith(`MERGE INTO ${table(`${t.topic}_clean_versions`)} v`) && x.includes('WHEN MATCHED THEN DELETE')));
        assert.ok(sent.includes(`INSERT INTO ${table(`${t.topic}_clean_versions`)} SELECT * FROM ${t.topic}_batch`));
        assert.ok(sent.some((x) => x.startsWith(`MERGE INTO ${table(`${t.topic}_clean`)} c`) && x.includes('ON c.ind = s.ind')));
      }
      for (const n of ANALYTICS_NAMES) {
        assert.ok(sent.includes(`INSERT OVERWRITE TABLE ${table(`${n}_by_date`)} PARTITION (\`date\` = '${DATES[1]}') SELECT * FROM ${n}`), n);
        assert.ok(sent.includes(`INSERT OVERWRITE DIRECTORY 's3://${config.s3.bucket}/${prefix}/analytics/${n}/date=${DATES[1]}/' USING PARQUET SELECT * FROM ${n}`), n);
        assert.equal(result.analytics[n].location, `s3://${config.s3.bucket}/${prefix}/analytics/${n}/date=${DATES[1]}/`);
      }
      // The counts come from the warehouse.
      assert.deepEqual(result.tables.pin_clean, { read: 950, rows: 1000, duplicates: 50, leftOut: {}, inserted: 700, replaced: 200, location: `s3://${config.s3.bucket}/${prefix}/cleaned/pin_clean/` });
      assert.deepEqual(result.interval, { date: DATES[1], partial: false, objects: d2.length, earlierObjects: 0, currentRows: { pin_clean: 1003, geo_clean: 1004, user_clean: 1005 } });
    } finally {
      await wh.close();
    }
  });

  it('a bad interval fails at once, naming the problem', async () => {
    const prefix = uniqueName('clean-iv-bad');
    const interval = { version: 1, prefix: 'other', date: '2024-02-30', startsAt: '', endsAt: '', partial: false, resolvedAt: '', ranges: [{ topic: `${prefix}.pin`, partition: 0, start: 5, end: 2 }] };
    await assert.rejects(runWorkflow(ctx.env, config, 'batchCleaningWorkflow', [{ prefix, interval }]), (err: Error & { cause?: Error }) => {
      const message = String(err.cause?.message);
      assert.match(message, /interval\.prefix "other" is not the cleaning prefix/);
      assert.match(message, /interval\.date "2024-02-30" is not YYYY-MM-DD/);
      assert.match(message, /start <= end/);
      return true;
    });
  });
});
