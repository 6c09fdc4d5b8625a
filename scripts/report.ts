/**
 * npm run report -- DIR: (re)writes DIR/report.html from DIR/summary.json and the analytics
 * outputs beside it (what `npm run pipeline -- --out DIR` writes), and prints its path.
 */
import path from 'node:path';
import { writeReport } from '../report';
import { defineCommand, parseCommandLine, UsageError } from '../cli/args';
import { runCommand } from '../cli/command';

export const COMMAND = defineCommand({
  script: 'report',
  args: 'DIR',
  maxArgs: 1,
  options: {},
  about: 'Writes DIR/report.html from DIR/summary.json and the analytics outputs beside it (what npm run pipeline -- --out DIR writes), and prints its path.',
});

if (require.main === module) {
  runCommand(COMMAND, async (argv) => {
    const [dir] = parseCommandLine(COMMAND, argv).positionals;
    if (!dir) throw new UsageError('give DIR, the folder holding summary.json and the analytics outputs');
    console.log(await writeReport(path.resolve(dir)));
  });
}
