/**
 * The Databricks warehouse's table names per pipeline prefix (adapters/databricks/sql.ts
 * `prefixedName`), without a stack: every prefix sharing DATABRICKS_CATALOG.DATABRICKS_SCHEMA
 * has tables of its own. The interval plan, the full recompute and the stream writers of three
 * prefixes (two of them differing only by '-' and '_') run through the Warehouse port against
 * the SQL-warehouse stand-in (test/helpers/databricks-standin.ts), with an S3 stand-in that
 * lists nothing; the test reads the tables each prefix's statements name and checks that no
 * table is shared, every persistent table is the prefix's, and every name is a quoted,
 * three-part name whose table part is a valid identifier.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { toStreamRecord } from '../../activities/streaming';
import { prefixedName, prefixTableName, type DatabricksConfig } from '../../adapters/databricks/sql';
import { databricksWarehouse } from '../../adapters/databricks/warehouse';
import type { CleaningPlan, WarehouseDeps } from '../../adapters/warehouse';
import { ANALYTICS_NAMES, CLEANED_NAMES } from '../../common/cleaning';
import { NonRetryable } from '../../common/errors';
import type { IntervalManifest } from '../../common/interval';
import { SOURCE_TABLES } from '../../common/source-tables';
import { deadLetterTable, streamTable } from '../../common/streaming';
import { startSqlWarehouse, type SqlWarehouse } from '../helpers/databricks-standin';

const TOKEN = 'dapi-test-tables-0123456789';
const PREFIXES = ['pinflow', 'pin-prod', 'pin_prod'] as const;
const QUALIFIED = /`main`\.`lake`\.`([^`]*)`/g;

/** Every persistent table a prefix's runs use, by its plain name. */
const PLAIN = [
  ...CLEANED_NAMES,
  ...CLEANED_NAMES.map((n) => `${n}_versions`),
  'merged_objects',
  ...ANALYTICS_NAMES,
  ...ANALYTICS_NAMES.map((n) => `${n}_by_date`),
  streamTable('pin'),
  deadLetterTable('pin'),
].sort();
/** Plain names that only a persistent table has (the others are also temporary views'). */
const ONLY_TABLES = PLAIN.filter((n) => /_versions$|^merged_objects$|_by_date$|_clean_stream$|_stream_dead_letter$/.test(n));

const interval = (prefix: string): IntervalManifest => ({
  version: 1,
  prefix,
  date: '2024-03-02',
  startsAt: '2024-03-02T00:00:00.000Z',
  endsAt: '2024-03-03T00:00:00.000Z',
  partial: false,
  resolvedAt: '2024-03-03T00:10:00.000Z',
  ranges: SOURCE_TABLES.map((t) => ({ topic: `${prefix}.${t.topic}`, partition: 0, start: 0, end: 10 })),
});

describe('Databricks tables per pipeline prefix', () => {
  let wh: SqlWarehouse;
  let dir: string;
  let db: DatabricksConfig;
  const s3Sent: string[] = [];
  const s3 = {
    address: 's3 stand-in',
    bucket: 'out',
    client: () => ({
      send: async (command: object) => {
        s3Sent.push(command.constructor.name);
        return { Contents: [] };
      },
    }),
  } as unknown as WarehouseDeps['s3'];

  before(async () => {
    wh = await startSqlWarehouse({ token: TOKEN });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-dbx-tables-'));
    fs.writeFileSync(path.join(dir, 'ca.pem'), wh.ca);
    db = { host: wh.host, token: TOKEN, httpPath: wh.httpPath, catalog: 'main', schema: 'lake', caFile: path.join(dir, 'ca.pem') };
  });
  after(async () => {
    await wh?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('names a table <prefix>__<name>, keeping prefixes that differ by "-" and "_" apart, and refuses what is not a prefix', () => {
    assert.equal(prefixTableName('pinflow', 'pin_clean'), 'pinflow__pin_clean');
    assert.equal(prefixTableName('pin_prod', 'merged_objects'), 'pin_prod__merged_objects');
    assert.match(prefixTableName('pin-prod', 'merged_objects'), /^pin_prod_[0-9a-f]{8}__merged_objects$/);
    assert.notEqual(prefixTableName('a-b', 'pin_clean'), prefixTableName('a_b', 'pin_clean'));
    assert.notEqual(prefixTableName('a-b_c', 'pin_clean'), prefixTableName('a_b-c', 'pin_clean'));
    assert.equal(prefixTableName('pin-prod', 'pin_clean'), prefixTableName('pin-prod', 'pin_clean'), 'the same prefix, the same name');
    assert.equal(prefixedName(db, 'pinflow', 'pin_clean'), '`main`.`lake`.`pinflow__pin_clean`');
    for (const bad of ['Bad!', '', 'a'.repeat(49), '-lead', 'x`y']) {
      assert.throws(
        () => prefixTableName(bad, 'pin_clean'),
        (err: unknown) => err instanceof ApplicationFailure && err.type === NonRetryable.badInput && err.message.includes(JSON.stringify(bad)),
        bad,
      );
    }
    for (const bad of ['', '_x', 'x__y', 'Pin', 'x-y', 'x`']) assert.throws(() => prefixTableName('pinflow', bad), /is not a table name/, bad);
  });

  it('the interval plan, the full recompute and the stream writers of two prefixes share no table; every name is quoted and valid', async () => {
    const warehouse = databricksWarehouse(db, { s3 });
    const named = new Map<string, string[]>();
    try {
      for (const prefix of PREFIXES) {
        const start = wh.statements.length;
        const plan = (extra: Partial<CleaningPlan>): CleaningPlan => ({
          prefix,
          runKey: `cleaning-${prefix}.run-1`,
          landed: { kind: 's3', bucket: 'landing', folders: { pin: null, geo: null, user: null }, objects: { pin: [], geo: [], user: [] } },
          output: { bucket: 'out', root: `${prefix}/` },
          heartbeat: () => undefined,
          ...extra,
        });
        const run = await warehouse.runCleaning(plan({ interval: interval(prefix) }));
        assert.equal(run.interval?.objects, 0);
        await warehouse.runCleaning(plan({}));
        const writer = await warehouse.openStreamWriter({ prefix, topic: 'pin', streamCreatedAt: null });
        const written = await writer.write('shardId-000000000000', [toStreamRecord({ SequenceNumber: '1', PartitionKey: 'k', Data: Buffer.from('not json') })]);
        assert.equal(written.deadLetters, 1);
        const sent = wh.statements.slice(start).map((s) => s.sql);
        assert.ok(sent.some((s) => s.startsWith('MERGE INTO ') && s.includes('WHEN MATCHED THEN DELETE')), `${prefix}: the interval plan ran`);
        assert.ok(sent.some((s) => s.startsWith('CREATE OR REPLACE TABLE ')), `${prefix}: the full recompute ran`);

        const tables = [...new Set(sent.flatMap((s) => [...s.matchAll(QUALIFIED)].map((m) => m[1]!)))].sort();
        const own = `${prefixTableName(prefix, 'x').slice(0, -'__x'.length)}__`;
        assert.deepEqual(tables, PLAIN.map((n) => `${own}${n}`).sort(), `${prefix}: every persistent table is the prefix's, by the same names in every path`);
        for (const t of tables) {
          assert.match(t, /^[a-z0-9_]{1,255}$/, `${t}: a valid Databricks (Unity Catalog and Hive metastore) table name`);
        }
        // The persistent tables are never named without the prefix or the catalog and schema.
        for (const s of sent) {
          for (const n of ONLY_TABLES) assert.doesNotMatch(s, new RegExp(`(?<![a-z0-9_])${n}(?![a-z0-9_])`), `${prefix}: ${n} bare in ${s.slice(0, 200)}`);
          const unqualified = s.replace(QUALIFIED, '').match(new RegExp(`${own}[a-z0-9_]+`));
          assert.equal(unqualified, null, `${prefix}: a table named without catalog and schema in ${s.slice(0, 200)}`);
        }
        named.set(prefix, tables);
      }
    } finally {
      await warehouse.close();
    }
    for (const [i, a] of PREFIXES.entries()) {
      for (const b of PREFIXES.slice(i + 1)) {
        const shared = named.get(a)!.filter((t) => named.get(b)!.includes(t));
        assert.deepEqual(shared, [], `${a} and ${b} share no table`);
      }
    }
    assert.ok(s3Sent.length > 0 && s3Sent.every((c) => c === 'ListObjectsV2Command'), `S3: only listings (${[...new Set(s3Sent)].join(', ')})`);
  });
});
