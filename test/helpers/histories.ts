/**
 * Recording workflow histories for the replay tests (test/unit/replay.test.ts).
 *
 * Integration tests that run a workflow branch worth keeping call `recordHistories(client,
 * workflowId, firstRunId, name)` when the run is over. It does nothing unless
 * PINFLOW_RECORD_HISTORIES names a folder (`npm run histories:record` sets it to
 * test/histories/<date>-<build id>/); then it follows the run chain through every continue-as-new from the
 * first run and writes one JSON file per run: `<name>.json`, or `<name>.run<N>.json` for
 * chains of more than one run; with `children`, each child workflow's chain too, as
 * `<name>.<child type>`. Each file is a `RecordedHistory`: the run's workflow id and run id
 * (replay must see the id the run had: the daily pipeline's code branches on it) and its
 * history as `temporal workflow show --output json` prints it (`historyFromJSON` reads it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { execFileSync } from 'node:child_process';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { temporalCliPath } from '../../stack/temporal-server';
import { testConfig } from './env';

/** The folder histories are recorded into, or undefined when not recording. */
export function recordingDir(): string | undefined {
  const dir = process.env.PINFLOW_RECORD_HISTORIES;
  return dir ? path.resolve(dir) : undefined;
}

/**
 * Writes the histories of the run chain that starts at `firstRunId`. Waits (up to `timeoutMs`)
 * for the last run of the chain to close unless `open` is set (a run still going, e.g. a
 * follow-mode lander, is recorded as far as it got: replay checks the commands it made).
 */
export async function recordHistories(
  client: Client,
  workflowId: string,
  firstRunId: string,
  name: string,
  opts: { open?: boolean; timeoutMs?: number; children?: boolean } = {},
): Promise<string[]> {
  const dir = recordingDir();
  if (!dir) return [];
  if (!/^[a-z0-9][a-z0-9.-]*$/.test(name)) throw new Error(`history name ${JSON.stringify(name)}: use lowercase letters, digits, '.' and '-'`);
  fs.mkdirSync(dir, { recursive: true });
  const runs: Array<{ runId: string; history: string }> = [];
  const children: { workflowId: string; runId: string; type: string }[] = [];
  let runId: string | undefined = firstRunId;
  while (runId) {
    const handle: WorkflowHandle = client.workflow.getHandle(workflowId, runId);
    if (!opts.open) await waitClosed(client, workflowId, runId, opts.timeoutMs ?? 60_000);
    const history: History = await handle.fetchHistory();
    runs.push({ runId, history: showHistory(workflowId, runId) });
    for (const e of history.events ?? []) {
      const started = e.childWorkflowExecutionStartedEventAttributes;
      if (started?.workflowExecution?.workflowId && started.workflowExecution.runId) {
        children.push({ workflowId: started.workflowExecution.workflowId, runId: started.workflowExecution.runId, type: started.workflowType?.name ?? 'child' });
      }
    }
    const last: HistoryEvent | undefined = history.events?.[history.events.length - 1];
    runId = last?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
  }
  const written = runs.map((run, i) => {
    const file = path.join(dir, runs.length === 1 ? `${name}.json` : `${name}.run${i + 1}.json`);
    const recorded: RecordedHistory = { workflowId, runId: run.runId, history: JSON.parse(run.history) };
    fs.writeFileSync(file, `${JSON.stringify(recorded)}\n`);
    return file;
  });
  if (opts.children) {
    for (const c of children) written.push(...(await recordHistories(client, c.workflowId, c.runId, `${name}.${c.type.replace(/Workflow$/, '').toLowerCase()}`, opts)));
  }
  return written;
}

/**
 * The run's history as the Temporal CLI prints it (`temporal workflow show --output json`), the
 * canonical JSON form every Temporal tool reads.
 */
function showHistory(workflowId: string, runId: string): string {
  const config = testConfig();
  const cli = temporalCliPath(config);
  if (!cli) throw new Error('recording histories needs the temporal CLI (npm run stack -- up installs it)');
  return execFileSync(cli, ['workflow', 'show', '--workflow-id', workflowId, '--run-id', runId, '--output', 'json', '--address', config.temporal.address, '--namespace', config.temporal.namespace], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
}

type History = temporal.api.history.v1.IHistory;

/** One recorded run: what test/histories/<folder>/*.json hold. */
export interface RecordedHistory {
  workflowId: string;
  runId: string;
  /** `temporal workflow show --output json` of the run. */
  history: unknown;
}
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

async function waitClosed(client: Client, workflowId: string, runId: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const d = await client.workflow.getHandle(workflowId, runId).describe();
    if (d.status.name !== 'RUNNING') return;
    if (Date.now() > deadline) throw new Error(`workflow ${workflowId} run ${runId} still running after ${timeoutMs} ms: nothing recorded`);
    await sleep(200);
  }
}

/** A recorded run, loaded for replay. */
export interface Recorded {
  file: string;
  /** The workflow type, from the history's first event. */
  type: string;
  workflowId: string;
  history: History;
}

/** Every `*.json` under `dir` and its sub-folders (one per recording), in path order. */
export function loadHistories(dir: string): Recorded[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => {
      const recorded = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as RecordedHistory;
      const history = historyFromJSON(recorded.history);
      const type = history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name ?? '?';
      return { file, type, workflowId: recorded.workflowId, history };
    });
}
