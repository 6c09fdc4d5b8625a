/**
 * Streaming activities: Kinesis shards to the warehouse's stream tables, each record written
 * exactly once, cleaned by the batch path's SQL (sql/render.ts in stream mode).
 *
 * `streamSpan` reads the stream's shards with GetRecords for a while (`spanMs`), writing each
 * batch as it comes, heartbeating the per-shard checkpoints, and returns them to the workflow,
 * which keeps them in its state. Glue between the Kinesis adapter and a warehouse writer:
 *
 * - DuckDB (WAREHOUSE=duckdb): one transaction per batch in the DuckDB file: the cleaned rows
 *   into `<topic>_clean_stream`, malformed records into `<topic>_stream_dead_letter`, and the
 *   shard's last sequence number into `<topic>_stream_checkpoint`. Records at or before the
 *   shard's checkpoint are already written and are skipped, so a replayed batch adds nothing;
 *   two writers racing on a shard both update its checkpoint row, and DuckDB refuses the
 *   second commit (a retryable conflict).
 * - Databricks (WAREHOUSE=databricks): the batch as an NDJSON object staged in S3, read by the
 *   same records/cleaning SQL (Spark dialect), and `MERGE ... WHEN NOT MATCHED THEN INSERT` on
 *   (_shard, _sequence_number) into Delta tables: each statement idempotent on its own.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { _Record } from '@aws-sdk/client-kinesis';
import { DuckDBInstance, listValue, type DuckDBConnection } from '@duckdb/node-api';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { CLEANED_TABLES } from '../common/analytics';
import type { Config } from '../config';
import { classify, guarded, NonRetryable } from '../common/errors';
import { landableLine } from './landable';
import { SOURCE_TABLES, type SourceTable } from '../common/source-tables';
import { cleanedSql, recordsSql, type Dialect } from '../sql/render';
import {
  checkpointTable,
  compareSeq,
  deadLetterTable,
  laterSeq,
  newShardStatus,
  readableShards,
  streamName,
  streamTable,
  type ShardStatus,
  type SpanInput,
  type SpanResult,
  type StreamSummaryResult,
  type StreamTopic,
} from '../common/streaming';
import { createDatabricksSql, type DatabricksSql } from '../adapters/databricks';
import { backoffMs, ensureStreams, getRecords, isExpiredIterator, isThrottling, listAllShards, shardIterator, sleep, type kinesisAdapter } from '../adapters/kinesis';
import type { s3Adapter } from '../adapters/s3';

/** One Kinesis record as the writers see it. */
export interface StreamRecord {
  sequenceNumber: string;
  partitionKey: string;
  data: Buffer;
  arrival: Date | null;
}

export const toStreamRecord = (r: _Record): StreamRecord => ({
  sequenceNumber: r.SequenceNumber!,
  partitionKey: r.PartitionKey ?? '',
  data: Buffer.from(r.Data ?? new Uint8Array()),
  arrival: r.ApproximateArrivalTimestamp ?? null,
});

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

const quoteId = (id: string) => `"${id.replace(/"/g, '""')}"`;
const tableOf = (topic: StreamTopic): SourceTable => SOURCE_TABLES.find((t) => t.topic === topic)!;
const specColumns = (topic: StreamTopic): readonly string[] => CLEANED_TABLES.find((t) => t.name === `${topic}_clean`)!.columns;
const SEQ = /^[0-9]{1,128}$/;

/** A batch split into the NDJSON lines the cleaning SQL reads and the dead letters. */
interface SplitBatch {
  lines: Buffer[];
  /** Record of each line (line i is lineRecords[i]). */
  lineRecords: StreamRecord[];
  dead: Array<{ record: StreamRecord; reason: string }>;
}

function splitBatch(records: StreamRecord[]): SplitBatch {
  const out: SplitBatch = { lines: [], lineRecords: [], dead: [] };
  for (const r of records) {
    if (!SEQ.test(r.sequenceNumber)) throw ApplicationFailure.nonRetryable(`Kinesis returned a malformed sequence number ${JSON.stringify(r.sequenceNumber)}`, NonRetryable.badInput);
    const landed = landableLine(r.data.length ? r.data : Buffer.alloc(0));
    if ('line' in landed) {
      out.lines.push(landed.line);
      out.lineRecords.push(r);
    } else out.dead.push({ record: r, reason: landed.reason });
  }
  return out;
}

/** Writes the lines as `<dir>/partition=0/<topic>+0+0000000000.json`, the layout recordsSql reads. */
function stageLocally(root: string, topic: StreamTopic, lines: Buffer[]): string {
  const dir = path.join(root, randomUUID());
  fs.mkdirSync(path.join(dir, 'partition=0'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'partition=0', `${topic}+0+0000000000.json`), Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')])));
  return dir;
}

const tsLiteral = (d: Date) => d.toISOString().replace('T', ' ').replace('Z', '');

/** A DuckDB error: our statements' syntax/binding errors are bugs (non-retryable); conflicts, I/O and the rest are retried. */
function duckdbFailure(step: string, err: unknown): Error {
  if (err instanceof ApplicationFailure) return err;
  const message = `DuckDB: ${step}: ${(err as Error).message}`;
  if (/^(Parser|Binder) Error/.test((err as Error).message)) return ApplicationFailure.nonRetryable(message, NonRetryable.badInput);
  return new Error(message, { cause: err });
}

/**
 * The DuckDB writer: one connection (temp tables are per connection), the schema `<prefix>`,
 * the stream table typed by the cleaning SQL itself (CREATE ... AS SELECT ... WHERE false).
 */
export async function openDuckdbWriter(opts: { dbPath: string; schema: string; topic: StreamTopic; streamCreatedAt: string | null; stagingDir: string }): Promise<StreamWriter> {
  const { topic } = opts;
  const table = tableOf(topic);
  const cols = specColumns(topic);
  const target = quoteId(streamTable(topic));
  const dl = quoteId(deadLetterTable(topic));
  const cp = quoteId(checkpointTable(topic));
  const records = `${topic}_records`;
  const cleaned = cleanedSql('duckdb', `${topic}_clean`, { stream: true });
  fs.mkdirSync(path.dirname(opts.dbPath), { recursive: true });
  fs.mkdirSync(opts.stagingDir, { recursive: true });
  const instance = await DuckDBInstance.fromCache(opts.dbPath);
  const c: DuckDBConnection = await instance.connect();
  const step = async (name: string, sql: string, values?: Parameters<DuckDBConnection['run']>[1]) => {
    try {
      return await c.run(sql, values);
    } catch (err) {
      throw duckdbFailure(name, err);
    }
  };
  /** Set-up DDL: writers of the three streams start together and may race on the catalog; try again. */
  const ddl = async (name: string, sql: string) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await c.run(sql);
      } catch (err) {
        if (!/conflict/i.test((err as Error).message) || attempt >= 10) throw duckdbFailure(name, err);
        await new Promise((r) => setTimeout(r, 20 * attempt));
      }
    }
  };
  const read = async (name: string, sql: string, values?: Parameters<DuckDBConnection['run']>[1]) => {
    try {
      return (await c.runAndReadAll(sql, values)).getRowObjectsJS();
    } catch (err) {
      throw duckdbFailure(name, err);
    }
  };
  try {
    await ddl('create schema', `CREATE SCHEMA IF NOT EXISTS ${quoteId(opts.schema)}`);
    await step('set schema', `SET schema = '${opts.schema.replace(/'/g, "''")}'`);
    await ddl(
      'create checkpoint table',
      `CREATE TABLE IF NOT EXISTS ${cp} (shard_id VARCHAR PRIMARY KEY, sequence_number VARCHAR NOT NULL, stream_created_at VARCHAR, updated_at TIMESTAMP, records BIGINT NOT NULL, "rows" BIGINT NOT NULL, dead_letters BIGINT NOT NULL, no_key BIGINT NOT NULL)`,
    );
    await ddl(
      'create dead-letter table',
      `CREATE TABLE IF NOT EXISTS ${dl} (_shard VARCHAR, _sequence_number VARCHAR, _partition_key VARCHAR, reason VARCHAR, data_base64 VARCHAR, _approximate_arrival TIMESTAMP, _arrival TIMESTAMP)`,
    );
    await step('empty records', `CREATE OR REPLACE TEMP TABLE ${records} AS ${recordsSql('duckdb', table, null)}`);
    await ddl(
      'create stream table',
      `CREATE TABLE IF NOT EXISTS ${target} AS SELECT ${cols.map((col) => `c.${quoteId(col)}`).join(', ')}, NULL::VARCHAR AS _shard, NULL::VARCHAR AS _sequence_number, NULL::TIMESTAMP AS _arrival, NULL::TIMESTAMP AS _approximate_arrival FROM (${cleaned}) c WHERE false`,
    );
  } catch (err) {
    c.closeSync();
    throw err;
  }

  return {
    async checkpoints() {
      const rows = await read('read checkpoints', `SELECT * FROM ${cp}`);
      for (const r of rows) checkStream(r.stream_created_at as string | null);
      return new Map(
        rows.map((r) => [
          String(r.shard_id),
          { sequenceNumber: String(r.sequence_number), records: Number(r.records), rows: Number(r.rows), deadLetters: Number(r.dead_letters), noKey: Number(r.no_key) },
        ]),
      );
    },

    async write(shardId, batch) {
      if (batch.length === 0) throw new Error('empty batch');
      await step('begin', 'BEGIN TRANSACTION');
      let dir: string | undefined;
      try {
        const prior = (await read('read checkpoint', `SELECT sequence_number, stream_created_at FROM ${cp} WHERE shard_id = $1`, [shardId]))[0];
        if (prior) checkStream(prior.stream_created_at as string | null);
        const after = prior ? String(prior.sequence_number) : null;
        const fresh = after === null ? batch : batch.filter((r) => compareSeq(r.sequenceNumber, after) > 0);
        const replayed = batch.length - fresh.length;
        if (fresh.length === 0) {
          await step('rollback', 'ROLLBACK');
          return { records: 0, rows: 0, deadLetters: 0, noKey: 0, replayed, checkpoint: after! };
        }
        const split = splitBatch(fresh);
        const now = tsLiteral(new Date());
        let rows = 0;
        let keyed = 0;
        if (split.lines.length) {
          dir = stageLocally(opts.stagingDir, topic, split.lines);
          await step('read batch records', `CREATE OR REPLACE TEMP TABLE ${records} AS ${recordsSql('duckdb', table, dir)}`);
          await step(
            'clean batch',
            `CREATE OR REPLACE TEMP TABLE stream_batch AS
             SELECT ${cols.map((col) => `c.${quoteId(col)}`).join(', ')}, $1::VARCHAR AS _shard, m.seq AS _sequence_number, $2::TIMESTAMP AS _arrival, m.approx AS _approximate_arrival, c.line_no, c.elem_no
             FROM (${cleaned}) c
             JOIN (SELECT generate_subscripts($3::VARCHAR[], 1) - 1 AS line_no, unnest($3::VARCHAR[]) AS seq, make_timestamp(unnest($4::BIGINT[]) * 1000) AS approx) m
               ON c.line_no = m.line_no`,
            [shardId, now, listValue(split.lineRecords.map((r) => r.sequenceNumber)), listValue(split.lineRecords.map((r) => BigInt(r.arrival?.getTime() ?? 0)))],
          );
          await step(
            'insert rows',
            `INSERT INTO ${target} SELECT ${cols.map(quoteId).join(', ')}, _shard, _sequence_number, _arrival, _approximate_arrival FROM stream_batch ORDER BY line_no, elem_no`,
          );
          const counted = (await read('count rows', 'SELECT count(*) AS n, count(DISTINCT line_no) AS keyed FROM stream_batch'))[0]!;
          rows = Number(counted.n);
          keyed = Number(counted.keyed);
        }
        for (const d of split.dead) {
          await step('insert dead letter', `INSERT INTO ${dl} VALUES ($1, $2, $3, $4, $5, make_timestamp($6::BIGINT * 1000), $7::TIMESTAMP)`, [
            shardId,
            d.record.sequenceNumber,
            d.record.partitionKey,
            d.reason,
            d.record.data.toString('base64'),
            BigInt(d.record.arrival?.getTime() ?? 0),
            now,
          ]);
        }
        const last = fresh[fresh.length - 1]!.sequenceNumber;
        const noKey = split.lines.length - keyed;
        await step(
          'advance checkpoint',
          `INSERT INTO ${cp} VALUES ($1, $2, $3, $4::TIMESTAMP, $5, $6, $7, $8)
           ON CONFLICT (shard_id) DO UPDATE SET sequence_number = excluded.sequence_number, stream_created_at = excluded.stream_created_at, updated_at = excluded.updated_at,
             records = ${cp}.records + excluded.records, "rows" = ${cp}."rows" + excluded."rows", dead_letters = ${cp}.dead_letters + excluded.dead_letters, no_key = ${cp}.no_key + excluded.no_key`,
          [shardId, last, opts.streamCreatedAt, now, fresh.length, rows, split.dead.length, noKey],
        );
        await step('commit', 'COMMIT');
        return { records: fresh.length, rows, deadLetters: split.dead.length, noKey, replayed, checkpoint: last };
      } catch (err) {
        await c.run('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
      }
    },

    async close() {
      c.closeSync();
    },
  };

  /** A checkpoint taken from another incarnation of the stream would skip or duplicate records. */
  function checkStream(recorded: string | null) {
    if (recorded && opts.streamCreatedAt && recorded !== opts.streamCreatedAt) {
      throw ApplicationFailure.nonRetryable(
        `${opts.schema}.${checkpointTable(topic)} holds checkpoints of stream ${streamName(opts.schema, topic)} as created at ${recorded}, but the stream now was created at ${opts.streamCreatedAt} (deleted and recreated?): its sequence numbers do not continue the old ones. Drop the stream tables of this prefix, or use a new prefix.`,
        NonRetryable.conflict,
      );
    }
  }
}

/**
 * The statements that write one batch to Delta tables (Databricks). Exported for the tests:
 * the stand-in warehouse checks them. `location` is the staged batch's folder (s3://...).
 */
export function databricksBatchStatements(opts: {
  table: (name: string) => string;
  topic: StreamTopic;
  shardId: string;
  location: string | null;
  lineRecords: StreamRecord[];
  dead: Array<{ record: StreamRecord; reason: string }>;
}): { setup: string[]; merge: string | null; deadLetters: string | null } {
  const { topic } = opts;
  const dialect: Dialect = 'databricks';
  const cols = specColumns(topic);
  const q = (id: string) => `\`${id}\``;
  const str = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const ts = (d: Date | null) => (d ? `TIMESTAMP_NTZ '${tsLiteral(d)}'` : 'CAST(NULL AS TIMESTAMP_NTZ)');
  const target = opts.table(streamTable(topic));
  const dl = opts.table(deadLetterTable(topic));
  const cleaned = cleanedSql(dialect, `${topic}_clean`, { stream: true });
  const setup = [
    `CREATE OR REPLACE TEMPORARY VIEW ${topic}_records AS ${recordsSql(dialect, tableOf(topic), opts.location)}`,
    `CREATE TABLE IF NOT EXISTS ${target} USING DELTA AS SELECT ${cols.map((col) => `c.${q(col)}`).join(', ')}, CAST(NULL AS STRING) AS _shard, CAST(NULL AS STRING) AS _sequence_number, CAST(NULL AS TIMESTAMP_NTZ) AS _arrival, CAST(NULL AS TIMESTAMP_NTZ) AS _approximate_arrival FROM (${cleaned}) c WHERE false`,
    `CREATE TABLE IF NOT EXISTS ${dl} (_shard STRING, _sequence_number STRING, _partition_key STRING, reason STRING, data_base64 STRING, _approximate_arrival TIMESTAMP_NTZ, _arrival TIMESTAMP_NTZ) USING DELTA`,
  ];
  const merge = opts.lineRecords.length
    ? `MERGE INTO ${target} AS t
USING (
  SELECT ${cols.map((col) => `c.${q(col)}`).join(', ')}, ${str(opts.shardId)} AS _shard, m._sequence_number, CAST(current_timestamp() AS TIMESTAMP_NTZ) AS _arrival, m._approximate_arrival
  FROM (${cleaned}) c
  JOIN (VALUES ${opts.lineRecords.map((r, i) => `(${i}, ${str(r.sequenceNumber)}, ${ts(r.arrival)})`).join(', ')}) AS m(line_no, _sequence_number, _approximate_arrival)
    ON c.line_no = m.line_no
) AS s
ON t._shard = s._shard AND t._sequence_number = s._sequence_number
WHEN NOT MATCHED THEN INSERT *`
    : null;
  const deadLetters = opts.dead.length
    ? `MERGE INTO ${dl} AS t
USING (SELECT * FROM (VALUES ${opts.dead
        .map((d) => `(${str(opts.shardId)}, ${str(d.record.sequenceNumber)}, ${str(d.record.partitionKey)}, ${str(d.reason)}, ${str(d.record.data.toString('base64'))}, ${ts(d.record.arrival)}, CAST(current_timestamp() AS TIMESTAMP_NTZ))`)
        .join(', ')}) AS v(_shard, _sequence_number, _partition_key, reason, data_base64, _approximate_arrival, _arrival)) AS s
ON t._shard = s._shard AND t._sequence_number = s._sequence_number
WHEN NOT MATCHED THEN INSERT *`
    : null;
  return { setup, merge, deadLetters };
}

/**
 * The Databricks writer: each batch staged as one NDJSON object under
 * `streaming-staging/<stream>/<shard>/<first>-<last>/partition=0/` in the bucket (the warehouse
 * reads S3 itself, as in the batch path), then MERGEd; the object is deleted afterwards.
 */
export async function openDatabricksWriter(opts: { config: Config; s3: ReturnType<typeof s3Adapter>; topic: StreamTopic; prefix: string; sql?: DatabricksSql }): Promise<StreamWriter> {
  const db = opts.config.warehouse.databricks;
  const ca = db.caFile ? fs.readFileSync(db.caFile, 'utf8') : undefined;
  const setupSql = opts.sql ? undefined : createDatabricksSql(db, { ca, initialSchema: null });
  try {
    await setupSql?.run([`CREATE SCHEMA IF NOT EXISTS \`${db.catalog}\`.\`${db.schema}\``]);
  } finally {
    await setupSql?.close();
  }
  const sql = opts.sql ?? createDatabricksSql(db, { ca });
  const table = (name: string) => `\`${db.catalog}\`.\`${db.schema}\`.\`${name}\``;
  const stream = streamName(opts.prefix, opts.topic);
  let tablesReady = false;
  return {
    async checkpoints() {
      return new Map();
    },
    async write(shardId, batch) {
      const split = splitBatch(batch);
      const first = batch[0]!.sequenceNumber;
      const last = batch[batch.length - 1]!.sequenceNumber;
      const folder = `streaming-staging/${stream}/${shardId}/${first}-${last}`;
      const key = `${folder}/partition=0/${opts.topic}+0+0000000000.json`;
      if (split.lines.length) {
        const body = Buffer.concat(split.lines.flatMap((l) => [l, Buffer.from('\n')]));
        await guarded('S3', opts.s3.address, () => opts.s3.client().send(new PutObjectCommand({ Bucket: opts.s3.bucket, Key: key, Body: body, ContentType: 'application/x-ndjson' })));
      }
      const st = databricksBatchStatements({
        table,
        topic: opts.topic,
        shardId,
        location: split.lines.length ? `s3://${opts.s3.bucket}/${folder}` : null,
        lineRecords: split.lineRecords,
        dead: split.dead,
      });
      // The view over this batch; the tables once per writer (typed by the same SELECT).
      await sql.run(tablesReady ? st.setup.slice(0, 1) : st.setup);
      tablesReady = true;
      let rows = 0;
      if (st.merge) rows = Number((await sql.query(st.merge))[0]?.num_inserted_rows ?? 0);
      if (st.deadLetters) await sql.run([st.deadLetters]);
      if (split.lines.length) await opts.s3.client().send(new DeleteObjectCommand({ Bucket: opts.s3.bucket, Key: key })).catch(() => undefined);
      // The tables are exact (MERGE on _shard, _sequence_number); the counters count what was
      // read, so a replayed batch counts again here (rows: what MERGE inserted, 0 on a replay).
      return { records: batch.length, rows, deadLetters: split.dead.length, noKey: 0, replayed: 0, checkpoint: last };
    },
    async close() {
      if (!opts.sql) await sql.close();
    },
  };
}

/** Iterators the last span of a shard ended with, keyed by stream, shard and checkpoint (valid 4 min). */
const iteratorCache = new Map<string, { iterator: string; at: number }>();
const ITERATOR_REUSE_MS = 4 * 60_000;
/** Throttled GetRecords in a row per shard and when to try again, kept across spans so the backoff holds and grows. */
const throttleStreaks = new Map<string, { streak: number; until: number }>();

export function streamingActivities(config: Config, kinesis: ReturnType<typeof kinesisAdapter>, s3: ReturnType<typeof s3Adapter>) {
  const stagingDir = path.join(path.dirname(config.warehouse.duckdbPath), 'staging', 'streaming');

  // Databricks: one SQL session per stream kept across spans (opening one takes a while);
  // dropped after a failed write so the next span starts a fresh one.
  const databricksWriters = new Map<string, Promise<StreamWriter>>();

  async function openWriter(input: SpanInput): Promise<StreamWriter> {
    if (config.warehouse.kind !== 'databricks') {
      return openDuckdbWriter({ dbPath: config.warehouse.duckdbPath, schema: input.prefix, topic: input.topic, streamCreatedAt: input.streamCreatedAt, stagingDir });
    }
    const key = streamName(input.prefix, input.topic);
    let shared = databricksWriters.get(key);
    if (!shared) {
      shared = openDatabricksWriter({ config, s3, topic: input.topic, prefix: input.prefix });
      databricksWriters.set(key, shared);
      shared.catch(() => databricksWriters.delete(key));
    }
    const writer = await shared;
    return {
      checkpoints: () => writer.checkpoints(),
      write: (shardId, records) =>
        writer.write(shardId, records).catch(async (err) => {
          if (databricksWriters.get(key) === shared) databricksWriters.delete(key);
          await writer.close().catch(() => undefined);
          throw err;
        }),
      close: async () => {},
    };
  }

  return {
    /** Creates the topic's stream if missing (waits until ACTIVE) and says which warehouse writes it. */
    async ensureStreamingStream(input: { prefix: string; topic: StreamTopic; shardCount: number }): Promise<StreamSummaryResult> {
      const name = streamName(input.prefix, input.topic);
      const [summary] = await kinesis.guard(() => ensureStreams(kinesis.client(), [name], input.shardCount));
      return { stream: name, createdAt: summary!.createdAt, openShards: summary!.openShards, warehouse: config.warehouse.kind };
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
      const writer = await openWriter(input);
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
              await sleep(backoffMs(attempt), stop.signal);
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
              await sleep(backoff.until - Date.now(), stop.signal);
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
            if (caughtUp) await sleep(input.pollIntervalMs, stop.signal);
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
