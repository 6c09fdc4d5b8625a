/**
 * npm run clean -- [--input PREFIX | DIR | s3://BUCKET/TOPICS_DIR] [--out DIR] [--wait] [--output-root KEYS/]
 *
 * Starts batchCleaningWorkflow (workflow id `cleaning-<prefix>`: one run per prefix at a time)
 * over everything landed for the prefix (default PIPELINE_PREFIX in the configured bucket), a
 * local folder in the landed layout, or an existing Confluent-sink bucket. With --wait it
 * prints the counts; --out DIR (implies --wait) also writes DIR/<name>.json, DIR/summary.json
 * and DIR/report.html.
 */
import fs from 'node:fs';
import path from 'node:path';
import { validateCleaningInput, type CleaningInput, type CleaningResult } from '../common/cleaning';
import type { Config } from '../config';
import { cleaningWorkflowId } from '../common/ids';
import { cleaningSearchAttributes } from '../common/search-attributes';
import type { batchCleaningWorkflow } from '../workflows';
import { cleaningStatusQuery, type CleaningStatus } from '../workflows/cleaning';
import { defineCommand, parseCommandLine, UsageError } from '../cli/args';
import { runCli } from '../cli/command';
import { launchWorkflow } from '../cli/launch';
import { sharedOptions } from '../cli/options';
import { finishCleaning } from '../cli/outputs';

export const COMMAND = defineCommand({
  script: 'clean',
  options: {
    input: { value: 'PREFIX|DIR|s3://BUCKET/TOPICS_DIR', help: 'what to clean: a prefix, a local folder, or an s3:// bucket (and topics dir)' },
    ...sharedOptions('wait', 'out', 'prefix', 'output-root'),
  },
  about:
    'Starts batchCleaningWorkflow (workflow id cleaning-<prefix>: one run per prefix at a time) over everything landed for the prefix ' +
    '(default PIPELINE_PREFIX in the configured bucket), a local folder in the landed layout, or an existing Confluent-sink bucket: ' +
    'the three cleaned tables and the nine analytics outputs on the configured warehouse.',
});

export interface CleanArgs {
  input: CleaningInput;
  wait: boolean;
  out?: string;
}

export function parseCleanArgs(argv: string[], config: Config): CleanArgs {
  const opts = parseCommandLine(COMMAND, argv).values;
  let prefix = opts.prefix ?? config.prefix;
  let source: CleaningInput['source'];
  const given = opts.input;
  if (given?.startsWith('s3://')) {
    const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*?))?\/?$/.exec(given);
    if (!m) throw new UsageError(`--input ${given}: expected s3://BUCKET or s3://BUCKET/TOPICS_DIR`);
    source = { kind: 's3', bucket: m[1], topicsDir: m[2] || 'topics' };
  } else if (given !== undefined && (given.includes('/') || given.startsWith('.') || fs.existsSync(given))) {
    const dir = path.resolve(given);
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new UsageError(`--input ${given}: no such folder`);
    source = { kind: 'local', dir };
  } else if (given !== undefined) {
    prefix = given;
  }
  const input: CleaningInput = { prefix, source, outputRoot: opts['output-root'] };
  const problems = validateCleaningInput(input);
  if (problems.length) throw new UsageError(problems.join('\n'));
  const out = opts.out;
  return { input, wait: Boolean(opts.wait) || out !== undefined, out: out === undefined ? undefined : path.resolve(out) };
}

export async function runClean(config: Config, args: CleanArgs, log: (s: string) => void = console.log): Promise<{ workflowId: string; result?: CleaningResult; report?: string }> {
  const { input } = args;
  const { workflowId, result } = await launchWorkflow<typeof batchCleaningWorkflow, CleaningStatus>(
    config,
    {
      workflowType: 'batchCleaningWorkflow',
      options: {
        workflowId: cleaningWorkflowId(input.prefix),
        args: [input],
        typedSearchAttributes: cleaningSearchAttributes(input.prefix),
        staticSummary: `clean + analytics for ${input.prefix} on ${config.warehouse.kind}`,
      },
      ifRunning: { refuse: `a cleaning run for prefix ${input.prefix}` },
      detail: ` on ${config.warehouse.kind}`,
      wait: args.wait,
      progress: {
        query: cleaningStatusQuery,
        line: (s) => (s.step === 'inventory' ? 'listing the landed objects ...' : `${s.step}: ${s.inventory.reduce((n, t) => n + t.objects, 0)} landed objects`),
      },
    },
    log,
  );
  if (!result) return { workflowId };
  const report = await finishCleaning(config, result, args.out, { workflowId }, log);
  return { workflowId, result, report };
}

if (require.main === module) {
  runCli(COMMAND, async (config, argv) => {
    await runClean(config, parseCleanArgs(argv, config));
  });
}
