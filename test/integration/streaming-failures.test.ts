/**
 * The streaming path under faults: the worker SIGKILLed mid-stream, kinesalite restarted
 * mid-stream, malformed records, throttling and expired iterators (through a fault-injecting
 * proxy), and a reshard with a backlog. After each, every record put to the stream is in its
 * table exactly once, compared by (shard, sequence number) with a plain read of the stream.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DescribeStreamSummaryCommand, ListShardsCommand, SplitShardCommand } from '@aws-sdk/client-kinesis';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createKinesisClient, ensureStreams, putRecordsBatched, readStream } from '../../adapters/kinesis';
import type { EmulationInput, EmulationProgress } from '../../common/emulation';
import { streamName, type StreamingInput, type StreamingStatus } from '../../common/streaming';
import { stackDown, stackUp } from '../../stack';
import { createWorker } from '../../workers/worker';
import { stopSignal } from '../../workflows/streaming';
import { spawnWorker, testDatabase } from '../helpers/data';
import { ensureStack, quietRuntime, testConfig, workflowTestEnv } from '../helpers/env';
import { startKinesisProxy } from '../helpers/kinesis-proxy';
import { assertStreamExactlyOnce, deleteStreams, duckRows, removeStreamingDirs, produceSteadily, streamingConfig, userEntries, waitForStatus } from '../helpers/streaming';
import { recordHistories } from '../helpers/histories';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('streaming under faults', () => {
  let env: TestWorkflowEnvironment;
  const base = testConfig();
  const kinesis = createKinesisClient(base);
  const streams: string[] = [];

  before(async () => {
    quietRuntime();
    await ensureStack();
    env = await workflowTestEnv(base);
  });
  after(async () => {
    await stackUp(base, ['kinesis']);
    await deleteStreams(kinesis, streams);
    kinesis.destroy();
    await env?.teardown();
    removeStreamingDirs();
  });

  /** A stream of its own, and a workflow input reading it with short spans. */
  async function setup(stem: string, opts: { shards?: number; overrides?: Record<string, string> } = {}) {
    const s = streamingConfig(stem, opts.overrides);
    const stream = streamName(s.prefix, 'user');
    streams.push(stream);
    await ensureStreams(kinesis, [stream], opts.shards ?? 2);
    const input: StreamingInput = { prefix: s.prefix, topic: 'user', spanMs: 1_000, pollIntervalMs: 100, recordsPerRead: 300 };
    return { ...s, stream, input };
  }

  async function stop(handle: { signal: (s: typeof stopSignal) => Promise<void>; result: () => Promise<unknown> }): Promise<StreamingStatus> {
    await handle.signal(stopSignal);
    return (await handle.result()) as StreamingStatus;
  }

  it('worker SIGKILLed mid-stream: the next worker resumes after the last record written, nothing lost or twice', async () => {
    const s = await setup('stream-kill');
    const N = 12_000;
    const producing = produceSteadily(kinesis, s.stream, 0, N, 1_500);
    let worker = spawnWorker(s.vars);
    try {
      await worker.ready;
      const handle = await env.client.workflow.start('streamingWorkflow', { taskQueue: s.vars.TEMPORAL_TASK_QUEUE!, workflowId: s.stream, args: [s.input] });
      const before = await waitForStatus(handle, (st) => st.totals.rows >= 2_000, '2,000 rows before the kill');
      worker.child.kill('SIGKILL');
      await new Promise((r) => worker.child.once('exit', r));
      assert.ok(before.totals.rows < N, 'killed mid-stream');
      await sleep(2_000); // records keep arriving while no worker runs
      worker = spawnWorker(s.vars);
      await worker.ready;
      await producing;
      const done = await waitForStatus(handle, (st) => st.totals.rows >= N, `all ${N} rows after the restart`, 180_000);
      assert.equal(done.totals.rows, N, 'counts come from the warehouse checkpoint: exact across the crash');
      const final = await stop(handle);
      assert.equal(final.state, 'stopped');
    } finally {
      worker.child.kill('SIGTERM');
      await new Promise((r) => (worker.child.exitCode !== null ? r(null) : worker.child.once('exit', r)));
    }
    const { records } = await assertStreamExactlyOnce(kinesis, s.stream, s.config.warehouse.duckdbPath, s.prefix, 'user');
    assert.equal(records.length, N);
  });

  it('kinesalite restarted mid-stream (and the run continued as new): retried, then every record exactly once', async () => {
    const s = await setup('stream-restart');
    const w = await createWorker(s.config, { connection: env.nativeConnection, taskQueue: s.vars.TEMPORAL_TASK_QUEUE! });
    let final: StreamingStatus | undefined;
    try {
      await w.worker.runUntil(async () => {
        const handle = await env.client.workflow.start('streamingWorkflow', {
          taskQueue: s.vars.TEMPORAL_TASK_QUEUE!,
          workflowId: s.stream,
          args: [{ ...s.input, eventsBeforeContinue: 100 } satisfies StreamingInput],
        });
        await produceSteadily(kinesis, s.stream, 0, 4_000, 2_000);
        await waitForStatus(handle, (st) => st.totals.rows >= 500, 'rows before the restart');
        await stackDown(s.config, ['kinesis']);
        await sleep(3_000);
        await stackUp(s.config, ['kinesis']);
        await produceSteadily(kinesis, s.stream, 4_000, 4_000, 2_000);
        await waitForStatus(handle, (st) => st.totals.rows >= 8_000, 'all 8,000 rows after the restart', 180_000);
        // Long enough for the history to pass 100 events: continue-as-new carries the checkpoints.
        await waitForStatus(handle, (st) => st.runs >= 2, 'a continued-as-new run', 120_000);
        final = await stop(handle);
        await recordHistories(env.client, handle.workflowId, handle.firstExecutionRunId, 'streaming-continue-as-new');
      });
    } finally {
      await stackUp(s.config, ['kinesis']);
      await w.close();
    }
    assert.equal(final!.totals.rows, 8_000);
    assert.ok(final!.runs >= 2, `continued as new (runs ${final!.runs})`);
    const { records } = await assertStreamExactlyOnce(kinesis, s.stream, s.config.warehouse.duckdbPath, s.prefix, 'user');
    assert.equal(records.length, 8_000);
  });

  it('malformed records are dead-lettered with the reason and counted; keyless ones counted; arrays give one row per element', async () => {
    const s = await setup('stream-bad', { shards: 1 });
    const bad = ['not json', '42', '[]', '[1,2]', 'null'];
    const entries = [
      ...userEntries(0, 100),
      ...bad.map((data, i) => ({ partitionKey: `bad${i}`, data })),
      { partitionKey: 'nokey', data: JSON.stringify({ first_name: 'No', last_name: 'Key' }) },
      { partitionKey: 'array', data: JSON.stringify([{ ind: 900001, age: 31 }, { ind: 900002, first_name: 'Arr' }]) },
      ...userEntries(100, 100),
    ];
    const put = await putRecordsBatched(kinesis, s.stream, entries);
    const w = await createWorker(s.config, { connection: env.nativeConnection, taskQueue: s.vars.TEMPORAL_TASK_QUEUE! });
    let final: StreamingStatus | undefined;
    try {
      await w.worker.runUntil(async () => {
        const handle = await env.client.workflow.start('streamingWorkflow', { taskQueue: s.vars.TEMPORAL_TASK_QUEUE!, workflowId: s.stream, args: [s.input] });
        await waitForStatus(handle, (st) => st.totals.records >= entries.length, 'every record handled');
        final = await stop(handle);
      });
    } finally {
      await w.close();
    }
    assert.deepEqual(
      { records: final!.totals.records, rows: final!.totals.rows, deadLetters: final!.totals.deadLetters, noKey: final!.totals.noKey },
      { records: 207, rows: 202, deadLetters: 5, noKey: 1 },
    );
    const dead = await duckRows(s.config.warehouse.duckdbPath, s.prefix, 'SELECT _partition_key, reason, data_base64, _sequence_number FROM user_stream_dead_letter ORDER BY _partition_key');
    assert.deepEqual(
      dead.map((d) => [d._partition_key, Buffer.from(String(d.data_base64), 'base64').toString()]),
      bad.map((data, i) => [`bad${i}`, data]),
    );
    assert.match(String(dead[0]!.reason), /^not JSON/);
    assert.match(String(dead[1]!.reason), /JSON number, not an object or array of objects/);
    assert.match(String(dead[2]!.reason), /JSON array that is empty or holds a non-object/);
    assert.deepEqual(dead.map((d) => d._sequence_number), bad.map((_, i) => put[100 + i]!.sequenceNumber), 'dead letters keep their sequence numbers');
    const rows = await duckRows(s.config.warehouse.duckdbPath, s.prefix, 'SELECT ind, user_name, age, _sequence_number FROM user_clean_stream ORDER BY ind');
    assert.equal(rows.length, 202);
    assert.deepEqual(rows.slice(-2), [
      { ind: '900001', user_name: null, age: 31, _sequence_number: put[106]!.sequenceNumber },
      { ind: '900002', user_name: 'Arr', age: null, _sequence_number: put[106]!.sequenceNumber },
    ]);
    assert.equal(new Set(rows.map((r) => r.ind)).size, 202, 'no row twice');
    assert.equal(rows.filter((r) => r._sequence_number === put[105]!.sequenceNumber).length, 0, 'the keyless record is left out');
  });

  it('throttling (ProvisionedThroughputExceeded on reads and writes) and expired iterators: backed off, re-acquired, every record exactly once', async () => {
    const proxy = await startKinesisProxy(base.kinesis.endpoint!);
    const { url } = await testDatabase({ sample: true });
    const s = await setup('stream-throttle', { overrides: { KINESIS_ENDPOINT: proxy.endpoint, MYSQL_URL: url } });
    streams.push(streamName(s.prefix, 'pin'), streamName(s.prefix, 'geo'));
    const w = await createWorker(s.config, { connection: env.nativeConnection, taskQueue: s.vars.TEMPORAL_TASK_QUEUE! });
    let final: StreamingStatus | undefined;
    try {
      await w.worker.runUntil(async () => {
        const handle = await env.client.workflow.start('streamingWorkflow', { taskQueue: s.vars.TEMPORAL_TASK_QUEUE!, workflowId: s.stream, args: [s.input] });
        await waitForStatus(handle, (st) => st.state === 'running' && st.spans >= 1, 'the first span');
        proxy.throttle('GetRecords', 12);
        proxy.expireIterators(3);
        // The emulation's kinesis sink through the proxy: some PutRecords refused whole, some in part.
        proxy.throttle('PutRecords', 2);
        proxy.partialPutFailures(6, 3);
        const emu = await env.client.workflow.execute('emulationWorkflow', {
          taskQueue: s.vars.TEMPORAL_TASK_QUEUE!,
          workflowId: `emulation-${s.prefix}`,
          args: [{ prefix: s.prefix, sink: 'kinesis', rate: 'max', selection: { mode: 'all' }, batchSize: 700 } satisfies EmulationInput],
        });
        assert.equal((emu as EmulationProgress).sent, 2019);
        final = await waitForStatus(handle, (st) => st.totals.rows >= 2019, 'every sample user row');
        assert.equal(proxy.pending(), 0, 'every fault was served');
        final = await stop(handle);
      });
    } finally {
      await w.close();
      await proxy.close();
    }
    const throttledReads = proxy.requests.filter((r) => r.op === 'GetRecords' && r.outcome === 'throttled');
    assert.equal(throttledReads.length, 12);
    // Backoff: 12 refusals over 2 shards take seconds (100 ms doubling, per shard), not a hot loop.
    assert.ok(throttledReads.at(-1)!.at - throttledReads[0]!.at > 2_000, `throttled reads spread over ${throttledReads.at(-1)!.at - throttledReads[0]!.at} ms`);
    assert.ok(final!.totals.throttled >= 12, `status counts the throttling (${final!.totals.throttled})`);
    assert.ok(final!.totals.expiredIterators >= 3, `status counts the expired iterators (${final!.totals.expiredIterators})`);
    assert.equal(proxy.requests.filter((r) => r.outcome === 'partial').length, 6);
    // Refused records were sent again alone: the stream holds each sample row once, no duplicates.
    const records = await readStream(kinesis, s.stream);
    assert.equal(records.length, 2019, 'each sample user row put exactly once despite the refusals');
    assert.equal(new Set(records.map((r) => r.partitionKey)).size, 2019);
    await assertStreamExactlyOnce(kinesis, s.stream, s.config.warehouse.duckdbPath, s.prefix, 'user');
    assert.equal(final!.totals.rows, 2019);
  });

  it('reshard with a backlog: the closed parent is drained before its children are read, each record once', async () => {
    const s = await setup('stream-split', { shards: 1 });
    await putRecordsBatched(kinesis, s.stream, userEntries(0, 1_500));
    const [parent] = (await kinesis.send(new ListShardsCommand({ StreamName: s.stream }))).Shards!;
    const lo = BigInt(parent!.HashKeyRange!.StartingHashKey!);
    const hi = BigInt(parent!.HashKeyRange!.EndingHashKey!);
    await kinesis.send(new SplitShardCommand({ StreamName: s.stream, ShardToSplit: parent!.ShardId!, NewStartingHashKey: String((lo + hi) / 2n) }));
    for (let i = 0; (await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: s.stream }))).StreamDescriptionSummary!.OpenShardCount !== 2; i++) {
      assert.ok(i < 100, 'the split completes');
      await sleep(100);
    }
    await putRecordsBatched(kinesis, s.stream, userEntries(1_500, 1_500));
    const w = await createWorker(s.config, { connection: env.nativeConnection, taskQueue: s.vars.TEMPORAL_TASK_QUEUE! });
    let final: StreamingStatus | undefined;
    try {
      await w.worker.runUntil(async () => {
        const handle = await env.client.workflow.start('streamingWorkflow', { taskQueue: s.vars.TEMPORAL_TASK_QUEUE!, workflowId: s.stream, args: [s.input] });
        await waitForStatus(handle, (st) => st.totals.rows >= 3_000, 'all 3,000 rows');
        final = await stop(handle);
        await recordHistories(env.client, handle.workflowId, handle.firstExecutionRunId, 'streaming-reshard');
      });
    } finally {
      await w.close();
    }
    const byShard = new Map(final!.shards.map((sh) => [sh.shardId, sh]));
    assert.equal(byShard.size, 3);
    assert.equal(byShard.get(parent!.ShardId!)!.finished, true, 'the parent is read to its end');
    const children = final!.shards.filter((sh) => sh.parentShardId === parent!.ShardId);
    assert.equal(children.length, 2);
    assert.ok(children.every((c) => c.rows > 0), 'both children carried records');
    assert.equal(byShard.get(parent!.ShardId!)!.rows, 1_500);
    const [order] = await duckRows(
      s.config.warehouse.duckdbPath,
      s.prefix,
      `SELECT max(_arrival) FILTER (WHERE _shard = '${parent!.ShardId}') AS parent_last, min(_arrival) FILTER (WHERE _shard <> '${parent!.ShardId}') AS children_first,
         max(_arrival) FILTER (WHERE _shard = '${parent!.ShardId}') <= min(_arrival) FILTER (WHERE _shard <> '${parent!.ShardId}') AS in_order FROM user_clean_stream`,
    );
    assert.equal(order!.in_order, true, `parent rows (last ${order!.parent_last}) written before child rows (first ${order!.children_first})`);
    const { records } = await assertStreamExactlyOnce(kinesis, s.stream, s.config.warehouse.duckdbPath, s.prefix, 'user');
    assert.equal(records.length, 3_000);
  });
});
