/**
 * Landing activities: Kafka partitions to S3 objects in the Confluent S3 sink layout.
 * Glue between the Kafka and S3 adapters; the object rules live in common/landing.ts.
 *
 * Exactly once by construction: an object's key comes from its first offset and its content
 * from the offset range, which is decided only by offsets (`from`, `to`, flushSize,
 * maxObjectBytes, and the interval boundaries `cutAt`: an object never spans a date's
 * boundary, see common/interval.ts). A retried activity rewrites identical objects
 * (putObjectOnce accepts the same bytes and refuses different ones). Progress lives in the workflow (the ranges it
 * passes in) and in the bucket itself: each object records the next offset in its metadata,
 * so a new run resumes after the last object of each partition.
 *
 * Memory: each record is copied into its object's body as it is read (BodyBuilder), so Kafka's
 * fetch buffers are released batch by batch; a body is sent as built, never joined. The
 * partitions being landed at once in this worker are bounded by bytes (LANDING_OPEN_BYTES, at
 * least one per landTopic): the others wait paused, before their first fetch.
 */
import { Context } from '@temporalio/activity';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { randomUUID } from 'node:crypto';
import type { Config } from '../config';
import { guarded, NonRetryable } from '../common/errors';
import {
  DEAD_LETTER_DIR,
  deadLetterKey,
  isInternalTopic,
  landingManifestKey,
  objectKey,
  type LandedPartition,
  type LandingGap,
  type LandingManifest,
  type PartitionRange,
} from '../common/landing';
import { fetchTopicIds } from '../adapters/kafka-topic-ids';
import { SOURCE_TABLES, topicName } from '../common/source-tables';
import type { kafkaAdapter } from '../adapters/kafka';
import { landableLine } from './landable';
import type { s3Adapter } from '../adapters/s3';
import { objectsInRange, resumePoint } from './landed-objects';
import { landingCuts } from './intervals';
import type { IntervalEnd } from '../common/interval';
import { BodyBuilder, putObjectOnce } from '../adapters/s3-put-once';
import { pipelineMetrics } from '../common/metrics';

/** Fetch sizes of the landing consumer: large enough for throughput, small enough for memory. */
export const LANDING_FETCH = { maxBytesPerPartition: 1024 * 1024, maxBytes: 4 * 1024 * 1024, maxWaitTimeInMs: 250 };

/**
 * Bytes of objects this worker's landings build at once: a partition starts only while the
 * object sizes expected of the partitions being landed fit (each landTopic lands at least one).
 */
export const LANDING_OPEN_BYTES = 16 * 1024 * 1024;

/**
 * The worker's partitions being landed: the bytes their objects are expected to hold, and
 * the landings waiting for room. The expected size of an object: flushSize lines of the mean
 * size seen so far (1 KiB before any), at most maxObjectBytes.
 */
const open = { bytes: 0, meanLineBytes: 1024, waiting: new Set<() => void>() };
const expectedObjectBytes = (flushSize: number, maxObjectBytes: number) => Math.min(maxObjectBytes, Math.ceil(flushSize * open.meanLineBytes));

export interface LandingPlanInput {
  prefix: string;
  topicsRegex?: string;
  topicsDir: string;
  /** Plan past offsets that can no longer be landed (reported as gaps) instead of failing. */
  acceptGaps?: boolean;
  /** Land each listed partition up to this offset at most, and no other partition (a date's interval). */
  endOffsets?: IntervalEnd[];
}

export interface LandTopicInput {
  runId: string;
  topic: string;
  /** Written into every object's metadata, so a later plan notices a recreated topic. */
  topicId: string | null;
  /** Offsets [from, to) per partition; `cutAt`: the interval boundaries inside, where an object closes. */
  ranges: Array<{ partition: number; from: number; to: number; cutAt?: number[] }>;
  flushSize: number;
  maxObjectBytes: number;
  topicsDir: string;
}

export interface LandTopicResult {
  partitions: LandedPartition[];
}

export interface LandingManifestInput {
  prefix: string;
  workflowId: string;
  runId: string;
  topicsDir: string;
  partitions: Array<{ topic: string; partition: number; from: number; next: number }>;
}

const NEWLINE = Buffer.from('\n');

/** A count from heartbeat details, also those of an attempt on an older worker (a list of keys). */
const countOf = (x: number | string[] | undefined): number => (x === undefined ? 0 : typeof x === 'number' ? x : x.length);

/** What this worker reports: counts only. */
type Landed = Omit<LandedPartition, 'objects' | 'deadLetterObjects'> & { objects: number; deadLetterObjects: number };

/** One partition's writer: the range, the object being built, and what was landed. */
interface Writer {
  landed: Landed;
  to: number;
  cutAt: number[];
  /** Next offset the consumer will read (data, control or aborted record). */
  position: number;
  /** Offset of the last record put into an object. */
  lastRecord: number;
  /** First offset of the object being built, null when none is open. */
  start: number | null;
  /** The object's NDJSON lines so far (null until its first line) and how many. */
  body: BodyBuilder | null;
  lines: number;
  dead: DeadLetter[];
  lock: Promise<void>;
}

interface DeadLetter {
  topic: string;
  partition: number;
  offset: string;
  reason: string;
  key: string | null;
  value: string | null;
}

export function landingActivities(config: Config, kafka: ReturnType<typeof kafkaAdapter>, s3: ReturnType<typeof s3Adapter>) {
  return {
    /**
     * The topics to land, and for each partition the offsets from (bucket) and to (now, or the
     * interval's end with `endOffsets`), with the interval boundaries between (`cuts`).
     */
    async landingPlan(input: LandingPlanInput): Promise<PartitionRange[]> {
      const admin = await kafka.guard(() => kafka.admin());
      const topics = await kafka.guard(async () => {
        const all = await admin.listTopics();
        if (input.topicsRegex) {
          const re = new RegExp(input.topicsRegex);
          return all.filter((t) => re.test(t) && !isInternalTopic(t)).sort();
        }
        const wanted = SOURCE_TABLES.map((t) => topicName(input.prefix, t.topic));
        return wanted.filter((t) => all.includes(t));
      });
      const ids = new Map((await kafka.guard(() => fetchTopicIds(kafka.kafka(), topics))).map((t) => [t.topic, t.topicId]));
      const ranges: PartitionRange[] = [];
      const gaps: LandingGap[] = [];
      for (const topic of topics) {
        const topicId = ids.get(topic) ?? null;
        const offsets = await kafka.guard(() => admin.fetchTopicOffsets(topic));
        for (const o of offsets.sort((a, b) => a.partition - b.partition)) {
          const low = Number(o.low);
          const high = Number(o.high);
          const resumed = await guarded('S3', s3.address, () => resumePoint(s3, input.topicsDir, topic, o.partition));
          const where = `topic ${topic} partition ${o.partition}`;
          let from = resumed?.next ?? low;
          let gap: LandingGap | undefined;
          if (resumed && ((resumed.topicId && topicId && resumed.topicId !== topicId) || resumed.next > high)) {
            // Offsets restarted: landing [low, next) again would overwrite the old topic's objects.
            const why = resumed.topicId && topicId && resumed.topicId !== topicId ? `its topic id is ${topicId}, the bucket's objects were written from topic id ${resumed.topicId}` : `its end offset ${high} is below the bucket's next offset ${resumed.next}`;
            gap = { topic, partition: o.partition, kind: 'recreated', from: low, to: Math.min(resumed.next, Math.max(low, high)), detail: `${where} was recreated (${why}); offsets ${low} to ${resumed.next - 1} of the new topic are not landed, so no object of the old topic is overwritten` };
            from = Math.max(resumed.next, low);
          } else if (resumed && resumed.next < low) {
            gap = { topic, partition: o.partition, kind: 'expired', from: resumed.next, to: low, detail: `${where}: offsets ${resumed.next} to ${low - 1} expired (retention) before they were landed; the log now starts at ${low}` };
            from = low;
          }
          if (gap) gaps.push(gap);
          let to = Math.max(from, high);
          if (input.endOffsets) {
            const end = input.endOffsets.find((e) => e.topic === topic && e.partition === o.partition)?.end;
            to = end === undefined ? from : Math.max(from, Math.min(to, end));
          }
          ranges.push({ topic, partition: o.partition, from, to, topicId, ...(gap ? { gap } : {}) });
        }
        Context.current().heartbeat();
      }
      const cuts = await landingCuts(kafka, s3, input.prefix, ranges, Date.now());
      for (const r of ranges) {
        const c = cuts.get(`${r.topic}/${r.partition}`);
        if (c) r.cuts = c;
      }
      if (gaps.length && !input.acceptGaps) {
        throw ApplicationFailure.nonRetryable(
          `landing cannot continue without losing data: ${gaps.map((g) => g.detail).join('; ')}. Land on past the gap with --accept-gaps (acceptGaps: true), or move the objects away`,
          NonRetryable.dataGap,
        );
      }
      return ranges;
    },

    /**
     * Lands the given offset ranges of one topic. Heartbeats after every object with the
     * offsets landed so far; a retry resumes from them (object boundaries stay the same).
     */
    async landTopic(input: LandTopicInput): Promise<LandTopicResult> {
      const ctx = Context.current();
      const started = performance.now();
      const resumed = (ctx.info.heartbeatDetails as { done?: LandedPartition[] } | undefined) ?? {};
      const topicIdMeta: Record<string, string> = input.topicId ? { 'pinflow-topic-id': input.topicId } : {};
      const state = new Map<number, Writer>();
      for (const r of input.ranges) {
        const prior = resumed.done?.find((d) => d.partition === r.partition && d.next <= r.to && d.next >= r.from);
        const next = prior?.next ?? r.from;
        state.set(r.partition, {
          landed: {
            topic: input.topic,
            partition: r.partition,
            from: r.from,
            next,
            records: prior?.records ?? 0,
            deadLetters: prior?.deadLetters ?? 0,
            objects: countOf(prior?.objects),
            deadLetterObjects: countOf(prior?.deadLetterObjects),
          },
          to: r.to,
          cutAt: (r.cutAt ?? []).filter((c) => c > r.from && c < r.to),
          position: next,
          lastRecord: next - 1,
          start: null,
          body: null,
          lines: 0,
          dead: [],
          lock: Promise.resolve(),
        });
      }
      const summary = (): LandTopicResult => ({ partitions: [...state.values()].map((w) => ({ ...w.landed })) });
      const beat = () => ctx.heartbeat({ done: summary().partitions });
      const complete = (w: Writer) => w.landed.next >= w.to && w.start === null;

      /** The first interval boundary after `offset` in the partition's range, if any. */
      const cutAfter = (w: Writer, offset: number) => w.cutAt.find((c) => c > offset);

      /**
       * Writes a partition's current object: dead letters first, then the data object. `end`:
       * the object closes at a boundary or the range's end, everything before it read (its next
       * offset is `end`, past any transaction markers).
       */
      async function flush(w: Writer, end?: number): Promise<void> {
        if (w.start === null) return;
        const start = w.start;
        const next = end === undefined ? w.lastRecord + 1 : Math.max(w.lastRecord + 1, end);
        const meta = {
          'pinflow-start-offset': String(start),
          'pinflow-last-offset': String(w.lastRecord),
          'pinflow-next-offset': String(next),
          'pinflow-records': String(w.lines),
          'pinflow-dead-letters': String(w.dead.length),
          ...topicIdMeta,
        };
        const dead = w.dead;
        const lines = w.lines;
        const body = w.body?.finish() ?? { parts: [], length: 0 };
        w.body = null;
        if (lines > 0) open.meanLineBytes = body.length / lines;
        if (dead.length) {
          const dlKey = deadLetterKey(input.topic, w.landed.partition, start);
          await guarded('S3', s3.address, () => putObjectOnce(s3.client(), s3.bucket, dlKey, dead.map((d) => JSON.stringify(d)).join('\n') + '\n', meta));
          w.landed.deadLetterObjects += 1;
        }
        const key = objectKey(input.topicsDir, input.topic, w.landed.partition, start);
        await guarded('S3', s3.address, () => putObjectOnce(s3.client(), s3.bucket, key, body.length ? body : Buffer.alloc(0), meta));
        if ('release' in body) body.release();
        w.landed.objects += 1;
        w.landed.records += lines;
        w.landed.deadLetters += dead.length;
        pipelineMetrics(ctx.metricMeter).landed(input.topic, lines, dead.length);
        w.landed.next = next;
        w.lines = 0;
        w.dead = [];
        w.start = null;
        beat();
      }

      /** Serialises a partition's flushes: batch processing and position events both call it. */
      const locked = (w: Writer, fn: () => Promise<void>) => (w.lock = w.lock.then(fn));

      /** Closes the current object once the consumer's position passed its boundary, and the range once it reached its end. */
      const settle = (w: Writer) =>
        locked(w, async () => {
          const cut = w.start === null ? undefined : cutAfter(w, w.start);
          if (cut !== undefined && w.position >= cut) await flush(w, cut);
          if (w.position < w.to) return;
          if (w.start !== null) await flush(w, w.to);
          else w.landed.next = Math.max(w.landed.next, w.to);
        });

      if ([...state.values()].every(complete)) return summary();

      const consumer = kafka.kafka().consumer({
        // A throwaway group: offsets come from the workflow and the bucket, nothing is committed.
        groupId: `pinflow-landing.${input.runId}.${input.topic}.${ctx.info.attempt}.${randomUUID().slice(0, 8)}`,
        readUncommitted: false,
        ...LANDING_FETCH,
        sessionTimeout: 30_000,
        heartbeatInterval: 3_000,
        retry: { retries: 5 },
      });
      /**
       * Partitions waiting to be landed, and those being landed with the bytes reserved for
       * them (LANDING_OPEN_BYTES): admitted in order while the worker has room, at least one.
       */
      const queued = [...state.values()].filter((w) => !complete(w)).map((w) => w.landed.partition);
      const reserved = new Map<number, number>();
      const admit = () => {
        while (queued.length && (reserved.size === 0 || open.bytes + expectedObjectBytes(input.flushSize, input.maxObjectBytes) <= LANDING_OPEN_BYTES)) {
          const p = queued.shift()!;
          const bytes = expectedObjectBytes(input.flushSize, input.maxObjectBytes);
          open.bytes += bytes;
          reserved.set(p, bytes);
          consumer.resume([{ topic: input.topic, partitions: [p] }]);
        }
        if (queued.length) open.waiting.add(admit);
        else open.waiting.delete(admit);
      };
      const release = (p: number) => {
        open.bytes -= reserved.get(p) ?? 0;
        reserved.delete(p);
        try {
          consumer.pause([{ topic: input.topic, partitions: [p] }]);
        } catch {
          // Not running (any more): nothing to pause.
        }
        for (const waiting of [...open.waiting]) waiting();
      };
      let failure: unknown;
      let wake = () => {};
      const fail = (err: unknown) => {
        failure ??= err;
        wake();
      };
      try {
        await guarded('Kafka', kafka.address, async () => {
          await consumer.connect();
          await consumer.subscribe({ topic: input.topic, fromBeginning: true });
          // Batches holding only transaction markers or aborted records never reach eachBatch;
          // their instrumentation event still tells how far the partition was read.
          consumer.on(consumer.events.CRASH, (e) => fail(e.payload.error));
          consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
            const w = state.get(e.payload.partition);
            if (!w || e.payload.topic !== input.topic) return;
            w.position = Math.max(w.position, Number(e.payload.lastOffset) + 1);
            settle(w).then(wake, fail);
          });
          await consumer.run({
            // Nothing is committed; resolving only moves the fetch position past the batch.
            autoCommit: false,
            eachBatchAutoResolve: true,
            partitionsConsumedConcurrently: Math.max(1, Math.min(4, input.ranges.length)),
            eachBatch: async ({ batch, heartbeat }) => {
              // A failed upload fails the whole attempt (Temporal retries it from the last
              // object reported): letting kafkajs re-deliver the batch could shift boundaries.
              if (failure) return;
              const w = state.get(batch.partition);
              if (!w) return;
              try {
                for (const m of batch.messages) {
                  const offset = Number(m.offset);
                  if (offset <= w.lastRecord || offset < w.landed.next) continue; // before the range, or seen
                  if (offset >= w.to) break;
                  // A full object is written when the next record arrives (or when the range is
                  // settled), so the last object of a range always records the range's end as
                  // its next offset, past trailing transaction markers: a log that later
                  // expires up to there is not taken for lost records.
                  const cut = w.start === null ? undefined : cutAfter(w, w.start);
                  if (cut !== undefined && offset >= cut) {
                    await locked(w, () => flush(w, cut));
                    await heartbeat();
                  } else if (w.start !== null && (w.lines + w.dead.length >= input.flushSize || (w.body?.length ?? 0) >= input.maxObjectBytes)) {
                    await locked(w, () => flush(w));
                    await heartbeat();
                  }
                  if (w.start === null) w.start = offset;
                  const landed = landableLine(m.value);
                  if ('line' in landed) {
                    w.body ??= new BodyBuilder();
                    w.body.append(landed.line);
                    w.body.append(NEWLINE);
                    w.lines += 1;
                  } else {
                    w.dead.push({
                      topic: input.topic,
                      partition: w.landed.partition,
                      offset: m.offset,
                      reason: landed.reason,
                      key: m.key ? m.key.toString('base64') : null,
                      value: m.value ? m.value.toString('base64') : null,
                    });
                  }
                  w.lastRecord = offset;
                  w.position = Math.max(w.position, offset + 1);
                }
                await settle(w);
                wake();
              } catch (err) {
                fail(err);
              }
            },
          });
          for (const w of state.values()) {
            if (w.landed.next < w.to) consumer.seek({ topic: input.topic, partition: w.landed.partition, offset: String(w.landed.next) });
          }
          // Every partition waits paused (before its first batch is handed over) until it is admitted.
          consumer.pause([{ topic: input.topic, partitions: [...state.keys()] }]);
          admit();
          const ticker = setInterval(beat, 5_000);
          try {
            while (!failure && ![...state.values()].every(complete)) {
              await Promise.race([new Promise<void>((r) => (wake = r)), ctx.cancelled, new Promise((r) => setTimeout(r, 1_000))]);
              for (const p of [...reserved.keys()]) if (complete(state.get(p)!)) release(p);
            }
          } finally {
            clearInterval(ticker);
          }
          await Promise.all([...state.values()].map((w) => w.lock));
          if (failure) throw failure;
        });
      } finally {
        open.waiting.delete(admit);
        for (const p of [...reserved.keys()]) release(p);
        await consumer.disconnect().catch(() => undefined);
      }
      pipelineMetrics(ctx.metricMeter).stageDuration('landing_topic', performance.now() - started);
      return summary();
    },

    /**
     * Writes the run's manifest (every object it wrote, per partition) to S3 and returns its
     * key: the objects of a range are those whose first offset is in [from, next), found by
     * listing, so no list ever travels through the workflow. Rewriting it is harmless.
     */
    async writeLandingManifest(input: LandingManifestInput): Promise<string> {
      const ctx = Context.current();
      const manifest: LandingManifest = { prefix: input.prefix, workflowId: input.workflowId, runId: input.runId, topicsDir: input.topicsDir, partitions: [] };
      for (const p of input.partitions) {
        const objects = await guarded('S3', s3.address, () => objectsInRange(s3, input.topicsDir, p.topic, p.partition, p.from, p.next));
        const deadLetterObjects = await guarded('S3', s3.address, () => objectsInRange(s3, DEAD_LETTER_DIR, p.topic, p.partition, p.from, p.next));
        manifest.partitions.push({ ...p, objects, deadLetterObjects });
        ctx.heartbeat();
      }
      const key = landingManifestKey(input.prefix, input.workflowId, input.runId);
      await guarded('S3', s3.address, () => s3.client().send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: JSON.stringify(manifest), ContentType: 'application/json' })));
      return key;
    },
  };
}
