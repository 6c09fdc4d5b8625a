/**
 * npm run mwaa -- plan|cutover|rollback --environment NAME --dag ID [options]
 *
 * Moves a DAG's schedule from Amazon MWAA to the daily pipeline's Temporal Schedule, and back.
 * The command lives in mwaa/cli.ts; its usage text there says what each step does.
 */
import { runCli } from '../cli/command';
import { USAGE as MWAA_USAGE, parseMwaaArgs, runMwaa } from '../mwaa/cli';

runCli('mwaa', MWAA_USAGE, async (config, argv) => {
  await runMwaa(config, parseMwaaArgs(argv, config));
});
