/**
 * Replay tests: every recorded history under test/histories/ (real runs of every workflow
 * type, recorded by `npm run histories:record`) is replayed against today's workflow code with
 * `Worker.runReplayHistories`, the same bundle the worker runs. A change to a workflow's
 * command sequence that is not guarded (patched(), a new workflow type, or a new worker
 * deployment version for pinned types: docs/upgrading.md) fails here, naming the workflow type
 * and the history file. No server: replay runs in-process.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DefaultLogger, Runtime, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import * as workflows from '../../workflows';
import { workflowBundle } from '../../workers/worker';
import { loadHistories, type Recorded } from '../helpers/histories';

const HISTORIES_DIR = path.join(__dirname, '..', 'histories');

/** Replays every history; returns one line per failure: `<type> <file>: <error>`. */
export async function replayAll(recorded: Recorded[], opts: { bundle?: WorkflowBundleWithSourceMap } = {}): Promise<string[]> {
  const failures: string[] = [];
  // Replay reports results by workflow id; the recorded runs' ids are unique (each test names its own).
  const byId = new Map(recorded.map((r) => [`${r.workflowId}/${r.file}`, r]));
  const histories = recorded.map((r) => ({ workflowId: r.workflowId, history: r.history }));
  const bundle = opts.bundle ?? (await workflowBundle());
  const pending = [...recorded];
  for await (const result of Worker.runReplayHistories({ workflowBundle: bundle, replayName: 'pinflow-replay' }, histories)) {
    const r = pending.shift()!;
    if (result.workflowId !== r.workflowId) throw new Error(`replay results out of order: ${result.workflowId} for ${r.file}`);
    if (result.error) failures.push(`${r.type} ${r.file}: ${result.error.message.replace(/\s+/g, ' ').slice(0, 600)}`);
    byId.delete(`${r.workflowId}/${r.file}`);
  }
  for (const id of byId.keys()) failures.push(`${id}: not replayed`);
  return failures;
}

describe('replay of recorded histories against today\'s workflow code', () => {
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    /* a runtime is installed already */
  }
  const recorded = loadHistories(HISTORIES_DIR);

  it('has recorded histories of every workflow type the worker runs', () => {
    const types = new Set(recorded.map((r) => r.type));
    const missing = Object.keys(workflows).filter((name) => !types.has(name));
    assert.deepEqual(missing, [], `no history recorded for ${missing.join(', ')} (npm run histories:record)`);
  });

  it('replays every history without a nondeterminism error', { timeout: 120_000 }, async () => {
    const failures = await replayAll(recorded);
    assert.deepEqual(failures, [], `histories that no longer replay (a workflow change needs a guard: docs/upgrading.md):\n${failures.join('\n')}`);
  });
});
