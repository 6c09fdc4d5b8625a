/**
 * npm run bench:pipeline -- [--runs 3] [--latency-only]
 *
 * Wall time of dailyPipelineWorkflow on the real sample (2,019 posts emulated onto fresh topics:
 * landing 6,057 records, then cleaning + the nine analytics on DuckDB), beside the same
 * pipeline on a prefix with no data, measured in the same run: the second is the orchestration
 * overhead (workflow and child starts, activity round trips, S3 listings, an empty warehouse
 * transaction), per stage. Medians of --runs runs each; the data runs land once and then clean
 * the same objects (landing finds nothing new), so the first data run is reported apart.
 *
 * Then the command's latency as a user sees it: `npm run pipeline -- --wait` on a prefix with
 * no new data, timed from a child process to its exit, --runs times back to back with no
 * worker running (each run after the first finds the previous run's worker gone but still
 * listed by Temporal: the stale poller) and --runs times with `npm run worker` polling;
 * beside, in the same run, the floor every such command pays: `npm run pipeline -- --help`
 * (npm, Node, tsx and the script's imports; no Temporal) and tsx running an empty script.
 * --latency-only measures only this part (the sample figures are written as null).
 * Figures also in bench/results/pipeline.json (bench/results.ts).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defineCommand, parseCommandLine } from '../cli/args';
import { runCli } from '../cli/command';
import { loadConfig, PROJECT_ROOT, readEnv, type Config } from '../config';
import { todayUtc, type DailyPipelineResult } from '../common/daily';
import { loadDir } from '../scripts/db-load';
import { runEmulate } from '../scripts/emulate';
import { SAMPLE_DIR_DEFAULT } from '../cli/paths';
import { runPipeline } from '../scripts/pipeline';
import { stackUp } from '../stack';
import { wholeOption } from './options';
import { writeResults } from './results';
import { connectClient } from '../workers/client';
import { isStale, workflowPollers } from '../workers/pollers';

export const COMMAND = defineCommand({
  script: 'bench:pipeline',
  options: {
    runs: { value: 'N', help: 'runs of each kind the medians are taken over, 1-100 (default 3)' },
    'latency-only': { help: 'measure only the latency of the npm run pipeline command (no sample)' },
  },
  about:
    'Wall time of dailyPipelineWorkflow on the real sample beside the same pipeline on a prefix with no data (the orchestration overhead), per stage, ' +
    'in one run: the first run on the sample, then medians of --runs reruns of each; then the latency of npm run pipeline -- --wait on a prefix with no new data ' +
    '(no worker running, and with one), beside npm run pipeline -- --help and tsx on an empty script. Writes the figures to bench/results/pipeline.json.',
});

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** Runs a command to its exit; its wall time in ms and its output. */
function timed(cmd: string, args: string[], env: Record<string, string>): Promise<{ ms: number; code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd: PROJECT_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ ms: performance.now() - t0, code, out }));
  });
}

/** `npm run worker` on the latency queue, once it polls. */
async function startWorker(env: Record<string, string>): Promise<{ stop: () => Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'workers', 'main.ts')], { cwd: PROJECT_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise((r) => child.once('exit', r));
  for (const deadline = Date.now() + 60_000; !out.includes('polling task queue'); ) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`npm run worker did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

interface Latency {
  no_worker_s: number[];
  live_worker_s: number[];
  help_s: number[];
  tsx_empty_s: number[];
  /** Runs with no worker running that waited on a listed poller before starting their own worker. */
  waited: number;
  /** Per run with no worker running: the pollers Temporal listed of workers gone from this host. */
  stale_listed: number[];
}

/** The latency of `npm run pipeline -- --wait` on a prefix with no new data, and its baselines (see the top of this file). */
async function measureLatency(runs: number, stamp: string, log: (s: string) => void): Promise<Latency> {
  const prefix = `bench-lat-${stamp}`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-bench-lat-'));
  const empty = path.join(tmp, 'empty.ts');
  fs.writeFileSync(empty, '');
  const env = { PIPELINE_PREFIX: prefix, TEMPORAL_TASK_QUEUE: `bench-lat-${stamp}`, DUCKDB_PATH: path.join(tmp, 'warehouse.duckdb') };
  const pipeline = async () => {
    const r = await timed('npm', ['run', '--silent', 'pipeline', '--', '--wait', '--output-root', `${prefix}/`], env);
    if (r.code !== 0 || !/landed 0 records/.test(r.out)) throw new Error(`npm run pipeline failed (exit ${r.code}) or found data:\n${r.out}`);
    return r;
  };
  const lat: Latency = { no_worker_s: [], live_worker_s: [], help_s: [], tsx_empty_s: [], waited: 0, stale_listed: [] };
  const client = await connectClient(loadConfig({ ...readEnv(), ...env }));
  try {
    log(`\nlatency of npm run pipeline -- --wait on ${prefix} (no new data), ${runs} runs each ...`);
    await pipeline(); // the prefix's first run: from here on there is nothing new
    for (let i = 0; i < runs; i++) {
      const help = await timed('npm', ['run', '--silent', 'pipeline', '--', '--help'], env);
      const bare = await timed(path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx'), [empty], env);
      const listed = await workflowPollers(client, env.TEMPORAL_TASK_QUEUE);
      const stale = listed.filter((p) => isStale(p, env.TEMPORAL_TASK_QUEUE)).length;
      lat.stale_listed.push(stale);
      const r = await pipeline();
      if (/took the run up within/.test(r.out)) lat.waited++;
      lat.help_s.push(help.ms / 1000);
      lat.tsx_empty_s.push(bare.ms / 1000);
      lat.no_worker_s.push(r.ms / 1000);
      log(`  run ${i + 1}/${runs}: no worker ${s(r.ms)} (${listed.length} poller(s) listed, ${stale} of gone workers), --help ${s(help.ms)}, tsx empty script ${s(bare.ms)}`);
    }
    const worker = await startWorker(env);
    try {
      for (let i = 0; i < runs; i++) {
        const r = await pipeline();
        if (!/using the worker polling/.test(r.out)) throw new Error(`the running worker did not take the run:\n${r.out}`);
        lat.live_worker_s.push(r.ms / 1000);
        log(`  run ${i + 1}/${runs}: with npm run worker polling ${s(r.ms)}`);
      }
    } finally {
      await worker.stop();
    }
  } finally {
    await client.connection.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return lat;
}

/** The sample part's figures (null when not measured). */
type SampleFigures = { first_run_s: number | null; overhead_s: number | null } & Record<string, number | null>;

/** The workflow on the sample and on an empty prefix, in this process (see the top of this file). */
async function measureSample(baseConfig: Config, runs: number, stamp: string): Promise<{ figures: SampleFigures; baseline: Record<string, number | number[]> }> {
  const base = readEnv();
  const db = new URL(baseConfig.mysql.url);
  db.pathname = `/pinterest_test_bench_pipeline_${stamp}`;
  const cfg = (prefix: string) => loadConfig({ ...base, MYSQL_URL: db.toString(), PIPELINE_PREFIX: prefix, TEMPORAL_TASK_QUEUE: `bench-pipeline-${stamp}` });
  const data = cfg(`bench-pipe-${stamp}`);
  const empty = cfg(`bench-empty-${stamp}`);
  console.log('loading the real sample and emulating it onto fresh topics ...');
  await loadDir(data, SAMPLE_DIR_DEFAULT, { replace: true });
  await runEmulate(data, { input: { prefix: data.prefix, sink: 'kafka', rate: 'max', selection: { mode: 'all' } }, wait: true }, () => {});

  const date = todayUtc(Date.now());
  const once = async (config: typeof data): Promise<{ wall: number; r: DailyPipelineResult }> => {
    const t0 = performance.now();
    const { result } = await runPipeline(config, { input: { prefix: config.prefix, date, outputRoot: `${config.prefix}/` }, wait: true }, () => {});
    return { wall: performance.now() - t0, r: result! };
  };
  const first = await once(data);
  console.log(`first run on the sample: ${s(first.wall)} (landing ${first.r.landing.records} records: ${s(first.r.stageMs.landing)}, cleaning + analytics ${first.r.cleaning.tables.pin_clean.rows} rows per table: ${s(first.r.stageMs.cleaning)})`);
  const withData: Array<{ wall: number; r: DailyPipelineResult }> = [];
  const without: Array<{ wall: number; r: DailyPipelineResult }> = [];
  for (let i = 0; i < runs; i++) {
    withData.push(await once(data));
    without.push(await once(empty));
    console.log(`  run ${i + 1}/${runs}: sample ${s(withData[i]!.wall)}, no data ${s(without[i]!.wall)}`);
  }
  const row = (name: string, xs: Array<{ wall: number; r: DailyPipelineResult }>) =>
    `  ${name.padEnd(26)} total ${s(median(xs.map((x) => x.wall))).padStart(8)}   landing ${s(median(xs.map((x) => x.r.stageMs.landing))).padStart(8)}   cleaning+analytics ${s(median(xs.map((x) => x.r.stageMs.cleaning))).padStart(8)}`;
  console.log(`\nresult (medians of ${runs}; total = as the command's caller sees it, with its worker in process)`);
  console.log(`  ${'first run, sample'.padEnd(26)} total ${s(first.wall).padStart(8)}   landing ${s(first.r.stageMs.landing).padStart(8)}   cleaning+analytics ${s(first.r.stageMs.cleaning).padStart(8)}`);
  console.log(row('rerun, sample (0 new)', withData));
  console.log(row('no data (overhead)', without));
  const dataClean = median(withData.map((x) => x.r.stageMs.cleaning));
  const emptyClean = median(without.map((x) => x.r.stageMs.cleaning));
  console.log(`  cleaning on the sample vs empty: ${(dataClean / emptyClean).toFixed(1)}x; the first run's work beyond the overhead: ${s(first.wall - median(without.map((x) => x.wall)))}`);
  const med = (xs: Array<{ wall: number; r: DailyPipelineResult }>, f: (x: { wall: number; r: DailyPipelineResult }) => number) => median(xs.map(f)) / 1000;
  return {
    figures: {
      first_run_s: first.wall / 1000,
      first_landing_s: first.r.stageMs.landing / 1000,
      first_cleaning_s: first.r.stageMs.cleaning / 1000,
      rerun_s: med(withData, (x) => x.wall),
      rerun_cleaning_s: dataClean / 1000,
      overhead_s: med(without, (x) => x.wall),
      cleaning_vs_empty: dataClean / emptyClean,
    },
    baseline: {
      no_data_s: without.map((x) => x.wall / 1000),
      no_data_landing_s: med(without, (x) => x.r.stageMs.landing),
      no_data_cleaning_s: emptyClean / 1000,
    },
  };
}

/** The command's latency goal (issue 17): under 3 s on a prefix with no new data. */
const LATENCY_GOAL_S = 3;

async function main(baseConfig: Config, argv: string[]): Promise<void> {
  const values = parseCommandLine(COMMAND, argv).values;
  const runs = wholeOption(values, 'runs', 3, 1, 100);
  const latencyOnly = Boolean(values['latency-only']);
  const stamp = Date.now().toString(36);
  await stackUp(baseConfig);
  const sample: { figures: SampleFigures; baseline: Record<string, number | number[]> } = latencyOnly
    ? { figures: { first_run_s: null, overhead_s: null }, baseline: {} }
    : await measureSample(baseConfig, runs, stamp);
  const lat = await measureLatency(runs, stamp, console.log);
  const m = (xs: number[]) => median(xs);
  const noWorker = m(lat.no_worker_s);
  const live = m(lat.live_worker_s);
  const help = m(lat.help_s);
  const bare = m(lat.tsx_empty_s);
  const sec = (x: number) => `${x.toFixed(2)} s`;
  console.log(`\nresult: npm run pipeline -- --wait, prefix with no new data (medians of ${runs})`);
  console.log(`  no worker running (stale poller listed)  ${sec(noWorker).padStart(8)}   goal < ${LATENCY_GOAL_S} s: ${noWorker < LATENCY_GOAL_S ? 'met' : 'NOT met'}`);
  console.log(`  npm run worker polling                   ${sec(live).padStart(8)}   goal < ${LATENCY_GOAL_S} s: ${live < LATENCY_GOAL_S ? 'met' : 'NOT met'}`);
  console.log(`  baseline: npm run pipeline -- --help     ${sec(help).padStart(8)}   (the command's start-up, no Temporal)`);
  console.log(`  baseline: tsx on an empty script         ${sec(bare).padStart(8)}`);
  console.log(`  beyond start-up: no worker ${sec(noWorker - help)} (${(noWorker / help).toFixed(1)}x --help), worker polling ${sec(live - help)} (${(live / help).toFixed(1)}x --help)`);
  if (lat.waited) console.log(`  note: ${lat.waited} of ${runs} runs waited on a listed poller before running their own worker`);
  writeResults('pipeline', {
    params: { runs, latency_only: latencyOnly },
    figures: {
      ...sample.figures,
      command_no_worker_s: noWorker,
      command_live_worker_s: live,
      command_vs_help: noWorker / help,
      command_waited_runs: lat.waited,
    },
    baseline: {
      ...sample.baseline,
      command_no_worker_s: lat.no_worker_s,
      command_live_worker_s: lat.live_worker_s,
      help_s: lat.help_s,
      tsx_empty_s: lat.tsx_empty_s,
      stale_pollers_listed: lat.stale_listed,
    },
  });
}

if (require.main === module) runCli(COMMAND, main);
