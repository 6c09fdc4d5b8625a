/**
 * npm run stream -- start|stop|status [--topic pin|geo|user|all] [--poll-ms N] [--shards N] [--span-ms N]
 *
 * Manages the streaming workflows, one per Kinesis stream (workflow id `streaming-<prefix>-<topic>`,
 * the stream's name). `start` is idempotent: a workflow already running is reported, not
 * duplicated. `status` prints each shard's checkpoint, lag (MillisBehindLatest) and counts.
 * `stop` asks each workflow to finish (the batch being written completes) and waits for it.
 * The workflows run on the pinflow worker (`npm run worker`), which must be running.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Config } from '../config';
import { streamingSearchAttributes } from '../common/search-attributes';
import { streamingWorkflowId } from '../common/ids';
import { STREAM_TOPICS, validateStreamingInput, type StreamingInput, type StreamingStatus, type StreamTopic } from '../common/streaming';
import { connectClient } from '../workers/client';
import type { streamingWorkflow } from '../workflows';
import { stopSignal, streamingStatusQuery } from '../workflows/streaming';
import { defineCommand, parseCommandLine, UsageError } from '../cli/args';
import { runCli } from '../cli/command';
import { noteIfNoWorker, startWorkflow } from '../cli/launch';
import { sharedOptions } from '../cli/options';

export const COMMAND = defineCommand({
  script: 'stream',
  args: 'start|stop|status',
  maxArgs: 1,
  options: {
    topic: { value: 'pin|geo|user|all', help: 'which stream (default all)' },
    ...sharedOptions('prefix'),
    'poll-ms': { value: 'N', help: 'start: wait between reads of a shard that had nothing new (default 250)' },
    shards: { value: 'N', help: 'start: shards of a stream this run creates (default 2)' },
    'span-ms': { value: 'N', help: 'start: how long one read activity runs before it reports its checkpoint (default 5000)' },
    'records-per-read': { value: 'N', help: 'start: GetRecords limit (default 2000)' },
    timeout: { value: 'S', help: 'stop: give up waiting after S seconds, the stop staying requested (default 120)' },
  },
  about:
    "Manages the streaming workflows, one per Kinesis stream (workflow id streaming-<prefix>-<topic>, the stream's name). " +
    'start is idempotent: a workflow already running is reported, not started again. status prints each shard\'s checkpoint, lag and counts. ' +
    'stop asks each workflow to finish (the batch being written completes) and waits for it. The workflows run on the pinflow worker (npm run worker).',
});

export interface StreamArgs {
  command: 'start' | 'stop' | 'status';
  topics: StreamTopic[];
  prefix: string;
  options: Omit<StreamingInput, 'prefix' | 'topic'>;
  /** stop: give up waiting after this long (the stop stays requested). */
  timeoutMs: number;
}

export function parseStreamArgs(argv: string[], config: Config): StreamArgs {
  const { values: opts, positionals } = parseCommandLine(COMMAND, argv);
  const command = positionals[0];
  if (command !== 'start' && command !== 'stop' && command !== 'status') throw new UsageError(`expected start, stop or status, got ${JSON.stringify(command ?? '')}`);
  const topic = opts.topic ?? 'all';
  if (topic !== 'all' && !STREAM_TOPICS.includes(topic as StreamTopic)) throw new UsageError(`--topic ${JSON.stringify(topic)} must be pin, geo, user or all`);
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const options = { pollIntervalMs: num(opts['poll-ms']), shardCount: num(opts.shards), spanMs: num(opts['span-ms']), recordsPerRead: num(opts['records-per-read']) };
  const prefix = opts.prefix ?? config.prefix;
  const problems = validateStreamingInput({ prefix, topic: 'pin', ...options });
  const timeout = num(opts.timeout) ?? 120;
  if (!(timeout > 0)) problems.push(`--timeout ${opts.timeout} must be a number of seconds > 0`);
  if (problems.length) throw new UsageError(problems.join('\n'));
  return { command, topics: topic === 'all' ? [...STREAM_TOPICS] : [topic as StreamTopic], prefix, options, timeoutMs: timeout * 1000 };

}

/** One line per shard: checkpoint, lag, counts. */
export function formatStatus(s: StreamingStatus): string[] {
  const t = s.totals;
  const lines = [
    `${s.stream} -> ${s.warehouse} ${s.prefix}.${s.table} (${s.state}): ${t.rows.toLocaleString('en')} rows from ${t.records.toLocaleString('en')} records, ${t.deadLetters} dead letters, ${t.noKey} without key, ${t.replayed} replayed, ${t.throttled} throttled, ${s.spans} spans, run ${s.runs}`,
  ];
  for (const sh of s.shards) {
    const lag = sh.millisBehindLatest === null ? 'lag ?' : `lag ${sh.millisBehindLatest.toLocaleString('en')} ms`;
    const age = sh.lastArrival ? `, last record arrived ${sh.lastArrival}` : '';
    lines.push(`  ${sh.shardId}${sh.finished ? ' (closed, drained)' : sh.closed ? ' (closed)' : ''}: ${lag}, checkpoint ${sh.checkpoint ?? '(none)'}, ${sh.records} records, ${sh.rows} rows, ${sh.deadLetters} dead letters${age}`);
  }
  return lines;
}

async function isRunning(client: Client, workflowId: string): Promise<boolean> {
  try {
    return (await client.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

export async function runStream(config: Config, args: StreamArgs, log: (s: string) => void = console.log): Promise<Record<string, StreamingStatus | null>> {
  const client = await connectClient(config);
  const out: Record<string, StreamingStatus | null> = {};
  try {
    for (const topic of args.topics) {
      const workflowId = streamingWorkflowId(args.prefix, topic);
      const handle = client.workflow.getHandle<typeof streamingWorkflow>(workflowId);
      if (args.command === 'start') {
        await startWorkflow<typeof streamingWorkflow>(
          config,
          client,
          {
            workflowType: 'streamingWorkflow',
            options: {
              workflowId,
              args: [{ prefix: args.prefix, topic, ...args.options }],
              typedSearchAttributes: streamingSearchAttributes(args.prefix),
              staticSummary: `stream ${workflowId} -> ${config.warehouse.kind} ${args.prefix}.${topic}_clean_stream`,
            },
            ifRunning: 'attach',
            wait: false,
          },
          log,
        );
        out[topic] = null;
      } else if (args.command === 'status') {
        if (!(await isRunning(client, workflowId))) {
          log(`${workflowId}: not running`);
          out[topic] = null;
          continue;
        }
        const s = await handle.query(streamingStatusQuery);
        for (const l of formatStatus(s)) log(l);
        out[topic] = s;
      } else {
        if (!(await isRunning(client, workflowId))) {
          log(`${workflowId}: not running`);
          out[topic] = null;
          continue;
        }
        await handle.signal(stopSignal);
        log(`${workflowId}: stop requested, waiting for the batch in progress ...`);
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${workflowId} did not stop within ${args.timeoutMs / 1000} s (is a worker running? npm run worker); the stop stays requested`)), args.timeoutMs);
        });
        try {
          const s = (await Promise.race([handle.result(), timeout])) as StreamingStatus;
          for (const l of formatStatus(s)) log(l);
          out[topic] = s;
        } finally {
          clearTimeout(timer);
        }
      }
    }
    if (args.command === 'start') await noteIfNoWorker(config, client, log);
    return out;
  } finally {
    await client.connection.close();
  }
}

if (require.main === module) {
  runCli(COMMAND, async (config, argv) => {
    await runStream(config, parseStreamArgs(argv, config));
  });
}
