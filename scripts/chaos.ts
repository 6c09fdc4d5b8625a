/**
 * npm run chaos -- [--posts 200000] [--seed N]
 *
 * The whole pipeline under faults, checked against a fault-free run of the same data. The seed
 * (drawn at random unless given; printed first and last) fixes the emulation's random plan and
 * the fault plan, so `--seed N` replays a run:
 * 1. seeds --posts synthetic posts into a database of its own;
 * 2. fault-free: emulation (random selection from the seed, --posts posts, two lanes, Kafka)
 *    then dailyPipelineWorkflow (landing, cleaning + analytics) on prefix `chaos-<stamp>-base`,
 *    with a worker in a process of its own; each phase's duration is read from Temporal;
 * 3. the same on prefix `chaos-<stamp>-run` under faults: per phase (emulation, landing,
 *    cleaning: the emulation workflow and the daily pipeline's two child workflows) two faults
 *    that fit it (SIGKILL the worker and start a new one, restart Kafka, stop the S3 server for
 *    30 s, restart MySQL), each at a moment drawn inside the phase's fault-free duration and
 *    measured from the phase's real start as Temporal reports it. One line per fault says
 *    which phase it was for and whether that phase was still running when it took effect
 *    (read from the workflow's status afterwards): a fault after its phase ended is a miss;
 * 4. checks: every post number exactly once per topic with its planned key and the fault-free
 *    run's value, the landed objects holding exactly the committed records, the cleaned
 *    tables' counts, the twelve outputs equal to the fault-free run's, and faults having hit
 *    every phase; prints `N passed, N failed` and the rerun command (exit 1 if any failed).
 */
import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { createKafka } from '../adapters/kafka';
import { ANALYTICS_OUTPUTS, CLEANED_TABLES } from '../common/analytics';
import { loadConfig, PROJECT_ROOT, readEnv, type Config } from '../config';
import { todayUtc, type DailyPipelineResult } from '../common/daily';
import { cleaningWorkflowId, dailyWorkflowId, landingWorkflowId } from '../common/ids';
import type { EmulationInput, EmulationProgress } from '../common/emulation';
import { dailySearchAttributes, emulationSearchAttributes } from '../common/search-attributes';
import { connectClient } from '../workers/client';
import { runCommand, withRootCause } from '../cli/command';
import { injectFaults, WorkerSlot, type FaultOutcome } from '../test/chaos/faults';
import { phaseSpan, type PhaseRef } from '../test/chaos/phases';
import { CHAOS_COMMAND, describePlanned, FAULT_NAMES, MAX_SEED, parseChaosArgs, PHASES, planFaults, rerunCommand, type Phase } from '../test/chaos/plan';
import { exactlyOnceProblems, landedProblems, plannedPosts, readCommitted, readLanded, TOPICS, type PlannedPosts, type TopicRecords } from '../test/chaos/verify';
import { seed } from './db-seed';
import { newEmulationWorkflowId } from './emulate';
import { writeOutputs } from '../cli/outputs';
import { stackUp } from '../stack';

const LANES = 2;

export const COMMAND = CHAOS_COMMAND;

interface Flow {
  emulationId: string;
  dailyId: string;
  emulation?: EmulationProgress;
  daily?: DailyPipelineResult;
  error?: Error;
}

function withDeadline<T>(p: Promise<T>, deadline: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const budget = Math.max(0, deadline - Date.now());
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${(budget / 1000).toFixed(0)} s (the run's deadline)`)), budget);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Emulation, then the daily pipeline, started directly (no in-process worker: the run's worker is the separate process). */
async function runFlow(client: Client, config: Config, input: EmulationInput, emulationId: string, date: string, deadline: number): Promise<Flow> {
  const prefix = config.prefix;
  const flow: Flow = { emulationId, dailyId: dailyWorkflowId(prefix, date) };
  const taskQueue = config.temporal.taskQueue;
  try {
    const emu = await client.workflow.start('emulationWorkflow', {
      taskQueue,
      workflowId: emulationId,
      args: [input],
      typedSearchAttributes: emulationSearchAttributes(prefix, input.sink),
      staticSummary: `chaos: emulate ${input.stop?.posts} random posts -> kafka (${prefix}.*), ${input.concurrency} lanes`,
    });
    flow.emulation = (await withDeadline(emu.result(), deadline, emulationId)) as EmulationProgress;
    const daily = await client.workflow.start('dailyPipelineWorkflow', {
      taskQueue,
      workflowId: flow.dailyId,
      args: [{ prefix, date, outputRoot: `${prefix}/` }],
      typedSearchAttributes: dailySearchAttributes(prefix, date, 'starting'),
      memo: { date, trigger: 'chaos' },
      staticSummary: `chaos: daily pipeline ${prefix} ${date}`,
    });
    flow.daily = (await withDeadline(daily.result(), deadline, flow.dailyId)) as DailyPipelineResult;
  } catch (err) {
    flow.error = err as Error;
    // Leave nothing running on the shared server (the daily run's children close with it).
    for (const id of [emulationId, flow.dailyId]) await client.workflow.getHandle(id).terminate('chaos run gave up on it').catch(() => undefined);
  }
  return flow;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Set once the seed is known, so a crash still says how to replay it. */
let replay = '';

async function main(argv: string[]): Promise<number> {
  const args = parseChaosArgs(argv, () => randomInt(1, MAX_SEED));
  const { posts } = args;
  replay = `seed ${args.seed}, rerun with: ${rerunCommand(args)}`;
  const rerun = rerunCommand(args);
  const stamp = Date.now().toString(36);
  console.log(`chaos ${stamp}: seed ${args.seed}${args.seedGiven ? '' : ' (drawn at random)'}, ${posts.toLocaleString('en')} posts; replay with: ${rerun}`);
  const plan = planFaults(args.seed);
  const base = readEnv();
  const db = new URL(loadConfig(base).mysql.url);
  db.pathname = `/pinterest_test_chaos_${stamp}`;
  const cfg = (suffix: string): Config =>
    loadConfig({ ...base, MYSQL_URL: db.toString(), PIPELINE_PREFIX: `chaos-${stamp}-${suffix}`, TEMPORAL_TASK_QUEUE: `chaos-${stamp}-${suffix}`, DUCKDB_PATH: `.data/chaos/${stamp}-${suffix}.duckdb` });
  const clean = cfg('base');
  const chaos = cfg('run');
  const workerEnv = (c: Config, suffix: string) => ({ MYSQL_URL: db.toString(), PIPELINE_PREFIX: c.prefix, TEMPORAL_TASK_QUEUE: c.temporal.taskQueue, DUCKDB_PATH: `.data/chaos/${stamp}-${suffix}.duckdb`, LOG_LEVEL: 'WARN' });
  const out = path.join(PROJECT_ROOT, '.data', 'chaos', stamp);
  const emulationInput = (prefix: string): EmulationInput => ({ prefix, sink: 'kafka', rate: 'max', selection: { mode: 'random', seed: plan.selectionSeed }, stop: { posts }, concurrency: LANES });
  console.log(`plan: emulation draws ${posts.toLocaleString('en')} posts at random (selection seed ${plan.selectionSeed}, with repeats) on ${LANES} lanes; ${plan.faults.length} faults:`);
  for (const f of plan.faults) console.log(`  ${f.n}. ${describePlanned(f)}`);

  const t0 = Date.now();
  await stackUp(clean);
  console.log(`seeding ${posts.toLocaleString('en')} posts into ${db.pathname.slice(1)} ...`);
  await seed(clean, { rows: posts, seed: 100, replace: true });
  const date = todayUtc(Date.now());
  const expected: PlannedPosts = await plannedPosts(clean, emulationInput(clean.prefix));
  console.log(`  the plan posts ${expected.sendable.length.toLocaleString('en')} of ${expected.planned.toLocaleString('en')} posts (${expected.distinctKeys.toLocaleString('en')} distinct keys)`);
  const client = await connectClient(clean);
  try {
    // 2. Fault-free run, worker in its own process like the run under faults.
    console.log(`fault-free run (prefix ${clean.prefix}) ...`);
    const baseWorker = new WorkerSlot(workerEnv(clean, 'base'));
    await baseWorker.ready();
    const baseStart = Date.now();
    const baseFlow = await runFlow(client, clean, emulationInput(clean.prefix), newEmulationWorkflowId(clean.prefix), date, Date.now() + 30 * 60_000);
    await baseWorker.stop();
    if (baseFlow.error || !baseFlow.daily || !baseFlow.emulation) throw new Error(`the fault-free run failed: ${baseFlow.error?.message ?? 'no result'}\n${baseWorker.output().slice(-3000)}`);
    const baseMs = Date.now() - baseStart;
    const spans = {
      emulation: await phaseSpan(client, baseFlow.emulationId, baseFlow.emulation.startedAt),
      landing: await phaseSpan(client, landingWorkflowId(clean.prefix)),
      cleaning: await phaseSpan(client, cleaningWorkflowId(clean.prefix)),
    };
    const expectedMs = Object.fromEntries(PHASES.map((p) => [p, spans[p].endMs - spans[p].startMs])) as Record<Phase, number>;
    await writeOutputs(clean, baseFlow.daily.cleaning, path.join(out, 'base'), { workflowId: baseFlow.dailyId, date });
    console.log(`  done in ${seconds(baseMs)}: ${PHASES.map((p) => `${p} ${seconds(expectedMs[p])}`).join(', ')}`);
    console.log('faults, timed from the fault-free phase durations:');
    for (const f of plan.faults) console.log(`  ${f.n}. ${describePlanned(f, expectedMs[f.phase])}`);

    // 3. The same under faults.
    console.log(`run under faults (prefix ${chaos.prefix}) ...`);
    const worker = new WorkerSlot(workerEnv(chaos, 'run'));
    await worker.ready();
    const emulationId = newEmulationWorkflowId(chaos.prefix);
    const dailyId = dailyWorkflowId(chaos.prefix, date);
    const refs: Record<Phase, PhaseRef> = {
      emulation: { phase: 'emulation', workflowId: emulationId },
      landing: { phase: 'landing', workflowId: landingWorkflowId(chaos.prefix), parentId: dailyId },
      cleaning: { phase: 'cleaning', workflowId: cleaningWorkflowId(chaos.prefix), parentId: dailyId },
    };
    const stop = new AbortController();
    const injected = injectFaults({ client, target: { config: chaos, worker }, faults: plan.faults, refs, expectedMs, signal: stop.signal, print: (l) => console.log(l) });
    const started = Date.now();
    const flow = await runFlow(client, chaos, emulationInput(chaos.prefix), emulationId, date, Date.now() + Math.max(15 * 60_000, 10 * baseMs));
    stop.abort();
    const outcomes: FaultOutcome[] = await injected;
    await worker.stop();
    await stackUp(chaos);
    const runSpans = await Promise.all(PHASES.map((p) => phaseSpan(client, refs[p].workflowId, p === 'emulation' ? flow.emulation?.startedAt : undefined).catch(() => null)));
    console.log(
      `  run under faults finished in ${seconds(Date.now() - started)}${flow.error ? ` with an error: ${flow.error.message}` : ''}: ${PHASES.map((p, i) => `${p} ${runSpans[i] ? `${seconds(runSpans[i]!.endMs - runSpans[i]!.startMs)} (${runSpans[i]!.status})` : 'never started'}`).join(', ')}`,
    );
    if (flow.daily) await writeOutputs(chaos, flow.daily.cleaning, path.join(out, 'run'), { workflowId: flow.dailyId, date });

    // 4. Checks: always the same list, so the count is the same whether a run passes or not.
    const checks: Array<[string, boolean, string]> = [];
    const check = (name: string, ok: boolean, detail = '') => checks.push([name, ok, detail]);
    const S = expected.sendable.length;
    const D = expected.distinctKeys;
    const kafka = createKafka(chaos);
    const baseRecords = await readCommitted(kafka, clean.prefix, baseFlow.emulationId, S);
    const runRecords: Record<string, TopicRecords> | undefined = flow.emulation ? await readCommitted(kafka, chaos.prefix, emulationId, S) : undefined;
    const baseProblems = TOPICS.flatMap((t) => exactlyOnceProblems(baseRecords[t], expected).map((p) => `${t}: ${p}`));
    if (baseFlow.emulation.sent !== S) baseProblems.push(`sent ${baseFlow.emulation.sent}, planned ${S}`);
    if (baseFlow.daily.landing.records !== 3 * S) baseProblems.push(`landed ${baseFlow.daily.landing.records}`);
    check(`the fault-free reference: ${S} posts once per topic, ${3 * S} records landed`, baseProblems.length === 0, baseProblems.join('; '));

    const e = flow.emulation;
    check(
      `emulation under faults completed: ${posts} posts planned, ${S} sent on ${LANES} lanes`,
      !!e && e.planned === posts && e.sent === S && e.skipped === posts - S,
      e ? `${e.planned} planned, ${e.sent} sent, ${e.skipped} skipped` : `not completed: ${flow.error?.message ?? ''}`,
    );
    for (const t of TOPICS) {
      const problems = runRecords ? exactlyOnceProblems(runRecords[t]!, expected, baseRecords[t]) : ['not read: the emulation did not complete'];
      check(`${chaos.prefix}.${t}: each of the ${S} post numbers exactly once, key as planned, value as in the fault-free run`, problems.length === 0, problems.join('; '));
    }
    const r = flow.daily;
    check('the daily pipeline completed under faults', !!r && !flow.error, flow.error?.message ?? '');
    check(`landed exactly ${3 * S} records (none lost, none twice), no dead letters`, !!r && r.landing.records === 3 * S && r.landing.deadLetters === 0, r ? `${r.landing.records} landed, ${r.landing.deadLetters} dead letters` : 'no result');
    const landed = r ? await readLanded(chaos, chaos.prefix) : undefined;
    for (const t of TOPICS) {
      const problems = landed && runRecords ? landedProblems(landed[t], runRecords[t]!) : ['not read: the pipeline did not complete'];
      check(`${chaos.prefix}.${t}: the landed objects hold exactly the committed records, per partition`, problems.length === 0, problems.join('; '));
    }
    for (const t of CLEANED_TABLES) {
      const c = r?.cleaning.tables[t.name];
      check(
        `${t.name}: ${D} rows from ${S} records (${S - D} repeated keys collapsed), none left out`,
        !!c && c.rows === D && c.read === S && c.duplicates === S - D && Object.keys(c.leftOut).length === 0,
        c ? `${c.rows} rows from ${c.read} records, ${c.duplicates} duplicates, left out ${JSON.stringify(c.leftOut)}` : 'no result',
      );
    }
    for (const name of [...CLEANED_TABLES.map((t) => t.name), ...ANALYTICS_OUTPUTS.map((o) => o.name)]) {
      const a = fs.readFileSync(path.join(out, 'base', `${name}.json`), 'utf8');
      const file = path.join(out, 'run', `${name}.json`);
      const b = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
      check(`${name} equals the fault-free run's`, a === b, b === undefined ? 'not written' : `${a.length} vs ${b.length} bytes`);
    }
    const status = await client.workflow.getHandle(dailyId).describe().then((d) => d.status.name, (err: Error) => err.message);
    check('the daily run is Completed in Temporal', status === 'COMPLETED', status);
    for (const p of PHASES) {
      const mine = outcomes.filter((o) => o.fault.phase === p);
      const hits = mine.filter((o) => o.hit);
      check(`faults hit ${p} while it ran (${hits.map((o) => FAULT_NAMES[o.fault.kind]).join(', ') || 'none'})`, hits.length > 0, `${hits.length} of ${mine.length}`);
    }

    for (const [name, ok, detail] of checks) console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail && !ok ? `: ${detail}` : ''}`);
    const failed = checks.filter((c) => !c[1]).length;
    if (failed) console.log(`worker output (tail):\n${worker.output().slice(-3000)}`);
    const hits = outcomes.filter((o) => o.hit);
    console.log(`base run ${baseFlow.dailyId}, run ${dailyId}; outputs in ${path.relative(PROJECT_ROOT, out)}; ${seconds(Date.now() - t0)} in all`);
    console.log(
      `${checks.length - failed} passed, ${failed} failed; faults: ${hits.length} of ${outcomes.length} hit a running phase (${PHASES.map((p) => `${p} ${hits.filter((o) => o.fault.phase === p).length}/${outcomes.filter((o) => o.fault.phase === p).length}`).join(', ')}); seed ${args.seed}, rerun with: ${rerun}`,
    );
    return failed ? 1 : 0;
  } finally {
    await client.connection.close();
  }
}

if (require.main === module) {
  runCommand(COMMAND, (argv) =>
    main(argv).catch((e: unknown) => {
      throw replay ? new Error(`${withRootCause(e)}\n${replay}`) : e;
    }),
  );
}
