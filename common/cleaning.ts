/**
 * The batch cleaning contract: workflow input and result, and where outputs live.
 * Pure (imported by workflows, activities and scripts).
 */
import { prefixProblem } from './ids';
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
}

export interface TableCounts {
  read: number;
  rows: number;
  duplicates: number;
  leftOut: Record<string, number>;
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
}

export interface TopicInventory {
  topic: string;
  objects: number;
  bytes: number;
}

export const outputKeyPrefix = (outputRoot: string, kind: 'cleaned' | 'analytics', name: string) => `${outputRoot}${kind}/${name}/`;

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
  return problems;
}

