/**
 * npm run bench:pipeline -- [--runs 3]
 *
 * Wall time of dailyPipelineWorkflow on the real sample (2,019 posts emulated onto fresh topics:
 * landing 6,057 records, then cleaning + the nine analytics on DuckDB), beside the same
 * pipeline on a prefix with no data, measured in the same run: the second is the orchestration
 * overhead (workflow and child starts, activity round trips, S3 listings, an empty warehouse
 * transaction), per stage. Medians of --runs runs each; the data runs land once and then clean
 * the same objects (landing finds nothing new), so the first data run is reported apart.
 * Figures also in bench/results/pipeline.json (bench/results.ts).
 */
import { defineCommand, parseCommandLine } from '../cli/args';
import { runCli } from '../cli/command';
import { loadConfig, readEnv, type Config } from '../config';
import { todayUtc, type DailyPipelineResult } from '../common/daily';
import { loadDir } from '../scripts/db-load';
import { runEmulate } from '../scripts/emulate';
import { SAMPLE_DIR_DEFAULT } from '../cli/paths';
import { runPipeline } from '../scripts/pipeline';
import { stackUp } from '../stack';
import { wholeOption } from './options';
import { writeResults } from './results';

export const COMMAND = defineCommand({
  script: 'bench:pipeline',
  options: {
    runs: { value: 'N', help: 'runs of each kind the medians are taken over, 1-100 (default 3)' },
  },
  about:
    'Wall time of dailyPipelineWorkflow on the real sample beside the same pipeline on a prefix with no data (the orchestration overhead), per stage, ' +
    'in one run: the first run on the sample, then medians of --runs reruns of each. Writes the figures to bench/results/pipeline.json.',
});

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function main(baseConfig: Config, argv: string[]): Promise<void> {
  const runs = wholeOption(parseCommandLine(COMMAND, argv).values, 'runs', 3, 1, 100);
  const stamp = Date.now().toString(36);
  const base = readEnv();
  const db = new URL(baseConfig.mysql.url);
  db.pathname = `/pinterest_test_bench_pipeline_${stamp}`;
  const cfg = (prefix: string) => loadConfig({ ...base, MYSQL_URL: db.toString(), PIPELINE_PREFIX: prefix, TEMPORAL_TASK_QUEUE: `bench-pipeline-${stamp}` });
  const data = cfg(`bench-pipe-${stamp}`);
  const empty = cfg(`bench-empty-${stamp}`);
  await stackUp(data);
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
  writeResults('pipeline', {
    params: { runs },
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
  });
}

if (require.main === module) runCli(COMMAND, main);
