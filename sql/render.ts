/**
 * The cleaning and analytics SQL, rendered for one engine.
 *
 * One SQL text per statement lives in `sql/cleaning/*.sql` and `sql/analytics/*.sql`, written
 * in the common subset of Spark SQL and DuckDB. Where the engines differ the text calls a
 * macro, `@name(args)`, expanded here; the dialect layer is this file's `DIALECTS` table plus
 * how each engine reads the landed files (`recordsSql`). Nothing else differs.
 *
 * SQL that several statements share is a template, `sql/templates/<name>.sql`, called as
 * `@name(param => value, ...)`: each `{param}` of the template takes the value's text, then
 * the whole is expanded like any statement (`fillTemplate`).
 *
 * Differences the macros absorb:
 * - regex literals: Spark string literals process backslash escapes, DuckDB's do not (@re);
 * - regex functions: `regexp_like` vs `regexp_matches` (@matches); Spark's regexp_replace
 *   replaces every match and writes groups as `$1`, DuckDB's needs 'g' and `\1`;
 * - arrays: `array(a, b)` vs `list_value(a, b)` (@array);
 * - the zoneless timestamp type: TIMESTAMP_NTZ vs TIMESTAMP (@timestamp);
 * - identifiers: backticks vs double quotes (@q);
 * - reading the landed NDJSON objects and JSON records (recordsSql).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { CleanedTableName } from '../common/analytics';
import { ANALYTICS_NAMES, CLEANED_NAMES } from '../common/cleaning';
import { SOURCE_TABLES, type SourceTable } from '../common/source-tables';

export type Dialect = 'duckdb' | 'spark' | 'databricks';

export const SQL_DIR = path.resolve(__dirname);

/** The whitespace of the text rule: JavaScript's `\s` (ASCII, NBSP, BOM, Unicode Zs, LS, PS). */
const WS = '[\\t\\n\\x{0B}\\f\\r \\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}]';

/** `YYYY-MM-DD[T ]HH:MM:SS[.fraction]` with field ranges; day-of-month validity is the cast's. */
const TIMESTAMP_TEXT = '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]+)?$';

const sparkLike = {
  quote: (id: string) => `\`${id}\``,
  string: (raw: string) => `'${raw.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`,
  matches: (s: string, re: string) => `regexp_like(${s}, ${re})`,
  array: (args: string[]) => `array(${args.join(', ')})`,
  timestampType: 'TIMESTAMP_NTZ',
};

const DIALECTS: Record<Dialect, typeof sparkLike> = {
  spark: sparkLike,
  databricks: sparkLike,
  duckdb: {
    quote: (id) => `"${id.replace(/"/g, '""')}"`,
    string: (raw) => `'${raw.replace(/'/g, "''")}'`,
    matches: (s, re) => `regexp_matches(${s}, ${re})`,
    array: (args) => `list_value(${args.join(', ')})`,
    timestampType: 'TIMESTAMP',
  },
};

/**
 * stream: every record is its own row, and carries where it came from (the Kinesis path).
 * versions: one row per key and landed object (its latest record there), carrying the
 * record's position (the incremental cleaning's versions, sql/incremental.ts).
 */
export interface RenderOptions {
  stream?: boolean;
  versions?: boolean;
}

type Macro = (args: string[], d: (typeof DIALECTS)[Dialect], opts: RenderOptions) => string;

/** A regex written once (with `{WS}` for the whitespace class) as a string literal of the dialect. */
const regex = (d: (typeof DIALECTS)[Dialect], pattern: string) => d.string(pattern.replaceAll('{WS}', WS));

/** Removes the quotes of a single-quoted SQL literal as written in the .sql files (no escapes inside). */
function unquote(literal: string): string {
  const m = /^'([^']*)'$/.exec(literal.trim());
  if (!m) throw new Error(`expected a single-quoted literal without quotes inside, got ${literal}`);
  return m[1]!;
}

/** An integer (JSON number or numeric string, `42` or `42.0`) as `type`, else NULL. */
const integer = (s: string, type: string, d: (typeof DIALECTS)[Dialect]) =>
  `try_cast(regexp_extract(${s}, ${regex(d, '^{WS}*(-?[0-9]+)(\\.0+)?{WS}*$')}, 1) AS ${type})`;

const MACROS: Record<string, Macro> = {
  re: ([p], d) => regex(d, unquote(p!)),
  q: ([id], d) => d.quote(id!.trim()),
  matches: ([s, p], d) => d.matches(s!, regex(d, unquote(p!))),
  array: (args, d) => d.array(args),
  // Text rule: empty or whitespace-only -> NULL; anything else kept as it is.
  text: ([s], d) => `CASE WHEN ${d.matches(s!, regex(d, '^{WS}*$'))} THEN NULL ELSE ${s} END`,
  // A usable key (BIGINT) and an INT column, by the same integer rule.
  key: ([s], d) => integer(s!, 'BIGINT', d),
  int: ([s], d) => integer(s!, 'INT', d),
  double: ([s], d) => `try_cast(regexp_extract(${s}, ${regex(d, '^{WS}*(-?[0-9]+(\\.[0-9]+)?([eE][+-]?[0-9]+)?){WS}*$')}, 1) AS DOUBLE)`,
  // Zoneless timestamp from the two spec forms; fraction truncated to microseconds; else NULL.
  // Once the text matches, what follows its 19th character is empty or `.` and digits, so the
  // point and up to six digits are the 7 characters from the 20th.
  timestamp: ([s], d) =>
    `CASE WHEN ${d.matches(s!, regex(d, TIMESTAMP_TEXT))} THEN try_cast(concat(substr(${s}, 1, 10), ' ', substr(${s}, 12, 8), ` +
    `substr(${s}, 20, 7)) AS ${d.timestampType}) END`,
  // Batch: one row per key (latest wins). Stream: no collapsing, each record is cleaned alone.
  // Versions: one row per key and object.
  dedup_key: ([k], _d, o) => (o.stream ? 'src_file, line_no, elem_no' : o.versions ? `${k}, src_file` : k!),
  // Stream and versions: the record's position travels with its cleaned row.
  carry: (_a, _d, o) => (o.stream ? ', src_file, line_no, elem_no' : o.versions ? ', src_file, start_offset, line_no, elem_no' : ''),
  age_group_rank: ([s]) => `CASE ${s} WHEN '18-24' THEN 1 WHEN '25-35' THEN 2 WHEN '36-50' THEN 3 WHEN '+50' THEN 4 END`,
};

/** Splits `a, f(b, c), 'x,y'` at top-level commas. */
function splitArgs(text: string): string[] {
  const args: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote) {
      if (ch === quote) quote = null;
    } else if (ch === "'" || ch === '"' || ch === '`') quote = ch;
    else if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === ',' && depth === 0) {
      args.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  args.push(text.slice(start).trim());
  return args;
}

/** The text of `sql/templates/<name>.sql`, or undefined if there is no such template. */
function readTemplate(name: string): string | undefined {
  const file = path.join(SQL_DIR, 'templates', `${name}.sql`);
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
}

/**
 * A template with each `{param}` (outside string literals and comments) replaced by the text
 * of the call's `param => value`. The call must give every parameter the template uses, once,
 * and no other.
 */
export function fillTemplate(name: string, template: string, args: string[]): string {
  const values = new Map<string, string>();
  for (const arg of args) {
    const m = /^([a-z_]+)\s*=>\s*(\S[\s\S]*)$/.exec(arg);
    if (!m) throw new Error(`@${name}(...): expected \`param => value\`, got ${JSON.stringify(arg)}`);
    if (values.has(m[1]!)) throw new Error(`@${name}(...): ${m[1]} is given twice`);
    values.set(m[1]!, m[2]!);
  }
  const used = new Set<string>();
  // String literals and comments are copied as they are; `{param}` elsewhere is replaced.
  const filled = template.replace(/'[^']*'|--[^\n]*|\{([a-z_]+)\}/g, (whole, param: string | undefined) => {
    if (param === undefined) return whole;
    const value = values.get(param);
    if (value === undefined) throw new Error(`@${name}(...): no value for {${param}}`);
    used.add(param);
    return value;
  });
  const unused = [...values.keys()].filter((p) => !used.has(p));
  if (unused.length > 0) throw new Error(`@${name}(...): template sql/templates/${name}.sql has no {${unused.join('}, {')}}`);
  return filled;
}

/**
 * Expands every `@macro(...)` of `sql` for `dialect` (arguments first, innermost out), and
 * every `@template(...)`: filled with the arguments as written, then expanded.
 */
export function expandMacros(sql: string, dialect: Dialect, opts: RenderOptions = {}): string {
  const d = DIALECTS[dialect];
  const expand = (text: string): string => {
    let out = '';
    let i = 0;
    while (i < text.length) {
      const ch = text[i]!;
      if (ch === "'") {
        // Copy string literals untouched.
        const end = text.indexOf("'", i + 1);
        if (end < 0) throw new Error('unterminated string literal in SQL');
        out += text.slice(i, end + 1);
        i = end + 1;
        continue;
      }
      if (ch === '-' && text[i + 1] === '-') {
        const end = text.indexOf('\n', i);
        i = end < 0 ? text.length : end;
        continue;
      }
      const m = ch === '@' ? /^@([a-z_]+)\(/.exec(text.slice(i)) : null;
      if (!m) {
        out += ch;
        i++;
        continue;
      }
      const name = m[1]!;
      const macro = MACROS[name];
      const template = macro ? undefined : readTemplate(name);
      if (!macro && template === undefined) throw new Error(`unknown SQL macro @${name}`);
      let depth = 0;
      let j = i + m[0].length - 1;
      let quote: string | null = null;
      for (; j < text.length; j++) {
        const c = text[j]!;
        if (quote) {
          if (c === quote) quote = null;
        } else if (c === "'") quote = c;
        else if (c === '(') depth++;
        else if (c === ')' && --depth === 0) break;
      }
      if (depth !== 0) throw new Error(`unbalanced parentheses in @${name}(...)`);
      const inner = text.slice(i + m[0].length, j);
      if (template !== undefined) out += expand(fillTemplate(name, template, splitArgs(inner))).trim();
      else out += macro!(splitArgs(inner).map((a) => (name === 're' || name === 'q' ? a : expand(a))), d, opts);
      i = j + 1;
    }
    return out;
  };
  return expand(sql);
}

export interface Statement {
  /** Table or view it defines. */
  name: string;
  /** records: raw records of a topic; cleaned: a cleaned table; view: joined; analytics: an output. */
  kind: 'records' | 'cleaned' | 'view' | 'analytics';
  /** A SELECT; the engine adapter decides how to materialise it. */
  sql: string;
}

export type CleanedName = CleanedTableName;

/**
 * Where each engine finds a topic's landed objects. duckdb: a local folder holding
 * `partition=<p>/<topic>+<p>+<offset>.json` files (staged from S3); spark: the same on local
 * disk; databricks: the `s3://` URI of the topic folder.
 */
export type TopicSources = Record<SourceTable['topic'], string | null>;

export const readSql = (rel: string) => fs.readFileSync(path.join(SQL_DIR, rel), 'utf8');
const read = readSql;

/** A string literal and a quoted identifier in `dialect`. */
export const sqlString = (dialect: Dialect, raw: string) => DIALECTS[dialect].string(raw);
export const sqlId = (dialect: Dialect, id: string) => DIALECTS[dialect].quote(id);

/**
 * A glob naming exactly `files` (`partition=<p>/<name>` relative to `folder`): object names
 * carry their partition, so `partition=*` with a brace list of the names is exact.
 */
export function filesGlob(folder: string, files: readonly string[]): string {
  const names = files.map((f) => path.posix.basename(f));
  if (names.length === 0 || names.some((n) => /[{},*?[\]\\]/.test(n))) throw new Error(`cannot glob ${JSON.stringify(names.slice(0, 3))}`);
  return `${folder.replace(/\/$/, '')}/partition=*/{${names.join(',')}}`;
}

/**
 * The records relation of one topic: one row per record (a line's object, or each element of
 * a line's array), with `src_file`, `start_offset` (from the object name), `line_no`,
 * `elem_no`, `is_record` (the element is a JSON object) and `raw_<column>` strings.
 * `location` null means nothing was landed for the topic: an empty relation. With `files`
 * (`partition=<p>/<name>` under `location`), only those objects are read (for local Spark the
 * `landed_<topic>` view must name them: sql/incremental.ts).
 */
export function recordsSql(dialect: Dialect, table: SourceTable, location: string | null, files?: readonly string[]): string {
  const d = DIALECTS[dialect];
  const cols = table.columns.map((c) => c.name);
  const offsetRe = d.string('\\+([0-9]+)\\.json$');
  if (dialect === 'duckdb') {
    const struct = `{${cols.map((c) => `"${c}":"VARCHAR"`).join(',')}}`;
    const raw = cols.map((c) => `rec.${d.quote(c)} AS ${d.quote(`raw_${c}`)}`).join(', ');
    const folder = location?.replace(/\\/g, '/');
    const source =
      folder === undefined || files?.length === 0
        ? `(SELECT NULL::VARCHAR AS filename, NULL::VARCHAR AS content WHERE false)`
        : files
          ? `read_text([${files.map((f) => d.string(path.posix.join(folder, f))).join(', ')}])`
          : `read_text(${d.string(path.posix.join(folder, 'partition=*', '*.json'))})`;
    // Object lines (all that pinflow lands) take one JSON parse (`try`: text that is not JSON
    // gives NULL) and no list; arrays (legacy buckets) and anything else take the careful path.
    // `lines` is materialised once.
    return `WITH lines AS MATERIALIZED (
  SELECT src_file, start_offset, line_no, line, starts_with(ltrim(line), '{') AS is_object_line
  FROM (
    SELECT filename AS src_file, CAST(regexp_extract(filename, ${offsetRe}, 1) AS BIGINT) AS start_offset,
      unnest(lines) AS line, generate_subscripts(lines, 1) - 1 AS line_no
    FROM (SELECT filename, string_split(content, chr(10)) AS lines FROM ${source})
  )
  WHERE NOT ${d.matches('line', regex(d, '^{WS}*$'))}
)
SELECT src_file, start_offset, line_no, 0 AS elem_no, rec IS NOT NULL AS is_record, ${raw}
FROM (
  SELECT src_file, start_offset, line_no, try(json_transform(line, '${struct}')) AS rec
  FROM lines WHERE is_object_line
)
UNION ALL
SELECT src_file, start_offset, line_no, elem_no, rec IS NOT NULL AS is_record, ${raw}
FROM (
  SELECT src_file, start_offset, line_no, unnest(recs) AS rec, generate_subscripts(recs, 1) - 1 AS elem_no
  FROM (
    SELECT src_file, start_offset, line_no,
      CASE WHEN json_valid(line) AND json_type(line) = 'ARRAY' AND json_array_length(line) > 0
             THEN list_transform(json_extract(line, '$[*]'), e -> CASE WHEN json_type(e) = 'OBJECT' THEN json_transform(e, '${struct}') END)
           ELSE [NULL] END AS recs
    FROM lines WHERE NOT is_object_line
  )
)`;
  }
  const raw = cols.map((c) => `rec[${d.string(c)}] AS ${d.quote(`raw_${c}`)}`).join(', ');
  const source =
    location === null || files?.length === 0
      ? `(SELECT CAST(NULL AS STRING) AS src_file, CAST(NULL AS STRING) AS content WHERE false)`
      : dialect === 'databricks'
        ? `(SELECT _metadata.file_path AS src_file, value AS content FROM read_files(${d.string(files ? filesGlob(location, files) : `${location.replace(/\/$/, '')}/partition=*/*.json`)}, format => 'text', wholeText => true))`
        : `(SELECT input_file_name() AS src_file, value AS content FROM ${d.quote(`landed_${table.topic}`)})`;
  // An array with any element that is not an object (`[1, {...}]`) is NULL as a whole to
  // from_json: such a line is read element by element (through VARIANT), one record each.
  const eachElement = `transform(try_variant_get(try_parse_json(line), '$', 'array<variant>'), e -> CASE WHEN schema_of_variant(e) LIKE 'OBJECT%' THEN from_json(to_json(e), 'map<string,string>') END)`;
  return `SELECT src_file, start_offset, line_no, elem_no, rec IS NOT NULL AS is_record, ${raw}
FROM (
  SELECT src_file, start_offset, line_no,
    posexplode(CASE WHEN elems IS NULL OR size(elems) = 0 THEN array(CAST(NULL AS map<string,string>)) ELSE elems END) AS (elem_no, rec)
  FROM (
  SELECT src_file, start_offset, line_no,
    CASE WHEN ${d.matches('line', regex(d, '^{WS}*\\['))} THEN coalesce(from_json(line, 'array<map<string,string>>'), ${eachElement})
         ELSE array(from_json(line, 'map<string,string>')) END AS elems
  FROM (
    SELECT src_file, CAST(regexp_extract(src_file, ${offsetRe}, 1) AS BIGINT) AS start_offset,
      posexplode(split(content, chr(10))) AS (line_no, line)
    FROM ${source}
  )
  WHERE NOT ${d.matches('line', regex(d, '^{WS}*$'))}
  )
)`;
}

/**
 * The SELECT of one cleaned table over `<topic>_records` (as recordsSql builds it). With
 * `stream`, records are not collapsed per key and each row also has `src_file, line_no,
 * elem_no`: the streaming path cleans every record by exactly these rules.
 */
export function cleanedSql(dialect: Dialect, name: CleanedName, opts: RenderOptions = {}): string {
  return expandMacros(read(`cleaning/${name}.sql`), dialect, opts);
}

/**
 * Every statement of a cleaning + analytics run, in dependency order. Spark's local runner
 * also needs `sparkPreamble` (temporary views over the landed folders).
 */
export function cleaningStatements(dialect: Dialect, sources: TopicSources): Statement[] {
  const records = SOURCE_TABLES.map((t) => ({ name: `${t.topic}_records`, kind: 'records' as const, sql: recordsSql(dialect, t, sources[t.topic]) }));
  const cleaned = CLEANED_NAMES.map((name) => ({ name, kind: 'cleaned' as const, sql: cleanedSql(dialect, name) }));
  const joined = { name: 'joined', kind: 'view' as const, sql: expandMacros(read('analytics/joined.sql'), dialect) };
  const analytics = ANALYTICS_NAMES.map((name) => ({ name, kind: 'analytics' as const, sql: expandMacros(read(`analytics/${name}.sql`), dialect) }));
  return [...records, ...cleaned, joined, ...analytics];
}

/** Spark (local) reads each topic folder as whole-text files through a temporary view. */
export function sparkPreamble(sources: TopicSources): string[] {
  return SOURCE_TABLES.filter((t) => sources[t.topic] !== null).map(
    (t) =>
      `CREATE OR REPLACE TEMPORARY VIEW \`landed_${t.topic}\` USING text OPTIONS (path ${sparkLike.string(
        `${sources[t.topic]!.replace(/\/$/, '')}/partition=*/*.json`,
      )}, wholetext 'true')`,
  );
}

/**
 * Counts per topic for the summary: records read, kept rows, duplicates replaced by a later
 * record of the same key, and records left out with the reason. With `cleaned` (the topic's
 * cleaned table, built from the same records: one row per usable key), `kept` is its row
 * count rather than a count of distinct keys over the records.
 */
export function recordCountsSql(dialect: Dialect, topic: SourceTable['topic'], opts: { cleaned?: string } = {}): string {
  const table = SOURCE_TABLES.find((t) => t.topic === topic)!;
  const key = expandMacros(`@key(raw_${table.key})`, dialect);
  const kept = opts.cleaned ? `(SELECT count(*) FROM ${opts.cleaned})` : `count(DISTINCT CASE WHEN is_record THEN ${key} END)`;
  return `SELECT
  count(*) AS records_read,
  count(CASE WHEN NOT is_record THEN 1 END) AS not_an_object,
  count(CASE WHEN is_record AND ${key} IS NULL THEN 1 END) AS no_usable_key,
  ${kept} AS kept
FROM ${topic}_records`;
}

/**
 * The statements for local Spark (tests and benchmarks): temporary views over the landed
 * folders, cached records and cleaned tables, and each output either collected as JSON
 * (`collect`) or written as Parquet under `exportDir/<name>/`.
 */
export function sparkStatements(
  sources: TopicSources,
  opts: { collect?: boolean; collectPrefix?: string; exportDir?: string } = {},
): Array<{ sql: string; collect?: string }> {
  const out: Array<{ sql: string; collect?: string }> = sparkPreamble(sources).map((sql) => ({ sql }));
  for (const s of cleaningStatements('spark', sources)) {
    // Replacing a temporary view drops its cache, so a second data set in one session is clean.
    out.push({ sql: `CREATE OR REPLACE TEMPORARY VIEW ${s.name} AS ${s.sql}` });
    if (s.kind === 'records' || s.kind === 'cleaned') out.push({ sql: `CACHE TABLE ${s.name}` });
    if (s.kind === 'cleaned' || s.kind === 'analytics') {
      if (opts.collect) out.push({ sql: `SELECT * FROM ${s.name}${s.kind === 'cleaned' ? ' ORDER BY ind' : ''}`, collect: `${opts.collectPrefix ?? ''}${s.name}` });
      if (opts.exportDir) out.push({ sql: `INSERT OVERWRITE DIRECTORY ${sparkLike.string(`${opts.exportDir}/${s.name}`)} USING parquet SELECT * FROM ${s.name}` });
    }
  }
  if (opts.collect) for (const t of SOURCE_TABLES) out.push({ sql: recordCountsSql('spark', t.topic), collect: `${opts.collectPrefix ?? ''}${t.topic}_counts` });
  return out;
}
