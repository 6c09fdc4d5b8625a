/**
 * Each benchmark's figures as JSON, so runs can be compared: `bench/results/<name>.json`
 * (ignored by git), one file per benchmark, replaced by its next run. The record:
 *   { name, at, cores, node, load_1m, params, ...figures, baseline }
 * - `at`: when the run finished (ISO 8601); `cores`: os.availableParallelism() of the machine;
 *   `node`: the Node.js version; `load_1m`: the one-minute load average as the run finished
 *   (a machine shared with other work shows it here);
 * - `params`: the options the run had (its size);
 * - the figures, flat, under snake_case names; the ones each benchmark must write are fixed by
 *   REQUIRED_FIGURES below (checked by the compiler); a figure that was not measured (a step
 *   skipped) is null;
 * - `baseline`: the raw measurements of the baselines the ratios are taken over.
 * The file is written atomically (a temporary file renamed over it): a reader never sees half
 * a record. `writeResults` prints `machine: N cores ...` and the file's path under the figures.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from '../config';

export const RESULTS_DIR = path.join(PROJECT_ROOT, 'bench', 'results');

/** The figures each benchmark writes at least (by `npm run bench:<name>`). */
export const REQUIRED_FIGURES = {
  emulation: ['ratio_plain', 'ratio_transactional'],
  landing: ['ratio', 'worker_peak_rss_mb'],
  cleaning: ['duckdb_s', 'spark_ratio'],
  incremental: ['incremental_s', 'speedup'],
  streaming: ['workflow_p95_ms', 'bare_p95_ms'],
  pipeline: ['first_run_s', 'overhead_s'],
} as const;

export type BenchName = keyof typeof REQUIRED_FIGURES;

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A benchmark's figures: its required ones (a number, or null when not measured) and any others. */
export type Figures<N extends BenchName> = { [K in (typeof REQUIRED_FIGURES)[N][number]]: number | null } & Record<string, JsonValue>;

export interface BenchRun<N extends BenchName> {
  /** The options of the run, by option name. */
  params: Record<string, JsonValue>;
  figures: Figures<N>;
  /** The baselines' raw measurements (each run of each baseline). */
  baseline?: Record<string, JsonValue>;
}

export interface BenchRecord {
  name: BenchName;
  at: string;
  cores: number;
  node: string;
  load_1m: number;
  params: Record<string, JsonValue>;
  baseline: Record<string, JsonValue>;
  [figure: string]: JsonValue;
}

/** Not-a-number and infinities as null (JSON has neither), with the paths of those replaced. */
function finite(value: JsonValue, at: string, replaced: string[]): JsonValue {
  if (typeof value === 'number' && !Number.isFinite(value)) {
    replaced.push(at);
    return null;
  }
  if (Array.isArray(value)) return value.map((v, i) => finite(v, `${at}[${i}]`, replaced));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, finite(v, at ? `${at}.${k}` : k, replaced)]));
  return value;
}

/** The record of a run as it is written (see the top of this file). */
export function benchRecord<N extends BenchName>(name: N, run: BenchRun<N>, now = new Date()): { record: BenchRecord; replaced: string[] } {
  const missing = REQUIRED_FIGURES[name].filter((f) => !(f in run.figures));
  if (missing.length) throw new Error(`bench ${name}: figures missing: ${missing.join(', ')}`);
  const reserved = ['name', 'at', 'cores', 'node', 'load_1m', 'params', 'baseline'].filter((k) => k in run.figures);
  if (reserved.length) throw new Error(`bench ${name}: figure names reserved for the record: ${reserved.join(', ')}`);
  const replaced: string[] = [];
  const params = finite(run.params, 'params', replaced) as Record<string, JsonValue>;
  const figures = finite(run.figures, '', replaced) as Record<string, JsonValue>;
  const baseline = finite(run.baseline ?? {}, 'baseline', replaced) as Record<string, JsonValue>;
  const record: BenchRecord = {
    name,
    at: now.toISOString(),
    cores: os.availableParallelism(),
    node: process.version,
    load_1m: Math.round(os.loadavg()[0]! * 100) / 100,
    params,
    ...figures,
    baseline,
  };
  return { record, replaced };
}

/** `machine: 2 cores, load 1.35, node v20.19.0; figures in bench/results/emulation.json` */
export function machineLine(record: BenchRecord, file: string): string {
  return `machine: ${record.cores} cores, load ${record.load_1m.toFixed(2)}, node ${record.node}; figures in ${path.relative(process.cwd(), file) || file}`;
}

/**
 * Writes `bench/results/<name>.json` atomically and prints the machine line (and a note for
 * any figure written as null because it was not a finite number). Returns the file's path.
 */
export function writeResults<N extends BenchName>(name: N, run: BenchRun<N>, log: (line: string) => void = console.log, dir = RESULTS_DIR): string {
  const { record, replaced } = benchRecord(name, run);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, JSON.stringify(record, null, 2) + '\n');
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  if (replaced.length) log(`  not finite, written as null: ${replaced.join(', ')}`);
  log(machineLine(record, file));
  return file;
}
