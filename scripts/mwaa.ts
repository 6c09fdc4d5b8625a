/**
 * npm run mwaa -- plan|cutover|rollback --environment NAME --dag ID [options]
 *
 * Moves a DAG's schedule from Amazon MWAA to the daily pipeline's Temporal Schedule, and back.
 * The command lives in mwaa/cli.ts; its declaration there (`--help`) says what each step does.
 */
import { runCli } from '../cli/command';
import { MWAA_COMMAND, parseMwaaArgs, runMwaa } from '../mwaa/cli';

export const COMMAND = MWAA_COMMAND;

if (require.main === module) {
  runCli(COMMAND, async (config, argv) => {
    await runMwaa(config, parseMwaaArgs(argv, config));
  });
}
