/**
 * The worker's build id (workers/version.ts): the hash of the workflow bundle it runs, printed by
 * `npm run worker -- --version`, different for different workflow code.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { buildIdOf, workerIdentity } from '../../workers/version';
import { workflowBundle } from '../../workers/worker';

const ROOT = path.join(__dirname, '..', '..');

describe('worker build id', () => {
  it('npm run worker -- --version prints the build id of the bundle the worker runs', async () => {
    const printed = execFileSync(process.execPath, ['--import', 'tsx', 'workers/main.ts', '--version'], { cwd: ROOT, encoding: 'utf8' });
    assert.match(printed, /^[0-9a-f]{12}\n$/);
    assert.equal(printed.trim(), buildIdOf(await workflowBundle()));
  });

  it('follows the workflow code: one changed byte, another build id', () => {
    const a = buildIdOf({ code: 'export function w() { return 1; }' });
    assert.equal(a, buildIdOf({ code: 'export function w() { return 1; }' }));
    assert.notEqual(a, buildIdOf({ code: 'export function w() { return 2; }' }));
    assert.equal(workerIdentity(a, 'host-1', 42), `pinflow@${a} 42@host-1`);
  });
});
