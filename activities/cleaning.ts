/**
 * Cleaning activities: find the landed objects, run the cleaning and analytics statements on
 * the configured warehouse, publish every table as Parquet under `cleaned/` and `analytics/`.
 *
 * duckdb: objects are streamed from S3 to a staging folder (never whole in memory), cleaned
 * in the DuckDB file, exported and uploaded. databricks: the warehouse reads the objects from
 * S3 itself (see adapters/databricks.ts). Both replace their outputs on a rerun.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../config';
import {
  ANALYTICS_NAMES,
  CLEANED_NAMES,
  describeSource,
  outputKeyPrefix,
  validateCleaningInput,
  type CleaningInput,
  type CleaningResult,
  type TableCounts,
  type TopicInventory,
} from '../common/cleaning';
import type { CleanedTableName as CleanedName } from '../common/analytics';
import { guarded, NonRetryable } from '../common/errors';
import { parseObjectKey } from '../common/landing';
import { SOURCE_TABLES } from '../common/source-tables';
import { cleaningStatements, recordCountsSql, type TopicSources } from '../sql/render';
import { createDatabricksJobs, createDatabricksSql } from '../adapters/databricks';
import { runDuckdbCleaning, tableCounts } from '../adapters/duckdb';
import { deleteOthers, downloadToFile, listObjects, putFile, type s3Adapter } from '../adapters/s3';
import { pipelineMetrics } from '../common/metrics';

const DOWNLOAD_CONCURRENCY = 8;

type Topic = (typeof SOURCE_TABLES)[number]['topic'];

/** The landed object keys of one topic (dead letters and foreign files left out). */
function landedOnly(objects: Array<{ key: string; size: number }>, topic: string) {
  return objects.filter((o) => parseObjectKey(o.key)?.topic === topic);
}

/** A local source folder: `<dir>/topics/<topic>` when `<dir>/topics` exists, else `<dir>/<topic>`. */
function localTopicDir(dir: string, topic: string): string {
  const topics = fs.existsSync(path.join(dir, 'topics')) ? path.join(dir, 'topics') : dir;
  return path.join(topics, topic);
}

function localInventory(dir: string, topic: string): Array<{ key: string; size: number }> {
  const root = localTopicDir(dir, topic);
  if (!fs.existsSync(root)) return [];
  const out: Array<{ key: string; size: number }> = [];
  for (const part of fs.readdirSync(root).filter((p) => p.startsWith('partition=')).sort()) {
    for (const f of fs.readdirSync(path.join(root, part)).sort()) {
      const key = `topics/${topic}/${part}/${f}`;
      if (parseObjectKey(key)) out.push({ key, size: fs.statSync(path.join(root, part, f)).size });
    }
  }
  return out;
}

export function cleaningActivities(config: Config, s3: ReturnType<typeof s3Adapter>) {
  const stagingRoot = path.join(path.dirname(config.warehouse.duckdbPath), 'staging');
  const outputLocation = (input: CleaningInput, kind: 'cleaned' | 'analytics', name: string) => `s3://${s3.bucket}/${outputKeyPrefix(input.outputRoot ?? '', kind, name)}`;

  /** The workflow's result: counts, locations, timings (never rows). */
  function result(
    input: CleaningInput,
    warehouse: CleaningResult['warehouse'],
    objects: Record<Topic, Array<{ key: string; size: number }>>,
    tables: Record<CleanedName, TableCounts>,
    rows: Record<string, number>,
    timings: CleaningResult['timings'],
    jobRunUrl?: string,
  ): CleaningResult {
    const all = SOURCE_TABLES.flatMap((t) => objects[t.topic]);
    return {
      prefix: input.prefix,
      warehouse,
      input: describeSource(input.source, s3.bucket, input.prefix),
      objectsRead: all.length,
      bytesRead: all.reduce((n, o) => n + o.size, 0),
      tables: Object.fromEntries(CLEANED_NAMES.map((n) => [n, { ...tables[n], location: outputLocation(input, 'cleaned', n) }])) as CleaningResult['tables'],
      analytics: Object.fromEntries(ANALYTICS_NAMES.map((n) => [n, { rows: rows[n]!, location: outputLocation(input, 'analytics', n) }])) as CleaningResult['analytics'],
      timings,
      jobRunUrl,
    };
  }

  function checkInput(input: CleaningInput) {
    const problems = validateCleaningInput(input);
    if (problems.length) throw ApplicationFailure.nonRetryable(`invalid cleaning input: ${problems.join('; ')}`, NonRetryable.badInput);
    if (input.source?.kind === 'local' && !fs.existsSync(input.source.dir)) {
      throw ApplicationFailure.nonRetryable(`cleaning input folder ${input.source.dir} does not exist on the worker`, NonRetryable.missingResource);
    }
  }

  async function inventory(input: CleaningInput): Promise<Record<Topic, Array<{ key: string; size: number }>>> {
    const out = {} as Record<Topic, Array<{ key: string; size: number }>>;
    const source = input.source ?? { kind: 's3' as const };
    for (const t of SOURCE_TABLES) {
      const topic = `${input.prefix}.${t.topic}`;
      if (source.kind === 'local') {
        out[t.topic] = localInventory(source.dir, topic);
      } else {
        const bucket = source.bucket ?? s3.bucket;
        const all = await guarded('S3', s3.address, () => listObjects(s3.client(), bucket, `${source.topicsDir ?? 'topics'}/${topic}/`));
        out[t.topic] = landedOnly(all, topic);
      }
    }
    return out;
  }

  /** Streams every landed object to `<dir>/topics/<topic>/partition=<p>/...`, heartbeating progress. */
  async function stage(input: CleaningInput, objects: Record<Topic, Array<{ key: string; size: number }>>, dir: string): Promise<TopicSources> {
    const source = input.source ?? { kind: 's3' as const };
    const sources = { pin: null, geo: null, user: null } as TopicSources;
    if (source.kind === 'local') {
      for (const t of SOURCE_TABLES) if (objects[t.topic].length) sources[t.topic] = localTopicDir(source.dir, `${input.prefix}.${t.topic}`);
      return sources;
    }
    const bucket = source.bucket ?? s3.bucket;
    const todo = SOURCE_TABLES.flatMap((t) => objects[t.topic].map((o) => ({ ...o, topic: t.topic })));
    const total = todo.reduce((n, o) => n + o.size, 0);
    let done = 0;
    let bytes = 0;
    let next = 0;
    const ctx = Context.current();
    const worker = async () => {
      while (next < todo.length) {
        const o = todo[next++]!;
        const p = parseObjectKey(o.key)!;
        const file = path.join(dir, 'topics', p.topic, `partition=${p.partition}`, path.posix.basename(o.key));
        bytes += await guarded('S3', s3.address, () => downloadToFile(s3.client(), bucket, o.key, file));
        done++;
        ctx.heartbeat({ step: 'download', objects: done, of: todo.length, bytes, totalBytes: total });
      }
    };
    await Promise.all(Array.from({ length: Math.min(DOWNLOAD_CONCURRENCY, todo.length) }, worker));
    for (const t of SOURCE_TABLES) if (objects[t.topic].length) sources[t.topic] = path.join(dir, 'topics', `${input.prefix}.${t.topic}`);
    return sources;
  }

  return {
    /** What is landed for the input, per topic (object count and bytes). Quick: listing only. */
    async cleaningInventory(input: CleaningInput): Promise<TopicInventory[]> {
      checkInput(input);
      const objects = await inventory(input);
      return SOURCE_TABLES.map((t) => ({
        topic: `${input.prefix}.${t.topic}`,
        objects: objects[t.topic].length,
        bytes: objects[t.topic].reduce((n, o) => n + o.size, 0),
      }));
    },

    /**
     * Cleans and analyses everything landed for the input on the embedded warehouse and
     * publishes the tables as Parquet. Idempotent: a rerun recomputes from the same objects
     * and replaces the tables and the objects.
     */
    async runCleaning(input: CleaningInput & { runKey: string }): Promise<CleaningResult> {
      checkInput(input);
      const ctx = Context.current();
      // Statements can run for a while without a step to report: keep the heartbeat going.
      const beat = setInterval(() => ctx.heartbeat({ step: 'alive' }), 5_000);
      const started = performance.now();
      try {
        const result = config.warehouse.kind === 'databricks' ? await runOnDatabricks(input) : await runOnDuckdb(input);
        const metrics = pipelineMetrics(ctx.metricMeter);
        metrics.cleaned(result.tables);
        metrics.stageDuration('cleaning', performance.now() - started);
        return result;
      } finally {
        clearInterval(beat);
      }
    },
  };

  /**
   * The warehouse reads the landed objects from S3 itself. SQL mode: the Spark-dialect
   * statements through one session (records and joined as temporary views, the twelve tables
   * as Delta tables in DATABRICKS_CATALOG.DATABRICKS_SCHEMA, replaced on a rerun), each table
   * also written as Parquet under cleaned/ and analytics/. Job mode: a one-time run of the
   * given notebook (as the MWAA DAG did), then the tables' row counts through SQL.
   */
  async function runOnDatabricks(input: CleaningInput & { runKey: string }): Promise<CleaningResult> {
    const ctx = Context.current();
    const db = config.warehouse.databricks;
    const timings: CleaningResult['timings'] = [];
    const objects = await inventory(input);
    const source = input.source ?? { kind: 's3' as const };
    if (source.kind === 'local') throw ApplicationFailure.nonRetryable('WAREHOUSE=databricks reads landed objects from S3; a local folder cannot be cleaned there', NonRetryable.badInput);
    const bucket = source.bucket ?? s3.bucket;
    const sources = { pin: null, geo: null, user: null } as TopicSources;
    for (const t of SOURCE_TABLES) if (objects[t.topic].length) sources[t.topic] = `s3://${bucket}/${source.topicsDir ?? 'topics'}/${input.prefix}.${t.topic}`;
    const location = (kind: 'cleaned' | 'analytics', name: string) => outputLocation(input, kind, name);
    const ca = db.caFile ? fs.readFileSync(db.caFile, 'utf8') : undefined;
    const table = (name: string) => `\`${db.catalog}\`.\`${db.schema}\`.\`${name}\``;

    let jobRunUrl: string | undefined;
    const timed = async <T>(name: string, fn: () => Promise<T>) => {
      const t0 = performance.now();
      try {
        return await fn();
      } finally {
        timings.push({ name, ms: Math.round(performance.now() - t0) });
      }
    };
    if (input.databricksJob) {
      const jobs = createDatabricksJobs(db);
      const runId = await jobs.submitRun({
        runName: `pinflow cleaning ${input.prefix}`,
        idempotencyToken: input.runKey.slice(0, 64),
        task: { kind: 'notebook', notebookPath: input.databricksJob.notebookPath, parameters: { prefix: input.prefix, ...input.databricksJob.parameters } },
      });
      const final = await timed('Databricks job run', () =>
        jobs.waitForRun(runId, { signal: ctx.cancellationSignal, onPoll: (s) => ctx.heartbeat({ step: 'job', runId, lifeCycleState: s.lifeCycleState }) }),
      );
      jobRunUrl = final.runPageUrl;
    }

    // The schema first, from a session that does not start in it.
    const setup = createDatabricksSql(db, { ca, initialSchema: null });
    try {
      await setup.run([`CREATE SCHEMA IF NOT EXISTS \`${db.catalog}\`.\`${db.schema}\``], { signal: ctx.cancellationSignal });
    } finally {
      await setup.close();
    }
    const sql = createDatabricksSql(db, { ca });
    try {
      const counts = {} as Record<string, Record<string, unknown>>;
      if (!input.databricksJob) {
        for (const s of cleaningStatements('databricks', sources)) {
          const ddl =
            s.kind === 'records' || s.kind === 'view'
              ? [`CREATE OR REPLACE TEMPORARY VIEW ${s.name} AS ${s.sql}`]
              : [
                  `CREATE OR REPLACE TABLE ${table(s.name)} AS ${s.sql}`,
                  `INSERT OVERWRITE DIRECTORY '${location(s.kind === 'cleaned' ? 'cleaned' : 'analytics', s.name)}' USING PARQUET SELECT * FROM ${table(s.name)}`,
                ];
          ctx.heartbeat({ step: 'sql', statement: s.name });
          await timed(s.name, () => sql.run(ddl, { signal: ctx.cancellationSignal }));
        }
        for (const t of SOURCE_TABLES) counts[t.topic] = (await sql.query(recordCountsSql('databricks', t.topic), { signal: ctx.cancellationSignal }))[0] ?? {};
      }
      const rows: Record<string, number> = {};
      for (const name of [...CLEANED_NAMES, ...ANALYTICS_NAMES]) {
        rows[name] = Number((await sql.query(`SELECT count(*) AS n FROM ${table(name)}`, { signal: ctx.cancellationSignal }))[0]?.n ?? 0);
      }
      const tables = Object.fromEntries(
        SOURCE_TABLES.map((t) => [`${t.topic}_clean`, counts[t.topic] ? tableCounts(counts[t.topic]!) : { read: rows[`${t.topic}_clean`]!, rows: rows[`${t.topic}_clean`]!, duplicates: 0, leftOut: {} }]),
      ) as Record<CleanedName, TableCounts>;
      return result(input, 'databricks', objects, tables, rows, timings, jobRunUrl);
    } finally {
      await sql.close();
    }
  }

  async function runOnDuckdb(input: CleaningInput & { runKey: string }): Promise<CleaningResult> {
      const ctx = Context.current();
      const timings: CleaningResult['timings'] = [];
      const work = path.join(stagingRoot, input.runKey.replace(/[^A-Za-z0-9._-]/g, '_'));
      fs.rmSync(work, { recursive: true, force: true });
      try {
        let t0 = performance.now();
        const objects = await inventory(input);
        const sources = await stage(input, objects, work);
        timings.push({ name: 'stage landed objects', ms: Math.round(performance.now() - t0) });
        ctx.heartbeat({ step: 'sql' });
        const run = await runDuckdbCleaning({
          dbPath: config.warehouse.duckdbPath,
          schema: input.prefix,
          sources,
          exportDir: path.join(work, 'export'),
          onStep: (name, i, n) => ctx.heartbeat({ step: 'sql', statement: name, done: i, of: n }),
        });
        timings.push(...run.timings);
        t0 = performance.now();
        const root = input.outputRoot ?? '';
        for (const [kind, names] of [['cleaned', CLEANED_NAMES], ['analytics', ANALYTICS_NAMES]] as const) {
          for (const name of names) {
            const prefix = outputKeyPrefix(root, kind, name);
            const key = `${prefix}part-00000.parquet`;
            await guarded('S3', s3.address, async () => {
              await putFile(s3.client(), s3.bucket, key, run.parquet[name]!, 'application/vnd.apache.parquet');
              await deleteOthers(s3.client(), s3.bucket, prefix, new Set([key]));
            });
            ctx.heartbeat({ step: 'upload', name });
          }
        }
        timings.push({ name: 'upload Parquet', ms: Math.round(performance.now() - t0) });
        return result(input, 'duckdb', objects, run.counts, run.rows, timings);
      } finally {
        fs.rmSync(work, { recursive: true, force: true });
      }
  }
}
