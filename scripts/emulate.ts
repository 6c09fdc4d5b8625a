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
import { emulationWorkflowId } from '../common/ids';
import { emulationSearchAttributes } from '../common/search-attributes';
import type { emulationWorkflow } from '../workflows';
import { progressQuery } from '../workflows/emulation';
import { defineCommand, parseCommandLine, UsageError } from '../cli/args';
import { runCli } from '../cli/command';
import { launchWorkflow } from '../cli/launch';
import { sharedOptions } from '../cli/options';
import { progressLine } from '../cli/progress';

export const COMMAND = defineCommand({
  script: 'emulate',
  options: {
    all: { help: 'every row once, in key order (default: random rows, with repeats)' },
    records: { value: 'N', help: 'stop after N posts (not with --duration)' },
    duration: { value: '10m', help: 'stop after this long: 90s, 10m, 1.5h (not with --records)' },
    rate: { value: 'R|max', help: 'posts per second (default max)' },
    sink: { value: 'kafka|rest-proxy|kinesis', help: 'where the events go (default kafka; rest-proxy needs REST_PROXY_URL)' },
    seed: { value: 'S', help: 'the random selection\'s seed (default 100)' },
    'batch-size': { value: 'N', help: 'posts per batch, 1-20000' },
    ...sharedOptions('wait', 'prefix'),
    id: { value: 'ID', help: 'the workflow id (used once; default a new one)' },
  },
  about:
    'Starts emulationWorkflow (a new id per start, emulation-<prefix>-<UTC time in ms>-<random>, or --id): rows of the source tables as events on the sink, ' +
    'prints its id and UI link and, with --wait, shows a progress bar until it finishes. An id that was already used is refused: ' +
    'a workflow id names one emulation, whose progress markers a second one must never read.',
});

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
  const opts = parseCommandLine(COMMAND, argv).values;
  const problems: string[] = [];
  const num = (flag: 'seed' | 'records' | 'batch-size'): number | undefined => {
    const v = opts[flag];
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) problems.push(`--${flag} ${JSON.stringify(v)} is not a number`);
    return n;
  };
  const rateText = opts.rate ?? 'max';
  const rate = rateText === 'max' ? 'max' : Number(rateText);
  if (opts.records !== undefined && opts.duration !== undefined) problems.push('give --records or --duration, not both');
  let durationMs: number | undefined;
  try {
    durationMs = opts.duration !== undefined ? parseDuration(opts.duration) : undefined;
  } catch (e) {
    problems.push((e as Error).message);
  }
  const input: EmulationInput = {
    prefix: opts.prefix ?? config.prefix,
    sink: (opts.sink ?? 'kafka') as EmulationInput['sink'],
    rate: rate as number | 'max',
    selection: opts.all ? { mode: 'all' } : { mode: 'random', seed: num('seed') ?? 100 },
    stop: { posts: num('records'), durationMs },
    batchSize: num('batch-size'),
  };
  problems.push(...validateEmulationInput(input));
  if (input.sink === 'rest-proxy' && !config.restProxyUrl) problems.push('sink rest-proxy needs REST_PROXY_URL to be set');
  const id = opts.id;
  if (id !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/.test(id)) problems.push(`--id ${JSON.stringify(id)} must be letters, digits, '.', '_' or '-' (at most 200)`);
  if (problems.length) throw new UsageError(problems.join('\n'));
  return { input, wait: Boolean(opts.wait), ...(id !== undefined ? { id } : {}) };
}

/** A new id per start: UTC time to the millisecond and a random suffix, so two starts in one instant differ. */
export function newEmulationWorkflowId(prefix: string, at = new Date()): string {
  return emulationWorkflowId(prefix, at, randomBytes(3).toString('hex'));
}

export async function runEmulate(config: Config, args: EmulateArgs, log: (s: string) => void = console.log): Promise<{ workflowId: string; result?: EmulationProgress }> {
  const { input } = args;
  const { workflowId, result } = await launchWorkflow<typeof emulationWorkflow, EmulationProgress>(
    config,
    {
      workflowType: 'emulationWorkflow',
      options: {
        workflowId: args.id ?? newEmulationWorkflowId(input.prefix),
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        args: [input],
        typedSearchAttributes: emulationSearchAttributes(input.prefix, input.sink),
        staticSummary: `emulate ${input.selection.mode === 'all' ? 'all rows' : 'random rows'} -> ${input.sink} (${input.sink === 'kinesis' ? `streaming-${input.prefix}-*` : `${input.prefix}.*`}) at ${input.rate} posts/s`,
      },
      ifRunning: { refuse: 'an emulation with this id', usedOnce: 'emulation ids are used once: choose another --id, or leave --id out for a new one' },
      wait: args.wait,
      progress: {
        query: progressQuery,
        line: (p) => progressLine(p.sent + p.skipped, p.totalPlanned, `posts, ${p.achievedRate}/s${p.skipped ? `, ${p.skipped} skipped` : ''}${p.paused ? ' (paused)' : ''}`),
        final: (r) => progressLine(r.sent + r.skipped, r.totalPlanned ?? r.planned, `posts, ${r.achievedRate}/s`),
      },
    },
    log,
  );
  if (result) log(`done: ${result.sent} posts sent (${result.sent * 3} records), ${result.skipped} skipped, ${result.failed} failed attempts retried`);
  return { workflowId, result };
}

if (require.main === module) {
  runCli(COMMAND, async (config, argv) => {
    await runEmulate(config, parseEmulateArgs(argv, config));
  });
}
