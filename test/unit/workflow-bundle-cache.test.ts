/**
 * The workflow bundle cache (workers/worker.ts): a worker loads `.cache/workflow-bundle/<source
 * hash>.json` instead of running webpack, so after any change to the workflow sources, the
 * SDK's version or the failure-converter choice it must look up another file: the cached bundle
 * of older sources is never used. Checked on a copy of the hashed folders (the checkout is not
 * touched).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { PROJECT_ROOT } from '../../config';
import { bundleCacheFile, WORKFLOW_SOURCE_DIRS } from '../../workers/worker';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-bundle-cache-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

function write(rel: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), text);
}

describe('workflow bundle cache', () => {
  write('workflows/index.ts', 'export * from "./daily";\n');
  write('workflows/daily.ts', 'export async function daily() { return 1; }\n');
  write('common/ids.ts', 'export const id = (s: string) => s;\n');
  write('mwaa/dag.ts', 'export const dag = 1;\n');
  write('node_modules/@temporalio/workflow/package.json', '{"name":"@temporalio/workflow","version":"1.24.0"}\n');

  it('is the same file while the sources are the same, under .cache/workflow-bundle/', () => {
    const file = bundleCacheFile(false, root);
    assert.equal(bundleCacheFile(false, root), file);
    assert.match(path.relative(root, file), /^\.cache\/workflow-bundle\/[0-9a-f]{16}\.json$/);
  });

  it('moves to another file on any change to what the bundle is built from', () => {
    const before = bundleCacheFile(false, root);
    const seen = new Set([before]);
    const changes: Array<[string, () => void, () => void]> = [];
    const edit = (rel: string, text: string): [() => void, () => void] => {
      const old = fs.readFileSync(path.join(root, rel), 'utf8');
      return [() => write(rel, text), () => write(rel, old)];
    };
    changes.push(['a workflow edited', ...edit('workflows/daily.ts', 'export async function daily() { return 2; }\n')]);
    changes.push(['a file it imports from common/ edited', ...edit('common/ids.ts', 'export const id = (s: string) => s.trim();\n')]);
    changes.push(['mwaa/ edited', ...edit('mwaa/dag.ts', 'export const dag = 2;\n')]);
    changes.push(['another SDK version', ...edit('node_modules/@temporalio/workflow/package.json', '{"name":"@temporalio/workflow","version":"1.25.0"}\n')]);
    changes.push(['a workflow file added', () => write('workflows/extra.ts', 'export const x = 1;\n'), () => fs.rmSync(path.join(root, 'workflows/extra.ts'))]);
    for (const [what, apply, undo] of changes) {
      apply();
      const file = bundleCacheFile(false, root);
      assert.ok(!seen.has(file), `${what}: a new cache file, not ${path.basename(file)} again`);
      seen.add(file);
      undo();
      assert.equal(bundleCacheFile(false, root), before, `${what} undone: the bundle built before is valid again`);
    }
    // Planted: a bundle cached for the old sources stays where it was; the lookup goes elsewhere.
    write(path.relative(root, before), '{"code":"stale"}');
    const [apply] = edit('workflows/daily.ts', 'export async function daily() { return 3; }\n');
    apply();
    assert.notEqual(bundleCacheFile(false, root), before);
    assert.equal(fs.existsSync(bundleCacheFile(false, root)), false, 'nothing cached for the new sources: webpack runs');
  });

  it('keeps bundles with and without the encoding failure converter apart', () => {
    assert.notEqual(bundleCacheFile(true), bundleCacheFile(false));
  });

  it('hashes the folders the project bundles', () => {
    assert.deepEqual(WORKFLOW_SOURCE_DIRS.filter((d) => !fs.existsSync(path.join(PROJECT_ROOT, d))), []);
  });
});
