/**
 * npm run pipeline -- [--date YYYY-MM-DD] [--out DIR] [--wait] [--legacy-dag ENV/DAG [--legacy-dag-conf JSON]] [--deadline D]
 *
 * Runs the daily pipeline for one date now (default: today, UTC): landing, then cleaning and
 * the analytics, as dailyPipelineWorkflow `daily-pipeline-<prefix>-<date>`. If that date is
 * already running, the command attaches to it (with --wait) instead of starting a second one;
 * a finished date runs again and replaces its outputs. --out DIR (implies --wait) writes the
 * analytics, summary.json and report.html as `npm run clean -- --out` does. --legacy-dag runs
 * that MWAA DAG for the date between landing and cleaning (`legacyDag` of the input). --deadline
 * D (e.g. 6h): a run not done D after the end of its date raises a late alert and goes on.
 */
import path from 'node:path';
import type { Config } from '../config';
import { deadlineProblems } from '../common/alerts';
import { dateProblems, todayUtc, type DailyPipelineInput, type DailyPipelineResult, type DailyStatus } from '../common/daily';
import { dailyWorkflowId } from '../common/ids';
import type { IntervalSummary } from '../common/interval';
import { dailySearchAttributes } from '../common/search-attributes';
import type { dailyPipelineWorkflow } from '../workflows';
import { dailyStageQuery } from '../workflows/daily';
import { defineCommand, parseCommandLine, UsageError } from '../cli/args';
import { runCli } from '../cli/command';
import { launchWorkflow } from '../cli/launch';
import { LEGACY_DAG_OPTIONS, legacyDagOption } from '../cli/legacy-dag';
import { sharedOptions } from '../cli/options';
import { finishCleaning } from '../cli/outputs';

export const COMMAND = defineCommand({
  script: 'pipeline',
  options: {
    date: { value: 'YYYY-MM-DD', help: 'the date to process (default today, UTC)' },
    ...sharedOptions('wait', 'out', 'prefix', 'output-root', 'deadline'),
    ...LEGACY_DAG_OPTIONS,
  },
  about:
    'Runs the daily pipeline for one date now: landing, then cleaning and the analytics, as dailyPipelineWorkflow daily-pipeline-<prefix>-<date>. ' +
    'If that date is already running, attaches to it instead of starting a second run; a finished date runs again and replaces its outputs.',
});

export interface PipelineArgs {
  input: DailyPipelineInput & { date: string };
  wait: boolean;
  out?: string;
}

export function parsePipelineArgs(argv: string[], config: Config, nowMs = Date.now()): PipelineArgs {
  const opts = parseCommandLine(COMMAND, argv).values;
  const date = opts.date ?? todayUtc(nowMs);
  const problems = dateProblems(date, nowMs);
  if (problems.length) throw new UsageError(`--date: ${problems.join('; ')}`);
  const deadline = opts.deadline?.trim();
  const deadlineProblem = deadlineProblems(deadline, '--deadline');
  if (deadlineProblem.length) throw new UsageError(deadlineProblem.join('\n'));
  const legacyDag = legacyDagOption(opts);
  const out = opts.out;
  return {
    input: { prefix: opts.prefix ?? config.prefix, date, outputRoot: opts['output-root'], ...(legacyDag ? { legacyDag } : {}), ...(deadline !== undefined ? { deadline } : {}) },
    wait: Boolean(opts.wait) || out !== undefined,
    out: out === undefined ? undefined : path.resolve(out),
  };
}

/** The run's data interval: its size, and where its manifest is (or why there is none). */
export function intervalLine(config: Config, date: string, i: IntervalSummary): string {
  const where = i.partial ? `partial: ${date} is not over, the run covered the records up to the moment it resolved the interval; not stored` : `manifest s3://${config.s3.bucket}/${i.manifestKey}`;
  return `interval ${date}: ${i.records} offsets (${where})`;
}

function stageLine(date: string, s: DailyStatus): string {
  const landing = s.stageMs.landing !== undefined ? ` (landing took ${(s.stageMs.landing / 1000).toFixed(1)} s)` : '';
  const legacy = s.legacyDag ? ` (legacy DAG run ${s.legacyDag.dagRunId}: ${s.legacyDag.state})` : '';
  const late = s.late ? ` (LATE: deadline ${s.deadline} passed)` : '';
  return `${date}: ${s.stage}${landing}${legacy}${late}`;
}

export async function runPipeline(
  config: Config,
  args: PipelineArgs,
  log: (s: string) => void = console.log,
): Promise<{ workflowId: string; attached: boolean; result?: DailyPipelineResult; report?: string }> {
  const { input } = args;
  const { workflowId, attached, result } = await launchWorkflow<typeof dailyPipelineWorkflow, DailyStatus>(
    config,
    {
      workflowType: 'dailyPipelineWorkflow',
      options: {
        workflowId: dailyWorkflowId(input.prefix, input.date),
        args: [input],
        typedSearchAttributes: dailySearchAttributes(input.prefix, input.date, 'starting'),
        memo: { date: input.date, trigger: 'manual' },
        staticSummary: `daily pipeline ${input.prefix} ${input.date} (manual)`,
      },
      ifRunning: 'attach',
      wait: args.wait,
      progress: { query: dailyStageQuery, line: (s) => stageLine(input.date, s) },
    },
    log,
  );
  if (!result) return { workflowId, attached };
  log(`done ${workflowId}: landed ${result.landing.records} records in ${result.landing.objects} objects (${(result.stageMs.landing / 1000).toFixed(1)} s), cleaning + analytics ${(result.stageMs.cleaning / 1000).toFixed(1)} s`);
  if (result.interval) log(intervalLine(config, result.date, result.interval));
  if (result.late) log('late: the run was not done by its deadline; a late alert was raised');
  if (result.legacyDag) {
    const l = result.legacyDag;
    log(`legacy DAG ${l.environment}/${l.dagId}: run ${l.dagRunId} (logical date ${l.logicalDate}) ${l.state}${l.adopted ? ', adopted (it already existed)' : ''} (${((result.stageMs.legacyDag ?? 0) / 1000).toFixed(1)} s)`);
  }
  const report = await finishCleaning(config, result.cleaning, args.out, { workflowId, date: result.date, ...(result.legacyDag ? { legacyDag: result.legacyDag } : {}) }, log);
  return { workflowId, attached, result, report };
}

if (require.main === module) {
  runCli(COMMAND, async (config, argv) => {
    await runPipeline(config, parsePipelineArgs(argv, config));
  });
}
