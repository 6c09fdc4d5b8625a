/**
 * The batch cleaning contract: workflow input and result, and where outputs live.
 * Pure (imported by workflows, activities and scripts).
 */
import { prefixProblem } from './ids';
import type { IntervalManifest } from './interval';
import { ANALYTICS_OUTPUTS, CLEANED_TABLES, type AnalyticsOutputName as AnalyticsName, type CleanedTableName as CleanedName } from './analytics';

export const CLEANED_NAMES = CLEANED_TABLES.map((t) => t.name);
export const ANALYTICS_NAMES = ANALYTICS_OUTPUTS.map((o) => o.name);

export type CleaningSource =
  /** Landed objects in a bucket (default: the configured one) under `<topicsDir>/<prefix>.<topic>/`. */
  | { kind: 's3'; bucket?: string; topicsDir?: string }
  /** A local folder in the same layout (holding `topics/`, or the topics folder itself). */
  | { kind: 'local'; dir: string };

export interface CleaningInput {
  /** Pipeline prefix: reads topics `<prefix>.pin|geo|user`. */
  prefix: string;
  /** Default: everything landed for the prefix in the configured bucket. */
  source?: CleaningSource;
  /** Key prefix for the outputs in the configured bucket: `<outputRoot>cleaned/<table>/`, `<outputRoot>analytics/<name>/`. */
  outputRoot?: string;
  /** WAREHOUSE=databricks only: run the configured Jobs API task instead of SQL statements. */
  databricksJob?: { notebookPath: string; parameters?: Record<string, string> };
  /**
   * The data interval of one date (common/interval.ts): merge the interval's landed objects into
   * the cleaned tables and write that date's analytics under `analytics/<name>/date=<date>/`.
   * Without it, everything landed is cleaned again and the analytics replace `analytics/<name>/`.
   */
  interval?: IntervalManifest;
}

/**
 * Full run: records read, rows of the cleaned table, records replaced by a later one of their
 * key, records left out and why. Interval run: the interval's records (read, duplicates,
 * leftOut), the rows of the cleaned table as of the interval's end (rows), and of the
 * interval's keys those new as of its end (inserted) and those that existed before it (replaced).
 */
export interface TableCounts {
  read: number;
  rows: number;
  duplicates: number;
  leftOut: Record<string, number>;
  inserted?: number;
  replaced?: number;
}

/** What an interval run merged: the interval's own objects, and earlier ones merged for the first time. */
export interface IntervalRunSummary {
  date: string;
  partial: boolean;
  objects: number;
  earlierObjects: number;
  /** Rows of each cleaned table's current state (`cleaned/<table>/`). */
  currentRows: Record<CleanedName, number>;
}

export interface CleaningResult {
  prefix: string;
  warehouse: 'duckdb' | 'databricks';
  /** Human description of what was read, e.g. `s3://bucket/topics/<prefix>.*`. */
  input: string;
  objectsRead: number;
  bytesRead: number;
  tables: Record<CleanedName, TableCounts & { location: string }>;
  analytics: Record<AnalyticsName, { rows: number; location: string }>;
  /** Wall time of each step (staging, each statement, export, upload), ms. */
  timings: Array<{ name: string; ms: number }>;
  /** Databricks job run page, when run through the Jobs API. */
  jobRunUrl?: string;
  /** Interval runs only. */
  interval?: IntervalRunSummary;
}

export interface TopicInventory {
  topic: string;
  objects: number;
  bytes: number;
}

export const outputKeyPrefix = (outputRoot: string, kind: 'cleaned' | 'analytics', name: string) => `${outputRoot}${kind}/${name}/`;
/** Where an interval run writes one date's output: `<outputRoot>analytics/<name>/date=<date>/`. */
export const datedOutputKeyPrefix = (outputRoot: string, name: string, date: string) => `${outputKeyPrefix(outputRoot, 'analytics', name)}date=${date}/`;

const TOPICS = ['pin', 'geo', 'user'];
const isOffset = (n: unknown) => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** What is wrong with an interval given to the cleaning of `prefix`. */
export function intervalProblems(prefix: string, m: IntervalManifest): string[] {
  if (typeof m !== 'object' || m === null) return ['interval must be an interval manifest object'];
  const problems: string[] = [];
  if (m.version !== 1) problems.push(`interval.version must be 1, got ${JSON.stringify(m.version)}`);
  if (m.prefix !== prefix) problems.push(`interval.prefix ${JSON.stringify(m.prefix)} is not the cleaning prefix ${JSON.stringify(prefix)}`);
  if (typeof m.date !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(m.date) || new Date(Date.parse(`${m.date}T00:00:00Z`) || 0).toISOString().slice(0, 10) !== m.date) problems.push(`interval.date ${JSON.stringify(m.date)} is not YYYY-MM-DD`);
  if (!Array.isArray(m.ranges)) return [...problems, 'interval.ranges must be an array'];
  const seen = new Set<string>();
  for (const r of m.ranges) {
    const where = `interval range ${JSON.stringify(r)}`;
    if (!TOPICS.some((t) => r?.topic === `${prefix}.${t}`)) problems.push(`${where}: topic must be ${prefix}.pin, ${prefix}.geo or ${prefix}.user`);
    else if (!isOffset(r.partition) || !isOffset(r.start) || !isOffset(r.end) || r.start > r.end) problems.push(`${where}: partition, start and end must be integers >= 0 with start <= end`);
    else if (seen.has(`${r.topic}/${r.partition}`)) problems.push(`${where}: partition ${r.partition} of ${r.topic} is listed twice`);
    else seen.add(`${r.topic}/${r.partition}`);
  }
  return problems;
}

export function describeSource(source: CleaningSource | undefined, bucket: string, prefix: string): string {
  if (!source || source.kind === 's3') return `s3://${source?.bucket ?? bucket}/${source?.topicsDir ?? 'topics'}/${prefix}.{pin,geo,user}/`;
  return `${source.dir} (local)`;
}

export function validateCleaningInput(input: CleaningInput): string[] {
  const problems: string[] = [];
  const prefixError = prefixProblem(input.prefix);
  if (prefixError) problems.push(prefixError);
  if (input.outputRoot !== undefined && input.outputRoot !== '' && !/^[A-Za-z0-9._\-/]*\/$/.test(input.outputRoot)) {
    problems.push(`outputRoot ${JSON.stringify(input.outputRoot)} must be a key prefix ending in "/"`);
  }
  const s = input.source;
  if (s && s.kind !== 's3' && s.kind !== 'local') problems.push(`source.kind must be "s3" or "local"`);
  if (s?.kind === 'local' && !s.dir) problems.push('source.dir is required for a local source');
  if (s?.kind === 's3' && s.topicsDir !== undefined && !/^[A-Za-z0-9._\-/]+$/.test(s.topicsDir)) problems.push(`source.topicsDir ${JSON.stringify(s.topicsDir)} is not a key prefix`);
  if (input.interval !== undefined) {
    problems.push(...intervalProblems(input.prefix, input.interval));
    if (input.databricksJob) problems.push('interval and databricksJob cannot be combined: a notebook rebuilds the tables whole');
  }
  return problems;
}

