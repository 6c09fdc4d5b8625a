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
import { validateLandingInput, type LandingInput, type LandingResult, type LandingStatus } from '../common/landing';
import { landingWorkflowId } from '../common/ids';
import { landingSearchAttributes } from '../common/search-attributes';
import type { landingWorkflow } from '../workflows';
import { landingStatusQuery } from '../workflows/landing';
import { defineCommand, parseCommandLine, UsageError } from '../cli/args';
import { runCli } from '../cli/command';
import { launchWorkflow } from '../cli/launch';
import { sharedOptions } from '../cli/options';

export const COMMAND = defineCommand({
  script: 'land',
  options: {
    'until-now': { help: "land up to each partition's end as of now, then finish (the default)" },
    follow: { help: 'keep landing until cancelled (not with --until-now)' },
    'topics-regex': { value: 'R', help: 'land the topics matching this regular expression (default <prefix>.pin|geo|user)' },
    'flush-size': { value: 'N', help: 'records per object at most' },
    'max-object-bytes': { value: 'N', help: 'bytes per object at most' },
    ...sharedOptions('wait', 'prefix'),
    'topics-dir': { value: 'DIR', help: 'key prefix of the landed objects in the bucket (default topics)' },
    'accept-gaps': { help: 'land on past offsets that can no longer be landed, reporting each gap' },
  },
  about:
    'Starts landingWorkflow for the prefix (workflow id landing-<prefix>: one lander per prefix at a time): Kafka topics -> objects in S3 with a manifest. ' +
    'A partition whose unlanded records expired, or whose topic was recreated, fails the run naming the offsets, unless --accept-gaps.',
});

export function parseLandArgs(argv: string[], config: Config): { input: LandingInput; wait: boolean } {
  const opts = parseCommandLine(COMMAND, argv).values;
  if (opts.follow && opts['until-now']) throw new UsageError('give --follow or --until-now, not both');
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const input: LandingInput = {
    prefix: opts.prefix ?? config.prefix,
    mode: opts.follow ? 'follow' : 'untilNow',
    topicsRegex: opts['topics-regex'],
    flushSize: num(opts['flush-size']),
    maxObjectBytes: num(opts['max-object-bytes']),
    topicsDir: opts['topics-dir'],
    ...(opts['accept-gaps'] ? { acceptGaps: true } : {}),
  };
  const problems = validateLandingInput(input);
  if (problems.length) throw new UsageError(problems.join('\n'));
  return { input, wait: Boolean(opts.wait) };
}

export async function runLand(config: Config, args: { input: LandingInput; wait: boolean }, log: (s: string) => void = console.log): Promise<{ workflowId: string; result?: LandingResult }> {
  const { input } = args;
  const { workflowId, result } = await launchWorkflow<typeof landingWorkflow, LandingStatus>(
    config,
    {
      workflowType: 'landingWorkflow',
      options: {
        workflowId: landingWorkflowId(input.prefix),
        args: [input],
        typedSearchAttributes: landingSearchAttributes(input.prefix, input.mode),
        staticSummary: `land ${input.topicsRegex ? `/${input.topicsRegex}/` : `${input.prefix}.pin|geo|user`} -> s3://${config.s3.bucket}/${input.topicsDir ?? 'topics'} (${input.mode})`,
      },
      ifRunning: { refuse: `a landing workflow for prefix ${input.prefix}` },
      detail: ` (${input.mode})`,
      wait: args.wait,
      progress: {
        query: landingStatusQuery,
        line: (s) => `round ${s.rounds}: ${s.records.toLocaleString('en')} records in ${s.objects} objects, ${s.deadLetters} dead letters, lag ${s.partitions.reduce((n, p) => n + p.lag, 0).toLocaleString('en')}`,
      },
    },
    log,
  );
  if (!result) return { workflowId };
  for (const p of result.partitions) log(`  ${p.topic} partition ${p.partition}: landed to offset ${p.landedOffset} (lag ${p.lag}), ${p.records} records, ${p.deadLetters} dead letters, ${p.objects} objects`);
  for (const g of result.gaps) log(`  gap (${g.kind}): ${g.detail}`);
  log(`done: ${result.records} records in ${result.objects} objects, ${result.deadLetters} dead letters in ${result.deadLetterObjects} objects${result.gaps.length ? `, ${result.gaps.length} gap(s)` : ''}`);
  if (result.manifestKey) log(`  manifest: s3://${config.s3.bucket}/${result.manifestKey}`);
  return { workflowId, result };
}

if (require.main === module) {
  runCli(COMMAND, async (config, argv) => {
    await runLand(config, parseLandArgs(argv, config));
  });
}
