/**
 * The Warehouse port: everything the cleaning and streaming activities ask of a warehouse,
 * and `createWarehouse`, which picks the implementation from WAREHOUSE (`config.warehouse.kind`).
 *
 * - `runCleaning`: the cleaning and analytics plan (sql/render.ts) over the landed objects,
 *   every table published as Parquet under its output location, the counts read back from the
 *   warehouse. A rerun replaces the tables and the outputs.
 * - `openStreamWriter`: a writer of one stream's batches into its stream tables, exactly once.
 * - `close`: releases what the warehouse keeps open between calls.
 *
 * Implementations: adapters/duckdb/warehouse.ts (embedded DuckDB file: one transaction per
 * run and per batch) and adapters/databricks/warehouse.ts (a Databricks SQL warehouse reading
 * S3 itself, Delta tables, optionally a Jobs API notebook). What both share is in
 * adapters/warehouse-shared.ts. Activities depend on this module only.
 */
import type { Config } from '../config';
import type { CleanedTableName } from '../common/analytics';
import type { CleaningInput, IntervalRunSummary, TableCounts } from '../common/cleaning';
import type { IntervalManifest } from '../common/interval';
import type { StreamTopic } from '../common/streaming';
import type { TopicSources } from '../sql/render';
import { databricksWarehouse } from './databricks/warehouse';
import { duckdbWarehouse } from './duckdb/warehouse';
import type { s3Adapter } from './s3';

export type WarehouseKind = Config['warehouse']['kind'];
export type Topic = keyof TopicSources;

export interface LandedObject {
  key: string;
  size: number;
}

/** Where the landed objects of a run are. A topic without objects has no folder (null). */
export type LandedSource =
  /** In a bucket: per topic, the key prefix of its folder (`<topicsDir>/<prefix>.<topic>`) and its objects. */
  | { kind: 's3'; bucket: string; folders: TopicSources; objects: Record<Topic, LandedObject[]> }
  /** In local folders on the worker, in the landing layout (`partition=<p>/<topic>+<p>+<offset>.json`). */
  | { kind: 'local'; folders: TopicSources };

export interface CleaningPlan {
  /** The pipeline prefix the run cleans (DuckDB's schema for it). */
  prefix: string;
  /**
   * Unique per cleaning run and the same for all its retries (`<workflow id>.<run id>`): a
   * Databricks job run's idempotency token is derived from it, DuckDB names its staging folder by it.
   */
  runKey: string;
  landed: LandedSource;
  /** Outputs go to `s3://<bucket>/<root>cleaned/<table>/` and `s3://<bucket>/<root>analytics/<name>/`. */
  output: { bucket: string; root: string };
  /** A notebook that builds the tables instead of the statements: warehouses with a Jobs API run it, others ignore it. */
  job?: CleaningInput['databricksJob'];
  /**
   * An interval run (sql/incremental.ts): the objects of `landed` with a first offset below the
   * interval's ends are merged into the cleaned tables, the analytics of its date go to
   * `<root>analytics/<name>/date=<date>/`. Without it, the full recompute.
   */
  interval?: IntervalManifest;
  signal?: AbortSignal;
  /** Progress of a long step (the activity heartbeats it). */
  heartbeat: (details: Record<string, unknown>) => void;
}

export interface CleaningOutcome {
  /** Per cleaned table: records read, rows kept, duplicates, records left out. */
  tables: Record<CleanedTableName, TableCounts>;
  /** Rows per table, cleaned and analytics. */
  rows: Record<string, number>;
  /** Wall time of each step, ms. */
  timings: Array<{ name: string; ms: number }>;
  /** The job run's page, when a notebook built the tables. */
  jobRunUrl?: string;
  /** Interval runs: what was merged and the current state's rows (`tables` then count the interval). */
  interval?: Omit<IntervalRunSummary, 'date' | 'partial'>;
}

/** One Kinesis record as the writers see it. */
export interface StreamRecord {
  sequenceNumber: string;
  partitionKey: string;
  data: Buffer;
  arrival: Date | null;
  /** The landing rule's verdict on `data` (activities/landable.ts): its NDJSON line, or why it is a dead letter. */
  landable: { line: Buffer } | { reason: string };
}

/** What writing one batch did. Counts are of records (a JSON array is one record, maybe several rows). */
export interface BatchOutcome {
  /** Records after the checkpoint, handled now. */
  records: number;
  rows: number;
  deadLetters: number;
  noKey: number;
  /** Records at or before the checkpoint: already written, skipped. */
  replayed: number;
  /** The shard's checkpoint after the batch. */
  checkpoint: string;
}

/** A shard's checkpoint as the warehouse keeps it: moved in the same transaction as the rows, so exact. */
export interface WarehouseCheckpoint {
  sequenceNumber: string;
  records: number;
  rows: number;
  deadLetters: number;
  noKey: number;
}

export interface StreamWriter {
  /** Per shard, the last sequence number written and the counts (DuckDB keeps them; Delta relies on MERGE: none). */
  checkpoints(): Promise<Map<string, WarehouseCheckpoint>>;
  /** Writes one batch of a shard (records in sequence order), idempotently. */
  write(shardId: string, records: StreamRecord[]): Promise<BatchOutcome>;
  close(): Promise<void>;
}

/** The stream a writer writes: `streaming-<prefix>-<topic>` into `<topic>_clean_stream`. */
export interface StreamTarget {
  prefix: string;
  topic: StreamTopic;
  /** When the Kinesis stream was created: checkpoints of another incarnation are refused. */
  streamCreatedAt: string | null;
}

export interface Warehouse {
  readonly kind: WarehouseKind;
  runCleaning(plan: CleaningPlan): Promise<CleaningOutcome>;
  openStreamWriter(target: StreamTarget): Promise<StreamWriter>;
  close(): Promise<void>;
}

export interface WarehouseDeps {
  /** The configured bucket: outputs, staged stream batches, landed objects to download. */
  s3: ReturnType<typeof s3Adapter>;
}

export function createWarehouse(config: Config, deps: WarehouseDeps): Warehouse {
  return config.warehouse.kind === 'databricks' ? databricksWarehouse(config.warehouse.databricks, deps) : duckdbWarehouse(config.warehouse.duckdbPath, deps);
}
