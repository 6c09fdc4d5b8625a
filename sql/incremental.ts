/**
 * The incremental cleaning plan: the statements that merge one data interval's landed objects
 * into the cleaned tables and compute that date's analytics, rendered for DuckDB and for Spark
 * SQL on Delta tables (local Spark and Databricks). The SQL texts are `sql/incremental/*.sql`
 * (plus the cleaning and analytics texts of sql/render.ts); `{name}` placeholders in them are
 * filled here after the dialect macros are expanded.
 *
 * Persistent tables (names given by the caller's `table()`):
 * - `<t>_versions` per cleaned table `<t>`: the cleaned versions of every merged record, one
 *   per key and landed object (the object's latest record of the key), with its position
 *   `part, start_offset, line_no, elem_no, object` (`object` = `partition=<p>/<name>`);
 * - `<t>`: the current state, one row per key, the latest version overall (Spark: MERGE keyed
 *   by ind; DuckDB: the keys the batch touched deleted, then inserted with their latest version);
 * - `merged_objects`: the ledger, one row per merged object (topic, part, start_offset,
 *   object_key, merged_for = the date whose run merged it);
 * - `<output>_by_date`: each analytics output per date (column `date`, partitioned by it);
 * - `joined_current` (DuckDB): the join of the current tables, kept by the runs that read the
 *   current state as of their end (`stateStatements`).
 *
 * A run for date D: (1) `ledgerStatements` creates the ledger if needed and reads it; (2)
 * `pickBatch` chooses the objects to merge: every landed object whose first offset is below
 * D's end offset of its partition and that the ledger lacks, plus D's own objects again (a
 * rerun replaces its merge); (3) `incrementalStatements` runs in order. Its `collect`
 * statements return rows: `<topic>_files` (pass each to `checkCollected`, which fails the run
 * before anything is merged when an object could not be read), `<topic>_interval` (the
 * interval's counts, `intervalOutcome`) and `rows`.
 * The cleaned state as of D (temporary relations named like the cleaned tables, which the
 * analytics SQL reads) is per key the latest version among objects below D's end offsets, so
 * a backfilled date sees what it saw on its day whatever ran since. When nothing merged lies at
 * or beyond D's end (`asOfIsCurrent`: the daily run of the newest date) and the caller says so
 * (`IncrementalOptions.asOfCurrent`), that state is the current tables, read through views.
 */
import path from 'node:path';
import { ANALYTICS_NAMES, CLEANED_NAMES, type TableCounts } from '../common/cleaning';
import { CLEANED_TABLES, type CleanedTableName } from '../common/analytics';
import { parseObjectKey } from '../common/landing';
import type { IntervalManifest } from '../common/interval';
import { SOURCE_TABLES, type SourceTable } from '../common/source-tables';
import { cleanedSql, expandMacros, filesGlob, readSql, recordsSql, sqlId, sqlString, type Dialect } from './render';

export type Topic = SourceTable['topic'];

/** One landed object a run merges. */
export interface BatchObject {
  /** Its key in the bucket (or path under a local source), as listed. */
  key: string;
  partition: number;
  startOffset: number;
  /** Its first offset is in the interval's own range (not a catch-up of earlier objects). */
  own: boolean;
}

/** Per topic: the folder holding `partition=<p>/...` as the engine reads it, and the objects to merge from it. */
export type BatchSources = Record<Topic, { folder: string; objects: BatchObject[] } | null>;

/** A ledger row as `ledgerStatements().query` returns it. */
export interface LedgerRow {
  topic: string;
  part: number | bigint;
  start_offset: number | bigint;
}

export interface IncrementalStatement {
  /** What it does, for timings and progress (`merge pin_clean`, `analytics users_joined_by_year`). */
  name: string;
  sql: string;
  /** Set on the queries whose rows the engine reads back: `<topic>_files`, `<topic>_interval`, `rows`. */
  collect?: string;
  /** `<topic>_files`: the number of objects the records must come from (checkCollected). */
  expectFiles?: number;
}

/**
 * Throws when a `<topic>_files` query found fewer objects than the batch names: a file list
 * or glob silently skips a missing object, which must not be recorded as merged.
 */
export function checkCollected(s: IncrementalStatement, rows: Array<Record<string, unknown>>): void {
  if (s.expectFiles === undefined) return;
  const found = Number(rows[0]?.files ?? 0);
  if (found !== s.expectFiles) throw new Error(`${s.name}: read ${found} of the ${s.expectFiles} landed objects to merge; an object listed may be missing (it is not merged, nothing was changed)`);
}

export interface IncrementalOptions {
  interval: IntervalManifest;
  batch: BatchSources;
  /** The qualified, quoted name of a persistent table (`"pf"."pin_clean"`, `cat.sch.pin_clean`). */
  table: (name: string) => string;
  /** Spark/Databricks: also write Parquet with INSERT OVERWRITE DIRECTORY to these locations. */
  exportTo?: { cleaned: (name: string) => string; analytics: (name: string) => string };
  /**
   * The caller found the state as of the interval's end to be the current tables (`asOfIsCurrent`
   * holds, and only interval runs wrote the current tables): the analytics read them as they are
   * rather than the state computed from the versions.
   */
  asOfCurrent?: boolean;
}

const spark = (d: Dialect) => d !== 'duckdb';
const using = (d: Dialect) => (spark(d) ? ' USING DELTA' : '');
/** A temporary relation: materialised on DuckDB, a view on Spark (`temp`); a view on both (`view`). */
const temp = (d: Dialect, name: string, sql: string) => (spark(d) ? `CREATE OR REPLACE TEMPORARY VIEW ${name} AS ${sql}` : `CREATE OR REPLACE TEMP TABLE ${name} AS ${sql}`);
const view = (d: Dialect, name: string, sql: string) => `CREATE OR REPLACE ${spark(d) ? 'TEMPORARY' : 'TEMP'} VIEW ${name} AS ${sql}`;

/** The text of `sql/incremental/<file>.sql`, macros expanded, then `{name}` placeholders filled. */
function render(dialect: Dialect, file: string, values: Record<string, string>): string {
  const text = expandMacros(readSql(`incremental/${file}.sql`), dialect).trim();
  return text.replace(/\{([a-z_]+)\}/g, (whole, name: string) => {
    const v = values[name];
    if (v === undefined) throw new Error(`sql/incremental/${file}.sql: no value for {${name}}`);
    return v;
  });
}

/** The interval's end offsets per topic and partition (topics named `<prefix>.<topic>`). */
export function intervalBounds(interval: IntervalManifest): Array<{ topic: Topic; partition: number; start: number; end: number }> {
  return interval.ranges.map((r) => {
    const t = SOURCE_TABLES.find((s) => `${interval.prefix}.${s.topic}` === r.topic);
    if (!t) throw new Error(`interval ${interval.date}: topic ${r.topic} is not one of ${interval.prefix}.pin|geo|user`);
    return { topic: t.topic, partition: r.partition, start: r.start, end: r.end };
  });
}

/**
 * The objects a run for the interval merges, per topic: every landed object whose first offset
 * is below the interval's end offset of its partition and that the ledger lacks, and every
 * object of the interval's own ranges (merged again: a rerun replaces its merge). Objects of
 * partitions the interval does not list are left for a later interval.
 */
export function pickBatch(interval: IntervalManifest, landed: Record<Topic, Array<{ key: string }>>, ledger: LedgerRow[]): Record<Topic, BatchObject[]> {
  const bounds = intervalBounds(interval);
  const merged = new Set(ledger.map((r) => `${r.topic}/${Number(r.part)}/${Number(r.start_offset)}`));
  const out = { pin: [], geo: [], user: [] } as Record<Topic, BatchObject[]>;
  for (const t of SOURCE_TABLES) {
    for (const o of landed[t.topic]) {
      const p = parseObjectKey(o.key);
      if (!p || p.topic !== `${interval.prefix}.${t.topic}`) continue;
      const b = bounds.find((x) => x.topic === t.topic && x.partition === p.partition);
      if (!b || p.startOffset >= b.end) continue;
      const own = p.startOffset >= b.start;
      if (own || !merged.has(`${t.topic}/${p.partition}/${p.startOffset}`)) out[t.topic].push({ key: o.key, partition: p.partition, startOffset: p.startOffset, own });
    }
    out[t.topic].sort((a, b) => a.partition - b.partition || a.startOffset - b.startOffset);
  }
  return out;
}

/**
 * Whether the state as of the interval's end is the current state (the normal daily run of the
 * newest date), given current tables that hold each key's latest version over the versions
 * (as the interval runs keep them): every object merged after the run (the ledger's and the
 * batch's) lies below the interval's end offset of a partition the interval lists, so no
 * version is newer than the end; and every ledger object of the interval's own ranges is in the
 * batch, so no version is removed without its keys being merged again.
 */
export function asOfIsCurrent(interval: IntervalManifest, batch: BatchSources, ledger: LedgerRow[]): boolean {
  const bounds = intervalBounds(interval);
  const batched = SOURCE_TABLES.flatMap((t) => (batch[t.topic]?.objects ?? []).map((o) => ({ topic: t.topic as string, part: o.partition, offset: o.startOffset })));
  const inBatch = new Set(batched.map((o) => `${o.topic}/${o.part}/${o.offset}`));
  const merged = [...ledger.map((r) => ({ topic: r.topic, part: Number(r.part), offset: Number(r.start_offset) })), ...batched];
  return merged.every((o) => {
    const b = bounds.find((x) => x.topic === o.topic && x.partition === o.part);
    return b !== undefined && o.offset < b.end && (o.offset < b.start || inBatch.has(`${o.topic}/${o.part}/${o.offset}`));
  });
}

/** Creates the ledger if needed (`setup`, in order) and reads it (`query`). */
export function ledgerStatements(dialect: Dialect, table: (name: string) => string): { setup: string[]; query: string } {
  const ledger = table('merged_objects');
  return {
    setup: [`CREATE TABLE IF NOT EXISTS ${ledger} (topic STRING, part INT, start_offset BIGINT, object_key STRING, merged_for STRING)${using(dialect)}`],
    query: `SELECT topic, part, start_offset FROM ${ledger}`,
  };
}

/** `rows` as a relation with the given typed columns; an empty one when there are none. */
function valuesRelation(dialect: Dialect, columns: Array<[string, string]>, rows: string[][]): string {
  const casts = columns.map(([name, type], i) => `CAST(${rows.length ? `c${i}` : 'NULL'} AS ${type}) AS ${name}`).join(', ');
  if (rows.length === 0) return `SELECT ${casts} WHERE false`;
  const tuples = rows.map((r) => `(${r.join(', ')})`).join(', ');
  const alias = `v(${columns.map((_, i) => `c${i}`).join(', ')})`;
  return `SELECT ${casts} FROM ${spark(dialect) ? `VALUES ${tuples} AS ${alias}` : `(VALUES ${tuples}) AS ${alias}`}`;
}

/** Local Spark: the `landed_<topic>` views over exactly the batch's objects (recordsSql reads them). */
export function incrementalSparkPreamble(batch: BatchSources): string[] {
  return SOURCE_TABLES.filter((t) => batch[t.topic]?.objects.length).map((t) => {
    const b = batch[t.topic]!;
    const glob = filesGlob(b.folder, b.objects.map((o) => relativeObject(o)));
    return `CREATE OR REPLACE TEMPORARY VIEW \`landed_${t.topic}\` USING text OPTIONS (path ${sqlString('spark', glob)}, wholetext 'true')`;
  });
}

/** `partition=<p>/<name>`: where an object is under its topic folder. */
export const relativeObject = (o: Pick<BatchObject, 'key' | 'partition'>) => `partition=${o.partition}/${path.posix.basename(o.key)}`;

/**
 * The state as of the interval's end under the cleaned tables' names, and `joined` over it: what
 * the analytics read. Computed from the versions, or (`current`) views over the current tables.
 * DuckDB materialises `joined` once for the nine outputs; with `current` it keeps it as a table,
 * `joined_current` (the join of the current tables), and replaces only the rows of the keys the
 * run touched, joined over the current tables narrowed to those keys. A run that computes the
 * state drops that table, so it never lags the current tables; the next run creates it again.
 */
function stateStatements(dialect: Dialect, table: (name: string) => string, current: boolean): Array<[string, string]> {
  const q = (id: string) => sqlId(dialect, id);
  const columns = (t: (typeof CLEANED_TABLES)[number]) => t.columns.map(q).join(', ');
  const joined = expandMacros(readSql('analytics/joined.sql'), dialect);
  const out: Array<[string, string]> = [];
  const kept = current && !spark(dialect);
  const touched = SOURCE_TABLES.map((t) => `SELECT ind FROM ${t.topic}_batch`).join(' UNION ');
  if (kept) {
    for (const t of CLEANED_TABLES) out.push([`touched ${t.name}`, view(dialect, t.name, `SELECT ${columns(t)} FROM ${table(t.name)} WHERE ${q('ind')} IN (${touched})`)]);
    out.push(['joined touched', temp(dialect, 'joined_touched', joined)]);
  }
  for (const t of CLEANED_TABLES) {
    const computed = () => render(dialect, 'as_of', { versions: table(`${t.name}_versions`), topic: t.name.replace(/_clean$/, ''), columns: columns(t) });
    out.push([`as of ${t.name}`, current ? view(dialect, t.name, `SELECT ${columns(t)} FROM ${table(t.name)}`) : temp(dialect, t.name, computed())]);
  }
  const jc = table('joined_current');
  if (kept) {
    out.push(['create joined_current', `CREATE TABLE IF NOT EXISTS ${jc} AS ${joined}`]);
    out.push(['replace joined_current keys', `DELETE FROM ${jc} WHERE ${q('ind')} IN (${touched})`]);
    out.push(['merge joined_current', `INSERT INTO ${jc} SELECT * FROM joined_touched`]);
    out.push(['joined', view(dialect, 'joined', `SELECT * FROM ${jc}`)]);
    return out;
  }
  if (!spark(dialect)) out.push(['drop joined_current', `DROP TABLE IF EXISTS ${jc}`]);
  out.push(['joined', temp(dialect, 'joined', joined)]);
  return out;
}

/** Every statement of the run for `opts.interval`, in order (see the module comment). */
export function incrementalStatements(dialect: Dialect, opts: IncrementalOptions): IncrementalStatement[] {
  const { interval, batch, table } = opts;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(interval.date)) throw new Error(`interval date ${JSON.stringify(interval.date)} is not YYYY-MM-DD`);
  const q = (id: string) => sqlId(dialect, id);
  const date = interval.date;
  const out: IncrementalStatement[] = [];
  const add = (name: string, sql: string, collect?: string, expectFiles?: number) => out.push({ name, sql, ...(collect ? { collect } : {}), ...(expectFiles === undefined ? {} : { expectFiles }) });

  const bounds = intervalBounds(interval).map((b) => [sqlString(dialect, b.topic), String(b.partition), String(b.start), String(b.end)]);
  add('interval bounds', temp(dialect, 'interval_bounds', valuesRelation(dialect, [['topic', 'STRING'], ['part', 'INT'], ['start_offset', 'BIGINT'], ['end_offset', 'BIGINT']], bounds)));
  const objects = SOURCE_TABLES.flatMap((t) => (batch[t.topic]?.objects ?? []).map((o) => [sqlString(dialect, t.topic), String(o.partition), String(o.startOffset), sqlString(dialect, o.key)]));
  add('batch objects', temp(dialect, 'batch_objects', valuesRelation(dialect, [['topic', 'STRING'], ['part', 'INT'], ['start_offset', 'BIGINT'], ['object_key', 'STRING']], objects)));

  const ledger = ledgerStatements(dialect, table);
  for (const sql of ledger.setup) add('ledger', sql);
  // Spark commits each statement alone: unmark the batch's objects before their versions are
  // replaced, so a run that stops part-way leaves them unmerged and the next run merges them
  // again (a DuckDB run is one transaction).
  if (spark(dialect)) add('unmark batch', render(dialect, 'ledger_unmark', { ledger: table('merged_objects') }));

  for (const t of SOURCE_TABLES) {
    const name = `${t.topic}_clean` as const;
    const columns = CLEANED_TABLES.find((c) => c.name === name)!.columns.map(q);
    const b = batch[t.topic];
    const files = b ? b.objects.map(relativeObject) : [];
    add(`records ${t.topic}`, temp(dialect, `${t.topic}_records`, recordsSql(dialect, t, b?.folder ?? null, files)));
    add(`files ${t.topic}`, `SELECT count(DISTINCT src_file) AS files FROM ${t.topic}_records`, `${t.topic}_files`, files.length);
    add(`versions ${t.topic}`, temp(dialect, `${t.topic}_batch`, render(dialect, 'versions', { columns: columns.join(', '), cleaned: cleanedSql(dialect, name, { versions: true }) })));
    const versions = table(`${name}_versions`);
    const current = table(name);
    add(`create ${name}_versions`, `CREATE TABLE IF NOT EXISTS ${versions}${using(dialect)} AS SELECT * FROM ${t.topic}_batch WHERE false`);
    add(`create ${name}`, `CREATE TABLE IF NOT EXISTS ${current}${using(dialect)} AS SELECT ${columns.join(', ')} FROM ${t.topic}_batch WHERE false`);
    add(`replace ${name} versions`, render(dialect, 'versions_delete', { versions, topic: t.topic }));
    add(`insert ${name} versions`, `INSERT INTO ${versions} SELECT * FROM ${t.topic}_batch`);
    if (spark(dialect)) {
      add(`merge ${name}`, render(dialect, 'current_merge', {
        current,
        versions,
        topic: t.topic,
        columns: columns.join(', '),
        set: columns.filter((c) => c !== q('ind')).map((c) => `${c} = s.${c}`).join(', '),
        values: columns.map((c) => `s.${c}`).join(', '),
      }));
    } else {
      add(`replace ${name} keys`, `DELETE FROM ${current} WHERE ${q('ind')} IN (SELECT ind FROM ${t.topic}_batch)`);
      add(`merge ${name}`, render(dialect, 'current_insert', { current, versions, topic: t.topic, columns: columns.join(', ') }));
    }
  }
  add('ledger merge', render(dialect, 'ledger_merge', { ledger: table('merged_objects'), date }));

  for (const t of SOURCE_TABLES) {
    const name = `${t.topic}_clean`;
    const versions = table(`${name}_versions`);
    add(`count ${t.topic}`, render(dialect, 'interval_counts', { topic: t.topic, key: t.key, versions }), `${t.topic}_interval`);
  }
  for (const [name, sql] of stateStatements(dialect, table, opts.asOfCurrent === true)) add(name, sql);
  const dateCol = q('date');
  for (const name of ANALYTICS_NAMES) {
    add(`analytics ${name}`, temp(dialect, name, expandMacros(readSql(`analytics/${name}.sql`), dialect)));
    const daily = table(`${name}_by_date`);
    const partitioned = spark(dialect) ? ` USING DELTA PARTITIONED BY (${dateCol})` : '';
    add(`create ${name}_by_date`, `CREATE TABLE IF NOT EXISTS ${daily}${partitioned} AS SELECT DATE '${date}' AS ${dateCol}, * FROM ${name} WHERE false`);
    if (spark(dialect)) add(`write ${name} ${date}`, `INSERT OVERWRITE TABLE ${daily} PARTITION (${dateCol} = '${date}') SELECT * FROM ${name}`);
    else {
      add(`replace ${name} ${date}`, `DELETE FROM ${daily} WHERE ${dateCol} = DATE '${date}'`);
      add(`write ${name} ${date}`, `INSERT INTO ${daily} SELECT DATE '${date}' AS ${dateCol}, * FROM ${name}`);
    }
  }
  const counted = [...CLEANED_NAMES.map((n) => [n, n]), ...CLEANED_NAMES.map((n) => [`${n}_current`, table(n)]), ...ANALYTICS_NAMES.map((n) => [n, n])];
  add('row counts', counted.map(([label, rel]) => `SELECT '${label}' AS name, count(*) AS n FROM ${rel}`).join('\nUNION ALL\n'), 'rows');

  if (opts.exportTo) {
    for (const n of CLEANED_NAMES) {
      const cols = CLEANED_TABLES.find((c) => c.name === n)!.columns.map(q).join(', ');
      add(`export ${n}`, `INSERT OVERWRITE DIRECTORY ${sqlString(dialect, opts.exportTo.cleaned(n))} USING PARQUET SELECT ${cols} FROM ${table(n)}`);
    }
    for (const n of ANALYTICS_NAMES) add(`export ${n}`, `INSERT OVERWRITE DIRECTORY ${sqlString(dialect, opts.exportTo.analytics(n))} USING PARQUET SELECT * FROM ${n}`);
  }
  return out;
}

/**
 * A run's collected rows as the outcome's counts: per cleaned table the interval's records
 * (read, duplicates, leftOut), its keys inserted and replaced, and the rows as of its end;
 * `rows` per as-of table, `<table>_current` and output.
 */
export function intervalOutcome(collected: Record<string, Array<Record<string, unknown>>>): { tables: Record<CleanedTableName, TableCounts>; rows: Record<string, number> } {
  const rows = Object.fromEntries((collected.rows ?? []).map((r) => [String(r.name), Number(r.n)]));
  const tables = {} as Record<CleanedTableName, TableCounts>;
  for (const t of SOURCE_TABLES) {
    const r = collected[`${t.topic}_interval`]?.[0] ?? {};
    const n = (k: string) => Number(r[k] ?? 0);
    const leftOut: Record<string, number> = {};
    if (n('not_an_object') > 0) leftOut.not_a_json_object = n('not_an_object');
    if (n('no_usable_key') > 0) leftOut.no_usable_key = n('no_usable_key');
    const name = `${t.topic}_clean` as const;
    tables[name] = {
      read: n('records_read'),
      rows: rows[name] ?? 0,
      duplicates: n('records_read') - n('kept') - n('not_an_object') - n('no_usable_key'),
      leftOut,
      inserted: n('inserted'),
      replaced: n('replaced'),
    };
  }
  return { tables, rows };
}
