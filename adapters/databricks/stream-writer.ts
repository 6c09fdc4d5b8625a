/**
 * The Databricks stream writer (WAREHOUSE=databricks): each batch is staged as one NDJSON
 * object in the bucket under `streaming-staging/<stream>/<shard>/<first>-<last>/partition=0/`
 * (the warehouse reads S3 itself, as in the batch path), read by the same records/cleaning
 * SQL (Spark dialect) and `MERGE ... WHEN NOT MATCHED THEN INSERT` on (_shard,
 * _sequence_number) into the prefix's Delta tables (`<prefix>__<topic>_clean_stream`,
 * `<prefix>__<topic>_stream_dead_letter`: `prefixedName` of adapters/databricks/sql.ts), each
 * statement idempotent on its own; the staged object is deleted afterwards.
 */
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { guarded } from '../../common/errors';
import { deadLetterTable, streamName, streamTable, type StreamTopic } from '../../common/streaming';
import { cleanedSql, recordsSql } from '../../sql/render';
import type { StreamRecord, StreamTarget, StreamWriter, WarehouseDeps } from '../warehouse';
import { cleanedColumns, ndjson, sourceTableOf, splitBatch, stagedBatchFile, tsLiteral } from '../warehouse-shared';
import { configuredSqlOptions, createDatabricksSql, ensureSchema, prefixedName, type DatabricksConfig, type DatabricksSql } from './sql';

/**
 * The statements that write one batch to Delta tables. Exported for the tests: the stand-in
 * warehouse checks them. `location` is the staged batch's folder (s3://...).
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
  const cols = cleanedColumns(topic);
  const q = (id: string) => `\`${id}\``;
  const str = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const ts = (d: Date | null) => (d ? `TIMESTAMP_NTZ '${tsLiteral(d)}'` : 'CAST(NULL AS TIMESTAMP_NTZ)');
  const target = opts.table(streamTable(topic));
  const dl = opts.table(deadLetterTable(topic));
  const cleaned = cleanedSql('databricks', `${topic}_clean`, { stream: true });
  const setup = [
    `CREATE OR REPLACE TEMPORARY VIEW ${topic}_records AS ${recordsSql('databricks', sourceTableOf(topic), opts.location)}`,
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
 * Opens a writer of one stream: the configured schema created if missing, the stream and
 * dead-letter tables on its first batch. `sql`: a session to use (and leave open) instead of
 * one of its own.
 */
export async function openDatabricksWriter(
  opts: { databricks: DatabricksConfig; s3: WarehouseDeps['s3']; sql?: DatabricksSql } & Pick<StreamTarget, 'prefix' | 'topic'>,
): Promise<StreamWriter> {
  const db = opts.databricks;
  const { s3, topic } = opts;
  const sqlOptions = configuredSqlOptions(db);
  if (!opts.sql) await ensureSchema(db, sqlOptions);
  const sql = opts.sql ?? createDatabricksSql(db, sqlOptions);
  const stream = streamName(opts.prefix, topic);
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
      const key = `${folder}/${stagedBatchFile(topic)}`;
      if (split.lines.length) {
        await guarded('S3', s3.address, () => s3.client().send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: ndjson(split.lines), ContentType: 'application/x-ndjson' })));
      }
      const st = databricksBatchStatements({
        table: (name) => prefixedName(db, opts.prefix, name),
        topic,
        shardId,
        location: split.lines.length ? `s3://${s3.bucket}/${folder}` : null,
        lineRecords: split.lineRecords,
        dead: split.dead,
      });
      // The view over this batch; the tables once per writer (typed by the same SELECT).
      await sql.run(tablesReady ? st.setup.slice(0, 1) : st.setup);
      tablesReady = true;
      let rows = 0;
      if (st.merge) rows = Number((await sql.query(st.merge))[0]?.num_inserted_rows ?? 0);
      if (st.deadLetters) await sql.run([st.deadLetters]);
      if (split.lines.length) await s3.client().send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key })).catch(() => undefined);
      // The tables are exact (MERGE on _shard, _sequence_number); the counters count what was
      // read, so a replayed batch counts again here (rows: what MERGE inserted, 0 on a replay).
      return { records: batch.length, rows, deadLetters: split.dead.length, noKey: 0, replayed: 0, checkpoint: last };
    },
    async close() {
      if (!opts.sql) await sql.close();
    },
  };
}
