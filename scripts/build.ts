/**
 * npm run build: compiles the worker into dist/<hash>/ (workers/build.ts) unless a build of
 * today's sources is there, and prints the command that runs it.
 */
import path from 'node:path';
import { defineCommand, parseCommandLine } from '../cli/args';
import { runCommand } from '../cli/command';
import { PROJECT_ROOT } from '../config';
import { compiledWorker, WORKER_NODE_FLAGS } from '../workers/build';

export const COMMAND = defineCommand({
  script: 'build',
  options: {},
  about:
    'Compiles the worker (workers/main.ts and what it imports) into dist/<hash>/, the hash being that of its sources, unless that build exists; ' +
    'prints the command that runs it (the same worker as npm run worker, without the TypeScript loader: less memory).',
});

if (require.main === module) {
  runCommand(COMMAND, async (argv) => {
    parseCommandLine(COMMAND, argv);
    const main = compiledWorker((line) => console.error(line));
    console.log(['node', ...WORKER_NODE_FLAGS, path.relative(PROJECT_ROOT, main)].join(' '));
  });
}
