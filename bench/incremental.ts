/**
 * npm run bench:incremental -- [--posts 1000000] [--dates 30] [--new-posts 10000] [--updated 1000]
 *
 * Cost follows the day, not the history. A history of --posts synthetic posts over --dates
 * dates, landed as NDJSON objects on local disk in the sink layout (3 topics, 3 partitions,
 * objects rotated at interval ends, each date's manifest under `manifests/<prefix>/`; see
 * bench/incremental-layout.ts), is merged date by date into the embedded warehouse's
 * incremental state (not timed). Then, each in a process of its own (its peak RSS its own):
 * (a) the interval run of the next date (--new-posts new posts, --updated existing keys in a
 * new version) on a copy of that state, and (b) the full recompute of all the dates on a fresh
 * DuckDB file. Prints both wall times, the speedup (full / incremental), each one's peak RSS,
 * and checks that both leave the same cleaned tables and the same nine outputs. Figures also
 * in bench/results/incremental.json (bench/results.ts).
 *
 * What is timed: (a) is the DuckDB warehouse's interval run for landed objects in local folders
 * (adapters/duckdb/warehouse.ts: readLedger, pickBatch over the folders, runDuckdbIncremental
 * with its Parquet export), (b) is runDuckdbCleaning with its Parquet export (the warehouse's
 * full run), both called directly, not through Temporal, and both without the S3 upload of the
 * Parquet files. The landed objects and the state after the history are written once per size
 * under .cache/bench-incremental/ and reused.
 *
 * The runs are this file again in a child process, told so by PINFLOW_BENCH_INCREMENTAL_CHILD
 * (a JSON ChildTask); the child prints its figures as one JSON line.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { runDuckdbCleaning } from '../adapters/duckdb/cleaning';
import { literal, withConnection } from '../adapters/duckdb/connection';
import { localLandedObjects, readLedger, runDuckdbIncremental } from '../adapters/duckdb/incremental';
import { defineCommand, parseCommandLine, UsageError } from '../cli/args';
import { runCommand } from '../cli/command';
import { ProgressPrinter } from '../cli/progress';
import { ANALYTICS_NAMES, CLEANED_NAMES } from '../common/cleaning';
import { intervalManifestDir, intervalManifestKey, type IntervalManifest } from '../common/interval';
import { objectKey } from '../common/landing';
import { SOURCE_TABLES } from '../common/source-tables';
import { PROJECT_ROOT } from '../config';
import { syntheticPost } from '../scripts/db-seed';
import { pickBatch, type BatchSources } from '../sql/incremental';
import type { TopicSources } from '../sql/render';
import { toMessage } from '../test/helpers/landed-fixture';
import { incrementalLayout, layoutProblems, type LayoutOptions } from './incremental-layout';
import { wholeOption } from './options';
import { writeResults } from './results';

export const COMMAND = defineCommand({
  script: 'bench:incremental',
  options: {
    posts: { value: 'N', help: 'posts of the history, landed once per size (default 1000000)' },
    dates: { value: 'N', help: 'dates the history is spread over (default 30)' },
    'new-posts': { value: 'N', help: 'new posts of the timed date (default 10000)' },
    updated: { value: 'N', help: 'existing posts the timed date updates (default 1000)' },
  },
  about:
    'The interval run of one more date over a history of --posts synthetic posts landed over --dates dates (merged into the incremental state beforehand, not timed), ' +
    'beside a full recompute of all the dates in the same run, each on DuckDB in a process of its own: wall times, the speedup, peak RSS, and a check that both give the same tables. ' +
    'Writes the figures to bench/results/incremental.json.',
});

const CHILD_ENV = 'PINFLOW_BENCH_INCREMENTAL_CHILD';
const PREFIX = 'bench';
const SEED = 100;
const fmt = (n: number) => Math.round(n).toLocaleString('en');
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mb = (bytes: number) => `${fmt(bytes / 2 ** 20)} MiB`;

/** What a child process does: merge the history, run the timed date, or recompute everything. */
type ChildTask =
  | { mode: 'seed'; root: string; dbPath: string; dates: number }
  | { mode: 'incremental'; root: string; dbPath: string; date: number; exportDir: string }
  | { mode: 'full'; root: string; dbPath: string; exportDir: string };

interface ChildResult {
  ms: number;
  peakRssBytes: number;
  rows: Record<string, number>;
  parquet: Record<string, string>;
  timings: Array<{ name: string; ms: number }>;
  /** Interval run: the date's own objects, earlier ones merged with them, pin keys inserted and replaced. */
  merged?: { own: number; earlier: number; inserted: number; replaced: number };
}

const topicFolders = (root: string) => Object.fromEntries(SOURCE_TABLES.map((t) => [t.topic, path.join(root, 'topics', `${PREFIX}.${t.topic}`)])) as TopicSources;

function manifests(root: string): IntervalManifest[] {
  const dir = path.join(root, path.posix.dirname(intervalManifestDir(PREFIX)));
  return fs.readdirSync(dir).sort().map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as IntervalManifest);
}

/** Writes the landed objects and manifests of every date once (a marker file says they are complete). */
function ensureLanded(root: string, o: LayoutOptions): void {
  const marker = path.join(root, '.complete');
  if (fs.existsSync(marker)) return;
  fs.rmSync(root, { recursive: true, force: true });
  const printer = new ProgressPrinter();
  const t0 = performance.now();
  const layout = incrementalLayout(o);
  let written = 0;
  for (const obj of layout.objects) {
    const posts = obj.records.map((r) => syntheticPost(SEED + r.version, r.key));
    for (const t of SOURCE_TABLES) {
      const file = path.join(root, objectKey('topics', `${PREFIX}.${t.topic}`, obj.partition, obj.firstOffset));
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, posts.map((p) => JSON.stringify(toMessage(t, p[t.topic]))).join('\n') + '\n');
    }
    written += obj.records.length;
    printer.update(`writing landed objects: ${fmt(written)} / ${fmt(o.posts + o.newPosts + o.updated)} posts`);
  }
  for (const m of layout.manifests) {
    const file = path.join(root, intervalManifestKey(PREFIX, m.date));
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(m, null, 2) + '\n');
  }
  fs.writeFileSync(marker, new Date().toISOString());
  printer.update(`wrote ${fmt(written)} posts as ${fmt(layout.objects.length * 3)} landed objects and ${layout.manifests.length} manifests in ${secs(performance.now() - t0)}`, true);
}

function peakRssBytes(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** The warehouse's interval run for local folders: what the ledger lacks below the date's end, and the date's own objects. */
async function intervalRun(dbPath: string, root: string, interval: IntervalManifest, exportDir: string) {
  const folders = topicFolders(root);
  const picked = pickBatch(interval, localLandedObjects(folders), await readLedger(dbPath, PREFIX));
  const batch = {} as BatchSources;
  for (const t of SOURCE_TABLES) batch[t.topic] = picked[t.topic].length ? { folder: folders[t.topic]!, objects: picked[t.topic] } : null;
  const run = await runDuckdbIncremental({ dbPath, schema: PREFIX, interval, batch, exportDir });
  const all = SOURCE_TABLES.flatMap((t) => picked[t.topic]);
  const own = all.filter((x) => x.own).length;
  return { run, own, earlier: all.length - own };
}

/** Child mode: one task in a fresh process; prints its ChildResult as the last line. */
async function child(task: ChildTask): Promise<void> {
  const history = manifests(task.root);
  const t0 = performance.now();
  let result: Omit<ChildResult, 'ms' | 'peakRssBytes'>;
  if (task.mode === 'seed') {
    const printer = new ProgressPrinter();
    const scratch = path.join(path.dirname(task.dbPath), 'export');
    for (let d = 0; d < task.dates; d++) {
      fs.rmSync(scratch, { recursive: true, force: true });
      await intervalRun(task.dbPath, task.root, history[d]!, scratch);
      printer.update(`merging the history into the incremental state: ${d + 1} / ${task.dates} dates (${secs(performance.now() - t0)})`, d + 1 === task.dates);
    }
    fs.rmSync(scratch, { recursive: true, force: true });
    await withConnection(task.dbPath, (c) => c.run('CHECKPOINT'));
    result = { rows: {}, parquet: {}, timings: [] };
  } else if (task.mode === 'incremental') {
    const { run, own, earlier } = await intervalRun(task.dbPath, task.root, history[task.date]!, task.exportDir);
    const pins = run.counts.pin_clean;
    result = { rows: run.rows, parquet: run.parquet, timings: run.timings, merged: { own, earlier, inserted: pins.inserted ?? 0, replaced: pins.replaced ?? 0 } };
  } else {
    const run = await runDuckdbCleaning({ dbPath: task.dbPath, schema: PREFIX, sources: topicFolders(task.root), exportDir: task.exportDir });
    result = { rows: run.rows, parquet: run.parquet, timings: run.timings };
  }
  const out: ChildResult = { ms: performance.now() - t0, peakRssBytes: peakRssBytes(), ...result };
  process.stdout.write(JSON.stringify(out) + '\n');
}

function inChild(task: ChildTask): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, [CHILD_ENV]: JSON.stringify(task) };
    const proc = spawn(process.execPath, ['--import', 'tsx', __filename], { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    proc.stdout.on('data', (d) => (stdout += d));
    proc.on('error', reject);
    proc.on('exit', (code) => (code === 0 ? resolve(JSON.parse(stdout.trim().split('\n').pop()!) as ChildResult) : reject(new Error(`the ${task.mode} run (child process) exited ${code}`))));
  });
}

/** The DuckDB file and its write-ahead log, if any, copied to `to`. */
function copyDatabase(from: string, to: string): void {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  for (const suffix of ['', '.wal']) if (fs.existsSync(from + suffix)) fs.copyFileSync(from + suffix, to + suffix);
}

/**
 * The persistent tables an interval run keeps on DuckDB (sql/incremental.ts): the marker of a
 * seeded state names them, and a state seeded with other tables is seeded again, so that the
 * timed run never pays for creating a table the history's runs would have kept.
 */
const STATE_TABLES = '<t>_versions, <t>, merged_objects, <output>_by_date, joined_current';

/** The incremental state after the history's dates, merged once (a marker says it is complete). */
async function ensureState(root: string, dates: number): Promise<string> {
  const dir = path.join(root, 'state');
  const dbPath = path.join(dir, 'warehouse.duckdb');
  const marker = path.join(dir, '.complete');
  if (fs.existsSync(marker) && (JSON.parse(fs.readFileSync(marker, 'utf8')) as { tables?: string }).tables === STATE_TABLES) return dbPath;
  fs.rmSync(dir, { recursive: true, force: true });
  const seeded = await inChild({ mode: 'seed', root, dbPath, dates });
  fs.writeFileSync(marker, JSON.stringify({ at: new Date().toISOString(), ms: seeded.ms, tables: STATE_TABLES }));
  return dbPath;
}

/** The tables whose Parquet files differ between the two runs (rows compared as multisets). */
async function differing(a: Record<string, string>, b: Record<string, string>, names: readonly string[]): Promise<string[]> {
  return withConnection(':memory:', async (c) => {
    const out: string[] = [];
    for (const n of names) {
      const [x, y] = [`read_parquet(${literal(a[n]!)})`, `read_parquet(${literal(b[n]!)})`];
      const sql = `SELECT (SELECT count(*) FROM (SELECT * FROM ${x} EXCEPT ALL SELECT * FROM ${y})) + (SELECT count(*) FROM (SELECT * FROM ${y} EXCEPT ALL SELECT * FROM ${x})) AS n`;
      if (Number((await c.runAndReadAll(sql)).getRowObjectsJS()[0]!.n) !== 0) out.push(n);
    }
    return out;
  });
}

function dirSize(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !e.name.endsWith('.json')) continue;
    files++;
    bytes += fs.statSync(path.join(e.parentPath, e.name)).size;
  }
  return { files, bytes };
}

const slowest = (timings: ChildResult['timings']) => [...timings].sort((a, b) => b.ms - a.ms).slice(0, 6).map((t) => `${t.name} ${secs(t.ms)}`).join(', ');

async function main(argv: string[]): Promise<void> {
  const opts = parseCommandLine(COMMAND, argv).values;
  const layout: LayoutOptions = {
    posts: wholeOption(opts, 'posts', 1_000_000, 1, 50_000_000),
    dates: wholeOption(opts, 'dates', 30, 1, 366),
    newPosts: wholeOption(opts, 'new-posts', 10_000, 1, 10_000_000),
    updated: wholeOption(opts, 'updated', 1_000, 0, 50_000_000),
    partitions: 3,
    flush: 10_000,
    prefix: PREFIX,
  };
  const problems = layoutProblems(layout);
  if (problems.length) throw new UsageError(problems.join('; '));
  const { posts, dates, newPosts, updated } = layout;
  const base = path.join(PROJECT_ROOT, '.cache', 'bench-incremental');
  const root = path.join(base, `landed-${posts}-${dates}-${newPosts}-${updated}`);
  ensureLanded(root, layout);
  const all = manifests(root);
  const day = all[dates]!;
  const size = dirSize(path.join(root, 'topics'));
  console.log(`input: ${fmt(posts)} posts over ${dates} dates (${all[0]!.date} .. ${all[dates - 1]!.date}) + ${day.date}: ${fmt(newPosts)} new posts, ${fmt(updated)} updated; ${fmt((posts + newPosts + updated) * 3)} records in ${fmt(size.files)} objects, ${mb(size.bytes)} of NDJSON on local disk`);

  const state = await ensureState(root, dates);
  const work = path.join(base, 'work');
  fs.rmSync(work, { recursive: true, force: true });
  copyDatabase(state, path.join(work, 'incremental.duckdb'));

  console.log(`incremental: the interval run of ${day.date} on the state after ${all[dates - 1]!.date} (own process) ...`);
  const inc = await inChild({ mode: 'incremental', root, dbPath: path.join(work, 'incremental.duckdb'), date: dates, exportDir: path.join(work, 'out-incremental') });
  const m = inc.merged!;
  console.log(`  ${secs(inc.ms)}, peak RSS ${mb(inc.peakRssBytes)}; merged ${m.own} objects of the date (+${m.earlier} earlier), pin keys inserted ${fmt(m.inserted)}, replaced ${fmt(m.replaced)}`);
  console.log(`  slowest steps: ${slowest(inc.timings)}`);

  console.log(`full recompute: clean + 9 analytics over all ${dates + 1} dates on a fresh DuckDB file (own process) ...`);
  const full = await inChild({ mode: 'full', root, dbPath: path.join(work, 'full.duckdb'), exportDir: path.join(work, 'out-full') });
  console.log(`  ${secs(full.ms)}, peak RSS ${mb(full.peakRssBytes)}; rows: pin_clean ${fmt(full.rows.pin_clean!)}, geo_clean ${fmt(full.rows.geo_clean!)}, user_clean ${fmt(full.rows.user_clean!)}`);
  console.log(`  slowest steps: ${slowest(full.timings)}`);

  const diff = await differing(inc.parquet, full.parquet, [...CLEANED_NAMES, ...ANALYTICS_NAMES]);
  fs.rmSync(work, { recursive: true, force: true });
  if (diff.length) throw new Error(`the incremental run and the full recompute differ in: ${diff.join(', ')}`);
  console.log(`  same result: the 3 cleaned tables and 9 outputs of both runs hold the same rows`);

  const speedup = full.ms / inc.ms;
  console.log('\nresult');
  console.log(`  incremental run of ${day.date}: ${secs(inc.ms)} (goal < 2 s), peak RSS ${mb(inc.peakRssBytes)}`);
  console.log(`  full recompute, ${dates + 1} dates:  ${secs(full.ms)}, peak RSS ${mb(full.peakRssBytes)}`);
  console.log(`  speedup full / incremental: ${speedup.toFixed(1)}x (goal >= 15x)`);
  writeResults('incremental', {
    params: { posts, dates, new_posts: newPosts, updated },
    figures: {
      incremental_s: inc.ms / 1000,
      speedup,
      incremental_peak_rss_mb: inc.peakRssBytes / 2 ** 20,
      full_peak_rss_mb: full.peakRssBytes / 2 ** 20,
      input_objects: size.files,
      input_mb: size.bytes / 2 ** 20,
    },
    baseline: { full_s: full.ms / 1000 },
  });
}

/** A child run (PINFLOW_BENCH_INCREMENTAL_CHILD set), or the benchmark. */
function entry(argv: string[]): Promise<void> {
  const task = process.env[CHILD_ENV];
  return task === undefined ? main(argv) : child(JSON.parse(task) as ChildTask);
}

if (require.main === module) runCommand(COMMAND, entry);
