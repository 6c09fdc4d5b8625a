/**
 * npm run land -- [--until-now | --follow] [--wait] [--topics-regex R] [--flush-size N] [--max-object-bytes N] [--accept-gaps]
 *
 * Starts landingWorkflow for PIPELINE_PREFIX (workflow id `landing-<prefix>`: one lander per
 * prefix at a time, so two never write the same objects with different boundaries).
 * --until-now (default) lands up to each partition's end as of now and, with --wait, prints
 * the objects' counts and the manifest listing them; --follow keeps landing until cancelled.
 * A partition whose unlanded records expired, or whose topic was recreated, fails the run
 * naming the offsets; --accept-gaps lands on past them and reports each gap.
 */
import type { Config } from '../config';
import { validateLandingInput, type LandingInput, type LandingResult } from '../common/landing';
import { PipelineMode, PipelinePrefix } from '../common/search-attributes';
import { connectClient, hasWorkflowPollers, uiLink } from '../workers/client';
import { withWorker } from '../workers/worker';
import type { landingWorkflow } from '../workflows';
import { landingStatusQuery } from '../workflows/landing';
import { parseOptions, runCli, startOrRefuse, UsageError } from '../cli/command';
import { pollEvery, ProgressPrinter } from '../cli/progress';

export function parseLandArgs(argv: string[], config: Config): { input: LandingInput; wait: boolean } {
  const opts = parseOptions(argv, { values: ['--topics-regex', '--flush-size', '--max-object-bytes', '--prefix', '--topics-dir'], flags: ['--until-now', '--follow', '--wait', '--accept-gaps'] });
  if (opts.has('--follow') && opts.has('--until-now')) throw new UsageError('give --follow or --until-now, not both');
  const num = (k: string) => (opts.has(k) ? Number(opts.get(k)) : undefined);
  const input: LandingInput = {
    prefix: opts.get('--prefix') ?? config.prefix,
    mode: opts.has('--follow') ? 'follow' : 'untilNow',
    topicsRegex: opts.get('--topics-regex'),
    flushSize: num('--flush-size'),
    maxObjectBytes: num('--max-object-bytes'),
    topicsDir: opts.get('--topics-dir'),
    ...(opts.has('--accept-gaps') ? { acceptGaps: true } : {}),
  };
  const problems = validateLandingInput(input);
  if (problems.length) throw new UsageError(problems.join('\n'));
  return { input, wait: opts.has('--wait') };
}

export const landingWorkflowId = (prefix: string) => `landing-${prefix}`;

export async function runLand(config: Config, args: { input: LandingInput; wait: boolean }, log: (s: string) => void = console.log): Promise<{ workflowId: string; result?: LandingResult }> {
  const client = await connectClient(config);
  try {
    const workflowId = landingWorkflowId(args.input.prefix);
    const handle = await startOrRefuse(
      () =>
        client.workflow.start<typeof landingWorkflow>('landingWorkflow', {
          taskQueue: config.temporal.taskQueue,
          workflowId,
          args: [args.input],
          typedSearchAttributes: [
            { key: PipelinePrefix, value: args.input.prefix },
            { key: PipelineMode, value: args.input.mode },
          ],
          staticSummary: `land ${args.input.topicsRegex ? `/${args.input.topicsRegex}/` : `${args.input.prefix}.pin|geo|user`} -> s3://${config.s3.bucket}/${args.input.topicsDir ?? 'topics'} (${args.input.mode})`,
        }),
      workflowId,
      `a landing workflow for prefix ${args.input.prefix}`,
    );
    log(`started ${workflowId} (${args.input.mode})\n  ${uiLink(config, workflowId, handle.firstExecutionRunId)}`);
    if (!args.wait) {
      if (!(await hasWorkflowPollers(client, config.temporal.taskQueue))) log(`note: no worker polls "${config.temporal.taskQueue}" yet; start one with: npm run worker`);
      return { workflowId };
    }
    const printer = new ProgressPrinter();
    const poll = pollEvery(1_000, () =>
      handle
        .query(landingStatusQuery)
        .then((s) => {
          const lag = s.partitions.reduce((n, p) => n + p.lag, 0);
          printer.update(`round ${s.rounds}: ${s.records.toLocaleString('en')} records in ${s.objects} objects, ${s.deadLetters} dead letters, lag ${lag.toLocaleString('en')}`);
        })
        .then(() => undefined),
    );
    try {
      const result = await withWorker(config, client, handle, () => handle.result(), log);
      for (const p of result.partitions) log(`  ${p.topic} partition ${p.partition}: landed to offset ${p.landedOffset} (lag ${p.lag}), ${p.records} records, ${p.deadLetters} dead letters, ${p.objects} objects`);
      for (const g of result.gaps) log(`  gap (${g.kind}): ${g.detail}`);
      log(`done: ${result.records} records in ${result.objects} objects, ${result.deadLetters} dead letters in ${result.deadLetterObjects} objects${result.gaps.length ? `, ${result.gaps.length} gap(s)` : ''}`);
      if (result.manifestKey) log(`  manifest: s3://${config.s3.bucket}/${result.manifestKey}`);
      return { workflowId, result };
    } finally {
      await poll.stop();
    }
  } finally {
    await client.connection.close();
  }
}

if (require.main === module) {
  runCli('land', 'npm run land -- [--until-now | --follow] [--wait] [--topics-regex R] [--flush-size N] [--max-object-bytes N]', async (config, argv) => {
    await runLand(config, parseLandArgs(argv, config));
  });
}
