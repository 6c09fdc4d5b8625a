/**
 * Cleaning activities: find the landed objects, run the cleaning and analytics statements on
 * the configured warehouse, publish every table as Parquet under `cleaned/` and `analytics/`.
 *
 * duckdb: objects are streamed from S3 to a staging folder (never whole in memory), cleaned
 * in the DuckDB file, exported and uploaded. databricks: the warehouse reads the objects from
 * S3 itself (see activities/databricks.ts). Both replace their outputs on a rerun.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../common/config';
import {
  ANALYTICS_NAMES,
  CLEANED_NAMES,
  describeSource,
  outputKeyPrefix,
  validateCleaningInput,
  type CleaningInput,
  type CleaningResult,
  type TopicInventory,
} from '../common/cleaning';
import { guarded, NonRetryable } from '../common/errors';
import { parseObjectKey } from '../common/landing';
import { SOURCE_TABLES } from '../common/source-tables';
import type { TopicSources } from '../common/sql';
import { runDuckdbCleaning } from './duckdb';
import { deleteOthers, downloadToFile, listObjects, putFile, type s3Adapter } from './s3';

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
      const beat = setInterval(() => ctx.heartbeat({ step: 'alive' }), 10_000);
      try {
        if (config.warehouse.kind === 'databricks') return await runOnDatabricks(input);
        return await runOnDuckdb(input);
      } finally {
        clearInterval(beat);
      }
    },
  };

  async function runOnDatabricks(_input: CleaningInput & { runKey: string }): Promise<CleaningResult> {
    throw ApplicationFailure.nonRetryable('WAREHOUSE=databricks: not wired yet', NonRetryable.config);
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
        const location = (kind: 'cleaned' | 'analytics', name: string) => `s3://${s3.bucket}/${outputKeyPrefix(root, kind, name)}`;
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
        const all = SOURCE_TABLES.flatMap((t) => objects[t.topic]);
        return {
          prefix: input.prefix,
          warehouse: 'duckdb',
          input: describeSource(input.source, s3.bucket, input.prefix),
          objectsRead: all.length,
          bytesRead: all.reduce((n, o) => n + o.size, 0),
          tables: Object.fromEntries(CLEANED_NAMES.map((n) => [n, { ...run.counts[n], location: location('cleaned', n) }])) as CleaningResult['tables'],
          analytics: Object.fromEntries(ANALYTICS_NAMES.map((n) => [n, { rows: run.rows[n]!, location: location('analytics', n) }])) as CleaningResult['analytics'],
          timings,
        };
      } finally {
        fs.rmSync(work, { recursive: true, force: true });
      }
  }
}
