/**
 * npm run emulate -- [--all] [--records N | --duration 10m] [--rate R|max] [--sink kafka|rest-proxy|kinesis]
 *                    [--seed S] [--batch-size N] [--id ID] [--wait]
 *
 * Starts emulationWorkflow (id `emulation-<prefix>-<UTC time in ms>-<random>`, or --id), prints
 * its id and UI link, and with --wait shows a progress bar until it finishes. Bad options are
 * rejected before anything starts (exit 2), and so is an id that was already used: a workflow
 * id names one emulation, whose progress markers a second one must never read.
 */
import { randomBytes } from 'node:crypto';
import { WorkflowIdReusePolicy } from '@temporalio/client';
import type { Config } from '../config';
import { validateEmulationInput, type EmulationInput, type EmulationProgress } from '../common/emulation';
import { PipelinePrefix, PipelineSink } from '../common/search-attributes';
import { connectClient, hasWorkflowPollers, uiLink } from '../workers/client';
import { withWorker } from '../workers/worker';
import type { emulationWorkflow } from '../workflows';
import { progressQuery } from '../workflows/emulation';
import { parseOptions, runCli, startOrRefuse, UsageError } from '../cli/command';
import { pollEvery, ProgressPrinter, progressLine } from '../cli/progress';

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

export function parseDuration(text: string): number {
  const m = DURATION.exec(text.trim());
  if (!m) throw new UsageError(`--duration ${JSON.stringify(text)} must look like 90s, 10m or 1.5h`);
  return Number(m[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
}

export interface EmulateArgs {
  input: EmulationInput;
  wait: boolean;
  /** The workflow id to use (default: a new one per start). */
  id?: string;
}

export function parseEmulateArgs(argv: string[], config: Config): EmulateArgs {
  const opts = parseOptions(argv, { values: ['--records', '--duration', '--rate', '--sink', '--seed', '--batch-size', '--prefix', '--id'], flags: ['--all', '--wait'] });
  const problems: string[] = [];
  const num = (flag: string): number | undefined => {
    const v = opts.get(flag);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) problems.push(`${flag} ${JSON.stringify(v)} is not a number`);
    return n;
  };
  const rateText = opts.get('--rate') ?? 'max';
  const rate = rateText === 'max' ? 'max' : Number(rateText);
  if (opts.has('--records') && opts.has('--duration')) problems.push('give --records or --duration, not both');
  let durationMs: number | undefined;
  try {
    durationMs = opts.has('--duration') ? parseDuration(opts.get('--duration')!) : undefined;
  } catch (e) {
    problems.push((e as Error).message);
  }
  const input: EmulationInput = {
    prefix: opts.get('--prefix') ?? config.prefix,
    sink: (opts.get('--sink') ?? 'kafka') as EmulationInput['sink'],
    rate: rate as number | 'max',
    selection: opts.has('--all') ? { mode: 'all' } : { mode: 'random', seed: num('--seed') ?? 100 },
    stop: { posts: num('--records'), durationMs },
    batchSize: num('--batch-size'),
  };
  problems.push(...validateEmulationInput(input));
  if (input.sink === 'rest-proxy' && !config.restProxyUrl) problems.push('sink rest-proxy needs REST_PROXY_URL to be set');
  const id = opts.get('--id');
  if (id !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/.test(id)) problems.push(`--id ${JSON.stringify(id)} must be letters, digits, '.', '_' or '-' (at most 200)`);
  if (problems.length) throw new UsageError(problems.join('\n'));
  return { input, wait: opts.has('--wait'), ...(id !== undefined ? { id } : {}) };
}

/** A new id per start: UTC time to the millisecond and a random suffix, so two starts in one instant differ. */
export function emulationWorkflowId(prefix: string, at = new Date()): string {
  return `emulation-${prefix}-${at.toISOString().replace(/[-:.]/g, '')}-${randomBytes(3).toString('hex')}`;
}

export async function runEmulate(config: Config, args: EmulateArgs, log: (s: string) => void = console.log): Promise<{ workflowId: string; result?: EmulationProgress }> {
  const client = await connectClient(config);
  try {
    const workflowId = args.id ?? emulationWorkflowId(args.input.prefix);
    const handle = await startOrRefuse(
      () =>
        client.workflow.start<typeof emulationWorkflow>('emulationWorkflow', {
          taskQueue: config.temporal.taskQueue,
          workflowId,
          workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
          args: [args.input],
          typedSearchAttributes: [
            { key: PipelinePrefix, value: args.input.prefix },
            { key: PipelineSink, value: args.input.sink },
          ],
          staticSummary: `emulate ${args.input.selection.mode === 'all' ? 'all rows' : 'random rows'} -> ${args.input.sink} (${args.input.sink === 'kinesis' ? `streaming-${args.input.prefix}-*` : `${args.input.prefix}.*`}) at ${args.input.rate} posts/s`,
        }),
      workflowId,
      'an emulation with this id',
      'emulation ids are used once: choose another --id, or leave --id out for a new one',
    );
    log(`started ${workflowId}\n  ${uiLink(config, workflowId)}`);
    if (!args.wait) {
      if (!(await hasWorkflowPollers(client, config.temporal.taskQueue))) log(`note: no worker polls "${config.temporal.taskQueue}" yet; start one with: npm run worker`);
      return { workflowId };
    }
    const printer = new ProgressPrinter();
    const poll = pollEvery(1_000, () =>
      handle
        .query(progressQuery)
        .then((p) => printer.update(progressLine(p.sent + p.skipped, p.totalPlanned, `posts, ${p.achievedRate}/s${p.skipped ? `, ${p.skipped} skipped` : ''}${p.paused ? ' (paused)' : ''}`)))
        .then(() => undefined),
    );
    try {
      const result = await withWorker(config, client, handle, () => handle.result(), (l) => log(l));
      printer.update(progressLine(result.sent + result.skipped, result.totalPlanned ?? result.planned, `posts, ${result.achievedRate}/s`), true);
      log(`done: ${result.sent} posts sent (${result.sent * 3} records), ${result.skipped} skipped, ${result.failed} failed attempts retried`);
      return { workflowId, result };
    } finally {
      await poll.stop();
    }
  } finally {
    await client.connection.close();
  }
}

if (require.main === module) {
  runCli('emulate', 'npm run emulate -- [--all] [--records N | --duration 10m] [--rate R|max] [--sink kafka|rest-proxy|kinesis] [--seed S] [--id ID] [--wait]', async (config, argv) => {
    await runEmulate(config, parseEmulateArgs(argv, config));
  });
}
