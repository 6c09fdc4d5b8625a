/**
 * The emulation's batch activity: read one planned batch of posts from MySQL and send it to
 * the sink. Glue between the MySQL adapter and a sink adapter; all the I/O lives there.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Message } from 'kafkajs';
import type { Config } from '../config';
import { NonRetryable } from '../common/errors';
import { planKeys, progressGroup, progressTopic, transactionalId, type BatchPlan, type BatchResult, type LaneRunInput, type Sink } from '../common/emulation';
import { SOURCE_TABLES, topicName } from '../common/source-tables';
import { ensureTopics, type kafkaAdapter, type TopicBatch } from '../adapters/kafka';
import { ensureStreams, putRecordsBatched, type kinesisAdapter } from '../adapters/kinesis';
import { DEFAULT_STREAM_SHARDS, streamName } from '../common/streaming';
import { readKeys, readRange, serializePosts, type mysqlAdapter, type SourceBatch } from '../adapters/mysql';
import { postRecords, restProxyTarget } from '../adapters/rest-proxy';
import { pipelineMetrics } from '../common/metrics';

export interface EmitBatchInput {
  /** The emulation's workflow id (the records' `pinflow-run` header). */
  runId: string;
  /** The execution chain's key: names the lanes' transactional ids and progress markers. */
  runKey: string;
  prefix: string;
  sink: Sink;
  /** Batch number of the run (for logs and heartbeats). */
  seq: number;
  /** Lane and the batch's number within the lane (the lane's progress marker). */
  lane: number;
  laneSeq: number;
  plan: BatchPlan;
}

export const TOPIC_PARTITIONS = 3;

/** How often a batch heartbeats while its Kafka transaction is in flight. */
const SEND_HEARTBEAT_MS = 2_000;

interface Post {
  seq: number;
  key: number;
}

/** Turns the plan's rows into posts (complete keys) and a count of skipped keys. */
function postsOf(plan: BatchPlan, keys: number[], batch: SourceBatch): { posts: Post[]; skipped: number } {
  const posts: Post[] = [];
  let skipped = 0;
  keys.forEach((key, i) => {
    if (batch.pin.has(key) && batch.geo.has(key) && batch.user.has(key)) posts.push({ seq: plan.firstSeq + i, key });
    else skipped++;
  });
  return { posts, skipped };
}

export function emulationActivities(config: Config, mysql: ReturnType<typeof mysqlAdapter>, kafka: ReturnType<typeof kafkaAdapter>, kinesis: ReturnType<typeof kinesisAdapter>) {
  const topics = (prefix: string) => SOURCE_TABLES.map((t) => topicName(prefix, t.topic));

  async function readPlan(plan: BatchPlan) {
    return mysql.guard(async () => {
      if (plan.kind !== 'range') {
        const keys = planKeys(plan)!;
        return { batch: await readKeys(mysql.pool(), keys), keys, upperKey: null as number | null, exhausted: false };
      }
      const r = await readRange(mysql.pool(), plan.afterKey, plan.limit);
      return { ...r, exhausted: r.upperKey === null };
    });
  }

  /**
   * One batch in one Kafka transaction with the lane's marker `laneSeq + 1`; heartbeats while
   * it runs, with the chunks sent so far (a send slower than the heartbeat timeout must not
   * look like a dead worker: its retry would fence it). True when an earlier attempt had
   * already committed the batch.
   */
  async function sendKafkaBatch(ctx: Context, at: { runKey: string; prefix: string; lane: number; laneSeq: number; seq: number }, batches: TopicBatch[]): Promise<boolean> {
    let chunks = 0;
    const ticker = setInterval(() => ctx.heartbeat({ stage: 'send', seq: at.seq, chunks }), SEND_HEARTBEAT_MS);
    try {
      const outcome = await kafka.guard(() =>
        kafka.sender.sendOnce(transactionalId(at.runKey, at.lane), progressGroup(at.runKey, at.lane), progressTopic(at.prefix), at.laneSeq, batches, () => {
          chunks += 1;
          ctx.heartbeat({ stage: 'send', seq: at.seq, chunks });
        }),
      );
      return outcome === 'already-committed';
    } finally {
      clearInterval(ticker);
    }
  }

  function kafkaBatches(prefix: string, runId: string, posts: Post[], batch: SourceBatch): TopicBatch[] {
    return SOURCE_TABLES.map((t) => ({
      topic: topicName(prefix, t.topic),
      messages: posts.map(
        (p): Message => ({
          key: String(p.key),
          value: JSON.stringify(batch[t.topic].get(p.key)),
          headers: { 'pinflow-run': runId, 'pinflow-post': String(p.seq) },
        }),
      ),
    }));
  }

  const activities = {
    /**
     * Creates `<prefix>.pin|geo|user` and the progress topic if missing; for the kinesis sink
     * the streams `streaming-<prefix>-pin|geo|user` instead (waiting until they are ACTIVE).
     */
    async ensureEmulationTopics(prefix: string, sink?: Sink): Promise<string[]> {
      if (sink === 'kinesis') {
        const names = SOURCE_TABLES.map((t) => streamName(prefix, t.topic));
        await kinesis.guard(() => ensureStreams(kinesis.client(), names, DEFAULT_STREAM_SHARDS));
        return names;
      }
      return kafka.guard(async () => {
        const admin = await kafka.admin();
        await ensureTopics(admin, [
          ...topics(prefix).map((topic) => ({ topic, numPartitions: TOPIC_PARTITIONS })),
          { topic: progressTopic(prefix), numPartitions: 1 },
        ]);
        return topics(prefix);
      });
    },

    /** Sends one planned batch exactly once (kafka sink) or at least once (rest-proxy and kinesis sinks). */
    async emitBatch(input: EmitBatchInput): Promise<BatchResult> {
      const ctx = Context.current();
      const failedAttempts = ctx.info.attempt - 1;
      const t0 = performance.now();
      const { batch, keys, upperKey, exhausted } = await readPlan(input.plan);
      ctx.heartbeat({ stage: 'read', seq: input.seq });
      const t1 = performance.now();
      const { posts, skipped } = postsOf(input.plan, keys, batch);
      let t2 = t1;
      const lastKey = upperKey ?? (keys.length ? keys[keys.length - 1]! : null);
      let alreadyCommitted = false;

      if (input.sink === 'kafka') {
        const batches = kafkaBatches(input.prefix, input.runId, posts, batch);
        t2 = performance.now();
        alreadyCommitted = await sendKafkaBatch(ctx, input, batches);
      } else if (input.sink === 'kinesis') {
        // At least once: Kinesis has no transactions or idempotent producer. Each topic's
        // records go out in PutRecords requests (<= 500 records, <= 5 MiB; refused records
        // retried alone, with backoff); the heartbeat records how many leading records of
        // each topic are in, so a retry of this batch sends only the rest. Only requests in
        // flight when an attempt died (their answer lost) can be put twice.
        const prior = ctx.info.heartbeatDetails as { seq?: number; put?: Record<string, number> } | undefined;
        const put: Record<string, number> = prior?.seq === input.seq ? { ...prior.put } : {};
        t2 = performance.now();
        await Promise.all(
          SOURCE_TABLES.map(async (t) => {
            const entries = posts.map((p) => ({ partitionKey: String(p.key), data: JSON.stringify(batch[t.topic].get(p.key)) }));
            const from = Math.min(put[t.topic] ?? 0, entries.length);
            await kinesis.guard(() =>
              putRecordsBatched(kinesis.client(), streamName(input.prefix, t.topic), entries.slice(from), {
                signal: ctx.cancellationSignal,
                onChunk: (done) => {
                  put[t.topic] = from + done;
                  ctx.heartbeat({ seq: input.seq, put });
                },
              }),
            );
          }),
        );
      } else {
        const target = restProxyTarget(config);
        if (!target) throw ApplicationFailure.nonRetryable('REST_PROXY_URL is not set: the rest-proxy sink needs it', NonRetryable.config);
        for (const t of SOURCE_TABLES) {
          const records = posts.map((p) => ({ key: String(p.key), value: batch[t.topic].get(p.key) }));
          await postRecords(target, topicName(input.prefix, t.topic), records, {
            signal: ctx.cancellationSignal,
            // Waiting out a 429 / 5xx: heartbeat, so the wait is not taken for a dead worker.
            onWait: ({ status, attempt }) => ctx.heartbeat({ stage: `${t.topic}: proxy answered ${status}, retry ${attempt}`, seq: input.seq }),
          });
          ctx.heartbeat({ stage: `posted ${t.topic}`, seq: input.seq });
        }
      }
      const t3 = performance.now();
      const timings = { readMs: Math.round(t1 - t0), buildMs: Math.round(t2 - t1), sendMs: Math.round(t3 - t2) };
      const metrics = pipelineMetrics(ctx.metricMeter);
      metrics.emulated(input.sink, alreadyCommitted ? 0 : posts.length * SOURCE_TABLES.length, skipped);
      metrics.stageDuration('emulation_batch', t3 - t0);
      return { sent: posts.length, skipped, lastKey, exhausted, alreadyCommitted, failedAttempts, timings };
    },
  };
  /**
   * Sends a lane's consecutive batches exactly once (kafka sink), reading each next batch's rows
   * while the current batch's transaction is in flight. A retried run re-reads every batch but
   * sends only those whose marker is not yet committed (sendOnce), so it resumes where the
   * failed attempt stopped.
   */
  async function emitLaneRun(input: LaneRunInput): Promise<BatchResult[]> {
    const ctx = Context.current();
    const metrics = pipelineMetrics(ctx.metricMeter);
    const results: BatchResult[] = [];
    const read = (i: number) => {
      const t0 = performance.now();
      const keys = planKeys(input.batches[i]!.plan)!;
      return mysql.guard(async () => serializePosts(keys, await readKeys(mysql.pool(), keys))).then((posts) => ({ keys, posts, readMs: performance.now() - t0 }));
    };
    let next: ReturnType<typeof read> | undefined = input.batches.length ? read(0) : undefined;
    try {
      for (let i = 0; i < input.batches.length; i++) {
        const { seq, laneSeq, plan } = input.batches[i]!;
        const t0 = performance.now();
        const { keys, posts, readMs } = await next!;
        next = i + 1 < input.batches.length ? read(i + 1) : undefined;
        // A read-ahead that fails while this batch is sent is reported when its turn comes.
        next?.catch(() => undefined);
        ctx.heartbeat({ stage: 'read', seq });
        const t1 = performance.now();
        const batches = SOURCE_TABLES.map((t) => ({
          topic: topicName(input.prefix, t.topic),
          messages: posts.present.map(
            (k, j): Message => ({ key: String(keys[k]), value: posts.values[t.topic][j]!, headers: { 'pinflow-run': input.runId, 'pinflow-post': String(plan.firstSeq + k) } }),
          ),
        }));
        const t2 = performance.now();
        const alreadyCommitted = await sendKafkaBatch(ctx, { ...input, laneSeq, seq }, batches);
        const t3 = performance.now();
        const sent = posts.present.length;
        const skipped = keys.length - sent;
        metrics.emulated('kafka', alreadyCommitted ? 0 : sent * SOURCE_TABLES.length, skipped);
        metrics.stageDuration('emulation_batch', t3 - t0 + readMs);
        results.push({
          sent,
          skipped,
          lastKey: keys.length ? keys[keys.length - 1]! : null,
          exhausted: false,
          alreadyCommitted,
          failedAttempts: i === 0 ? ctx.info.attempt - 1 : 0,
          timings: { readMs: Math.round(readMs), buildMs: Math.round(t2 - t1), sendMs: Math.round(t3 - t2) },
        });
      }
    } finally {
      await next?.catch(() => undefined);
    }
    return results;
  }

  return {
    ...activities,
    emitLaneRun,
    /**
     * emitBatch for runs whose transactional ids and markers are keyed by the execution chain
     * (`runKey`): a name workers of an older version do not have, so during a rolling deploy such
     * a batch is only ever run by a worker that honours the key (an older one fails the task
     * and Temporal retries it elsewhere), never by one that would key the batch differently.
     */
    emitKeyedBatch: activities.emitBatch,
  };
}
