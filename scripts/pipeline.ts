/**
 * npm run pipeline -- [--date YYYY-MM-DD] [--out DIR] [--wait] [--legacy-dag ENV/DAG [--legacy-dag-conf JSON]]
 *
 * Runs the daily pipeline for one date now (default: today, UTC): landing, then cleaning and
 * the analytics, as dailyPipelineWorkflow `daily-pipeline-<prefix>-<date>`. If that date is
 * already running, the command attaches to it (with --wait) instead of starting a second one;
 * a finished date runs again and replaces its outputs. --out DIR (implies --wait) writes the
 * analytics, summary.json and report.html as `npm run clean -- --out` does. --legacy-dag runs
 * that MWAA DAG for the date between landing and cleaning (`legacyDag` of the input).
 */
import path from 'node:path';
import { WorkflowExecutionAlreadyStartedError, type WorkflowHandle } from '@temporalio/client';
import type { Config } from '../config';
import { dailyWorkflowId, dateProblems, todayUtc, type DailyPipelineInput, type DailyPipelineResult } from '../common/daily';
import { PipelineDate, PipelinePrefix, PipelineStage } from '../common/search-attributes';
import { connectClient, hasWorkflowPollers, uiLink } from '../workers/client';
import { withWorker } from '../workers/worker';
import type { dailyPipelineWorkflow } from '../workflows';
import { dailyStageQuery } from '../workflows/daily';
import { printCleaningResult } from './clean';
import { parseOptions, runCli, UsageError } from '../cli/command';
import { LEGACY_DAG_OPTIONS, legacyDagOption } from '../cli/legacy-dag';
import { writeOutputs } from '../cli/outputs';
import { pollEvery, ProgressPrinter } from '../cli/progress';

export interface PipelineArgs {
  input: DailyPipelineInput & { date: string };
  wait: boolean;
  out?: string;
}

export function parsePipelineArgs(argv: string[], config: Config, nowMs = Date.now()): PipelineArgs {
  const opts = parseOptions(argv, { values: ['--date', '--out', '--prefix', '--output-root', ...LEGACY_DAG_OPTIONS], flags: ['--wait'] });
  const date = opts.get('--date') ?? todayUtc(nowMs);
  const problems = dateProblems(date, nowMs);
  if (problems.length) throw new UsageError(`--date: ${problems.join('; ')}`);
  const legacyDag = legacyDagOption(opts);
  const out = opts.get('--out');
  return {
    input: { prefix: opts.get('--prefix') ?? config.prefix, date, outputRoot: opts.get('--output-root'), ...(legacyDag ? { legacyDag } : {}) },
    wait: opts.has('--wait') || out !== undefined,
    out: out === undefined ? undefined : path.resolve(out),
  };
}

export async function runPipeline(
  config: Config,
  args: PipelineArgs,
  log: (s: string) => void = console.log,
): Promise<{ workflowId: string; attached: boolean; result?: DailyPipelineResult; report?: string }> {
  const client = await connectClient(config);
  try {
    const workflowId = dailyWorkflowId(args.input.prefix, args.input.date);
    let handle: WorkflowHandle<typeof dailyPipelineWorkflow>;
    let attached = false;
    try {
      handle = await client.workflow.start<typeof dailyPipelineWorkflow>('dailyPipelineWorkflow', {
        taskQueue: config.temporal.taskQueue,
        workflowId,
        args: [args.input],
        typedSearchAttributes: [
          { key: PipelinePrefix, value: args.input.prefix },
          { key: PipelineDate, value: args.input.date },
          { key: PipelineStage, value: 'starting' },
        ],
        memo: { date: args.input.date, trigger: 'manual' },
        staticSummary: `daily pipeline ${args.input.prefix} ${args.input.date} (manual)`,
      });
      log(`started ${workflowId}\n  ${uiLink(config, workflowId, (handle as { firstExecutionRunId?: string }).firstExecutionRunId)}`);
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      handle = client.workflow.getHandle<typeof dailyPipelineWorkflow>(workflowId);
      attached = true;
      log(`${workflowId} is already running: ${args.wait ? 'attaching to it (no second run)' : 'not starting a second run'}\n  ${uiLink(config, workflowId)}`);
    }
    if (!args.wait) {
      if (!(await hasWorkflowPollers(client, config.temporal.taskQueue))) log(`note: no worker polls "${config.temporal.taskQueue}" yet; start one with: npm run worker`);
      return { workflowId, attached };
    }
    const printer = new ProgressPrinter();
    const poll = pollEvery(1_000, () =>
      handle
        .query(dailyStageQuery)
        .then((s) =>
          printer.update(
            `${args.input.date}: ${s.stage}${s.stageMs.landing !== undefined ? ` (landing took ${(s.stageMs.landing / 1000).toFixed(1)} s)` : ''}${s.legacyDag ? ` (legacy DAG run ${s.legacyDag.dagRunId}: ${s.legacyDag.state})` : ''}`,
          ),
        )
        .then(() => undefined),
    );
    let result: DailyPipelineResult;
    try {
      result = await withWorker(config, client, handle, () => handle.result(), log);
    } finally {
      await poll.stop();
    }
    log(`done ${workflowId}: landed ${result.landing.records} records in ${result.landing.objects} objects (${(result.stageMs.landing / 1000).toFixed(1)} s), cleaning + analytics ${(result.stageMs.cleaning / 1000).toFixed(1)} s`);
    if (result.legacyDag) {
      const l = result.legacyDag;
      log(`legacy DAG ${l.environment}/${l.dagId}: run ${l.dagRunId} (logical date ${l.logicalDate}) ${l.state}${l.adopted ? ', adopted (it already existed)' : ''} (${((result.stageMs.legacyDag ?? 0) / 1000).toFixed(1)} s)`);
    }
    printCleaningResult(result.cleaning, log);
    if (!args.out) return { workflowId, attached, result };
    const { report } = await writeOutputs(config, result.cleaning, args.out, { workflowId, date: result.date, ...(result.legacyDag ? { legacyDag: result.legacyDag } : {}) });
    log(`wrote ${args.out}/<name>.json for 12 tables, summary.json\nreport: ${report}`);
    return { workflowId, attached, result, report };
  } finally {
    await client.connection.close();
  }
}

if (require.main === module) {
  runCli('pipeline', 'npm run pipeline -- [--date YYYY-MM-DD] [--out DIR] [--wait] [--legacy-dag ENV/DAG [--legacy-dag-conf JSON]]', async (config, argv) => {
    await runPipeline(config, parsePipelineArgs(argv, config));
  });
}
