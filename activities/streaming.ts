/**
 * Streaming activities: Kinesis shards to the warehouse's stream tables, each record written
 * exactly once, cleaned by the batch path's SQL (sql/render.ts in stream mode).
 *
 * `streamSpan` reads the stream's shards with GetRecords for a while (`spanMs`), writing each
 * batch as it comes through the warehouse's stream writer (the Warehouse port,
 * adapters/warehouse.ts), heartbeating the per-shard checkpoints, and returns them to the
 * workflow, which keeps them in its state. A writer that keeps checkpoints of its own (DuckDB:
 * moved in the same transaction as the rows) is the furthest word on where to resume.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { _Record } from '@aws-sdk/client-kinesis';
import { Context } from '@temporalio/activity';
import { classify } from '../common/errors';
import { laterSeq, newShardStatus, readableShards, streamName, type ShardStatus, type SpanInput, type SpanResult, type StreamSummaryResult, type StreamTopic } from '../common/streaming';
import { backoffMs, ensureStreams, getRecords, isExpiredIterator, isThrottling, listAllShards, shardIterator, type kinesisAdapter } from '../adapters/kinesis';
import type { StreamRecord, Warehouse } from '../adapters/warehouse';
import { landableLine } from './landable';

/** A Kinesis record as the writers take it, with the verdict of the landing rule (the one Kafka landing applies). */
export function toStreamRecord(r: _Record): StreamRecord {
  const data = Buffer.from(r.Data ?? new Uint8Array());
  return { sequenceNumber: r.SequenceNumber!, partitionKey: r.PartitionKey ?? '', data, arrival: r.ApproximateArrivalTimestamp ?? null, landable: landableLine(data) };
}

/** Waits `ms`, or less when `signal` aborts; the caller looks at the signal. */
const pause = (ms: number, signal: AbortSignal) => delay(ms, undefined, { signal }).catch(() => undefined);

const ITERATOR_REUSE_MS = 4 * 60_000;

export function streamingActivities(kinesis: ReturnType<typeof kinesisAdapter>, warehouse: Warehouse) {
  /** Iterators the last span of a shard ended with, keyed by stream, shard and checkpoint (valid 4 min). */
  const iteratorCache = new Map<string, { iterator: string; at: number }>();
  /** Throttled GetRecords in a row per shard and when to try again, kept across spans so the backoff holds and grows. */
  const throttleStreaks = new Map<string, { streak: number; until: number }>();

  return {
    /** Creates the topic's stream if missing (waits until ACTIVE) and says which warehouse writes it. */
    async ensureStreamingStream(input: { prefix: string; topic: StreamTopic; shardCount: number }): Promise<StreamSummaryResult> {
      const name = streamName(input.prefix, input.topic);
      const [summary] = await kinesis.guard(() => ensureStreams(kinesis.client(), [name], input.shardCount));
      return { stream: name, createdAt: summary!.createdAt, openShards: summary!.openShards, warehouse: warehouse.kind };
    },

    /**
     * Reads the stream for `spanMs` from the checkpoints (the workflow's, a previous attempt's
     * heartbeat, or the warehouse's own, whichever is furthest), writing every batch. Returns
     * early when cancelled (after the batch being written), so a stop loses nothing.
     */
    async streamSpan(input: SpanInput): Promise<SpanResult> {
      const ctx = Context.current();
      const stream = streamName(input.prefix, input.topic);
      const client = kinesis.client();
      const state = new Map<string, ShardStatus>(input.shards.map((s) => [s.shardId, { ...s }]));
      // A retry starts from its previous attempt's last heartbeat (same input, further along).
      for (const h of (ctx.info.heartbeatDetails as { shards?: ShardStatus[] } | undefined)?.shards ?? []) state.set(h.shardId, { ...h });
      const writer = await warehouse.openStreamWriter(input);
      const stop = new AbortController();
      const deadline = setTimeout(() => stop.abort(), input.spanMs);
      ctx.cancelled.catch(() => stop.abort());
      let throttled = 0;
      let expiredIterators = 0;
      let written = 0;
      const beat = () => ctx.heartbeat({ shards: [...state.values()] });
      const ticker = setInterval(beat, 2_000);
      try {
        // The warehouse's checkpoint (DuckDB) is exact: it moved with the rows. Reading resumes
        // after it, and the counts are its own (a crashed attempt's unreported batches included).
        const warehouseCheckpoints = await writer.checkpoints();
        const applyWarehouse = (s: ShardStatus) => {
          const w = warehouseCheckpoints.get(s.shardId);
          if (!w) return;
          s.checkpoint = laterSeq(s.checkpoint, w.sequenceNumber);
          Object.assign(s, { records: w.records, rows: w.rows, deadLetters: w.deadLetters, noKey: w.noKey });
        };
        state.forEach(applyWarehouse);

        /** Adds shards a reshard created, marks closed ones; drops shards the stream no longer lists (trimmed). */
        const refreshShards = async () => {
          const listed = await kinesis.guard(() => listAllShards(client, stream));
          const ids = new Set(listed.map((s) => s.ShardId!));
          for (const sh of listed) {
            const closed = Boolean(sh.SequenceNumberRange?.EndingSequenceNumber);
            const known = state.get(sh.ShardId!);
            if (known) known.closed = known.closed || closed;
            else {
              const s = newShardStatus(sh.ShardId!, sh.ParentShardId ?? null, sh.AdjacentParentShardId ?? null, closed);
              applyWarehouse(s);
              state.set(s.shardId, s);
            }
          }
          for (const id of [...state.keys()]) if (!ids.has(id)) state.delete(id);
        };

        let writing = Promise.resolve();
        /** One batch at a time on the writer's connection. */
        const serialised = <T>(fn: () => Promise<T>): Promise<T> => {
          const p = writing.then(fn);
          writing = p.then(
            () => undefined,
            () => undefined,
          );
          return p;
        };

        const acquire = async (s: ShardStatus): Promise<string> => {
          for (let attempt = 1; ; attempt++) {
            try {
              return await shardIterator(client, stream, s.shardId, s.checkpoint);
            } catch (err) {
              if (!isThrottling(err) || stop.signal.aborted) throw classify('Kinesis', kinesis.address, err);
              throttled++;
              await pause(backoffMs(attempt), stop.signal);
            }
          }
        };

        const readShard = async (s: ShardStatus): Promise<void> => {
          const cacheKey = () => `${stream}/${s.shardId}/${s.checkpoint ?? '-'}`;
          const cached = iteratorCache.get(cacheKey());
          iteratorCache.delete(cacheKey());
          let iterator: string | undefined = cached && Date.now() - cached.at < ITERATOR_REUSE_MS ? cached.iterator : await acquire(s);
          const streakKey = `${stream}/${s.shardId}`;
          while (iterator && !stop.signal.aborted) {
            const backoff = throttleStreaks.get(streakKey);
            if (backoff && backoff.until > Date.now()) {
              await pause(backoff.until - Date.now(), stop.signal);
              if (stop.signal.aborted) break;
            }
            let res;
            try {
              res = await getRecords(client, iterator, input.recordsPerRead, stop.signal);
            } catch (err) {
              if (stop.signal.aborted) break;
              if (isExpiredIterator(err)) {
                // Iterators live 5 minutes: take a new one right after the checkpoint.
                expiredIterators++;
                iterator = await acquire(s);
                continue;
              }
              if (isThrottling(err)) {
                throttled++;
                const streak = (throttleStreaks.get(streakKey)?.streak ?? 0) + 1;
                throttleStreaks.set(streakKey, { streak, until: Date.now() + backoffMs(streak) });
                continue;
              }
              throw classify('Kinesis', kinesis.address, err);
            }
            throttleStreaks.delete(streakKey);
            const got = res.Records ?? [];
            s.millisBehindLatest = res.MillisBehindLatest ?? null;
            if (got.length) {
              // Written even when a stop arrived meanwhile: these records are read, finish them.
              const batch = got.map(toStreamRecord);
              const outcome = await serialised(() => writer.write(s.shardId, batch));
              s.checkpoint = laterSeq(s.checkpoint, outcome.checkpoint);
              s.records += outcome.records;
              s.rows += outcome.rows;
              s.deadLetters += outcome.deadLetters;
              s.noKey += outcome.noKey;
              s.replayed += outcome.replayed;
              s.lastArrival = batch[batch.length - 1]!.arrival?.toISOString() ?? s.lastArrival;
              written += outcome.records;
              beat();
            }
            iterator = res.NextShardIterator;
            if (!iterator) {
              s.finished = true;
              s.closed = true;
              break;
            }
            const caughtUp = got.length === 0 || (got.length < input.recordsPerRead && (res.MillisBehindLatest ?? 0) === 0);
            if (caughtUp) await pause(input.pollIntervalMs, stop.signal);
          }
          if (iterator && !s.finished) iteratorCache.set(cacheKey(), { iterator, at: Date.now() });
        };

        await refreshShards();
        const running = new Map<string, Promise<void>>();
        let failure: unknown;
        let wake = () => {};
        let finishedOne = false;
        while (!stop.signal.aborted && failure === undefined) {
          for (const s of readableShards([...state.values()])) {
            if (running.has(s.shardId)) continue;
            running.set(
              s.shardId,
              readShard(s)
                .catch((err) => {
                  failure ??= err;
                  stop.abort();
                })
                .finally(() => {
                  running.delete(s.shardId);
                  if (s.finished) finishedOne = true;
                  wake();
                }),
            );
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
            stop.signal.addEventListener('abort', () => resolve(), { once: true });
            // Nothing readable (every shard finished, e.g. the stream is being resharded): look again soon.
            if (running.size === 0) setTimeout(resolve, Math.max(1_000, input.pollIntervalMs));
          });
          // A parent read to its end: its children (created by the reshard) may be read now.
          if (finishedOne || running.size === 0) {
            finishedOne = false;
            await refreshShards();
          }
        }
        stop.abort();
        await Promise.all(running.values());
        await writing;
        if (failure !== undefined) throw failure;
        const result: SpanResult = { shards: [...state.values()], throttled, expiredIterators, written };
        return result;
      } finally {
        clearTimeout(deadline);
        clearInterval(ticker);
        await writer.close();
      }
    },
  };
}
