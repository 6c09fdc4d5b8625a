/**
 * npm run histories:record: records the workflow histories the replay tests
 * (test/unit/replay.test.ts) replay against today's code, into test/histories/<date>-<build id>/:
 * one folder per version of the workflow code. Runs the integration tests that exercise each
 * workflow type's branches with PINFLOW_RECORD_HISTORIES set, so each of them saves the
 * histories of its runs (test/helpers/histories.ts). Needs the local stack (`npm run stack --
 * up`). Record after a deliberate, guarded workflow change and commit the new folder; keep the
 * older folders while runs their code started may still be open in production.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../config';
import { defineCommand, parseCommandLine } from '../cli/args';
import { runCommand } from '../cli/command';
import { buildIdOf } from '../workers/version';
import { workflowBundle } from '../workers/worker';

export const COMMAND = defineCommand({
  script: 'histories:record',
  options: {},
  about:
    'Records the histories the replay tests replay, into test/histories/<date>-<build id>/ (one folder per version of the workflow code; a folder of the same ' +
    'code is replaced, the others are kept: they stand for runs that older workers started), by running the integration tests that exercise each workflow type ' +
    'with recording on. Needs the local stack.',
});

/** Test file -> the tests in it that record (and those they depend on). */
export const RECORDING_TESTS: Record<string, string[]> = {
  'landing.test.ts': ['follow mode lands new records'],
  'emulation.test.ts': ['reports progress, pauses, resumes', 'paces posts at the requested rate across continue-as-new'],
  'streaming-failures.test.ts': ['kinesalite restarted mid-stream', 'reshard with a backlog'],
  'schedule.test.ts': ['create is idempotent', 'trigger runs the pipeline now'],
  'daily-legacy-dag.test.ts': ['npm run pipeline -- --legacy-dag: one DAG run'],
  'cleaning-databricks.test.ts': ['sends the Spark-proven statements'],
  'doctor.test.ts': ['reports every system healthy'],
  'alerts.test.ts': ['a late alert at once', 'a deadline far away', 'a failing run'],
};

async function main(argv: string[]): Promise<number> {
  parseCommandLine(COMMAND, argv);
  const buildId = buildIdOf(await workflowBundle());
  const root = path.join(PROJECT_ROOT, 'test', 'histories');
  for (const old of fs.readdirSync(root).filter((x) => x.endsWith(`-${buildId}`))) fs.rmSync(path.join(root, old), { recursive: true, force: true });
  const dir = path.join(root, `${new Date().toISOString().slice(0, 10)}-${buildId}`);
  fs.mkdirSync(dir, { recursive: true });
  const files = Object.keys(RECORDING_TESTS);
  for (const [i, file] of files.entries()) {
    console.log(`[${i + 1}/${files.length}] ${file}`);
    const patterns = RECORDING_TESTS[file]!.flatMap((p) => ['--test-name-pattern', p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')]);
    const res = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=dot', '--test-concurrency=1', ...patterns, path.join('test', 'integration', file)], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, PINFLOW_RECORD_HISTORIES: dir },
      stdio: 'inherit',
    });
    if (res.status !== 0) throw new Error(`${file}: the recording tests failed (exit ${res.status}); histories so far are in ${path.relative(PROJECT_ROOT, dir)}/`);
  }
  const recorded = fs.readdirSync(dir).filter((x) => x.endsWith('.json')).sort();
  for (const f of recorded) console.log(`  ${f}  ${(fs.statSync(path.join(dir, f)).size / 1024).toFixed(0)} KiB`);
  console.log(`${recorded.length} histories in ${path.relative(PROJECT_ROOT, dir)}/; replay them with npm run test:unit`);
  return 0;
}

if (require.main === module) runCommand(COMMAND, main);
