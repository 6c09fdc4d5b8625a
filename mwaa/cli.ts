/**
 * npm run mwaa -- plan|cutover|rollback --environment NAME --dag ID [options]
 *
 * Moves a DAG's schedule from Amazon MWAA to the Temporal Schedule of the daily pipeline, and back.
 *
 *   plan      reads the environment (GetEnvironment) and the DAG (InvokeRestApi, or the CLI
 *             token flow for Airflow < 2.4.3) and prints them with the Temporal Schedule that
 *             cutover would create. Changes nothing.
 *   cutover   1. creates the schedule PAUSED (an existing one with the same definition is reused;
 *                a different one is an error unless --update-schedule)
 *             2. checks no DAG run is in flight and the DAG's next run is not due within 2 minutes
 *             3. pauses the DAG (PATCH /dags/{id} is_paused=true)
 *             4. records the DAG's last scheduled run (its logical date L, fired at F)
 *             5. sets the schedule's start time to F + 1 s: the first action is the first time
 *                after F that Airflow would have fired (the run for the next logical date), so
 *                no date runs twice and none is skipped
 *             6. unpauses the schedule
 *             Each step is idempotent, so re-running cutover after a failure finishes the job.
 *   rollback  pauses the schedule, then unpauses the DAG (in that order: never both active).
 *
 * Options: --schedule-id ID (default daily-pipeline-<prefix>), --prefix P (default
 * PIPELINE_PREFIX), --yes (cutover/rollback without asking), --update-schedule,
 * --backfill-missed (cutover: also run the fire times that neither Airflow nor the schedule
 * covers, when the DAG was behind), and for Airflow < 2.4.3, whose CLI does not show them:
 * --schedule EXPR --catchup true|false [--max-active-runs N].
 */
import readline from 'node:readline/promises';
import type { Client } from '@temporalio/client';
import { mwaaAdapter, type MwaaAdapter, type MwaaDagView } from './adapter';
import type { MwaaEnvironment } from './api';
import type { Config } from '../config';
import { cutoverWindow, describeRetry, MwaaTranslationError, translateDag, type CutoverWindow, type ScheduleTranslation } from './translate';
import { formatDuration, nextFireTime } from '../common/cron';
import { connectClient } from '../workers/client';
import { dailyScheduleId, prefixProblem } from '../common/ids';
import { defineCommand, parseCommandLine, UsageError } from '../cli/args';
import { sharedOptions } from '../cli/options';
import {
  DAILY_WORKFLOW_TYPE,
  describeSchedule,
  ensureSchedule,
  formatSchedule,
  pauseSchedule,
  ScheduleConflictError,
  setScheduleWindow,
  unpauseSchedule,
  type EnsureScheduleOptions,
} from '../cli/schedule-ops';

const COMMANDS = ['plan', 'cutover', 'rollback'] as const;

/** `npm run mwaa`'s command line (cli/args.ts). */
export const MWAA_COMMAND = defineCommand({
  script: 'mwaa',
  args: COMMANDS.join('|'),
  maxArgs: 1,
  options: {
    environment: { value: 'NAME', help: 'the MWAA environment (default MWAA_ENVIRONMENT)', required: true },
    dag: { value: 'ID', help: 'the Airflow DAG id', required: true },
    'schedule-id': { value: 'ID', help: 'the Temporal Schedule (default daily-pipeline-<prefix>)' },
    ...sharedOptions('prefix'),
    yes: { help: 'cutover, rollback: do not ask' },
    'update-schedule': { help: 'cutover: replace an existing schedule with a different definition' },
    'backfill-missed': { help: 'cutover: also run the fire times neither Airflow nor the schedule covers, when the DAG was behind' },
    schedule: { value: 'EXPR', help: "Airflow < 2.4.3: the DAG's schedule_interval, from the DAG file" },
    catchup: { value: 'true|false', help: "Airflow < 2.4.3: the DAG's catchup, from the DAG file" },
    'max-active-runs': { value: 'N', help: "Airflow < 2.4.3: the DAG's max_active_runs, from the DAG file" },
  },
  about:
    "Moves a DAG's schedule from Amazon MWAA to the daily pipeline's Temporal Schedule, and back. plan reads the environment and the DAG and prints the schedule " +
    'cutover would create (changes nothing); cutover creates the schedule paused, pauses the DAG after its last scheduled run and starts the schedule at the next ' +
    'fire time (each step idempotent: re-run it after a failure); rollback pauses the schedule, then unpauses the DAG.',
});
export interface MwaaArgs {
  command: (typeof COMMANDS)[number];
  environment: string;
  dagId: string;
  scheduleId: string;
  prefix: string;
  yes: boolean;
  updateSchedule: boolean;
  backfillMissed: boolean;
  schedule?: string;
  catchup?: boolean;
  maxActiveRuns?: number;
}

export function parseMwaaArgs(argv: string[], config: Config): MwaaArgs {
  const { values: opts, positionals } = parseCommandLine(MWAA_COMMAND, argv);
  const command = positionals[0];
  if (!COMMANDS.includes(command as MwaaArgs['command'])) throw new UsageError(command ? `unknown command ${command}` : 'give a command: plan, cutover or rollback');
  const environment = opts.environment ?? config.mwaa.environment;
  if (!environment) throw new UsageError('--environment is required (or set MWAA_ENVIRONMENT)');
  if (!/^[a-zA-Z][0-9a-zA-Z_-]{0,79}$/.test(environment)) throw new UsageError(`--environment ${JSON.stringify(environment)} is not an MWAA environment name`);
  const dagId = opts.dag;
  if (!dagId) throw new UsageError('--dag is required');
  if (!/^[A-Za-z0-9_.-]{1,250}$/.test(dagId)) throw new UsageError(`--dag ${JSON.stringify(dagId)} is not a DAG id`);
  const prefix = opts.prefix ?? config.prefix;
  const prefixError = prefixProblem(prefix, '--prefix');
  if (prefixError) throw new UsageError(prefixError);
  const catchupText = opts.catchup;
  if (catchupText !== undefined && !/^(true|false)$/i.test(catchupText)) throw new UsageError('--catchup must be true or false');
  const mar = opts['max-active-runs'];
  if (mar !== undefined && !/^[1-9]\d*$/.test(mar)) throw new UsageError('--max-active-runs must be a positive integer');
  return {
    command: command as MwaaArgs['command'],
    environment,
    dagId,
    scheduleId: opts['schedule-id'] ?? dailyScheduleId(prefix),
    prefix,
    yes: Boolean(opts.yes),
    updateSchedule: Boolean(opts['update-schedule']),
    backfillMissed: Boolean(opts['backfill-missed']),
    schedule: opts.schedule,
    catchup: catchupText === undefined ? undefined : catchupText.toLowerCase() === 'true',
    maxActiveRuns: mar === undefined ? undefined : Number(mar),
  };
}

const iso = (d: Date | string | undefined) => (d === undefined ? '-' : new Date(d).toISOString().replace('.000Z', 'Z'));

export interface MwaaPlan {
  environment: MwaaEnvironment;
  dag: MwaaDagView;
  translation: ScheduleTranslation;
  window: CutoverWindow;
  schedule: EnsureScheduleOptions;
}

/** Reads the environment and the DAG, fills in what an old CLI cannot tell from the options, translates. */
async function readPlan(config: Config, mwaa: MwaaAdapter, args: MwaaArgs): Promise<MwaaPlan> {
  const environment = await mwaa.getEnvironment(args.environment);
  const dag = await mwaa.describeDag(args.environment, args.dagId);
  const facts = { ...dag.facts };
  const given: Array<[keyof typeof facts, unknown, string]> = [
    ['scheduleInterval', args.schedule, '--schedule'],
    ['catchup', args.catchup, '--catchup'],
    ['maxActiveRuns', args.maxActiveRuns, '--max-active-runs'],
  ];
  for (const [key, value, flag] of given) {
    if (value === undefined) continue;
    const known = facts[key];
    const knownText = known !== null && typeof known === 'object' ? (known as { value?: unknown }).value : known;
    if (known !== undefined && knownText !== value) {
      throw new UsageError(`${flag} ${JSON.stringify(value)} disagrees with what Airflow reports for DAG ${args.dagId} (${JSON.stringify(known)}); leave it out`);
    }
    (facts as Record<string, unknown>)[key] = value;
  }
  let translation: ScheduleTranslation;
  try {
    translation = translateDag(facts);
  } catch (err) {
    if (err instanceof MwaaTranslationError && dag.via === 'cli' && /did not report/.test(err.message)) {
      throw new UsageError(`${err.message}. Airflow ${environment.airflowVersion}'s CLI does not show a DAG's schedule_interval or catchup: give them from the DAG file with --schedule and --catchup`);
    }
    throw err;
  }
  // Given by hand (old CLI): they must agree with Airflow's own next run.
  if (dag.via === 'cli' && args.schedule !== undefined && dag.lastScheduledRun && dag.nextDagrun && !dag.isPaused) {
    const expected = nextFireTime(translation, new Date(dag.lastScheduledRun.logicalDate));
    if (expected && expected.getTime() !== new Date(dag.nextDagrun).getTime()) {
      throw new UsageError(`--schedule ${args.schedule} would make the run after ${iso(dag.lastScheduledRun.logicalDate)} ${iso(expected)}, but Airflow's next execution is ${iso(dag.nextDagrun)}: check the DAG file`);
    }
  }
  const window = cutoverWindow(translation, dag.lastScheduledRun, new Date());
  const schedule: EnsureScheduleOptions = {
    scheduleId: args.scheduleId,
    ...(translation.kind === 'interval' && translation.interval
      ? { interval: { every: translation.interval.everySeconds * 1000, offset: translation.interval.offsetSeconds * 1000 } }
      : { cron: translation.cron }),
    timezone: translation.timezone,
    endAt: translation.endAt,
    paused: true,
    workflowType: DAILY_WORKFLOW_TYPE,
    taskQueue: config.temporal.taskQueue,
    workflowIdPrefix: dailyScheduleId(args.prefix),
    args: [{ prefix: args.prefix }],
    overlap: translation.overlap,
    catchupWindow: translation.catchupWindowMs,
    note: `created by npm run mwaa -- cutover (MWAA ${args.environment}/${args.dagId}); paused until the DAG is paused`,
    update: args.updateSchedule,
  };
  return { environment, dag, translation, window, schedule };
}

function printPlan(p: MwaaPlan, mwaa: MwaaAdapter, config: Config, log: (s: string) => void): void {
  const { environment: e, dag, translation: t, window: w, schedule: s } = p;
  log(`MWAA environment ${e.name} (${mwaa.endpoint}): Airflow ${e.airflowVersion ?? '?'}, status ${e.status ?? '?'}, webserver ${e.webserverUrl ?? '?'}`);
  log(`  Airflow reached through ${e.restApi ? 'InvokeRestApi (Airflow REST API)' : 'the CLI token flow (Airflow < 2.4.3 has no InvokeRestApi)'}`);
  const f = dag.facts;
  log(`DAG ${dag.dagId}: ${dag.isPaused ? 'PAUSED' : 'active'}`);
  log(`  schedule ${t.expression} (${t.timezone}), catchup ${f.catchup ?? '?'}, max_active_runs ${f.maxActiveRuns ?? '?'}, start_date ${f.startDate ?? '-'}${f.endDate ? `, end_date ${f.endDate}` : ''}`);
  const last = dag.lastScheduledRun;
  log(`  last scheduled run: ${last ? `${last.runId} (logical date ${iso(last.logicalDate)}, ${last.state})` : 'none'}`);
  log(`  next run: ${dag.nextDagrun ? `logical date ${iso(dag.nextDagrun)}${dag.nextDagrunCreateAfter ? `, due ${iso(dag.nextDagrunCreateAfter)}` : ''}` : '-'}`);
  const inFlight = dag.recentRuns.filter((r) => ['queued', 'running'].includes(r.state));
  if (inFlight.length) log(`  in flight: ${inFlight.map((r) => `${r.runId} (${r.state})`).join(', ')}`);
  if (t.kind !== 'cron' && t.kind !== 'interval') {
    log(`No Temporal Schedule: ${t.notes[t.notes.length - (t.notes.length > 1 ? 2 : 1)] ?? ''}`);
    return;
  }
  log(`Temporal Schedule that cutover creates (namespace ${config.temporal.namespace}):`);
  log(`  id ${s.scheduleId}`);
  log(`  spec: ${t.kind === 'cron' ? `cron ${t.cron.map((c) => JSON.stringify(c)).join(' + ')}` : `every ${formatDuration(t.interval!.everySeconds * 1000)} (offset ${t.interval!.offsetSeconds}s)`} ${t.timezone}${t.endAt ? `, until ${iso(t.endAt)}` : ''}`);
  log(`  start at ${iso(w.startAt)} (${w.basis === 'last-run' ? "one second after Airflow's last run fired" : w.basis === 'start-date' ? 'after start_date' : 'now'}): first action ${iso(w.firstFire)} = the run for logical date ${iso(w.firstLogicalDate)}`);
  log(`  action: start ${s.workflowType} on task queue ${s.taskQueue}, workflow id ${s.workflowIdPrefix}-<scheduled time>, args ${JSON.stringify(s.args)}`);
  log(`  policies: overlap ${t.overlap}, catch-up window ${formatDuration(t.catchupWindowMs)}`);
  if (t.retry) log(`  activity retry policy (tasks' retries/retry_delay): ${describeRetry(t.retry)}`);
  for (const [task, r] of Object.entries(t.retryByTask ?? {})) log(`  retry policy for ${task}: ${describeRetry(r)}`);
  for (const n of t.notes) log(`  note: ${n}`);
  if (w.missed.length) log(`  missed: ${w.missed.length} fire time(s) since Airflow's last run already passed (${iso(w.missed[0])} .. ${iso(w.missed[w.missed.length - 1])}); cutover reports them, --backfill-missed runs them`);
}

async function confirm(args: MwaaArgs, what: string): Promise<void> {
  if (args.yes) return;
  if (!process.stdin.isTTY) throw new UsageError(`${args.command} ${what}; pass --yes to confirm`);
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = await rl.question(`${args.command} ${what}. Proceed? [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) throw new UsageError('not confirmed; nothing changed');
  } finally {
    rl.close();
  }
}

export interface MwaaResult {
  plan?: MwaaPlan;
  /** One line per step taken (for tests and the log). */
  steps: string[];
}

export interface MwaaDeps {
  /** A Temporal client to use (tests); default: connectClient(config). */
  client?: Client;
  /** An adapter to use (tests); default: mwaaAdapter(config). */
  mwaa?: MwaaAdapter;
}

export async function runMwaa(config: Config, args: MwaaArgs, log: (s: string) => void = console.log, deps: MwaaDeps = {}): Promise<MwaaResult> {
  const mwaa = deps.mwaa ?? mwaaAdapter(config);
  let client = deps.client;
  const temporal = async () => (client ??= await connectClient(config));
  const steps: string[] = [];
  const step = (n: number, total: number, text: string) => {
    steps.push(text);
    log(`step ${n}/${total}: ${text}`);
  };
  try {
    if (args.command === 'plan') {
      const plan = await readPlan(config, mwaa, args);
      printPlan(plan, mwaa, config, log);
      try {
        const existing = await describeSchedule(await temporal(), args.scheduleId);
        log(existing ? ['Existing schedule:', ...formatSchedule(existing)].join('\n') : `No schedule ${args.scheduleId} exists yet.`);
      } catch (err) {
        log(`(could not read the Temporal schedule: ${(err as Error).message})`);
      }
      log('No changes made (plan).');
      return { plan, steps };
    }

    if (args.command === 'rollback') {
      await confirm(args, `pauses Temporal schedule ${args.scheduleId} and unpauses DAG ${args.dagId} in MWAA ${args.environment}`);
      const c = await temporal();
      const existing = await describeSchedule(c, args.scheduleId);
      if (!existing) step(1, 2, `pause schedule ${args.scheduleId}: it does not exist`);
      else {
        const changed = await pauseSchedule(c, args.scheduleId, `paused by npm run mwaa -- rollback (DAG ${args.dagId} resumes in MWAA ${args.environment})`);
        step(1, 2, `pause schedule ${args.scheduleId}: ${changed ? 'paused' : 'already paused'}`);
      }
      const res = await mwaa.setDagPaused(args.environment, args.dagId, false);
      step(2, 2, `unpause DAG ${args.dagId}: ${res.changed ? 'unpaused' : 'already active'}`);
      const ran = existing?.info.recentActions ?? [];
      if (ran.length) {
        log(`note: the schedule ran ${ran.length} recent action(s), last scheduled at ${iso(ran[ran.length - 1]!.scheduledAt)}; Airflow does not know about them: with catchup=True it would run those dates again (mark them success in Airflow first).`);
      }
      log(`Rolled back: DAG ${args.dagId} active in MWAA ${args.environment}; schedule ${args.scheduleId} paused.`);
      return { steps };
    }

    // cutover
    const plan = await readPlan(config, mwaa, args);
    printPlan(plan, mwaa, config, log);
    const { translation: t, dag } = plan;
    if (t.kind !== 'cron' && t.kind !== 'interval') {
      throw new UsageError(`DAG ${args.dagId} has schedule ${t.expression}: there is no recurring schedule to cut over (trigger it on demand instead)`);
    }
    await confirm(args, `creates Temporal schedule ${args.scheduleId}, pauses DAG ${args.dagId} in MWAA ${args.environment} and starts the schedule after the DAG's last run`);
    const total = 6;
    const c = await temporal();

    const before = await describeSchedule(c, args.scheduleId);
    const ensured = await ensureSchedule(c, plan.schedule).catch((err: unknown) => {
      if (err instanceof ScheduleConflictError) throw new Error(`${err.message} (pass --update-schedule to rewrite it from the DAG)`, { cause: err });
      throw err;
    });
    if (before && !before.state.paused && !dag.isPaused) {
      // Both active (someone unpaused the schedule by hand): stop Temporal first.
      await pauseSchedule(c, args.scheduleId, 'paused by npm run mwaa -- cutover: the DAG was still active');
      step(1, total, `schedule ${args.scheduleId}: ${ensured.outcome}; it was running while the DAG was active, paused it`);
    } else {
      step(1, total, `schedule ${args.scheduleId}: ${ensured.outcome}${ensured.outcome === 'created' ? ' (paused)' : `, ${ensured.description.state.paused ? 'paused' : 'running'}`}`);
    }

    const inFlight = (v: MwaaDagView) => v.recentRuns.filter((r) => r.state === 'queued' || r.state === 'running');
    if (!dag.isPaused) {
      const busy = inFlight(dag);
      if (busy.length) {
        throw new Error(`DAG run ${busy.map((r) => `${r.runId} (${r.state})`).join(', ')} is in flight; pausing now would stall it. Wait until it ends, then run cutover again (the schedule stays paused)`);
      }
      const due = dag.nextDagrunCreateAfter ? new Date(dag.nextDagrunCreateAfter).getTime() - Date.now() : Number.POSITIVE_INFINITY;
      if (due > -60_000 && due < 120_000) {
        throw new Error(`the DAG's next run is due at ${iso(dag.nextDagrunCreateAfter)}; run cutover after it has started and finished (the schedule stays paused)`);
      }
      step(2, total, 'no DAG run in flight, next run not due within 2 minutes');
    } else step(2, total, 'DAG already paused: nothing can start in Airflow');

    const paused = await mwaa.setDagPaused(args.environment, args.dagId, true);
    step(3, total, `pause DAG ${args.dagId}: ${paused.changed ? 'paused' : 'already paused'}`);

    // After the pause the last run cannot change any more. A run in flight now would stall in
    // the paused DAG: one that started since the check is handed back to Airflow.
    const after = await mwaa.describeDag(args.environment, args.dagId);
    const stalled = inFlight(after);
    if (stalled.length) {
      const list = stalled.map((r) => `${r.runId} (${r.state})`).join(', ');
      if (paused.changed) {
        await mwaa.setDagPaused(args.environment, args.dagId, false);
        throw new Error(`DAG run ${list} started during the cutover, so the DAG was unpaused again to let it finish; run cutover again when it has ended (the schedule stays paused)`);
      }
      throw new Error(`DAG run ${list} is in flight in the paused DAG and will not progress; let it finish (unpause) or mark it failed in Airflow, then run cutover again (the schedule stays paused)`);
    }
    const window = cutoverWindow(t, after.lastScheduledRun, new Date());
    const last = after.lastScheduledRun;
    step(4, total, last ? `DAG's last scheduled run: ${last.runId}, logical date ${iso(last.logicalDate)}, ${last.state}` : `DAG has no scheduled run: Temporal starts ${window.basis === 'start-date' ? 'after start_date' : 'with the next tick'}`);
    if (last?.state === 'failed') log(`  warning: that run failed in Airflow; the schedule does not re-run it (backfill it: npm run schedule -- backfill)`);

    const note = `cut over from MWAA ${args.environment}/${args.dagId}: Airflow's last run ${last ? `${last.runId} (logical date ${iso(last.logicalDate)})` : 'none'}; first Temporal action ${iso(window.firstFire)}`;
    const moved = await setScheduleWindow(c, args.scheduleId, { startAt: window.startAt, note });
    step(5, total, `schedule starts at ${iso(window.startAt)}: first action ${iso(window.firstFire)} (logical date ${iso(window.firstLogicalDate)})${moved ? '' : ' (already set)'}`);

    const unpaused = await unpauseSchedule(c, args.scheduleId, note);
    step(6, total, `unpause schedule ${args.scheduleId}: ${unpaused ? 'unpaused' : 'already running'}`);

    // Times the schedule itself already covered (a cutover re-run later) are not missed.
    const lastTaken = Math.max(0, ...(before?.info.recentActions ?? []).map((a) => a.scheduledAt.getTime()));
    const missed = before && !before.state.paused ? [] : window.missed.filter((d) => d.getTime() > lastTaken);
    if (missed.length) {
      const first = missed[0]!;
      const lastMissed = missed[missed.length - 1]!;
      if (args.backfillMissed) {
        await c.schedule.getHandle(args.scheduleId).backfill({ start: new Date(first.getTime() - 1000), end: lastMissed, overlap: 'BUFFER_ALL' });
        log(`backfilled ${missed.length} missed fire time(s) ${iso(first)} .. ${iso(lastMissed)} (in order, BUFFER_ALL)`);
      } else {
        log(
          `warning: ${missed.length} fire time(s) passed after Airflow's last run and before the cutover (${iso(first)} .. ${iso(lastMissed)}): neither Airflow nor the schedule runs them.\n` +
            `  run them with --backfill-missed, or: temporal schedule backfill --schedule-id ${args.scheduleId} --start-time ${iso(new Date(first.getTime() - 1000))} --end-time ${iso(lastMissed)} --overlap-policy BufferAll`,
        );
      }
    }
    const final = await describeSchedule(c, args.scheduleId);
    if (final) for (const line of formatSchedule(final)) log(line);
    log(`Cut over: DAG ${args.dagId} paused in MWAA ${args.environment}; schedule ${args.scheduleId} running (${config.temporal.uiUrl}/namespaces/${encodeURIComponent(config.temporal.namespace)}/schedules/${encodeURIComponent(args.scheduleId)}).`);
    return { plan: { ...plan, window }, steps };
  } finally {
    if (!deps.mwaa) mwaa.close();
    if (!deps.client && client) await client.connection.close();
  }
}
