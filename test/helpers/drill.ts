/**
 * Workflow code of a "next release" for the deploy drill and the replay checks: a copy of the
 * workflow sources (workflows/, common/, mwaa/) under .data/drill/<name>/ with one deliberately
 * incompatible change per long-running workflow type and in the daily pipeline: an extra timer
 * command in each loop iteration (landing rounds, emulation batches, streaming spans) and at the
 * daily run's start. `guarded: true` wraps each in `patched(DRILL_PATCH)`, as docs/upgrading.md
 * says to; `guarded: false` is the same change unguarded, which must fail to replay a history
 * recorded by today's code. Bundled like the worker's own code (bundleWorkflowCode).
 */
import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { PROJECT_ROOT } from '../../config';

export const DRILL_PATCH = 'pinflow-drill-v2';

/** Where each change goes: the line it is inserted before, per workflow file. */
const CHANGES: Array<{ file: string; before: string }> = [
  { file: 'landing.ts', before: 'const landed = await round();' },
  { file: 'emulation.ts', before: 'const plan = planNextBatch(' },
  { file: 'streaming.ts', before: 'span = new CancellationScope();' },
  { file: 'daily.ts', before: "rejectInvalidInput('pipeline', [prefixProblem(input.prefix)]);" },
];

export async function nextReleaseBundle(opts: { guarded: boolean }): Promise<WorkflowBundleWithSourceMap> {
  const root = path.join(PROJECT_ROOT, '.data', 'drill', opts.guarded ? 'guarded' : 'unguarded');
  fs.rmSync(root, { recursive: true, force: true });
  for (const dir of ['workflows', 'common', 'mwaa']) fs.cpSync(path.join(PROJECT_ROOT, dir), path.join(root, dir), { recursive: true });
  for (const { file, before } of CHANGES) {
    const p = path.join(root, 'workflows', file);
    const src = fs.readFileSync(p, 'utf8');
    if (src.split(before).length !== 2) throw new Error(`drill: workflows/${file} no longer has exactly one "${before}"; update test/helpers/drill.ts`);
    const step = opts.guarded ? `if (drillPatched('${DRILL_PATCH}')) await drillSleep(1);` : 'await drillSleep(1);';
    const changed = src.replace(before, `${step}\n  ${before}`);
    fs.writeFileSync(p, `import { patched as drillPatched, sleep as drillSleep } from '@temporalio/workflow';\n${changed}`);
  }
  return bundleWorkflowCode({ workflowsPath: path.join(root, 'workflows', 'index.ts'), logger: silent });
}

const silent = { log: () => {}, trace: () => {}, debug: () => {}, info: () => {}, warn: () => {}, error: (m: string) => process.stderr.write(`[bundler] ${m}\n`) };
