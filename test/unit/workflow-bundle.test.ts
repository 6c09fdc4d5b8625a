/**
 * The workflow bundle cache (workers/worker.ts) is keyed by a hash of the folders the workflow
 * code is built from: every project file webpack puts into the bundle must lie in one of
 * them, or an edit to it would leave workers on a stale cached bundle.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { PROJECT_ROOT } from '../../config';
import { WORKFLOW_SOURCE_DIRS, workflowBundle } from '../../workers/worker';

describe('workflow bundle cache key', () => {
  it('hashes every project folder the bundle takes code from', async () => {
    const { code } = await workflowBundle();
    const map = /sourceMappingURL=data:application\/json;(?:charset=utf-8;)?base64,([A-Za-z0-9+/=]+)/.exec(code);
    assert.ok(map, 'the bundle carries its source map');
    const sources = (JSON.parse(Buffer.from(map[1]!, 'base64').toString('utf8')) as { sources: string[] }).sources
      .filter((s) => s.startsWith(PROJECT_ROOT) && !s.includes('node_modules') && s.endsWith('.ts'))
      .map((s) => path.relative(PROJECT_ROOT, s));
    assert.ok(sources.includes(path.join('workflows', 'daily.ts')), 'the map names project files');
    const unhashed = sources.filter((s) => !WORKFLOW_SOURCE_DIRS.includes(s.split(path.sep)[0]!));
    assert.deepEqual(unhashed, [], 'bundled files outside the hashed folders');
  });
});
