/**
 * A Databricks SQL warehouse (WAREHOUSE=databricks) behind the Warehouse port
 * (adapters/warehouse.ts). The warehouse reads the landed objects from S3 itself.
 *
 * Tables: a prefix's tables are Delta tables in DATABRICKS_CATALOG.DATABRICKS_SCHEMA named
 * `<prefix>__<table>` (`prefixedName` of adapters/databricks/sql.ts), the same names for the
 * full recompute, the interval runs and the stream writers, so prefixes sharing the schema
 * never share a table.
 *
 * Cleaning, SQL mode: the Spark-dialect statements through one session of its own (records
 * and joined as temporary views, the twelve tables as the prefix's Delta tables, replaced on a
 * rerun), each table also written as Parquet under its output location; the counts are queried
 * back. Job mode (`plan.job`): a one-time run of the notebook (what the legacy MWAA DAG runs),
 * which gets `prefix` and builds the tables under their plain names (`<table>`, the notebook's
 * contract), then those tables' row counts through SQL.
 * Interval mode (`plan.interval`): the incremental plan on the prefix's Delta tables (adapters/databricks/incremental.ts).
 * The run's idempotency token is derived from `plan.runKey`: one notebook run per cleaning run,
 * adopted again by the activity's retries.
 *
 * Streaming: one writer (one SQL session) per stream, kept across calls because opening a
 * session takes a while, dropped after a failed write so the next call starts a fresh one;
 * `close()` closes them.
 */
import { ApplicationFailure } from '@temporalio/common';
import { ANALYTICS_NAMES, CLEANED_NAMES, outputKeyPrefix, type TableCounts } from '../../common/cleaning';
import type { CleanedTableName } from '../../common/analytics';
import { NonRetryable } from '../../common/errors';
import { SOURCE_TABLES } from '../../common/source-tables';
import { streamName } from '../../common/streaming';
import { cleaningStatements, recordCountsSql, type TopicSources } from '../../sql/render';
import type { CleaningOutcome, CleaningPlan, StreamWriter, Warehouse, WarehouseDeps } from '../warehouse';
import { stepTimer, tableCounts } from '../warehouse-shared';
import { createDatabricksJobs, idempotencyTokenFor } from './jobs';
import { configuredSqlOptions, createDatabricksSql, ensureSchema, prefixedName, qualifiedName, type DatabricksConfig } from './sql';
import { runDatabricksIncremental } from './incremental';
import { openDatabricksWriter } from './stream-writer';

export function databricksWarehouse(db: DatabricksConfig, { s3 }: WarehouseDeps): Warehouse {
  const writers = new Map<string, Promise<StreamWriter>>();

  /** Runs the notebook of `plan.job` to the end; returns its run page. */
  async function runJob(plan: CleaningPlan, job: NonNullable<CleaningPlan['job']>): Promise<string | undefined> {
    const jobs = createDatabricksJobs(db);
    const runId = await jobs.submitRun({
      runName: `pinflow cleaning ${plan.prefix}`,
      idempotencyToken: idempotencyTokenFor(plan.runKey),
      task: { kind: 'notebook', notebookPath: job.notebookPath, parameters: { prefix: plan.prefix, ...job.parameters } },
    });
    const final = await jobs.waitForRun(runId, { signal: plan.signal, onPoll: (s) => plan.heartbeat({ step: 'job', runId, lifeCycleState: s.lifeCycleState }) });
    return final.runPageUrl;
  }

  async function runCleaning(plan: CleaningPlan): Promise<CleaningOutcome> {
    const landed = plan.landed;
    if (landed.kind === 'local') throw ApplicationFailure.nonRetryable('WAREHOUSE=databricks reads landed objects from S3; a local folder cannot be cleaned there', NonRetryable.badInput);
    const sources = { pin: null, geo: null, user: null } as TopicSources;
    for (const t of SOURCE_TABLES) if (landed.folders[t.topic]) sources[t.topic] = `s3://${landed.bucket}/${landed.folders[t.topic]}`;
    const location = (kind: 'cleaned' | 'analytics', name: string) => `s3://${plan.output.bucket}/${outputKeyPrefix(plan.output.root, kind, name)}`;
    const timings: CleaningOutcome['timings'] = [];
    const timed = stepTimer(timings);
    const signal = plan.signal;
    const table = (name: string) => prefixedName(db, plan.prefix, name);
    // The tables a notebook built (plain names), else the prefix's own.
    const counted = plan.job ? (name: string) => qualifiedName(db, name) : table;

    const jobRunUrl = plan.job ? await timed('Databricks job run', () => runJob(plan, plan.job!)) : undefined;
    const sqlOptions = configuredSqlOptions(db);
    await ensureSchema(db, sqlOptions, signal);
    const sql = createDatabricksSql(db, sqlOptions);
    try {
      if (plan.interval) return await runDatabricksIncremental({ sql, plan, landed, interval: plan.interval, table, s3, timings });
      const counts = {} as Record<string, Record<string, unknown>>;
      if (!plan.job) {
        for (const s of cleaningStatements('databricks', sources)) {
          const ddl =
            s.kind === 'records' || s.kind === 'view'
              ? [`CREATE OR REPLACE TEMPORARY VIEW ${s.name} AS ${s.sql}`]
              : [
                  `CREATE OR REPLACE TABLE ${table(s.name)} AS ${s.sql}`,
                  `INSERT OVERWRITE DIRECTORY '${location(s.kind === 'cleaned' ? 'cleaned' : 'analytics', s.name)}' USING PARQUET SELECT * FROM ${table(s.name)}`,
                ];
          plan.heartbeat({ step: 'sql', statement: s.name });
          await timed(s.name, () => sql.run(ddl, { signal }));
        }
        for (const t of SOURCE_TABLES) counts[t.topic] = (await sql.query(recordCountsSql('databricks', t.topic), { signal }))[0] ?? {};
      }
      const rows: Record<string, number> = {};
      for (const name of [...CLEANED_NAMES, ...ANALYTICS_NAMES]) {
        rows[name] = Number((await sql.query(`SELECT count(*) AS n FROM ${counted(name)}`, { signal }))[0]?.n ?? 0);
      }
      // In job mode the notebook's records are not visible here: the table's rows stand for what was read.
      const tables = Object.fromEntries(
        SOURCE_TABLES.map((t) => [`${t.topic}_clean`, counts[t.topic] ? tableCounts(counts[t.topic]!) : { read: rows[`${t.topic}_clean`]!, rows: rows[`${t.topic}_clean`]!, duplicates: 0, leftOut: {} }]),
      ) as Record<CleanedTableName, TableCounts>;
      return { tables, rows, timings, jobRunUrl };
    } finally {
      await sql.close();
    }
  }

  return {
    kind: 'databricks',
    runCleaning,

    async openStreamWriter(target) {
      const key = streamName(target.prefix, target.topic);
      let shared = writers.get(key);
      if (!shared) {
        const opening = openDatabricksWriter({ databricks: db, s3, topic: target.topic, prefix: target.prefix });
        writers.set(key, opening);
        opening.catch(() => {
          if (writers.get(key) === opening) writers.delete(key);
        });
        shared = opening;
      }
      const current = shared;
      const writer = await current;
      return {
        checkpoints: () => writer.checkpoints(),
        write: (shardId, records) =>
          writer.write(shardId, records).catch(async (err) => {
            if (writers.get(key) === current) writers.delete(key);
            await writer.close().catch(() => undefined);
            throw err;
          }),
        // Kept open for the next call; the warehouse's close() ends it.
        close: async () => {},
      };
    },

    async close() {
      const open = [...writers.values()];
      writers.clear();
      await Promise.allSettled(open.map(async (w) => (await w).close()));
    },
  };
}
