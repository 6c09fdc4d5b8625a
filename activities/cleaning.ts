/**
 * Cleaning activities: find the landed objects, have the warehouse (the Warehouse port,
 * adapters/warehouse.ts) run the cleaning and analytics statements over them and publish
 * every table as Parquet under `cleaned/` and `analytics/`, and report the result. A rerun
 * replaces the outputs. With an `interval` the warehouse merges that date's objects into the
 * cleaned tables and writes the date's outputs under `analytics/<name>/date=<date>/` (the
 * result's tables then count the interval's records and keys).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import {
  ANALYTICS_NAMES,
  CLEANED_NAMES,
  datedOutputKeyPrefix,
  describeSource,
  outputKeyPrefix,
  validateCleaningInput,
  type CleaningInput,
  type CleaningResult,
  type TopicInventory,
} from '../common/cleaning';
import { guarded, NonRetryable } from '../common/errors';
import { parseObjectKey } from '../common/landing';
import { pipelineMetrics } from '../common/metrics';
import { SOURCE_TABLES } from '../common/source-tables';
import type { TopicSources } from '../sql/render';
import { listObjects, type s3Adapter } from '../adapters/s3';
import type { CleaningOutcome, LandedObject, LandedSource, Topic, Warehouse } from '../adapters/warehouse';

type Inventory = Record<Topic, LandedObject[]>;

/** The landed object keys of one topic (dead letters and foreign files left out). */
function landedOnly(objects: LandedObject[], topic: string) {
  return objects.filter((o) => parseObjectKey(o.key)?.topic === topic);
}

/** A local source folder: `<dir>/topics/<topic>` when `<dir>/topics` exists, else `<dir>/<topic>`. */
function localTopicDir(dir: string, topic: string): string {
  const topics = fs.existsSync(path.join(dir, 'topics')) ? path.join(dir, 'topics') : dir;
  return path.join(topics, topic);
}

function localInventory(dir: string, topic: string): LandedObject[] {
  const root = localTopicDir(dir, topic);
  if (!fs.existsSync(root)) return [];
  const out: LandedObject[] = [];
  for (const part of fs.readdirSync(root).filter((p) => p.startsWith('partition=')).sort()) {
    for (const f of fs.readdirSync(path.join(root, part)).sort()) {
      const key = `topics/${topic}/${part}/${f}`;
      if (parseObjectKey(key)) out.push({ key, size: fs.statSync(path.join(root, part, f)).size });
    }
  }
  return out;
}

export function cleaningActivities(s3: ReturnType<typeof s3Adapter>, warehouse: Warehouse) {
  const outputLocation = (input: CleaningInput, kind: 'cleaned' | 'analytics', name: string) =>
    `s3://${s3.bucket}/${kind === 'analytics' && input.interval ? datedOutputKeyPrefix(input.outputRoot ?? '', name, input.interval.date) : outputKeyPrefix(input.outputRoot ?? '', kind, name)}`;

  /** The workflow's result: counts, locations, timings (never rows). */
  function result(input: CleaningInput, objects: Inventory, run: CleaningOutcome): CleaningResult {
    const all = SOURCE_TABLES.flatMap((t) => objects[t.topic]);
    return {
      prefix: input.prefix,
      warehouse: warehouse.kind,
      input: describeSource(input.source, s3.bucket, input.prefix),
      objectsRead: all.length,
      bytesRead: all.reduce((n, o) => n + o.size, 0),
      tables: Object.fromEntries(CLEANED_NAMES.map((n) => [n, { ...run.tables[n], location: outputLocation(input, 'cleaned', n) }])) as CleaningResult['tables'],
      analytics: Object.fromEntries(ANALYTICS_NAMES.map((n) => [n, { rows: run.rows[n]!, location: outputLocation(input, 'analytics', n) }])) as CleaningResult['analytics'],
      timings: run.timings,
      jobRunUrl: run.jobRunUrl,
      ...(input.interval && run.interval ? { interval: { date: input.interval.date, partial: input.interval.partial, ...run.interval } } : {}),
    };
  }

  function checkInput(input: CleaningInput) {
    const problems = validateCleaningInput(input);
    if (problems.length) throw ApplicationFailure.nonRetryable(`invalid cleaning input: ${problems.join('; ')}`, NonRetryable.badInput);
    if (input.source?.kind === 'local' && !fs.existsSync(input.source.dir)) {
      throw ApplicationFailure.nonRetryable(`cleaning input folder ${input.source.dir} does not exist on the worker`, NonRetryable.missingResource);
    }
  }

  async function inventory(input: CleaningInput): Promise<Inventory> {
    const out = {} as Inventory;
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

  /** Where the inventoried objects are, per topic with any. */
  function landedSource(input: CleaningInput, objects: Inventory): LandedSource {
    const source = input.source ?? { kind: 's3' as const };
    const folders = { pin: null, geo: null, user: null } as TopicSources;
    for (const t of SOURCE_TABLES) {
      if (!objects[t.topic].length) continue;
      const topic = `${input.prefix}.${t.topic}`;
      folders[t.topic] = source.kind === 'local' ? localTopicDir(source.dir, topic) : `${source.topicsDir ?? 'topics'}/${topic}`;
    }
    return source.kind === 'local' ? { kind: 'local', folders } : { kind: 's3', bucket: source.bucket ?? s3.bucket, folders, objects };
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
     * Cleans and analyses everything landed for the input on the configured warehouse and
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
        const objects = await inventory(input);
        const run = await warehouse.runCleaning({
          prefix: input.prefix,
          runKey: input.runKey,
          landed: landedSource(input, objects),
          output: { bucket: s3.bucket, root: input.outputRoot ?? '' },
          job: input.databricksJob,
          ...(input.interval ? { interval: input.interval } : {}),
          signal: ctx.cancellationSignal,
          heartbeat: (details) => ctx.heartbeat(details),
        });
        const metrics = pipelineMetrics(ctx.metricMeter);
        metrics.cleaned(run.tables);
        metrics.stageDuration('cleaning', performance.now() - started);
        return result(input, objects, run);
      } finally {
        clearInterval(beat);
      }
    },
  };
}
