/**
 * The report's input: the shape of summary.json and the reading of a run's output folder
 * (DIR/summary.json and DIR/<output>.json for the nine analytics outputs; never the cleaned
 * tables, which can be large). Node-only (reads files).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ANALYTICS_OUTPUTS } from '../common/analytics';

export interface CleanedTableSummary {
  rows: number;
  read: number;
  duplicates: number;
  leftOut: Record<string, number>;
}

/** summary.json as the cleaning command writes it; the page copes with any field missing. */
export interface ReportSummary {
  prefix: string;
  input: string;
  warehouse: 'duckdb' | 'databricks';
  generatedAt: string;
  tables: Partial<Record<string, CleanedTableSummary>>;
  analytics: Partial<Record<string, { rows: number; location: string }>>;
}

/** The analytics outputs read from a folder, by name; a missing file has no entry. */
export type ReportOutputs = Record<string, object[]>;

function readJson(file: string): unknown {
  let body: string;
  try {
    body = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${file}: not found`, { cause: e });
    throw e;
  }
  try {
    return JSON.parse(body);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
}

/**
 * Reads DIR/summary.json and the analytics outputs beside it. A missing output file is left
 * out (the page shows it as missing); a missing or malformed summary.json, or an output that
 * is not a JSON array, is an error naming the file.
 */
export function readReportInputs(dir: string): { summary: ReportSummary; outputs: ReportOutputs } {
  const summaryFile = path.join(dir, 'summary.json');
  if (!fs.existsSync(summaryFile)) {
    throw new Error(`${summaryFile}: not found; the report is drawn from a folder the cleaning wrote (npm run pipeline -- --out DIR)`);
  }
  const summary = readJson(summaryFile);
  if (summary === null || typeof summary !== 'object' || Array.isArray(summary)) throw new Error(`${summaryFile}: expected a JSON object`);
  const outputs: ReportOutputs = {};
  for (const { name } of ANALYTICS_OUTPUTS) {
    const file = path.join(dir, `${name}.json`);
    if (!fs.existsSync(file)) continue;
    const rows = readJson(file);
    if (!Array.isArray(rows)) throw new Error(`${file}: expected a JSON array of rows`);
    outputs[name] = rows as object[];
  }
  return { summary: summary as ReportSummary, outputs };
}
