/**
 * The phases as Temporal sees them: each phase is one workflow (emulation: the emulation
 * workflow; landing and cleaning: the daily pipeline's child workflows), and its start, end and
 * status are read through the client (`describe()`), never assumed from the script's own steps.
 */
import type { Client, WorkflowExecutionDescription } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import type { Phase } from './plan';

export interface PhaseRef {
  phase: Phase;
  workflowId: string;
  /** Landing and cleaning: the daily pipeline run that must be their parent. */
  parentId?: string;
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, Math.max(0, ms));
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** The workflow's description, or null while it does not exist yet. */
export async function describeOrNull(client: Client, workflowId: string): Promise<WorkflowExecutionDescription | null> {
  try {
    return await client.workflow.getHandle(workflowId).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

/** RUNNING, or a run that continued as new (the phase goes on in the next run). */
export const isRunning = (d: WorkflowExecutionDescription) => d.status.name === 'RUNNING' || d.status.name === 'CONTINUED_AS_NEW';

/**
 * Waits until the phase's workflow exists (with the expected parent) and returns its start
 * time (ms, the server's clock: the same machine's). Null when `signal` aborts first.
 */
export async function waitForStart(client: Client, ref: PhaseRef, signal: AbortSignal, pollMs = 100): Promise<number | null> {
  while (!signal.aborted) {
    const d = await describeOrNull(client, ref.workflowId).catch(() => null);
    if (d && (!ref.parentId || d.parentExecution?.workflowId === ref.parentId)) return d.startTime.getTime();
    await sleep(pollMs, signal);
  }
  return null;
}

export interface PhaseState {
  /** Still running when asked (after the fault took effect). */
  running: boolean;
  status: string;
  closeMs?: number;
  /** The workflow's pending activities, e.g. `runCleaning started, attempt 1` (empty: between activities). */
  inFlight: string[];
}

const ACTIVITY_STATE: Record<number, string> = { 1: 'scheduled', 2: 'started', 3: 'cancel requested', 4: 'paused', 5: 'pause requested' };

export async function phaseState(client: Client, ref: PhaseRef): Promise<PhaseState> {
  const d = await client.workflow.getHandle(ref.workflowId).describe();
  const counts = new Map<string, number>();
  for (const a of d.raw.pendingActivities ?? []) {
    const what = `${a.activityType?.name ?? '?'} ${ACTIVITY_STATE[Number(a.state ?? 0)] ?? 'pending'}, attempt ${a.attempt ?? 1}`;
    counts.set(what, (counts.get(what) ?? 0) + 1);
  }
  const inFlight = [...counts].map(([what, n]) => (n > 1 ? `${n} x ${what}` : what));
  return { running: isRunning(d), status: d.status.name, closeMs: d.closeTime?.getTime(), inFlight };
}

/** Start and end (ms) of a finished phase; the emulation's start is the first run's (carried across continue-as-new). */
export async function phaseSpan(client: Client, workflowId: string, startedAt?: string): Promise<{ startMs: number; endMs: number; status: string }> {
  const d = await client.workflow.getHandle(workflowId).describe();
  const startMs = startedAt ? Date.parse(startedAt) : d.startTime.getTime();
  return { startMs, endMs: d.closeTime?.getTime() ?? Date.now(), status: d.status.name };
}
