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
import { PipelinePrefix, PipelineStage } from '../common/search-attributes';
import { connectClient, hasWorkflowPollers, uiLink } from '../workers/client';
import { withWorker } from '../workers/worker';
import type { batchCleaningWorkflow } from '../workflows';
import { cleaningStatusQuery } from '../workflows/cleaning';
import { parseOptions, runCli, startOrRefuse, UsageError } from '../cli/command';
import { writeOutputs } from '../cli/outputs';
import { pollEvery, ProgressPrinter } from '../cli/progress';

export interface CleanArgs {
  input: CleaningInput;
  wait: boolean;
  out?: string;
}

export function parseCleanArgs(argv: string[], config: Config): CleanArgs {
  const opts = parseOptions(argv, { values: ['--input', '--out', '--prefix', '--output-root'], flags: ['--wait'] });
  let prefix = opts.get('--prefix') ?? config.prefix;
  let source: CleaningInput['source'];
  const given = opts.get('--input');
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
  const input: CleaningInput = { prefix, source, outputRoot: opts.get('--output-root') };
  const problems = validateCleaningInput(input);
  if (problems.length) throw new UsageError(problems.join('\n'));
  const out = opts.get('--out');
  return { input, wait: opts.has('--wait') || out !== undefined, out: out === undefined ? undefined : path.resolve(out) };
}

export const cleaningWorkflowId = (prefix: string) => `cleaning-${prefix}`;

export function printCleaningResult(result: CleaningResult, log: (s: string) => void): void {
  for (const [name, t] of Object.entries(result.tables)) {
    const left = Object.entries(t.leftOut).map(([why, n]) => `${n} ${why.replace(/_/g, ' ')}`);
    log(`  ${name}: ${t.rows.toLocaleString('en')} rows from ${t.read.toLocaleString('en')} records (${t.duplicates} duplicates replaced${left.length ? `, left out: ${left.join(', ')}` : ''})`);
  }
  for (const [name, a] of Object.entries(result.analytics)) log(`  ${name}: ${a.rows} rows -> ${a.location}`);
}

export async function runClean(config: Config, args: CleanArgs, log: (s: string) => void = console.log): Promise<{ workflowId: string; result?: CleaningResult; report?: string }> {
  const client = await connectClient(config);
  try {
    const workflowId = cleaningWorkflowId(args.input.prefix);
    const handle = await startOrRefuse(
      () =>
        client.workflow.start<typeof batchCleaningWorkflow>('batchCleaningWorkflow', {
          taskQueue: config.temporal.taskQueue,
          workflowId,
          args: [args.input],
          typedSearchAttributes: [
            { key: PipelinePrefix, value: args.input.prefix },
            { key: PipelineStage, value: 'cleaning' },
          ],
          staticSummary: `clean + analytics for ${args.input.prefix} on ${config.warehouse.kind}`,
        }),
      workflowId,
      `a cleaning run for prefix ${args.input.prefix}`,
    );
    log(`started ${workflowId} on ${config.warehouse.kind}\n  ${uiLink(config, workflowId, handle.firstExecutionRunId)}`);
    if (!args.wait) {
      if (!(await hasWorkflowPollers(client, config.temporal.taskQueue))) log(`note: no worker polls "${config.temporal.taskQueue}" yet; start one with: npm run worker`);
      return { workflowId };
    }
    const printer = new ProgressPrinter();
    const poll = pollEvery(1_000, () =>
      handle
        .query(cleaningStatusQuery)
        .then((s) => {
          const objects = s.inventory.reduce((n, t) => n + t.objects, 0);
          printer.update(s.step === 'inventory' ? 'listing the landed objects ...' : `${s.step}: ${objects} landed objects`);
        })
        .then(() => undefined),
    );
    let result: CleaningResult;
    try {
      result = await withWorker(config, client, handle, () => handle.result(), log);
    } finally {
      await poll.stop();
    }
    printCleaningResult(result, log);
    if (!args.out) return { workflowId, result };
    const { report } = await writeOutputs(config, result, args.out, { workflowId });
    log(`wrote ${args.out}/<name>.json for 12 tables, summary.json\nreport: ${report}`);
    return { workflowId, result, report };
  } finally {
    await client.connection.close();
  }
}

if (require.main === module) {
  runCli('clean', 'npm run clean -- [--input PREFIX | DIR | s3://BUCKET/TOPICS_DIR] [--out DIR] [--wait] [--output-root KEYS/]', async (config, argv) => {
    await runClean(config, parseCleanArgs(argv, config));
  });
}
