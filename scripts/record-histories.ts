/**
 * npm run histories:record: re-records test/histories/, the workflow histories the replay
 * tests (test/unit/replay.test.ts) replay against today's code. Runs the integration tests that
 * exercise each workflow type's branches with PINFLOW_RECORD_HISTORIES set, so each of them
 * saves the histories of its runs (test/helpers/histories.ts). Needs the local stack
 * (`npm run stack -- up`). Re-record after a deliberate, guarded workflow change, and commit
 * the new files beside the old ones you still need to replay (histories of runs that may still
 * be open in production).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../config';
import { defineCommand, parseCommandLine } from '../cli/args';
import { runCommand } from '../cli/command';

export const COMMAND = defineCommand({
  script: 'histories:record',
  options: { keep: { help: 'keep the histories already recorded (default: replace them)' } },
  about:
    'Re-records test/histories/ (the histories the replay tests replay) by running the integration tests that exercise each workflow type with recording on. Needs the local stack.',
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
};

async function main(argv: string[]): Promise<number> {
  const keep = parseCommandLine(COMMAND, argv).values.keep === true;
  const dir = path.join(PROJECT_ROOT, 'test', 'histories');
  fs.mkdirSync(dir, { recursive: true });
  if (!keep) for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.json'))) fs.rmSync(path.join(dir, f));
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
