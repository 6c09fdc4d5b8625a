/**
 * npm run bench:cleaning -- [--posts 1000000] [--skip-spark] [--skip-s3]
 *
 * Clean + all nine analytics over --posts synthetic posts landed as NDJSON objects on local
 * disk (Confluent layout, 3 partitions, 10,000 records an object), on the embedded warehouse
 * (DuckDB, in a process of its own) beside local Apache Spark (PySpark, local[2]) on the same
 * files in the same run; both write every table as Parquet. Prints wall times, their ratio
 * and each engine's peak RSS. The S3 download of the same objects (what the cleaning activity
 * does before DuckDB runs) is timed separately. Figures also in bench/results/cleaning.json
 * (bench/results.ts; spark_ratio is null with --skip-spark).
 *
 * The DuckDB run is this file again in a child process, told so by PINFLOW_BENCH_DUCKDB_CHILD
 * (a JSON {root, out}); it prints its figures as one JSON line.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { runDuckdbCleaning } from '../adapters/duckdb/cleaning';
import { createS3Client, downloadToFile, listObjects } from '../adapters/s3';
import { loadConfig, PROJECT_ROOT, readEnv } from '../config';
import { objectKey } from '../common/landing';
import { SOURCE_TABLES } from '../common/source-tables';
import { sparkStatements, type TopicSources } from '../sql/render';
import { syntheticPost } from '../scripts/db-seed';
import { ProgressPrinter } from '../cli/progress';
import { defineCommand, parseCommandLine } from '../cli/args';
import { runCommand } from '../cli/command';
import { ensureSpark, runSparkSql } from '../test/tools/spark';
import { stackUp } from '../stack';
import { toMessage } from '../test/helpers/landed-fixture';
import { wholeOption } from './options';
import { writeResults } from './results';

export const COMMAND = defineCommand({
  script: 'bench:cleaning',
  options: {
    posts: { value: 'N', help: 'synthetic posts landed as NDJSON on local disk, written once per size (default 1000000)' },
    'skip-spark': { help: 'leave out the Spark run (spark_ratio is then null)' },
    'skip-s3': { help: 'leave out the timed S3 download' },
  },
  about:
    'Clean + the nine analytics over --posts synthetic posts landed as NDJSON objects, on DuckDB (in a process of its own) beside local Apache Spark on the same files, ' +
    "in one run: wall times, their ratio, each engine's peak RSS, and the S3 download of the same objects timed apart. Writes the figures to bench/results/cleaning.json.",
});

const CHILD_ENV = 'PINFLOW_BENCH_DUCKDB_CHILD';
const fmt = (n: number) => Math.round(n).toLocaleString('en');
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mb = (bytes: number) => `${fmt(bytes / 2 ** 20)} MiB`;
const PARTITIONS = 3;
const FLUSH = 10_000;
const PREFIX = 'bench';

function vmHwm(pid: number | 'self' = 'self'): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Writes the landed objects once (a marker file says they are complete). */
function ensureLanded(root: string, posts: number): TopicSources {
  const marker = path.join(root, '.complete');
  const sources = Object.fromEntries(SOURCE_TABLES.map((t) => [t.topic, path.join(root, 'topics', `${PREFIX}.${t.topic}`)])) as TopicSources;
  if (fs.existsSync(marker)) return sources;
  fs.rmSync(root, { recursive: true, force: true });
  const printer = new ProgressPrinter();
  const t0 = performance.now();
  const buffers = SOURCE_TABLES.map(() => Array.from({ length: PARTITIONS }, () => [] as string[]));
  const offsets = SOURCE_TABLES.map(() => Array(PARTITIONS).fill(0) as number[]);
  const flush = (ti: number, p: number) => {
    const lines = buffers[ti]![p]!;
    if (lines.length === 0) return;
    const topic = `${PREFIX}.${SOURCE_TABLES[ti]!.topic}`;
    const file = path.join(root, objectKey('topics', topic, p, offsets[ti]![p]!));
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, lines.join('\n') + '\n');
    offsets[ti]![p]! += lines.length;
    buffers[ti]![p] = [];
  };
  for (let key = 0; key < posts; key++) {
    const post = syntheticPost(100, key);
    SOURCE_TABLES.forEach((t, ti) => {
      const p = key % PARTITIONS;
      buffers[ti]![p]!.push(JSON.stringify(toMessage(t, post[t.topic])));
      if (buffers[ti]![p]!.length >= FLUSH) flush(ti, p);
    });
    if (key % 50_000 === 0) printer.update(`writing landed objects: ${fmt(key)} / ${fmt(posts)} posts`);
  }
  SOURCE_TABLES.forEach((_, ti) => Array.from({ length: PARTITIONS }, (__, p) => flush(ti, p)));
  fs.writeFileSync(marker, new Date().toISOString());
  printer.update(`wrote ${fmt(posts)} posts as landed objects in ${secs(performance.now() - t0)}`, true);
  return sources;
}

function dirBytes(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.json')) {
      files++;
      bytes += fs.statSync(path.join(e.parentPath, e.name)).size;
    }
  }
  return { files, bytes };
}

/** Child mode: one DuckDB run in a fresh process, so its peak RSS is its own. */
async function duckdbChild(root: string, out: string) {
  const sources = Object.fromEntries(SOURCE_TABLES.map((t) => [t.topic, path.join(root, 'topics', `${PREFIX}.${t.topic}`)])) as TopicSources;
  fs.rmSync(out, { recursive: true, force: true });
  const t0 = performance.now();
  const run = await runDuckdbCleaning({ dbPath: path.join(out, 'bench.duckdb'), schema: PREFIX, sources, exportDir: path.join(out, 'parquet') });
  const ms = performance.now() - t0;
  process.stdout.write(JSON.stringify({ ms, rows: run.rows, timings: run.timings, peakRssBytes: vmHwm() }) + '\n');
}

function runDuckdbInChild(root: string, out: string): Promise<{ ms: number; rows: Record<string, number>; timings: Array<{ name: string; ms: number }>; peakRssBytes: number }> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, [CHILD_ENV]: JSON.stringify({ root, out }) };
    const child = spawn(process.execPath, ['--import', 'tsx', __filename], { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(stdout.trim().split('\n').pop()!)) : reject(new Error(`DuckDB child exited ${code}`))));
  });
}

async function s3Download(root: string): Promise<{ ms: number; objects: number; bytes: number }> {
  const config = loadConfig({ ...readEnv() });
  await stackUp(config);
  const s3 = createS3Client(config);
  const keyPrefix = `bench-cleaning/${path.basename(root)}/`;
  const local = dirBytes(root);
  const have = await listObjects(s3, config.s3.bucket, keyPrefix);
  if (have.length !== local.files) {
    const printer = new ProgressPrinter();
    const files = fs.readdirSync(root, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.json'));
    let done = 0;
    for (const e of files) {
      const file = path.join(e.parentPath, e.name);
      await s3.send(new PutObjectCommand({ Bucket: config.s3.bucket, Key: keyPrefix + path.relative(root, file), Body: fs.readFileSync(file) }));
      printer.update(`uploading the landed objects to S3 (once): ${++done} / ${files.length}`);
    }
    printer.update(`uploaded ${files.length} objects`, true);
  }
  const objects = await listObjects(s3, config.s3.bucket, keyPrefix);
  const dest = path.join(PROJECT_ROOT, '.cache', 'bench-cleaning', 'download');
  fs.rmSync(dest, { recursive: true, force: true });
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < objects.length) {
        const o = objects[next++]!;
        await downloadToFile(s3, config.s3.bucket, o.key, path.join(dest, o.key));
      }
    }),
  );
  const ms = performance.now() - t0;
  fs.rmSync(dest, { recursive: true, force: true });
  s3.destroy();
  return { ms, objects: objects.length, bytes: objects.reduce((n, o) => n + o.size, 0) };
}

async function main(argv: string[]): Promise<void> {
  const opts = parseCommandLine(COMMAND, argv).values;
  const posts = wholeOption(opts, 'posts', 1_000_000, 1, 50_000_000);
  const base = path.join(PROJECT_ROOT, '.cache', 'bench-cleaning');
  const root = path.join(base, `landed-${posts}`);
  const sources = ensureLanded(root, posts);
  const size = dirBytes(root);
  console.log(`input: ${fmt(posts)} posts = ${fmt(posts * 3)} records in ${size.files} objects, ${mb(size.bytes)} of NDJSON on local disk`);

  console.log('DuckDB: clean + 9 analytics + Parquet export of 12 tables (own process) ...');
  const duck = await runDuckdbInChild(root, path.join(base, 'out-duckdb'));
  console.log(`  ${secs(duck.ms)}, peak RSS ${mb(duck.peakRssBytes)}; rows: pin_clean ${fmt(duck.rows.pin_clean!)}, geo_clean ${fmt(duck.rows.geo_clean!)}, user_clean ${fmt(duck.rows.user_clean!)}`);
  const slowest = [...duck.timings].sort((a, b) => b.ms - a.ms).slice(0, 8);
  console.log(`  slowest steps: ${slowest.map((t) => `${t.name} ${secs(t.ms)}`).join(', ')}`);

  let spark: Awaited<ReturnType<typeof runSparkSql>> | undefined;
  if (!opts['skip-spark']) {
    await ensureSpark();
    console.log('Spark (local[2]): the same statements in the Spark dialect, Parquet export of 12 tables ...');
    const out = path.join(base, 'out-spark');
    fs.rmSync(out, { recursive: true, force: true });
    const t0 = performance.now();
    spark = await runSparkSql(sparkStatements(sources, { exportDir: out }), { outDir: path.join(out, 'json') });
    const wall = performance.now() - t0;
    console.log(`  ${secs(wall)} (session start ${secs(spark.startupMs)}, statements ${secs(wall - spark.startupMs)}), peak RSS ${mb(spark.peakRssBytes)}`);
    const rows = (dir: string) =>
      fs.readdirSync(dir).filter((f) => f.endsWith('.parquet')).length > 0 ? 'written' : 'MISSING';
    console.log(`  Parquet: pin_clean ${rows(path.join(out, 'pin_clean'))}, median_followers_by_age_group ${rows(path.join(out, 'median_followers_by_age_group'))}`);
    spark.totalMs = wall;
  }

  let download: Awaited<ReturnType<typeof s3Download>> | undefined;
  if (!opts['skip-s3']) {
    console.log('S3 download of the same objects (the cleaning activity\'s staging step, 8 streams) ...');
    download = await s3Download(root);
    console.log(`  ${secs(download.ms)} for ${download.objects} objects, ${mb(download.bytes)} (${fmt(download.bytes / 2 ** 20 / (download.ms / 1000))} MiB/s)`);
  }

  console.log('\nresult');
  console.log(`  DuckDB clean + analytics: ${secs(duck.ms)} (goal < 10 s), peak RSS ${mb(duck.peakRssBytes)}`);
  if (spark) {
    console.log(`  Spark local, same files:  ${secs(spark.totalMs)} incl. ${secs(spark.startupMs)} session start, peak RSS ${mb(spark.peakRssBytes)}`);
    console.log(`  ratio Spark / DuckDB:     ${(spark.totalMs / duck.ms).toFixed(1)}x (goal >= 20x); statements only: ${((spark.totalMs - spark.startupMs) / duck.ms).toFixed(1)}x`);
  }
  if (download) console.log(`  + S3 download before DuckDB: ${secs(download.ms)}`);
  writeResults('cleaning', {
    params: { posts, skip_spark: Boolean(opts['skip-spark']), skip_s3: Boolean(opts['skip-s3']) },
    figures: {
      duckdb_s: duck.ms / 1000,
      spark_ratio: spark ? spark.totalMs / duck.ms : null,
      spark_statements_ratio: spark ? (spark.totalMs - spark.startupMs) / duck.ms : null,
      duckdb_peak_rss_mb: duck.peakRssBytes / 2 ** 20,
      input_objects: size.files,
      input_mb: size.bytes / 2 ** 20,
      s3_download_s: download ? download.ms / 1000 : null,
    },
    baseline: spark ? { spark_s: spark.totalMs / 1000, spark_startup_s: spark.startupMs / 1000, spark_peak_rss_mb: spark.peakRssBytes / 2 ** 20 } : {},
  });
}

/** The DuckDB child (PINFLOW_BENCH_DUCKDB_CHILD set), or the benchmark. */
function entry(argv: string[]): Promise<void> {
  const child = process.env[CHILD_ENV];
  if (child === undefined) return main(argv);
  const { root, out } = JSON.parse(child) as { root: string; out: string };
  return duckdbChild(root, out);
}

if (require.main === module) runCommand(COMMAND, entry);
