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
  ActivityCancellationType,
  allHandlersFinished,
  ApplicationFailure,
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
import { NonRetryable } from '../common/errors';
import { PipelinePrefix, PipelineStage } from '../common/search-attributes';
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
  type StreamingInput,
  type StreamingStatus,
} from '../common/streaming';

const setup = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 30 },
});

// Reading: retried without limit (an outage of Kinesis or the warehouse is waited out, then
// the stream resumes where it was); a dead worker is noticed within the heartbeat timeout. A
// stop cancels the activity, which finishes the batch it is writing and returns normally.
const reader = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '15 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '20 seconds', nonRetryableErrorTypes: [NonRetryable.conflict] },
});

export const streamingStatusQuery = defineQuery<StreamingStatus>('status');
/** Finish gracefully: the current batch is written, then the run ends with its final status. */
export const stopSignal = defineSignal('stop');

export interface StreamingCarry {
  status: StreamingStatus;
}

export async function streamingWorkflow(input: StreamingInput, carry?: StreamingCarry): Promise<StreamingStatus> {
  const problems = validateStreamingInput(input);
  if (problems.length) throw ApplicationFailure.nonRetryable(`invalid streaming input: ${problems.join('; ')}`, NonRetryable.badInput);
  upsertSearchAttributes([
    { key: PipelinePrefix, value: input.prefix },
    { key: PipelineStage, value: 'streaming' },
  ]);

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
      return continueAsNew<typeof streamingWorkflow>(input, { status });
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
