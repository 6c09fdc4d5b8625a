/**
 * What the warehouse implementations (adapters/duckdb/, adapters/databricks/) do the same way:
 * reading the per-topic record counts, timing steps, and splitting a stream batch into the
 * NDJSON lines the cleaning SQL reads and the dead letters (by each record's landing verdict),
 * and clearing an output's undated objects for an interval run (the one S3 call here). Node-only.
 */
import { ApplicationFailure } from '@temporalio/common';
import { CLEANED_TABLES } from '../common/analytics';
import type { TableCounts } from '../common/cleaning';
import { guarded, NonRetryable } from '../common/errors';
import { SOURCE_TABLES, type SourceTable } from '../common/source-tables';
import type { StreamTopic } from '../common/streaming';
import { deleteOthers, listKeys, type s3Adapter } from './s3';
import type { StreamRecord } from './warehouse';

/** A row of recordCountsSql (either engine) as the counts the result reports. */
export function tableCounts(r: Record<string, unknown>): TableCounts {
  const read = Number(r.records_read ?? 0);
  const kept = Number(r.kept ?? 0);
  const notObject = Number(r.not_an_object ?? 0);
  const noKey = Number(r.no_usable_key ?? 0);
  const leftOut: Record<string, number> = {};
  if (notObject > 0) leftOut.not_a_json_object = notObject;
  if (noKey > 0) leftOut.no_usable_key = noKey;
  return { read, rows: kept, duplicates: read - kept - notObject - noKey, leftOut };
}

/** Runs steps, appending each one's wall time (ms) to `timings`, failed or not. */
export function stepTimer(timings: Array<{ name: string; ms: number }>) {
  return async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      timings.push({ name, ms: Math.round(performance.now() - t0) });
    }
  };
}

export const sourceTableOf = (topic: StreamTopic): SourceTable => SOURCE_TABLES.find((t) => t.topic === topic)!;
/** The columns of `<topic>_clean`, in order. */
export const cleanedColumns = (topic: StreamTopic): readonly string[] => CLEANED_TABLES.find((t) => t.name === `${topic}_clean`)!.columns;
/** `2026-01-02 03:04:05.678`: a UTC instant as a zone-less timestamp literal. */
export const tsLiteral = (d: Date) => d.toISOString().replace('T', ' ').replace('Z', '');

/** A staged batch's one object, relative to its folder: the landing layout recordsSql reads. */
export const stagedBatchFile = (topic: StreamTopic) => `partition=0/${topic}+0+0000000000.json`;
export const ndjson = (lines: Buffer[]): Buffer => Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]));

const SEQ = /^[0-9]{1,128}$/;

/** A batch split into the NDJSON lines the cleaning SQL reads and the dead letters. */
export interface SplitBatch {
  lines: Buffer[];
  /** Record of each line (line i is lineRecords[i]). */
  lineRecords: StreamRecord[];
  dead: Array<{ record: StreamRecord; reason: string }>;
}

export function splitBatch(records: StreamRecord[]): SplitBatch {
  const out: SplitBatch = { lines: [], lineRecords: [], dead: [] };
  for (const r of records) {
    if (!SEQ.test(r.sequenceNumber)) throw ApplicationFailure.nonRetryable(`Kinesis returned a malformed sequence number ${JSON.stringify(r.sequenceNumber)}`, NonRetryable.badInput);
    if ('line' in r.landable) {
      out.lines.push(r.landable.line);
      out.lineRecords.push(r);
    } else out.dead.push({ record: r, reason: r.landable.reason });
  }
  return out;
}

/**
 * Removes the objects of an analytics output that lie beside its `date=` folders (a full
 * run's output): readers of the partitioned layout would take them for rows of every date.
 */
export async function clearUndated(s3: ReturnType<typeof s3Adapter>, bucket: string, outputPrefix: string): Promise<void> {
  await guarded('S3', s3.address, async () => {
    const dated = (await listKeys(s3.client(), bucket, outputPrefix)).filter((k) => k.startsWith(`${outputPrefix}date=`));
    await deleteOthers(s3.client(), bucket, outputPrefix, new Set(dated));
  });
}
