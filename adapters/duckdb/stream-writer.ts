/**
 * The DuckDB stream writer (WAREHOUSE=duckdb): one transaction per batch in the DuckDB file:
 * the cleaned rows into `<topic>_clean_stream`, malformed records into
 * `<topic>_stream_dead_letter`, and the shard's last sequence number into
 * `<topic>_stream_checkpoint`. Records at or before the shard's checkpoint are already
 * written and are skipped, so a replayed batch adds nothing; two writers racing on a shard
 * both update its checkpoint row, and DuckDB refuses the second commit (a retryable conflict).
 *
 * The batch's lines are staged as a local file in the landing layout and read by the batch
 * path's records/cleaning SQL (sql/render.ts in stream mode).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { listValue, type DuckDBConnection } from '@duckdb/node-api';
import { ApplicationFailure } from '@temporalio/common';
import { NonRetryable } from '../../common/errors';
import { checkpointTable, compareSeq, deadLetterTable, streamName, streamTable } from '../../common/streaming';
import { cleanedSql, recordsSql } from '../../sql/render';
import type { StreamTarget, StreamWriter } from '../warehouse';
import { cleanedColumns, ndjson, sourceTableOf, splitBatch, stagedBatchFile, tsLiteral } from '../warehouse-shared';
import { literal, openInstance, quoteId } from './connection';

/** A DuckDB error: our statements' syntax/binding errors are bugs (non-retryable); conflicts, I/O and the rest are retried. */
function duckdbFailure(step: string, err: unknown): Error {
  if (err instanceof ApplicationFailure) return err;
  const message = `DuckDB: ${step}: ${(err as Error).message}`;
  if (/^(Parser|Binder) Error/.test((err as Error).message)) return ApplicationFailure.nonRetryable(message, NonRetryable.badInput);
  return new Error(message, { cause: err });
}

/** Writes the lines as `<root>/<random>/partition=0/<topic>+0+0000000000.json`, the layout recordsSql reads. */
function stageLocally(root: string, target: StreamTarget, lines: Buffer[]): string {
  const dir = path.join(root, randomUUID());
  const file = path.join(dir, stagedBatchFile(target.topic));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, ndjson(lines));
  return dir;
}

/**
 * Opens a writer on one connection (temp tables are per connection) in the schema `<prefix>`,
 * the stream table typed by the cleaning SQL itself (CREATE ... AS SELECT ... WHERE false).
 */
export async function openDuckdbWriter(opts: { dbPath: string; stagingDir: string } & StreamTarget): Promise<StreamWriter> {
  const { topic, prefix: schema } = opts;
  const cols = cleanedColumns(topic);
  const target = quoteId(streamTable(topic));
  const dl = quoteId(deadLetterTable(topic));
  const cp = quoteId(checkpointTable(topic));
  const records = `${topic}_records`;
  const cleaned = cleanedSql('duckdb', `${topic}_clean`, { stream: true });
  fs.mkdirSync(opts.stagingDir, { recursive: true });
  const c: DuckDBConnection = await (await openInstance(opts.dbPath)).connect();
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
        await delay(20 * attempt);
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
    await ddl('create schema', `CREATE SCHEMA IF NOT EXISTS ${quoteId(schema)}`);
    await step('set schema', `SET schema = ${literal(schema)}`);
    await ddl(
      'create checkpoint table',
      `CREATE TABLE IF NOT EXISTS ${cp} (shard_id VARCHAR PRIMARY KEY, sequence_number VARCHAR NOT NULL, stream_created_at VARCHAR, updated_at TIMESTAMP, records BIGINT NOT NULL, "rows" BIGINT NOT NULL, dead_letters BIGINT NOT NULL, no_key BIGINT NOT NULL)`,
    );
    await ddl(
      'create dead-letter table',
      `CREATE TABLE IF NOT EXISTS ${dl} (_shard VARCHAR, _sequence_number VARCHAR, _partition_key VARCHAR, reason VARCHAR, data_base64 VARCHAR, _approximate_arrival TIMESTAMP, _arrival TIMESTAMP)`,
    );
    await step('empty records', `CREATE OR REPLACE TEMP TABLE ${records} AS ${recordsSql('duckdb', sourceTableOf(topic), null)}`);
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
          dir = stageLocally(opts.stagingDir, opts, split.lines);
          await step('read batch records', `CREATE OR REPLACE TEMP TABLE ${records} AS ${recordsSql('duckdb', sourceTableOf(topic), dir)}`);
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
        `${schema}.${checkpointTable(topic)} holds checkpoints of stream ${streamName(schema, topic)} as created at ${recorded}, but the stream now was created at ${opts.streamCreatedAt} (deleted and recreated?): its sequence numbers do not continue the old ones. Drop the stream tables of this prefix, or use a new prefix.`,
        NonRetryable.conflict,
      );
    }
  }
}
