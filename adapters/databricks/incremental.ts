/**
 * A Databricks SQL warehouse's interval run (WAREHOUSE=databricks, a cleaning input with
 * `interval`): the Spark-dialect plan of sql/incremental.ts through one SQL session, on the
 * prefix's Delta tables in DATABRICKS_CATALOG.DATABRICKS_SCHEMA (`<prefix>__<table>`, the
 * caller's `table`): each prefix has its own versions, current tables, ledger and dated
 * outputs, so one prefix's run never reads, replaces or overwrites another's, and runs of two
 * prefixes write different Delta tables. The warehouse reads the chosen landed
 * objects from S3 itself and writes `cleaned/<table>/` (the current state) and the date's
 * `analytics/<name>/date=<date>/` as Parquet; the counts are queried back.
 *
 * Unlike DuckDB the statements are not one transaction: each Delta statement commits alone.
 * A run that fails part-way is completed by its retry or rerun, which replaces the versions of
 * every object it merges before inserting them, so nothing is counted twice.
 */
import type { IntervalManifest } from '../../common/interval';
import { ANALYTICS_NAMES, datedOutputKeyPrefix, outputKeyPrefix } from '../../common/cleaning';
import { SOURCE_TABLES } from '../../common/source-tables';
import { checkCollected, incrementalStatements, intervalOutcome, ledgerStatements, pickBatch, type BatchSources, type LedgerRow } from '../../sql/incremental';
import type { CleaningOutcome, CleaningPlan, LandedSource, WarehouseDeps } from '../warehouse';
import { clearUndated, stepTimer } from '../warehouse-shared';
import type { DatabricksSql } from './sql';

export async function runDatabricksIncremental(opts: {
  sql: DatabricksSql;
  plan: CleaningPlan;
  landed: Extract<LandedSource, { kind: 's3' }>;
  interval: IntervalManifest;
  /** The qualified, quoted name of one of the prefix's tables (`prefixedName` of adapters/databricks/sql.ts). */
  table: (name: string) => string;
  s3: WarehouseDeps['s3'];
  timings: CleaningOutcome['timings'];
}): Promise<CleaningOutcome> {
  const { sql, plan, landed, interval } = opts;
  const signal = plan.signal;
  const timed = stepTimer(opts.timings);
  const ledger = ledgerStatements('databricks', opts.table);
  await timed('ledger', () => sql.run(ledger.setup, { signal }));
  const merged = (await sql.query(ledger.query, { signal })) as unknown as LedgerRow[];
  const picked = pickBatch(interval, landed.objects, merged);
  const batch = {} as BatchSources;
  for (const t of SOURCE_TABLES) {
    const folder = landed.folders[t.topic];
    batch[t.topic] = picked[t.topic].length && folder ? { folder: `s3://${landed.bucket}/${folder}`, objects: picked[t.topic] } : null;
  }
  const location = (prefix: string) => `s3://${plan.output.bucket}/${prefix}`;
  const statements = incrementalStatements('databricks', {
    interval,
    batch,
    table: opts.table,
    exportTo: {
      cleaned: (name) => location(outputKeyPrefix(plan.output.root, 'cleaned', name)),
      analytics: (name) => location(datedOutputKeyPrefix(plan.output.root, name, interval.date)),
    },
  });
  const collected: Record<string, Array<Record<string, unknown>>> = {};
  for (const s of statements) {
    plan.heartbeat({ step: 'sql', statement: s.name });
    if (s.collect) checkCollected(s, (collected[s.collect] = await timed(s.name, () => sql.query(s.sql, { signal }))));
    else await timed(s.name, () => sql.run([s.sql], { signal }));
  }
  for (const name of ANALYTICS_NAMES) await clearUndated(opts.s3, plan.output.bucket, outputKeyPrefix(plan.output.root, 'analytics', name));
  const { tables, rows } = intervalOutcome(collected);
  const all = SOURCE_TABLES.flatMap((t) => picked[t.topic]);
  const own = all.filter((o) => o.own).length;
  const currentRows = Object.fromEntries(SOURCE_TABLES.map((t) => [`${t.topic}_clean`, rows[`${t.topic}_clean_current`] ?? 0])) as NonNullable<CleaningOutcome['interval']>['currentRows'];
  return { tables, rows, timings: opts.timings, interval: { objects: own, earlierObjects: all.length - own, currentRows } };
}
