/**
 * The embedded warehouse's batch cleaning (WAREHOUSE=duckdb): runs the cleaning and analytics
 * statements of sql/render.ts on a DuckDB file, over landed objects in local folders, and
 * exports every table as Parquet. Also turns Parquet outputs into the JSON files of `--out`.
 *
 * Each run is one transaction in its own schema (the pipeline prefix): a rerun replaces the
 * tables, and a run that fails leaves the previous tables as they were.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { CleanedTableName } from '../../common/analytics';
import type { TableCounts } from '../../common/cleaning';
import { NonRetryable } from '../../common/errors';
import { SOURCE_TABLES } from '../../common/source-tables';
import { cleaningStatements, recordCountsSql, type Statement, type TopicSources } from '../../sql/render';
import { stepTimer, tableCounts } from '../warehouse-shared';
import { literal, PARQUET_OPTIONS, quoteId, withConnection } from './connection';

export interface DuckdbRunResult {
  counts: Record<CleanedTableName, TableCounts>;
  /** Rows per table (cleaned and analytics). */
  rows: Record<string, number>;
  /** Parquet file per table, under the export folder. */
  parquet: Record<string, string>;
  timings: Array<{ name: string; ms: number }>;
}

/**
 * How each statement is run: `[preserve_insertion_order, SQL]`. Records and `joined` are
 * temporary tables, each built once: the cleaned tables read the records, the nine analytics
 * read `joined` (narrow: the columns they use) rather than each joining the cleaned tables
 * again. Cleaned tables and outputs persist in the schema. Row order matters only in the
 * (small, sorted) outputs; elsewhere DuckDB may write in parallel without keeping it, which is
 * much faster for million-row tables.
 */
function materialise(s: Statement): [boolean, string] {
  switch (s.kind) {
    case 'records':
    case 'view':
      return [false, `CREATE OR REPLACE TEMP TABLE ${s.name} AS ${s.sql}`];
    default:
      return [s.kind === 'analytics', `CREATE OR REPLACE TABLE ${s.name} AS ${s.sql}`];
  }
}

/** A DuckDB error on our own statements is a bug or bad input, never fixed by retrying. */
function sqlFailure(step: string, err: unknown): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`DuckDB: ${step} failed: ${(err as Error).message}`, NonRetryable.badInput);
}

/**
 * Cleans and analyses the landed objects in `sources` (local topic folders) into schema
 * `schema` of the DuckDB file `dbPath`, and writes each table to `<exportDir>/<table>.parquet`.
 */
export async function runDuckdbCleaning(opts: {
  dbPath: string;
  schema: string;
  sources: TopicSources;
  exportDir: string;
  threads?: number;
  onStep?: (name: string, done: number, total: number) => void;
}): Promise<DuckdbRunResult> {
  // Topic by topic: its records, then its cleaned table (which reads those records only), so
  // each records table is dropped before the next is built; then `joined` and the outputs.
  const all = cleaningStatements('duckdb', opts.sources);
  const statements = [...SOURCE_TABLES.flatMap((t) => all.filter((s) => s.name === `${t.topic}_records` || s.name === `${t.topic}_clean`)), ...all.filter((s) => s.kind === 'view' || s.kind === 'analytics')];
  if (statements.length !== all.length) throw new Error('cleaning statements: records and cleaned tables not one per topic');
  const timings: DuckdbRunResult['timings'] = [];
  const timed = stepTimer(timings);
  fs.mkdirSync(opts.exportDir, { recursive: true });
  return withConnection(opts.dbPath, async (c) => {
    if (opts.threads) await c.run(`SET threads = ${Math.max(1, Math.floor(opts.threads))}`);
    await c.run(`CREATE SCHEMA IF NOT EXISTS ${quoteId(opts.schema)}`);
    await c.run(`SET schema = ${literal(opts.schema)}`);
    await c.run('BEGIN TRANSACTION');
    const counts = {} as DuckdbRunResult['counts'];
    const rows: Record<string, number> = {};
    try {
      let done = 0;
      for (const s of statements) {
        opts.onStep?.(s.name, done, statements.length);
        const [ordered, sql] = materialise(s);
        await c.run(`SET preserve_insertion_order = ${ordered}`);
        await timed(s.name, () => c.run(sql)).catch((err) => {
          throw sqlFailure(`statement ${s.name}`, err);
        });
        const topic = SOURCE_TABLES.find((t) => s.name === `${t.topic}_clean`)?.topic;
        if (topic) {
          // The topic's counts while its records are there; then they are no longer needed.
          counts[s.name as CleanedTableName] = tableCounts((await c.runAndReadAll(recordCountsSql('duckdb', topic, { cleaned: s.name }))).getRowObjectsJS()[0]!);
          await c.run(`DROP TABLE temp.main.${topic}_records`);
        }
        done++;
      }
      await timed('commit', () => c.run('COMMIT'));
    } catch (err) {
      await c.run('ROLLBACK').catch(() => undefined);
      throw err;
    }
    const parquet: Record<string, string> = {};
    for (const s of statements.filter((x) => x.kind === 'cleaned' || x.kind === 'analytics')) {
      const file = path.join(opts.exportDir, `${s.name}.parquet`);
      await c.run(`SET preserve_insertion_order = ${s.kind === 'analytics'}`);
      await timed(`export ${s.name}`, () => c.run(`COPY (SELECT * FROM ${s.name}) TO ${literal(file)} (${PARQUET_OPTIONS})`)).catch((err) => {
        throw sqlFailure(`Parquet export of ${s.name}`, err);
      });
      parquet[s.name] = file;
      rows[s.name] = Number((await c.runAndReadAll(`SELECT count(*) AS n FROM ${s.name}`)).getRowObjectsJS()[0]!.n);
    }
    return { counts, rows, parquet, timings };
  });
}

/**
 * Writes the Parquet file(s) of one table as a JSON array of row objects: column names as in
 * the table, timestamps ISO-8601 without zone (fraction only when not zero), lists as arrays.
 * Done by DuckDB itself, so a million rows never pass through JavaScript.
 */
export async function parquetToJson(files: string[], outFile: string, orderBy?: string): Promise<number> {
  return withConnection(':memory:', async (c) => {
    const list = `[${files.map(literal).join(', ')}]`;
    const described = (await c.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${list})`)).getRowObjectsJS();
    const cols = described.map((d) => {
      const name = String(d.column_name);
      const id = quoteId(name);
      if (!String(d.column_type).startsWith('TIMESTAMP')) return id;
      const iso = `strftime(${id}, '%Y-%m-%dT%H:%M:%S')`;
      return `CASE WHEN microsecond(${id}) % 1000000 = 0 THEN ${iso} ELSE rtrim(strftime(${id}, '%Y-%m-%dT%H:%M:%S.%f'), '0') END AS ${id}`;
    });
    fs.mkdirSync(path.dirname(outFile), { recursive: true });
    await c.run(`COPY (SELECT ${cols.join(', ')} FROM read_parquet(${list})${orderBy ? ` ORDER BY ${quoteId(orderBy)}` : ''}) TO ${literal(outFile)} (FORMAT json, ARRAY true)`);
    return Number((await c.runAndReadAll(`SELECT count(*) AS n FROM read_parquet(${list})`)).getRowObjectsJS()[0]!.n);
  });
}
