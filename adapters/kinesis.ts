/**
 * Kinesis adapter (AWS SDK v3): the only module that talks to Kinesis Data Streams.
 *
 * - `createKinesisClient`: plain HTTP/1.1 (adapters/aws-http.ts, as the S3 adapter): the SDK's
 *   default for Kinesis is an HTTP/2 handler, which fails against kinesalite's plain-http
 *   server. The Node SDK speaks AWS JSON 1.1 to Kinesis (no CBOR, so nothing like the Java
 *   SDK's AWS_CBOR_DISABLE is needed); kinesalite accepts both. The SDK's own retries are off:
 *   throttling is retried here with a visible backoff, everything else by Temporal.
 * - `ensureStreams`: creates missing streams and waits until they are ACTIVE (idempotent).
 * - `putRecordsBatched`: PutRecords in requests of <= 500 records and <= 5 MiB; records a
 *   request reports as failed (FailedRecordCount, e.g. ProvisionedThroughputExceeded) are sent
 *   again, only those, with exponential backoff.
 * - `listAllShards`, `shardIterator`, `getRecords`, `readStream`: the reading helpers.
 */
import { setTimeout as delay } from 'node:timers/promises';
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
  PutRecordsCommand,
  type _Record,
  type GetRecordsCommandOutput,
  type PutRecordsRequestEntry,
  type Shard,
} from '@aws-sdk/client-kinesis';
import { ApplicationFailure } from '@temporalio/common';
import { addressOf, type Config } from '../config';
import { guarded, NonRetryable } from '../common/errors';
import { awsRequestHandler } from './aws-http';

/** PutRecords limits (AWS): 500 records and 5 MiB per request, 1 MiB per record (data + partition key). */
export const PUT_MAX_RECORDS = 500;
export const PUT_MAX_BYTES = 5 * 1024 * 1024;
export const RECORD_MAX_BYTES = 1024 * 1024;

export function createKinesisClient(config: Config): KinesisClient {
  return new KinesisClient({
    region: config.kinesis.region,
    endpoint: config.kinesis.endpoint,
    credentials: config.kinesis.credentials,
    maxAttempts: 1,
    requestHandler: awsRequestHandler(30_000),
  });
}

interface AwsErrorLike {
  name?: string;
  message?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

/** Throttling: the request was refused before it did anything, so sending it again is safe. */
export function isThrottling(err: unknown): boolean {
  const name = (err as AwsErrorLike)?.name;
  return name === 'ProvisionedThroughputExceededException' || name === 'LimitExceededException' || name === 'ThrottlingException' || (err as AwsErrorLike)?.$metadata?.httpStatusCode === 429;
}

export function isExpiredIterator(err: unknown): boolean {
  return (err as AwsErrorLike)?.name === 'ExpiredIteratorException';
}

/** The delay before retry `attempt` (1-based): 100 ms doubling to `capMs`, with +-20% jitter. */
export function backoffMs(attempt: number, capMs = 5_000, baseMs = 100): number {
  const raw = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(raw * (0.8 + Math.random() * 0.4));
}

/**
 * Waits `ms`, or until `signal` aborts, and never rejects: the caller checks the signal after
 * (putRecordsBatched below, the streaming activity's polling loop).
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return delay(ms, undefined, { signal }).catch(() => undefined);
}

export interface StreamSummary {
  streamName: string;
  status: string;
  /** ISO-8601: identifies this incarnation of the stream (a deleted and recreated one differs). */
  createdAt: string;
  openShards: number;
}

async function describeSummary(client: KinesisClient, streamName: string): Promise<StreamSummary | null> {
  try {
    const d = (await client.send(new DescribeStreamSummaryCommand({ StreamName: streamName }))).StreamDescriptionSummary!;
    return { streamName, status: d.StreamStatus ?? 'UNKNOWN', createdAt: (d.StreamCreationTimestamp ?? new Date(0)).toISOString(), openShards: d.OpenShardCount ?? 0 };
  } catch (err) {
    if ((err as AwsErrorLike).name === 'ResourceNotFoundException') return null;
    throw err;
  }
}

/** Creates the streams that do not exist (with `shardCount` shards) and waits until every one is ACTIVE. */
export async function ensureStreams(client: KinesisClient, names: string[], shardCount: number, timeoutMs = 60_000): Promise<StreamSummary[]> {
  const out: StreamSummary[] = [];
  for (const name of names) {
    const deadline = Date.now() + timeoutMs;
    let summary = await describeSummary(client, name);
    if (!summary) {
      await client.send(new CreateStreamCommand({ StreamName: name, ShardCount: shardCount })).catch((err: AwsErrorLike) => {
        if (err.name !== 'ResourceInUseException') throw err; // created meanwhile by someone else
      });
    }
    for (let attempt = 1; ; attempt++) {
      summary = await describeSummary(client, name);
      if (summary && (summary.status === 'ACTIVE' || summary.status === 'UPDATING')) break;
      if (Date.now() > deadline) throw new Error(`stream ${name} is not ACTIVE after ${timeoutMs / 1000} s (status ${summary?.status ?? 'missing'})`);
      await delay(Math.min(1_000, 100 * attempt));
    }
    out.push(summary);
  }
  return out;
}

export interface PutEntry {
  partitionKey: string;
  data: string | Buffer;
}

export interface PutOutcome {
  shardId: string;
  sequenceNumber: string;
}

export interface PutOptions {
  signal?: AbortSignal;
  /** Called after each request's records are all in, with how many leading entries are done. */
  onChunk?: (doneEntries: number) => void;
  /** Called for each throttled request or record (for counters). */
  onThrottle?: (what: string) => void;
  /** Stop retrying throttled records after this long (then fail: Temporal retries). Default 60 s. */
  maxRetryMs?: number;
}

const entryBytes = (e: PutEntry) => Buffer.byteLength(e.partitionKey) + (typeof e.data === 'string' ? Buffer.byteLength(e.data) : e.data.length);

/** Splits entries into PutRecords requests of at most 500 records and 5 MiB. */
export function putChunks(entries: PutEntry[], maxRecords = PUT_MAX_RECORDS, maxBytes = PUT_MAX_BYTES): Array<{ start: number; end: number }> {
  const chunks: Array<{ start: number; end: number }> = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < entries.length; i++) {
    const b = entryBytes(entries[i]!);
    if (b > RECORD_MAX_BYTES) {
      throw ApplicationFailure.nonRetryable(`record ${i} (partition key ${entries[i]!.partitionKey}) is ${b} bytes, over Kinesis's 1 MiB limit`, NonRetryable.badInput);
    }
    if (i > start && (i - start >= maxRecords || bytes + b > maxBytes)) {
      chunks.push({ start, end: i });
      start = i;
      bytes = 0;
    }
    bytes += b;
  }
  if (entries.length > start) chunks.push({ start, end: entries.length });
  return chunks;
}

/**
 * Puts `entries` to `streamName` in order of requests, each request's failed records retried
 * (only those) with backoff until all are in. Returns each entry's shard and sequence number.
 * At-least-once: a request whose answer is lost (connection reset) is not known to have failed
 * or succeeded; the caller's retry sends it again.
 */
export async function putRecordsBatched(client: KinesisClient, streamName: string, entries: PutEntry[], opts: PutOptions = {}): Promise<PutOutcome[]> {
  const out = new Array<PutOutcome>(entries.length);
  const maxRetryMs = opts.maxRetryMs ?? 60_000;
  for (const { start, end } of putChunks(entries)) {
    let pending = Array.from({ length: end - start }, (_, i) => start + i);
    const started = Date.now();
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
      const records: PutRecordsRequestEntry[] = pending.map((i) => {
        const e = entries[i]!;
        return { PartitionKey: e.partitionKey, Data: typeof e.data === 'string' ? Buffer.from(e.data) : e.data };
      });
      let failed: number[] = [];
      let lastError = '';
      try {
        const res = await client.send(new PutRecordsCommand({ StreamName: streamName, Records: records }), { abortSignal: opts.signal });
        (res.Records ?? []).forEach((r, j) => {
          const i = pending[j]!;
          if (r.ErrorCode || !r.SequenceNumber) {
            failed.push(i);
            lastError = `${r.ErrorCode}: ${r.ErrorMessage ?? ''}`;
            opts.onThrottle?.(`record ${r.ErrorCode}`);
          } else out[i] = { shardId: r.ShardId!, sequenceNumber: r.SequenceNumber };
        });
        if ((res.Records ?? []).length !== pending.length) throw new Error(`PutRecords answered ${(res.Records ?? []).length} results for ${pending.length} records`);
      } catch (err) {
        if (!isThrottling(err)) throw err;
        opts.onThrottle?.('request');
        failed = pending;
        lastError = (err as Error).message;
      }
      pending = failed;
      if (pending.length === 0) break;
      if (Date.now() - started > maxRetryMs) {
        throw new Error(`${pending.length} record(s) of ${streamName} still refused after ${Math.round((Date.now() - started) / 1000)} s of retries (${lastError})`);
      }
      await sleep(backoffMs(attempt), opts.signal);
    }
    opts.onChunk?.(end);
  }
  return out;
}

/** Every shard of the stream (open and closed, as long as the stream retains them), ListShards paged. */
export async function listAllShards(client: KinesisClient, streamName: string): Promise<Shard[]> {
  const shards: Shard[] = [];
  let token: string | undefined;
  do {
    const res = await client.send(new ListShardsCommand(token ? { NextToken: token } : { StreamName: streamName }));
    shards.push(...(res.Shards ?? []));
    token = res.NextToken;
  } while (token);
  return shards;
}

/** An iterator after `afterSequenceNumber`, or at the shard's oldest record (TRIM_HORIZON) when null. */
export async function shardIterator(client: KinesisClient, streamName: string, shardId: string, afterSequenceNumber: string | null): Promise<string> {
  const res = await client.send(
    new GetShardIteratorCommand(
      afterSequenceNumber
        ? { StreamName: streamName, ShardId: shardId, ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: afterSequenceNumber }
        : { StreamName: streamName, ShardId: shardId, ShardIteratorType: 'TRIM_HORIZON' },
    ),
  );
  if (!res.ShardIterator) throw new Error(`GetShardIterator for ${streamName}/${shardId} returned no iterator (shard closed and trimmed?)`);
  return res.ShardIterator;
}

export async function getRecords(client: KinesisClient, iterator: string, limit: number, signal?: AbortSignal): Promise<GetRecordsCommandOutput> {
  return client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: limit }), { abortSignal: signal });
}

export interface ReadRecord {
  shardId: string;
  sequenceNumber: string;
  partitionKey: string;
  data: Buffer;
  arrival: Date | undefined;
}

const toReadRecord = (shardId: string, r: _Record): ReadRecord => ({
  shardId,
  sequenceNumber: r.SequenceNumber!,
  partitionKey: r.PartitionKey!,
  data: Buffer.from(r.Data ?? new Uint8Array()),
  arrival: r.ApproximateArrivalTimestamp,
});

/**
 * Every record the stream holds now, shard by shard from the oldest (a plain GetRecords loop,
 * no checkpoint): for tests, benchmarks and checks. Stops at each shard's end as of the call.
 */
export async function readStream(client: KinesisClient, streamName: string, opts: { limit?: number } = {}): Promise<ReadRecord[]> {
  const out: ReadRecord[] = [];
  for (const shard of await listAllShards(client, streamName)) {
    let iterator: string | undefined = await shardIterator(client, streamName, shard.ShardId!, null);
    for (let attempt = 1; iterator; ) {
      let res: GetRecordsCommandOutput;
      try {
        res = await getRecords(client, iterator, opts.limit ?? 10_000);
      } catch (err) {
        if (!isThrottling(err) || attempt > 20) throw err;
        await delay(backoffMs(attempt++));
        continue;
      }
      out.push(...(res.Records ?? []).map((r) => toReadRecord(shard.ShardId!, r)));
      // An open shard never ends: stop when it has nothing more now.
      if ((res.Records ?? []).length === 0 && (res.MillisBehindLatest ?? 0) === 0) break;
      iterator = res.NextShardIterator;
    }
  }
  return out;
}

export { toReadRecord };

export function kinesisAdapter(config: Config) {
  const address = addressOf(config, 'kinesis');
  let client: KinesisClient | undefined;
  const getClient = () => (client ??= createKinesisClient(config));
  return {
    client: getClient,
    address,
    /** Runs a Kinesis call with its errors classified (non-retryable: missing stream, auth, bad input). */
    guard<T>(fn: () => Promise<T>): Promise<T> {
      return guarded('Kinesis', address, fn);
    },
    async close() {
      client?.destroy();
      client = undefined;
    },
  };
}
