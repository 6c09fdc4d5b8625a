/**
 * Writes a cleaning run's outputs to a local folder: `<name>.json` for the three cleaned tables
 * and the nine analytics outputs (arrays of row objects, spec column names, timestamps ISO-8601),
 * `summary.json` (counts) and `report.html` (a chart per analytics output).
 *
 * Reads the Parquet objects the run published to S3, whichever warehouse wrote them, so the
 * folder shows what downstream readers see. `finishCleaning` is the end of `npm run clean` and
 * `npm run pipeline`: the counts per table and output, then (with --out) the folder.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parquetToJson } from '../adapters/duckdb/cleaning';
import { createS3Client, downloadToFile, listKeys } from '../adapters/s3';
import { ANALYTICS_OUTPUTS, CLEANED_TABLES } from '../common/analytics';
import type { CleaningResult } from '../common/cleaning';
import { addressOf, type Config } from '../config';
import { guarded } from '../common/errors';
import { writeReport } from '../report';

function parseS3Uri(uri: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)\/(.*)$/.exec(uri);
  if (!m) throw new Error(`not an s3:// location: ${uri}`);
  return { bucket: m[1]!, prefix: m[2]! };
}

export async function writeOutputs(config: Config, result: CleaningResult, dir: string, extra: Record<string, unknown> = {}): Promise<{ report: string; files: string[] }> {
  fs.mkdirSync(dir, { recursive: true });
  const s3 = createS3Client(config);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-out-'));
  const files: string[] = [];
  try {
    const locations: Array<[string, string]> = [
      ...CLEANED_TABLES.map((t): [string, string] => [t.name, result.tables[t.name].location]),
      ...ANALYTICS_OUTPUTS.map((o): [string, string] => [o.name, result.analytics[o.name].location]),
    ];
    for (const [name, location] of locations) {
      const { bucket, prefix } = parseS3Uri(location);
      const keys = (await guarded('S3', addressOf(config, 's3'), () => listKeys(s3, bucket, prefix))).filter((k) => k.endsWith('.parquet')).sort();
      if (keys.length === 0) throw new Error(`${location} holds no Parquet file: was the run's output removed?`);
      const local: string[] = [];
      for (const key of keys) {
        const file = path.join(tmp, name, path.posix.basename(key));
        await guarded('S3', addressOf(config, 's3'), () => downloadToFile(s3, bucket, key, file));
        local.push(file);
      }
      const out = path.join(dir, `${name}.json`);
      await parquetToJson(local, out, CLEANED_TABLES.some((t) => t.name === name) ? 'ind' : undefined);
      files.push(out);
    }
    const summary = {
      prefix: result.prefix,
      input: result.input,
      warehouse: result.warehouse,
      generatedAt: new Date().toISOString(),
      ...extra,
      objectsRead: result.objectsRead,
      bytesRead: result.bytesRead,
      ...(result.interval ? { interval: result.interval } : {}),
      tables: result.tables,
      analytics: result.analytics,
      timings: result.timings,
    };
    fs.writeFileSync(path.join(dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
    files.push(path.join(dir, 'summary.json'));
    const report = await writeReport(dir);
    files.push(report);
    return { report, files };
  } finally {
    s3.destroy();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** One line per cleaned table (rows, records read, duplicates, what was left out) and per analytics output. */
export function printCleaningResult(result: CleaningResult, log: (s: string) => void): void {
  const iv = result.interval;
  if (iv) log(`  interval ${iv.date}${iv.partial ? ' (partial)' : ''}: merged ${iv.objects} objects of the interval${iv.earlierObjects ? ` and ${iv.earlierObjects} earlier objects not merged before` : ''}`);
  for (const [name, t] of Object.entries(result.tables)) {
    const left = Object.entries(t.leftOut).map(([why, n]) => `${n} ${why.replace(/_/g, ' ')}`);
    if (iv) {
      log(`  ${name}: ${t.rows.toLocaleString('en')} rows as of ${iv.date} (${iv.currentRows[name as keyof typeof iv.currentRows].toLocaleString('en')} now); the interval's ${t.read.toLocaleString('en')} records: ${t.inserted ?? 0} keys inserted, ${t.replaced ?? 0} replaced, ${t.duplicates} duplicates${left.length ? `, left out: ${left.join(', ')}` : ''}`);
      continue;
    }
    log(`  ${name}: ${t.rows.toLocaleString('en')} rows from ${t.read.toLocaleString('en')} records (${t.duplicates} duplicates replaced${left.length ? `, left out: ${left.join(', ')}` : ''})`);
  }
  for (const [name, a] of Object.entries(result.analytics)) log(`  ${name}: ${a.rows} rows -> ${a.location}`);
}

/** Prints the counts; with `out`, writes the folder (writeOutputs, `extra` into summary.json) and returns the report's path. */
export async function finishCleaning(config: Config, result: CleaningResult, out: string | undefined, extra: Record<string, unknown>, log: (s: string) => void): Promise<string | undefined> {
  printCleaningResult(result, log);
  if (!out) return undefined;
  const { report } = await writeOutputs(config, result, out, extra);
  log(`wrote ${out}/<name>.json for 12 tables, summary.json\nreport: ${report}`);
  return report;
}
