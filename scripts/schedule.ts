/**
 * npm run schedule -- create|update|describe|pause|unpause|trigger|backfill|delete [options]
 *
 * Manages the Temporal Schedule that runs dailyPipelineWorkflow (default id
 * `daily-pipeline-<prefix>`, cron `0 0 * * *` UTC). A run scheduled at 00:00 on day D+1
 * processes day D (Airflow's logical date).
 *
 *   create   [--cron C] [--overlap P] [--catchup-window D] [--paused]   idempotent
 *   update   [--cron C] [--overlap P] [--catchup-window D]
 *   describe                                   spec, state, next runs, recent runs
 *   pause | unpause [--note TEXT]
 *   trigger                                    one run now (overlap policy applies)
 *   backfill --from YYYY-MM-DD --to YYYY-MM-DD one run per date, in order; today's is partial
 *   delete
 * Common: [--schedule-id ID] [--prefix P]; create also [--output-root KEYS/]
 * Legacy stage (create, update): [--legacy-dag ENV/DAG [--legacy-dag-conf JSON]] makes every
 * scheduled run also run that MWAA DAG between landing and cleaning; update --no-legacy-dag
 * removes it (update without either keeps what the schedule has).
 * Deadline (create, update): [--deadline D] (e.g. 6h) makes every scheduled run raise a late
 * alert when it is not done D after the end of its date; update --no-deadline removes it.
 *
 * Overlap policies (what happens when a run is due while the previous one still runs):
 * SKIP, BUFFER_ONE (default: the next waits, later ones are dropped), BUFFER_ALL, CANCEL_OTHER,
 * TERMINATE_OTHER, ALLOW_ALL (never useful here: runs of one prefix exclude each other).
 * Catch-up window (default 1 day): after an outage of the server, missed runs within the
 * window still run; older ones are skipped (like Airflow's catchup=False, which runs only the
 * latest missed interval).
 */
import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleDescription } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import type { Config } from '../config';
import { deadlineProblems } from '../common/alerts';
import { backfillWindow, dateProblems, todayUtc, type DailyPipelineInput, type LegacyDagInput } from '../common/daily';
import { dailyScheduleId } from '../common/ids';
import { cronProblems } from '../common/cron';
import { connectClient } from '../workers/client';
import { DAILY_WORKFLOW_TYPE, DEFINITION_MEMO_KEY, ensureSchedule, ScheduleConflictError } from '../cli/schedule-ops';
import { defineCommand, parseCommandLine, UsageError } from '../cli/args';
import { runCli } from '../cli/command';
import { LEGACY_DAG_OPTIONS, legacyDagOption } from '../cli/legacy-dag';
import { sharedOptions } from '../cli/options';

export const DEFAULT_CRON = '0 0 * * *';
export const DEFAULT_OVERLAP: keyof typeof ScheduleOverlapPolicy = 'BUFFER_ONE';
export const DEFAULT_CATCHUP = '1 day';
const OVERLAPS = ['SKIP', 'BUFFER_ONE', 'BUFFER_ALL', 'CANCEL_OTHER', 'TERMINATE_OTHER', 'ALLOW_ALL'] as const;
type Overlap = (typeof OVERLAPS)[number];
const COMMANDS = ['create', 'update', 'describe', 'pause', 'unpause', 'trigger', 'backfill', 'delete'] as const;
type Command = (typeof COMMANDS)[number];

export interface ScheduleArgs {
  command: Command;
  scheduleId: string;
  prefix: string;
  cron?: string;
  overlap?: Overlap;
  catchupWindow?: string;
  paused: boolean;
  note?: string;
  from?: string;
  to?: string;
  /** Key prefix of the outputs (default: the bucket root). */
  outputRoot?: string;
  /** The scheduled runs' legacy stage; null: remove it (update); undefined: none (create) / unchanged (update). */
  legacyDag?: LegacyDagInput | null;
  /** The scheduled runs' deadline (`6h`); null: remove it (update); undefined: none (create) / unchanged (update). */
  deadline?: string | null;
}

const DURATION = /^(\d+)\s*(s|sec|seconds?|m|min|minutes?|h|hours?|d|days?)$/;

export const COMMAND = defineCommand({
  script: 'schedule',
  args: COMMANDS.join('|'),
  maxArgs: 1,
  options: {
    cron: { value: 'C', help: `create, update: five-field cron, UTC (default "${DEFAULT_CRON}")` },
    overlap: { value: 'P', help: `create, update: when a run is due while one runs: ${OVERLAPS.join(', ')} (default ${DEFAULT_OVERLAP})` },
    'catchup-window': { value: 'D', help: `create, update: missed runs within this long after an outage still run (default "${DEFAULT_CATCHUP}")` },
    paused: { help: 'create: create it paused' },
    note: { value: 'TEXT', help: 'pause, unpause: the note shown with the state' },
    from: { value: 'YYYY-MM-DD', help: 'backfill: the first date' },
    to: { value: 'YYYY-MM-DD', help: 'backfill: the last date' },
    'schedule-id': { value: 'ID', help: 'the schedule (default daily-pipeline-<prefix>)' },
    ...sharedOptions('prefix', 'output-root', 'deadline'),
    ...LEGACY_DAG_OPTIONS,
    'no-legacy-dag': { help: 'update: remove the legacy stage (update without either keeps it)' },
    'no-deadline': { help: 'update: remove the deadline (update without either keeps it)' },
  },
  about:
    `Manages the Temporal Schedule that runs dailyPipelineWorkflow (default id daily-pipeline-<prefix>, cron "${DEFAULT_CRON}" UTC). ` +
    'A run scheduled at 00:00 on day D+1 processes day D. create is idempotent; describe shows spec, state, next and recent runs; ' +
    'trigger runs once now (the overlap policy applies); backfill runs one run per date of --from .. --to, in order.',
});

export function parseScheduleArgs(argv: string[], config: Config, nowMs = Date.now()): ScheduleArgs {
  const { values: opts, positionals } = parseCommandLine(COMMAND, argv);
  const command = positionals[0];
  if (!command || !COMMANDS.includes(command as Command)) throw new UsageError(`expected one of ${COMMANDS.join('|')}${command ? `, got ${JSON.stringify(command)}` : ''}`);
  const legacyDag = legacyDagOption(opts);
  if ((legacyDag || opts['no-legacy-dag']) && command !== 'create' && command !== 'update') throw new UsageError(`--legacy-dag and --no-legacy-dag apply to create and update, not ${command}`);
  if (opts['no-legacy-dag'] && (legacyDag || command !== 'update')) throw new UsageError('--no-legacy-dag (update only) removes the legacy stage; it cannot be combined with --legacy-dag');
  const deadline = opts.deadline?.trim();
  if ((deadline !== undefined || opts['no-deadline']) && command !== 'create' && command !== 'update') throw new UsageError(`--deadline and --no-deadline apply to create and update, not ${command}`);
  if (opts['no-deadline'] && (deadline !== undefined || command !== 'update')) throw new UsageError('--no-deadline (update only) removes the deadline; it cannot be combined with --deadline');
  const problems: string[] = deadlineProblems(deadline, '--deadline');
  const cron = opts.cron;
  if (cron !== undefined) problems.push(...cronProblems(cron));
  const overlap = opts.overlap?.toUpperCase();
  if (overlap !== undefined && !OVERLAPS.includes(overlap as Overlap)) problems.push(`--overlap must be one of ${OVERLAPS.join(', ')}`);
  const catchup = opts['catchup-window'];
  if (catchup !== undefined && !DURATION.test(catchup.trim())) problems.push(`--catchup-window ${JSON.stringify(catchup)} must be a duration such as "1 day", "12h", "30m"`);
  const from = opts.from;
  const to = opts.to;
  if (command === 'backfill') {
    if (!from || !to) problems.push('backfill needs --from YYYY-MM-DD and --to YYYY-MM-DD');
    else {
      problems.push(...dateProblems(from, nowMs).map((p) => `--from: ${p}`), ...dateProblems(to, nowMs).map((p) => `--to: ${p}`));
      if (from > to) problems.push(`--from ${from} is after --to ${to}`);
    }
  }
  if (problems.length) throw new UsageError(problems.join('\n'));
  const prefix = opts.prefix ?? config.prefix;
  return {
    command: command as Command,
    prefix,
    scheduleId: opts['schedule-id'] ?? dailyScheduleId(prefix),
    cron,
    overlap: overlap as Overlap | undefined,
    catchupWindow: catchup?.trim(),
    paused: Boolean(opts.paused),
    note: opts.note,
    from,
    to,
    outputRoot: opts['output-root'],
    legacyDag: opts['no-legacy-dag'] ? null : legacyDag,
    deadline: opts['no-deadline'] ? null : deadline,
  };
}

/** The cron is kept in the action's memo too: the server hands cron specs back as calendars. */
function specOf(desc: ScheduleDescription): { cron: string | undefined; overlap: string; catchupWindowMs: number } {
  const memo = desc.action.type === 'startWorkflow' ? (desc.action.memo as Record<string, string> | undefined) : undefined;
  const definition = memo?.[DEFINITION_MEMO_KEY] ? (JSON.parse(memo[DEFINITION_MEMO_KEY]) as { cron?: string[] }) : undefined;
  const cron = definition?.cron?.join(' | ') ?? (desc.spec.calendars?.[0] ? JSON.stringify(desc.spec.calendars[0]) : undefined);
  return { cron, overlap: String(desc.policies.overlap).replace('SCHEDULE_OVERLAP_POLICY_', ''), catchupWindowMs: Number(desc.policies.catchupWindow) };
}


async function describeOrExplain(client: Client, id: string): Promise<ScheduleDescription> {
  try {
    return await client.schedule.getHandle(id).describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) throw new UsageError(`no schedule ${JSON.stringify(id)} in this namespace: create it with npm run schedule -- create`);
    throw err;
  }
}

/** Runs one schedule command; returns what it printed (for tests). */
export async function runSchedule(config: Config, args: ScheduleArgs, log: (s: string) => void = console.log): Promise<void> {
  const client = await connectClient(config);
  const id = args.scheduleId;
  try {
    switch (args.command) {
      case 'create': {
        const cron = args.cron ?? DEFAULT_CRON;
        const overlap = args.overlap ?? DEFAULT_OVERLAP;
        const catchup = args.catchupWindow ?? DEFAULT_CATCHUP;
        try {
          const { outcome, description } = await ensureSchedule(client, {
            scheduleId: id,
            cron,
            paused: args.paused,
            note: args.paused ? 'created paused' : undefined,
            workflowType: DAILY_WORKFLOW_TYPE,
            taskQueue: config.temporal.taskQueue,
            workflowIdPrefix: dailyScheduleId(args.prefix),
            args: [
              {
                prefix: args.prefix,
                ...(args.outputRoot ? { outputRoot: args.outputRoot } : {}),
                ...(args.legacyDag ? { legacyDag: args.legacyDag } : {}),
                ...(args.deadline ? { deadline: args.deadline } : {}),
              } satisfies DailyPipelineInput,
            ],
            overlap: ScheduleOverlapPolicy[overlap],
            catchupWindow: catchup as Duration,
          });
          if (outcome === 'created') log(`created schedule ${id}: cron "${cron}" UTC, overlap ${overlap}, catch-up window ${catchup}${args.paused ? ', paused' : ''}${args.legacyDag ? `, legacy DAG ${args.legacyDag.environment}/${args.legacyDag.dagId}` : ''}${args.deadline ? `, deadline ${args.deadline}` : ''}`);
          else log(`schedule ${id} exists with this spec: unchanged (${description.state.paused ? 'paused' : 'active'})`);
        } catch (err) {
          if (err instanceof ScheduleConflictError) throw new UsageError(`schedule ${id} exists with a different spec (${err.differences.join('; ')}): change it with npm run schedule -- update`);
          throw err;
        }
        return;
      }
      case 'update': {
        const d = await describeOrExplain(client, id);
        const have = specOf(d);
        const prevArgs = d.action.type === 'startWorkflow' && d.action.args ? [...d.action.args] : [{ prefix: args.prefix }];
        if (args.legacyDag !== undefined) {
          // Set or remove the scheduled runs' legacy stage; the rest of the input stays.
          const { legacyDag: _old, ...rest } = (prevArgs[0] ?? { prefix: args.prefix }) as DailyPipelineInput;
          prevArgs[0] = args.legacyDag ? { ...rest, legacyDag: args.legacyDag } : rest;
        }
        if (args.deadline !== undefined) {
          // Set or remove the scheduled runs' deadline; the rest of the input stays.
          const { deadline: _old, ...rest } = (prevArgs[0] ?? { prefix: args.prefix }) as DailyPipelineInput;
          prevArgs[0] = args.deadline ? { ...rest, deadline: args.deadline } : rest;
        }
        const overlap = args.overlap ?? (have.overlap as Overlap);
        await ensureSchedule(client, {
          scheduleId: id,
          cron: args.cron ?? have.cron ?? DEFAULT_CRON,
          paused: d.state.paused,
          workflowType: DAILY_WORKFLOW_TYPE,
          taskQueue: config.temporal.taskQueue,
          workflowIdPrefix: dailyScheduleId(args.prefix),
          args: prevArgs,
          overlap: ScheduleOverlapPolicy[overlap],
          catchupWindow: (args.catchupWindow as Duration | undefined) ?? have.catchupWindowMs,
          update: true,
        });
        const now = prevArgs[0] as DailyPipelineInput | undefined;
        const changed = [
          ...(args.legacyDag !== undefined ? [now?.legacyDag ? `legacy DAG ${now.legacyDag.environment}/${now.legacyDag.dagId}` : 'no legacy DAG'] : []),
          ...(args.deadline !== undefined ? [now?.deadline ? `deadline ${now.deadline}` : 'no deadline'] : []),
        ];
        log(`updated schedule ${id}${changed.length ? `: ${changed.join(', ')}` : ''}`);
        return;
      }
      case 'describe': {
        const d = await describeOrExplain(client, id);
        const s = specOf(d);
        log(`schedule ${id}: ${d.state.paused ? `PAUSED${d.state.note ? ` (${d.state.note})` : ''}` : 'active'}`);
        log(`  cron "${s.cron}" UTC, overlap ${s.overlap}, catch-up window ${s.catchupWindowMs / 1000} s`);
        const legacy = d.action.type === 'startWorkflow' ? (d.action.args?.[0] as DailyPipelineInput | undefined)?.legacyDag : undefined;
        if (legacy) log(`  legacy DAG: ${legacy.environment}/${legacy.dagId} after landing, before cleaning${legacy.conf ? ` (conf ${JSON.stringify(legacy.conf)})` : ''}`);
        const deadline = d.action.type === 'startWorkflow' ? (d.action.args?.[0] as DailyPipelineInput | undefined)?.deadline : undefined;
        if (deadline) log(`  deadline: ${deadline} after the end of each date (a late alert, the run goes on)`);
        log(`  runs so far: ${d.info.numActionsTaken}, skipped for overlap: ${d.info.numActionsSkippedOverlap}`);
        log(`  next: ${d.info.nextActionTimes.slice(0, 3).map((t) => t.toISOString()).join(', ') || '(none)'}`);
        for (const a of d.info.recentActions.slice(-5)) {
          const wf = a.action.type === 'startWorkflow' ? a.action.workflow.workflowId : '';
          log(`  recent: scheduled ${a.scheduledAt.toISOString()} -> ${wf}`);
        }
        for (const r of d.info.runningActions) log(`  running: ${r.workflow.workflowId}`);
        return;
      }
      case 'pause':
      case 'unpause': {
        await describeOrExplain(client, id);
        const h = client.schedule.getHandle(id);
        if (args.command === 'pause') await h.pause(args.note ?? 'paused with npm run schedule -- pause');
        else await h.unpause(args.note ?? 'unpaused with npm run schedule -- unpause');
        log(`${args.command}d schedule ${id}`);
        return;
      }
      case 'trigger': {
        const d = await describeOrExplain(client, id);
        await client.schedule.getHandle(id).trigger();
        log(`triggered schedule ${id} now (overlap policy ${specOf(d).overlap}); runs: temporal workflow list --query "PipelinePrefix='${args.prefix}'"`);
        return;
      }
      case 'backfill': {
        await describeOrExplain(client, id);
        const { start, end } = backfillWindow(args.from!, args.to!);
        await client.schedule.getHandle(id).backfill({ start, end, overlap: ScheduleOverlapPolicy.BUFFER_ALL });
        log(`backfill of schedule ${id} for ${args.from} .. ${args.to}: one run per date, in order (BUFFER_ALL), each over its date's data interval`);
        const today = todayUtc(Date.now());
        if (args.to === today) log(`  ${today} is not over: its run covers its interval up to the moment it starts (partial in its result, manifest not stored); run it again after midnight UTC for the whole day`);
        return;
      }
      case 'delete': {
        await describeOrExplain(client, id);
        await client.schedule.getHandle(id).delete();
        log(`deleted schedule ${id} (runs already started go on)`);
        return;
      }
    }
  } finally {
    await client.connection.close();
  }
}

if (require.main === module) {
  runCli(COMMAND, async (config, argv) => {
    await runSchedule(config, parseScheduleArgs(argv, config));
  });
}
