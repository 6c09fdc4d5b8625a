/**
 * The embedded warehouse's interval run (WAREHOUSE=duckdb, a cleaning input with `interval`):
 * the plan of sql/incremental.ts on the DuckDB file, in the schema of the pipeline prefix.
 *
 * `readLedger` reads which objects were merged (creating the ledger on first use), so the
 * caller stages only the objects `pickBatch` chooses; `runDuckdbIncremental` runs every
 * statement in one transaction (a failed run leaves the tables, versions and ledger as they
 * were), then exports the current cleaned tables and the date's nine outputs as Parquet. The
 * analytics read the current tables as the state as of the interval's end when the ledger, as
 * that transaction reads it, holds nothing at or beyond the end (`asOfIsCurrent`) and no full
 * recompute wrote the schema (`fullRunWrote`); otherwise that state is computed from the versions.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { CleanedTableName } from '../../common/analytics';
import { ANALYTICS_NAMES, CLEANED_NAMES, type TableCounts } from '../../common/cleaning';
import { NonRetryable } from '../../common/errors';
import type { IntervalManifest } from '../../common/interval';
import { SOURCE_TABLES } from '../../common/source-tables';
import { asOfIsCurrent, checkCollected, incrementalStatements, intervalOutcome, ledgerStatements, type BatchSources, type LedgerRow, type Topic } from '../../sql/incremental';
import { stepTimer } from '../warehouse-shared';
import { literal, PARQUET_OPTIONS, quoteId, withConnection } from './connection';

export interface DuckdbIntervalResult {
  /** Per cleaned table: the interval's counts, rows as of the interval's end. */
  counts: Record<CleanedTableName, TableCounts>;
  /** Rows per output of the date, per as-of table, and `<table>_current`. */
  rows: Record<string, number>;
  /** Parquet file per cleaned table (current state) and per output (the date's). */
  parquet: Record<string, string>;
  timings: Array<{ name: string; ms: number }>;
}

/**
 * Persistent tables by their full name, catalog included: the DuckDB file's catalog is named
 * after the file (pinflow.duckdb: "pinflow"), which is also the default prefix, and a two-part
 * name "pinflow"."pin_clean" would be ambiguous between catalog and schema.
 */
async function tableIn(c: DuckDBConnection, schema: string): Promise<(name: string) => string> {
  const catalog = String((await c.runAndReadAll('SELECT current_database() AS d')).getRowObjectsJS()[0]!.d);
  return (name: string) => `${quoteId(catalog)}.${quoteId(schema)}.${quoteId(name)}`;
}
const plain = (v: unknown) => (typeof v === 'bigint' ? Number(v) : v);

function sqlFailure(step: string, err: unknown): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`DuckDB: ${step} failed: ${(err as Error).message}`, NonRetryable.badInput);
}

/** The ledger of merged objects (created empty on first use), as the connection sees it. */
async function ledgerIn(c: DuckDBConnection, table: (name: string) => string): Promise<LedgerRow[]> {
  const l = ledgerStatements('duckdb', table);
  for (const sql of l.setup) await c.run(sql);
  return (await c.runAndReadAll(l.query)).getRowObjectsJS() as unknown as LedgerRow[];
}

/** The ledger of merged objects of `schema` (created empty on first use). */
export async function readLedger(dbPath: string, schema: string): Promise<LedgerRow[]> {
  return withConnection(dbPath, async (c) => {
    await c.run(`CREATE SCHEMA IF NOT EXISTS ${quoteId(schema)}`);
    return ledgerIn(c, await tableIn(c, schema));
  });
}

/**
 * Whether a full recompute (adapters/duckdb/cleaning.ts) ever wrote `schema`, seen by the
 * relations only it creates there (`joined`, the nine outputs): it replaces the current tables
 * with everything landed, which may lie beyond an interval's end, so they are no longer the
 * latest version over the versions and the state as of an interval's end is computed.
 */
async function fullRunWrote(c: DuckDBConnection, schema: string): Promise<boolean> {
  const names = ['joined', ...ANALYTICS_NAMES].map(literal).join(', ');
  const sql = `SELECT count(*) AS n FROM information_schema.tables WHERE table_catalog = current_database() AND table_schema = ${literal(schema)} AND table_name IN (${names})`;
  return Number((await c.runAndReadAll(sql)).getRowObjectsJS()[0]!.n) > 0;
}

export async function runDuckdbIncremental(opts: {
  dbPath: string;
  schema: string;
  interval: IntervalManifest;
  batch: BatchSources;
  exportDir: string;
  onStep?: (name: string, done: number, total: number) => void;
}): Promise<DuckdbIntervalResult> {
  const timings: DuckdbIntervalResult['timings'] = [];
  const timed = stepTimer(timings);
  fs.mkdirSync(opts.exportDir, { recursive: true });
  return withConnection(opts.dbPath, async (c) => {
    await c.run(`CREATE SCHEMA IF NOT EXISTS ${quoteId(opts.schema)}`);
    const table = await tableIn(c, opts.schema);
    const collected: Record<string, Array<Record<string, unknown>>> = {};
    await c.run('BEGIN TRANSACTION');
    try {
      const asOfCurrent = (await fullRunWrote(c, opts.schema)) ? false : asOfIsCurrent(opts.interval, opts.batch, await ledgerIn(c, table));
      const statements = incrementalStatements('duckdb', { interval: opts.interval, batch: opts.batch, table, asOfCurrent });
      let done = 0;
      for (const s of statements) {
        opts.onStep?.(s.name, done, statements.length);
        // Row order matters only in the (small, sorted) analytics outputs.
        await c.run(`SET preserve_insertion_order = ${s.name.startsWith('analytics ')}`);
        const reader = await timed(s.name, () => c.runAndReadAll(s.sql)).catch((err) => {
          throw sqlFailure(`statement ${s.name}`, err);
        });
        if (s.collect) collected[s.collect] = reader.getRowObjectsJS().map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, plain(v)])));
        checkCollected(s, collected[s.collect ?? ''] ?? []);
        done++;
      }
      await timed('commit', () => c.run('COMMIT'));
    } catch (err) {
      await c.run('ROLLBACK').catch(() => undefined);
      throw err;
    }
    const { tables: counts, rows } = intervalOutcome(collected);
    const parquet: Record<string, string> = {};
    const exports = [...CLEANED_NAMES.map((n) => [n, table(n), false] as const), ...ANALYTICS_NAMES.map((n) => [n, n, true] as const)];
    for (const [name, relation, sorted] of exports) {
      const file = path.join(opts.exportDir, `${name}.parquet`);
      // The outputs keep their sorted order; the cleaned tables are written in parallel.
      await c.run(`SET preserve_insertion_order = ${sorted}`);
      const sql = `COPY (SELECT * FROM ${relation}) TO ${literal(file)} (${PARQUET_OPTIONS})`;
      await timed(`export ${name}`, () => c.run(sql)).catch((err) => {
        throw sqlFailure(`Parquet export of ${name}`, err);
      });
      parquet[name] = file;
    }
    return { counts, rows, parquet, timings };
  });
}

/** The landed objects in local topic folders (`partition=<p>/<name>`), as listed keys. */
export function localLandedObjects(folders: Record<Topic, string | null>): Record<Topic, Array<{ key: string }>> {
  const out = { pin: [], geo: [], user: [] } as Record<Topic, Array<{ key: string }>>;
  for (const t of SOURCE_TABLES) {
    const folder = folders[t.topic];
    if (!folder || !fs.existsSync(folder)) continue;
    for (const part of fs.readdirSync(folder).filter((p) => p.startsWith('partition=')).sort()) {
      for (const f of fs.readdirSync(path.join(folder, part)).sort()) out[t.topic].push({ key: path.join(folder, part, f).replace(/\\/g, '/') });
    }
  }
  return out;
}
