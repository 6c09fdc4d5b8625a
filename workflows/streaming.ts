/**
 * streamingWorkflow: one Kinesis stream (`streaming-<prefix>-<topic>`) cleaned continuously into
 * its own warehouse table (`<topic>_clean_stream`), each record exactly once.
 *
 * A loop of read activities (`streamSpan`), each reading every readable shard for `spanMs`
 * with GetRecords and writing batch by batch, heartbeating its checkpoints; the workflow keeps
 * the per-shard checkpoint (the last sequence number written) and counters in its state and
 * hands them to the next activity, so a crash or a retry resumes after the last record written
 * (the warehouse's own checkpoint, moved in the rows' transaction, makes a replay add nothing).
 * Closed parent shards are drained before their children are read. The `status` query shows
 * per-shard lag and counts; the `stop` signal ends the run after the batch being written.
 * Continues as new once the history passes `eventsBeforeContinue` events.
 */
import {
  allHandlersFinished,
  CancellationScope,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { streamingSearchAttributes } from '../common/search-attributes';
import {
  DEFAULT_EVENTS_BEFORE_CONTINUE,
  DEFAULT_POLL_INTERVAL_MS,
  DEFAULT_RECORDS_PER_READ,
  DEFAULT_SPAN_MS,
  DEFAULT_STREAM_SHARDS,
  emptyTotals,
  streamName,
  streamTable,
  totalsOf,
  validateStreamingInput,
  type SpanResult,
  type StreamingCarry,
  type StreamingInput,
  type StreamingStatus,
  STREAMING_CARRY,
  upgradeStreamingCarry,
  upgradeStreamingInput,
} from '../common/streaming';
import { rejectInvalidInput, STREAMING_READ, STREAMING_SETUP } from './policies';

const setup = proxyActivities<Activities>(STREAMING_SETUP);
const reader = proxyActivities<Activities>(STREAMING_READ);

export const streamingStatusQuery = defineQuery<StreamingStatus>('status');
/** Finish gracefully: the current batch is written, then the run ends with its final status. */
export const stopSignal = defineSignal('stop');

export async function streamingWorkflow(given: StreamingInput, carried?: StreamingCarry): Promise<StreamingStatus> {
  // Carried state and input of any older version, brought up to today's (common/versioned.ts).
  const input = upgradeStreamingInput(given);
  const carry = carried === undefined ? undefined : upgradeStreamingCarry(carried);
  rejectInvalidInput('streaming', validateStreamingInput(input));
  upsertSearchAttributes(streamingSearchAttributes(input.prefix));

  const now = () => new Date(Date.now()).toISOString();
  const status: StreamingStatus = carry?.status ?? {
    prefix: input.prefix,
    topic: input.topic,
    stream: streamName(input.prefix, input.topic),
    table: streamTable(input.topic),
    warehouse: 'duckdb',
    state: 'starting',
    streamCreatedAt: null,
    shards: [],
    totals: emptyTotals(),
    spans: 0,
    runs: 0,
    startedAt: now(),
    updatedAt: now(),
  };
  status.runs += 1;
  let stopRequested = false;
  let span: CancellationScope | undefined;
  setHandler(streamingStatusQuery, () => status);
  setHandler(stopSignal, () => {
    stopRequested = true;
    if (status.state !== 'stopped') status.state = 'stopping';
    span?.cancel();
  });

  if (!carry) {
    const s = await setup.ensureStreamingStream({ prefix: input.prefix, topic: input.topic, shardCount: input.shardCount ?? DEFAULT_STREAM_SHARDS });
    status.streamCreatedAt = s.createdAt;
    status.warehouse = s.warehouse;
  }
  if (!stopRequested) status.state = 'running';

  const eventsBeforeContinue = input.eventsBeforeContinue ?? DEFAULT_EVENTS_BEFORE_CONTINUE;
  while (!stopRequested) {
    if (workflowInfo().historyLength >= eventsBeforeContinue || workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      return continueAsNew<typeof streamingWorkflow>(input, { version: STREAMING_CARRY.current, status });
    }
    const lag = status.shards.reduce((m, s) => Math.max(m, s.millisBehindLatest ?? 0), 0);
    setCurrentDetails(`${status.totals.rows.toLocaleString('en')} rows from ${status.totals.records.toLocaleString('en')} records, ${status.totals.deadLetters} dead letters, ${status.shards.filter((s) => !s.finished).length} open shard(s), lag ${lag} ms`);
    span = new CancellationScope();
    let result: SpanResult;
    try {
      result = await span.run(() =>
        reader.streamSpan({
          prefix: input.prefix,
          topic: input.topic,
          streamCreatedAt: status.streamCreatedAt,
          shards: status.shards,
          spanMs: input.spanMs ?? DEFAULT_SPAN_MS,
          pollIntervalMs: input.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS,
          recordsPerRead: input.recordsPerRead ?? DEFAULT_RECORDS_PER_READ,
        }),
      );
    } catch (err) {
      // Cancelled by a stop: the warehouse holds what it wrote (and its checkpoint), so the
      // next start resumes exactly there even without this span's report.
      if (stopRequested && isCancellation(err)) break;
      throw err;
    } finally {
      span = undefined;
    }
    status.shards = result.shards;
    status.totals = totalsOf(result.shards, {
      throttled: status.totals.throttled + result.throttled,
      expiredIterators: status.totals.expiredIterators + result.expiredIterators,
    });
    status.spans += 1;
    status.updatedAt = now();
  }

  status.state = 'stopped';
  setCurrentDetails(`stopped: ${status.totals.rows.toLocaleString('en')} rows from ${status.totals.records.toLocaleString('en')} records, ${status.totals.deadLetters} dead letters`);
  await condition(allHandlersFinished);
  return status;
}
