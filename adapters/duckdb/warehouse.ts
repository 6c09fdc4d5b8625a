/**
 * The embedded warehouse (WAREHOUSE=duckdb) behind the Warehouse port (adapters/warehouse.ts).
 *
 * Cleaning: landed objects in S3 are streamed to a staging folder beside the DuckDB file
 * (never whole in memory; local folders are read where they are), cleaned in one transaction
 * (adapters/duckdb/cleaning.ts), exported as Parquet and uploaded, each output replacing
 * whatever its prefix held before. Streaming: a new DuckDB writer per call
 * (adapters/duckdb/stream-writer.ts), staging its batches beside the DuckDB file too.
 *
 * An interval run (`plan.interval`, adapters/duckdb/incremental.ts) stages only the objects it
 * merges, replaces `cleaned/<table>/` with the current state and writes the date's outputs
 * under `analytics/<name>/date=<date>/`, leaving the other dates' as they are.
 *
 * A cleaning run's staging folder is `staging/<runKey>`: its own, shared by its attempts only,
 * emptied when an attempt starts (a retry starts clean) and removed when it ends.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ANALYTICS_NAMES, CLEANED_NAMES, datedOutputKeyPrefix, outputKeyPrefix } from '../../common/cleaning';
import type { IntervalManifest } from '../../common/interval';
import { guarded } from '../../common/errors';
import { parseObjectKey } from '../../common/landing';
import { SOURCE_TABLES } from '../../common/source-tables';
import type { TopicSources } from '../../sql/render';
import { pickBatch, type BatchSources } from '../../sql/incremental';
import { deleteOthers, downloadToFile, putFile } from '../s3';
import type { CleaningOutcome, CleaningPlan, Warehouse, WarehouseDeps } from '../warehouse';
import { clearUndated, stepTimer } from '../warehouse-shared';
import { runDuckdbCleaning } from './cleaning';
import { localLandedObjects, readLedger, runDuckdbIncremental } from './incremental';
import { openDuckdbWriter } from './stream-writer';

const DOWNLOAD_CONCURRENCY = 8;

export function duckdbWarehouse(dbPath: string, { s3 }: WarehouseDeps): Warehouse {
  const stagingRoot = path.join(path.dirname(dbPath), 'staging');

  /** Streams every landed object (or those in `only`) to `<dir>/topics/<topic>/partition=<p>/...`, reporting progress. */
  async function stage(plan: CleaningPlan, dir: string, only?: ReadonlySet<string>): Promise<TopicSources> {
    const landed = plan.landed;
    if (landed.kind === 'local') return landed.folders;
    const todo = SOURCE_TABLES.flatMap((t) => landed.objects[t.topic]).filter((o) => !only || only.has(o.key));
    const total = todo.reduce((n, o) => n + o.size, 0);
    let done = 0;
    let bytes = 0;
    let next = 0;
    const worker = async () => {
      while (next < todo.length) {
        const o = todo[next++]!;
        const p = parseObjectKey(o.key)!;
        const file = path.join(dir, 'topics', p.topic, `partition=${p.partition}`, path.posix.basename(o.key));
        bytes += await guarded('S3', s3.address, () => downloadToFile(s3.client(), landed.bucket, o.key, file));
        done++;
        plan.heartbeat({ step: 'download', objects: done, of: todo.length, bytes, totalBytes: total });
      }
    };
    await Promise.all(Array.from({ length: Math.min(DOWNLOAD_CONCURRENCY, todo.length) }, worker));
    const sources = { pin: null, geo: null, user: null } as TopicSources;
    for (const t of SOURCE_TABLES) if (landed.objects[t.topic].length) sources[t.topic] = path.join(dir, 'topics', `${plan.prefix}.${t.topic}`);
    return sources;
  }

  /** Uploads `file` as the one object under `prefix`. */
  async function publish(plan: CleaningPlan, prefix: string, file: string) {
    const key = `${prefix}part-00000.parquet`;
    await guarded('S3', s3.address, async () => {
      await putFile(s3.client(), plan.output.bucket, key, file, 'application/vnd.apache.parquet');
      await deleteOthers(s3.client(), plan.output.bucket, prefix, new Set([key]));
    });
  }

  /** The interval run: merge what the ledger lacks (and the interval's own objects), publish. */
  async function runInterval(plan: CleaningPlan, interval: IntervalManifest, work: string, timings: CleaningOutcome['timings']): Promise<CleaningOutcome> {
    const timed = stepTimer(timings);
    const ledger = await timed('read ledger', () => readLedger(dbPath, plan.prefix));
    const picked = pickBatch(interval, plan.landed.kind === 's3' ? plan.landed.objects : localLandedObjects(plan.landed.folders), ledger);
    const keys = new Set(SOURCE_TABLES.flatMap((t) => picked[t.topic].map((o) => o.key)));
    const folders = await timed('stage landed objects', () => stage(plan, work, keys));
    const batch = {} as BatchSources;
    for (const t of SOURCE_TABLES) batch[t.topic] = picked[t.topic].length && folders[t.topic] ? { folder: folders[t.topic]!, objects: picked[t.topic] } : null;
    plan.heartbeat({ step: 'sql' });
    const run = await runDuckdbIncremental({
      dbPath,
      schema: plan.prefix,
      interval,
      batch,
      exportDir: path.join(work, 'export'),
      onStep: (name, i, n) => plan.heartbeat({ step: 'sql', statement: name, done: i, of: n }),
    });
    timings.push(...run.timings);
    await timed('upload Parquet', async () => {
      for (const name of CLEANED_NAMES) await publish(plan, outputKeyPrefix(plan.output.root, 'cleaned', name), run.parquet[name]!);
      for (const name of ANALYTICS_NAMES) {
        await publish(plan, datedOutputKeyPrefix(plan.output.root, name, interval.date), run.parquet[name]!);
        await clearUndated(s3, plan.output.bucket, outputKeyPrefix(plan.output.root, 'analytics', name));
        plan.heartbeat({ step: 'upload', name });
      }
    });
    const all = SOURCE_TABLES.flatMap((t) => picked[t.topic]);
    const own = all.filter((o) => o.own).length;
    const currentRows = Object.fromEntries(CLEANED_NAMES.map((n) => [n, run.rows[`${n}_current`] ?? 0])) as NonNullable<CleaningOutcome['interval']>['currentRows'];
    return { tables: run.counts, rows: run.rows, timings, interval: { objects: own, earlierObjects: all.length - own, currentRows } };
  }

  return {
    kind: 'duckdb',

    async runCleaning(plan) {
      const timings: Array<{ name: string; ms: number }> = [];
      const timed = stepTimer(timings);
      const work = path.join(stagingRoot, plan.runKey.replace(/[^A-Za-z0-9._-]/g, '_'));
      fs.rmSync(work, { recursive: true, force: true });
      try {
        if (plan.interval) return await runInterval(plan, plan.interval, work, timings);
        const sources = await timed('stage landed objects', () => stage(plan, work));
        plan.heartbeat({ step: 'sql' });
        const run = await runDuckdbCleaning({
          dbPath,
          schema: plan.prefix,
          sources,
          exportDir: path.join(work, 'export'),
          onStep: (name, i, n) => plan.heartbeat({ step: 'sql', statement: name, done: i, of: n }),
        });
        timings.push(...run.timings);
        await timed('upload Parquet', async () => {
          for (const [kind, names] of [['cleaned', CLEANED_NAMES], ['analytics', ANALYTICS_NAMES]] as const) {
            for (const name of names) {
              await publish(plan, outputKeyPrefix(plan.output.root, kind, name), run.parquet[name]!);
              plan.heartbeat({ step: 'upload', name });
            }
          }
        });
        return { tables: run.counts, rows: run.rows, timings };
      } finally {
        fs.rmSync(work, { recursive: true, force: true });
      }
    },

    openStreamWriter(target) {
      return openDuckdbWriter({ dbPath, stagingDir: path.join(stagingRoot, 'streaming'), ...target });
    },

    async close() {},
  };
}
