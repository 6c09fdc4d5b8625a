/**
 * npm run bench:pipeline -- [--runs 3]
 *
 * Wall time of dailyPipelineWorkflow on the real sample (2,019 posts emulated onto fresh topics:
 * landing 6,057 records, then cleaning + the nine analytics on DuckDB), beside the same
 * pipeline on a prefix with no data, measured in the same run: the second is the orchestration
 * overhead (workflow and child starts, activity round trips, S3 listings, an empty warehouse
 * transaction), per stage. Medians of --runs runs each; the data runs land once and then clean
 * the same objects (landing finds nothing new), so the first data run is reported apart.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { loadConfig, readEnv } from '../config';
import { todayUtc, type DailyPipelineResult } from '../common/daily';
import { loadDir } from '../scripts/db-load';
import { runEmulate } from '../scripts/emulate';
import { SAMPLE_DIR_DEFAULT } from '../cli/paths';
import { runPipeline } from '../scripts/pipeline';
import { stackUp } from '../stack';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function main() {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const runs = arg('--runs', 3);
  const stamp = Date.now().toString(36);
  const base = readEnv();
  const db = new URL(loadConfig(base).mysql.url);
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
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
