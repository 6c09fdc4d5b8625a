/**
 * The near-real-time path's contract: stream and table names, the streaming workflow's input,
 * state and status, and the pure rules the workflow and its activities share (sequence-number
 * order, which shards may be read now). Pure: imported by workflows, activities and scripts.
 */
import { prefixProblem, streamingWorkflowId } from './ids';
import type { SourceTable } from './source-tables';
import { upgradeVersioned, type VersionedKind } from './versioned';

export type StreamTopic = SourceTable['topic'];
export const STREAM_TOPICS: readonly StreamTopic[] = ['pin', 'geo', 'user'];

/** `streaming-<prefix>-<topic>`: the Kinesis stream (spec section 2), named as the workflow reading it. */
export const streamName = (prefix: string, topic: StreamTopic) => streamingWorkflowId(prefix, topic);

/** Tables in the warehouse schema `<prefix>` (DuckDB) or DATABRICKS_SCHEMA (Delta). */
export const streamTable = (topic: StreamTopic) => `${topic}_clean_stream`;
export const deadLetterTable = (topic: StreamTopic) => `${topic}_stream_dead_letter`;
/** DuckDB only: per shard, the last sequence number written, updated in the rows' transaction. */
export const checkpointTable = (topic: StreamTopic) => `${topic}_stream_checkpoint`;

/** Shards of a stream the streaming path creates (emulation or streaming workflow, whichever runs first). */
export const DEFAULT_STREAM_SHARDS = 2;
export const DEFAULT_POLL_INTERVAL_MS = 250;
export const DEFAULT_RECORDS_PER_READ = 2_000;
export const DEFAULT_SPAN_MS = 5_000;
export const DEFAULT_EVENTS_BEFORE_CONTINUE = 2_000;

export interface StreamingInput {
  /** Set when the input is carried through continue-as-new (STREAMING_INPUT); absent from callers. */
  version?: number;
  prefix: string;
  topic: StreamTopic;
  /** Shards of the stream if this run creates it (default 2). */
  shardCount?: number;
  /** Wait between GetRecords calls of a shard that had nothing new (default 250 ms; AWS allows 5 calls/s per shard). */
  pollIntervalMs?: number;
  /** GetRecords Limit (default 2,000). */
  recordsPerRead?: number;
  /** How long one read activity runs before it reports its checkpoint to the workflow (default 5 s). */
  spanMs?: number;
  /** Continue as new once the history has this many events (default 2,000). */
  eventsBeforeContinue?: number;
}

export interface ShardStatus {
  shardId: string;
  parentShardId: string | null;
  adjacentParentShardId: string | null;
  /** Last sequence number written to the warehouse; reading resumes after it (null: from the oldest record). */
  checkpoint: string | null;
  /** Closed by a reshard and read to its end: its children may be read. */
  finished: boolean;
  /** Closed by a reshard (its children exist), maybe not read to the end yet. */
  closed: boolean;
  /** Kinesis's MillisBehindLatest of the last GetRecords (null before the first). */
  millisBehindLatest: number | null;
  /** Records read and handled (each once: replays are counted in `replayed`). */
  records: number;
  /** Rows written to the stream table. */
  rows: number;
  /** Records that are not a JSON object or a JSON array of objects: in the dead-letter table. */
  deadLetters: number;
  /** Records with no usable key: left out of the table (as in the batch path), counted. */
  noKey: number;
  /** Records read again after a crash or retry and found already written (nothing added). */
  replayed: number;
  /** When the last record written had arrived in Kinesis (ISO-8601). */
  lastArrival: string | null;
}

export interface StreamingTotals {
  records: number;
  rows: number;
  deadLetters: number;
  noKey: number;
  replayed: number;
  /** Throttled requests (ProvisionedThroughputExceeded): backed off and retried. */
  throttled: number;
  /** Expired shard iterators re-acquired after the checkpoint. */
  expiredIterators: number;
}

export interface StreamingStatus {
  prefix: string;
  topic: StreamTopic;
  stream: string;
  table: string;
  warehouse: 'duckdb' | 'databricks';
  state: 'starting' | 'running' | 'stopping' | 'stopped';
  /** ISO-8601 of the stream this workflow reads (a recreated stream is refused). */
  streamCreatedAt: string | null;
  shards: ShardStatus[];
  totals: StreamingTotals;
  /** Read activities completed (each reports the checkpoint). */
  spans: number;
  /** Workflow runs so far (continue-as-new). */
  runs: number;
  startedAt: string;
  /** When the last read activity reported. */
  updatedAt: string;
}

export const emptyTotals = (): StreamingTotals => ({ records: 0, rows: 0, deadLetters: 0, noKey: 0, replayed: 0, throttled: 0, expiredIterators: 0 });

/** What ensuring a topic's stream found (or created). */
export interface StreamSummaryResult {
  stream: string;
  /** ISO-8601 creation time: identifies this incarnation of the stream. */
  createdAt: string;
  openShards: number;
  warehouse: 'duckdb' | 'databricks';
}

/** What one read activity is given: the workflow's checkpoints. */
export interface SpanInput {
  prefix: string;
  topic: StreamTopic;
  streamCreatedAt: string | null;
  shards: ShardStatus[];
  spanMs: number;
  pollIntervalMs: number;
  recordsPerRead: number;
}

/** What it reports: every shard's checkpoint and counters (cumulative), and this span's retries. */
export interface SpanResult {
  shards: ShardStatus[];
  throttled: number;
  expiredIterators: number;
  /** Records of this span that reached the warehouse. */
  written: number;
}

/** Compares two Kinesis sequence numbers (decimal strings of any length). */
export function compareSeq(a: string, b: string): number {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The later of two checkpoints (null = nothing written yet). */
export function laterSeq(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return compareSeq(a, b) >= 0 ? a : b;
}

/**
 * The shards that may be read now: not finished, and whose parents (the shards a split or a
 * merge closed to create them) are finished or no longer listed (trimmed). So records of one
 * partition key are written in order across a reshard: the parent's before the child's.
 */
export function readableShards(shards: ShardStatus[]): ShardStatus[] {
  const byId = new Map(shards.map((s) => [s.shardId, s]));
  const drained = (id: string | null) => id === null || !byId.has(id) || byId.get(id)!.finished;
  return shards.filter((s) => !s.finished && drained(s.parentShardId) && drained(s.adjacentParentShardId));
}

export function newShardStatus(shardId: string, parentShardId: string | null, adjacentParentShardId: string | null, closed: boolean): ShardStatus {
  return { shardId, parentShardId, adjacentParentShardId, checkpoint: null, finished: false, closed, millisBehindLatest: null, records: 0, rows: 0, deadLetters: 0, noKey: 0, replayed: 0, lastArrival: null };
}

/** Sums the shards' counters (plus the span-level ones the workflow keeps). */
export function totalsOf(shards: ShardStatus[], carried: Pick<StreamingTotals, 'throttled' | 'expiredIterators'>): StreamingTotals {
  const t = { ...emptyTotals(), throttled: carried.throttled, expiredIterators: carried.expiredIterators };
  for (const s of shards) {
    t.records += s.records;
    t.rows += s.rows;
    t.deadLetters += s.deadLetters;
    t.noKey += s.noKey;
    t.replayed += s.replayed;
  }
  return t;
}

export function validateStreamingInput(input: StreamingInput): string[] {
  const problems: string[] = [];
  const prefixError = prefixProblem(input.prefix, 'prefix', 'a valid pipeline prefix');
  if (prefixError) problems.push(prefixError);
  if (!STREAM_TOPICS.includes(input.topic)) problems.push(`topic ${JSON.stringify(input.topic)} must be one of ${STREAM_TOPICS.join(', ')}`);
  const int = (name: string, v: number | undefined, lo: number, hi: number) => {
    if (v !== undefined && !(Number.isInteger(v) && v >= lo && v <= hi)) problems.push(`${name} ${v} must be a whole number ${lo}-${hi}`);
  };
  int('shardCount', input.shardCount, 1, 64);
  int('pollIntervalMs', input.pollIntervalMs, 10, 60_000);
  int('recordsPerRead', input.recordsPerRead, 1, 10_000);
  int('spanMs', input.spanMs, 1_000, 600_000);
  int('eventsBeforeContinue', input.eventsBeforeContinue, 100, 40_000);
  return problems;
}

/** What a streaming run carries into its next run through continue-as-new (common/versioned.ts). */
export interface StreamingCarry {
  version: number;
  status: StreamingStatus;
}

/** Version 1 added `version` and nothing else. */
export const STREAMING_CARRY: VersionedKind = { what: 'streaming carry', current: 1, upgrades: [(old) => old] };
export const STREAMING_INPUT: VersionedKind = { what: 'streaming input', current: 1, upgrades: [(old) => old] };

export const upgradeStreamingCarry = (raw: unknown): StreamingCarry => upgradeVersioned<StreamingCarry>(STREAMING_CARRY, raw);
export const upgradeStreamingInput = (raw: StreamingInput): StreamingInput => upgradeVersioned<StreamingInput>(STREAMING_INPUT, raw);
