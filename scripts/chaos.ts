/**
 * npm run chaos -- [--posts 200000] [--seed 7]
 *
 * The whole pipeline under faults, checked against a fault-free run of the same data:
 * 1. seeds --posts synthetic posts into a database of its own;
 * 2. fault-free: emulation (Kafka) then dailyPipelineWorkflow (landing, cleaning, analytics) on
 *    prefix `chaos-<stamp>-base`, outputs written to a folder;
 * 3. under chaos, on prefix `chaos-<stamp>-run`, with the worker in a process of its own:
 *    at random moments (from --seed) it SIGKILLs the worker (and starts a new one), restarts
 *    Kafka, stops the S3 server for 30 s and restarts MySQL, printing one line per fault;
 * 4. checks that nothing was lost or duplicated (exactly --posts rows per cleaned table, no
 *    duplicate records landed, 3 x --posts records landed) and that the twelve outputs equal
 *    the fault-free run's, and prints `N passed, N failed` (exit 1 if any failed).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { ANALYTICS_OUTPUTS, CLEANED_TABLES } from '../common/analytics';
import { loadConfig, PROJECT_ROOT, readEnv, type Config } from '../common/config';
import { dailyWorkflowId, todayUtc, type DailyPipelineResult } from '../common/daily';
import { Rng } from '../common/prng';
import { connectClient } from '../workers/client';
import { seed } from './db-seed';
import { runEmulate } from './emulate';
import { runPipeline } from './pipeline';
import { stackDown, stackUp } from './stack/index';
import { spawnWorker } from '../test/helpers/data';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Fault {
  name: string;
  atMs: number;
  run: () => Promise<string>;
}

async function main() {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const posts = arg('--posts', 200_000);
  const rng = new Rng(arg('--seed', 7));
  const stamp = Date.now().toString(36);
  const base = readEnv();
  const db = new URL(loadConfig(base).mysql.url);
  db.pathname = `/pinterest_test_chaos_${stamp}`;
  const cfg = (suffix: string): Config =>
    loadConfig({ ...base, MYSQL_URL: db.toString(), PIPELINE_PREFIX: `chaos-${stamp}-${suffix}`, TEMPORAL_TASK_QUEUE: `chaos-${stamp}-${suffix}`, DUCKDB_PATH: `.data/chaos/${stamp}-${suffix}.duckdb` });
  const clean = cfg('base');
  const chaos = cfg('run');
  const out = path.join(PROJECT_ROOT, '.data', 'chaos', stamp);
  const t0 = Date.now();
  const at = () => `+${((Date.now() - t0) / 1000).toFixed(1)} s`;
  await stackUp(clean);
  console.log(`chaos ${stamp}: seeding ${posts.toLocaleString('en')} posts ...`);
  await seed(clean, { rows: posts, seed: 100, replace: true });
  const date = todayUtc(Date.now());

  // 2. Fault-free run.
  console.log(`fault-free run (prefix ${clean.prefix}) ...`);
  await runEmulate(clean, { input: { prefix: clean.prefix, sink: 'kafka', rate: 'max', selection: { mode: 'all' } }, wait: true }, () => {});
  const baseRun = await runPipeline(clean, { input: { prefix: clean.prefix, date, outputRoot: `${clean.prefix}/` }, wait: true, out: path.join(out, 'base') }, () => {});
  const baseSeconds = (Date.now() - t0) / 1000;
  console.log(`  done in ${baseSeconds.toFixed(0)} s`);

  // 3. The same under faults, worker in its own process.
  console.log(`run under faults (prefix ${chaos.prefix}) ...`);
  const workerEnv = { MYSQL_URL: db.toString(), PIPELINE_PREFIX: chaos.prefix, TEMPORAL_TASK_QUEUE: chaos.temporal.taskQueue, DUCKDB_PATH: `.data/chaos/${stamp}-run.duckdb`, LOG_LEVEL: 'WARN' };
  let worker: { child: ChildProcess; ready: Promise<void> } = spawnWorker(workerEnv);
  await worker.ready;
  const started = Date.now();
  const span = Math.max(20_000, baseSeconds * 1000 * 0.8);
  const moment = () => Math.round(3_000 + rng.float() * span);
  const faults: Fault[] = [
    {
      name: 'SIGKILL the worker',
      atMs: moment(),
      run: async () => {
        worker.child.kill('SIGKILL');
        await sleep(2_000);
        worker = spawnWorker(workerEnv);
        await worker.ready;
        return 'killed; a new worker polls';
      },
    },
    {
      name: 'restart Kafka',
      atMs: moment(),
      run: async () => {
        await stackDown(chaos, ['kafka']);
        await sleep(3_000);
        await stackUp(chaos, ['kafka']);
        return 'down 3 s, back up';
      },
    },
    {
      name: 'stop the S3 server for 30 s',
      atMs: moment(),
      run: async () => {
        await stackDown(chaos, ['s3']);
        await sleep(30_000);
        await stackUp(chaos, ['s3']);
        return 'down 30 s, back up';
      },
    },
    {
      name: 'restart MySQL',
      atMs: moment(),
      run: async () => {
        await stackDown(chaos, ['mysql']);
        await sleep(3_000);
        await stackUp(chaos, ['mysql']);
        return 'down 3 s, back up';
      },
    },
  ];
  let stage = 'emulation';
  const injected = faults.map(async (f, i) => {
    await sleep(f.atMs);
    const when = at();
    const what = await f.run().catch((e: Error) => `FAILED TO INJECT: ${e.message}`);
    console.log(`fault ${i + 1}/${faults.length}: ${f.name} at ${when} (during ${stage}): ${what}`);
  });
  let result: DailyPipelineResult | undefined;
  let error: Error | undefined;
  try {
    await runEmulate(chaos, { input: { prefix: chaos.prefix, sink: 'kafka', rate: 'max', selection: { mode: 'all' } }, wait: true }, () => {});
    stage = 'the daily pipeline';
    result = (await runPipeline(chaos, { input: { prefix: chaos.prefix, date, outputRoot: `${chaos.prefix}/` }, wait: true, out: path.join(out, 'run') }, () => {})).result;
  } catch (err) {
    error = err as Error;
  }
  await Promise.all(injected);
  worker.child.kill('SIGTERM');
  await stackUp(chaos);
  console.log(`  run under faults finished in ${((Date.now() - started) / 1000).toFixed(0)} s`);

  // 4. Checks.
  const checks: Array<[string, boolean, string]> = [];
  const check = (name: string, ok: boolean, detail = '') => checks.push([name, ok, detail]);
  check('the pipeline completed under faults', !!result && !error, error?.message ?? '');
  if (result) {
    check(`landed exactly ${3 * posts} records (none lost, none twice)`, result.landing.records === 3 * posts && result.landing.deadLetters === 0, `${result.landing.records} landed, ${result.landing.deadLetters} dead letters`);
    for (const t of CLEANED_TABLES) {
      const c = result.cleaning.tables[t.name];
      check(`${t.name}: ${posts} rows from ${posts} records, no duplicates`, c.rows === posts && c.read === posts && c.duplicates === 0, `${c.rows} rows from ${c.read} records, ${c.duplicates} duplicates`);
    }
    for (const name of [...CLEANED_TABLES.map((t) => t.name), ...ANALYTICS_OUTPUTS.map((o) => o.name)]) {
      const a = fs.readFileSync(path.join(out, 'base', `${name}.json`), 'utf8');
      const b = fs.readFileSync(path.join(out, 'run', `${name}.json`), 'utf8');
      check(`${name} equals the fault-free run's`, a === b, a === b ? '' : `${a.length} vs ${b.length} bytes`);
    }
  }
  const client = await connectClient(chaos);
  try {
    const desc = await client.workflow.getHandle(dailyWorkflowId(chaos.prefix, date)).describe();
    check('the daily run is Completed in Temporal', desc.status.name === 'COMPLETED', desc.status.name);
  } finally {
    await client.connection.close();
  }
  for (const [name, ok, detail] of checks) console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail && !ok ? `: ${detail}` : ''}`);
  const failed = checks.filter((c) => !c[1]).length;
  console.log(`${checks.length - failed} passed, ${failed} failed (base run ${baseRun.workflowId}; outputs in ${path.relative(PROJECT_ROOT, out)})`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(`chaos failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
