/**
 * The daily pipeline's Temporal Schedule, through `@temporalio/client`'s schedule API. Small and
 * general on purpose: `npm run schedule` and `npm run mwaa` (cutover/rollback) both use it.
 *
 * - `ensureSchedule` creates a schedule, or reuses an existing one with the same definition
 *   (idempotent). The definition is the spec (cron expressions or interval, timezone), the
 *   action (workflow type, task queue, workflow id, args) and the policies; a schedule with a
 *   different definition is an error (ScheduleConflictError naming the differences) unless
 *   `update: true`, which rewrites it. `startAt`/`endAt`/`paused` are applied when creating;
 *   on an existing schedule they change only through `setScheduleWindow`/`pauseSchedule`/
 *   `unpauseSchedule`, so a re-run never moves a window or un-pauses by accident.
 * - The server stores cron strings as structured calendars, so the definition is also kept,
 *   canonically, in the action's memo (`pinflowScheduleDefinition`) and compared from there;
 *   a schedule created by other means is compared by what the server shows (action, policies,
 *   timezone, and its next action times against the wanted cron's).
 * - The action starts `workflowType` with workflow id `<workflowIdPrefix>` (Temporal appends the
 *   scheduled time, e.g. `daily-pipeline-pinflow-2024-01-11T00:00:00Z`); the workflow reads the
 *   scheduled time from its `TemporalScheduledStartTime` search attribute.
 */
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  type Client,
  type ScheduleDescription,
  type ScheduleOverlapPolicy,
  type ScheduleSpec,
  type ScheduleUpdateOptions,
} from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import { formatDuration, nextFireTime, type FireSchedule } from '../common/cron';

export const DAILY_WORKFLOW_TYPE = 'dailyPipelineWorkflow';
export const DEFINITION_MEMO_KEY = 'pinflowScheduleDefinition';

export type OverlapPolicy = Exclude<ScheduleOverlapPolicy, undefined>;

export interface EnsureScheduleOptions {
  scheduleId: string;
  /** One or more cron expressions (a union). Give this or `interval`. */
  cron?: string | readonly string[];
  interval?: { every: Duration; offset?: Duration };
  /** IANA timezone of the cron expressions. Default UTC. */
  timezone?: string;
  /** No action before this time (applied on creation only). */
  startAt?: Date;
  /** No action after this time (applied on creation only). */
  endAt?: Date;
  /** State on creation (an existing schedule keeps its state). */
  paused: boolean;
  workflowType: string;
  taskQueue: string;
  /** The scheduled workflows' id; Temporal appends the scheduled time. */
  workflowIdPrefix: string;
  args: unknown[];
  overlap?: OverlapPolicy;
  catchupWindow?: Duration;
  note?: string;
  /** Rewrite an existing schedule whose definition differs (instead of failing). */
  update?: boolean;
}

export interface EnsureScheduleResult {
  scheduleId: string;
  outcome: 'created' | 'reused' | 'updated';
  description: ScheduleDescription;
}

export class ScheduleConflictError extends Error {
  constructor(
    public readonly scheduleId: string,
    public readonly differences: string[],
  ) {
    super(`schedule ${scheduleId} already exists with a different definition (${differences.join('; ')}); update it explicitly to change it`);
    this.name = 'ScheduleConflictError';
  }
}

const ms = (d: Duration | undefined): number | undefined => {
  if (d === undefined) return undefined;
  if (typeof d === 'number') return d;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|seconds?|m|minutes?|h|hours?|d|days?)?\s*$/i.exec(d);
  if (!m) return undefined;
  const unit = (m[2] ?? 'ms').toLowerCase();
  const factor = unit.startsWith('ms') || unit.startsWith('milli') ? 1 : unit.startsWith('s') ? 1e3 : unit.startsWith('m') ? 6e4 : unit.startsWith('h') ? 3.6e6 : 8.64e7;
  return Number(m[1]) * factor;
};

/** The definition ensureSchedule compares, in canonical form. */
function definitionOf(o: EnsureScheduleOptions): Record<string, unknown> {
  const cron = o.cron === undefined ? undefined : typeof o.cron === 'string' ? [o.cron] : [...o.cron];
  return {
    cron: cron?.map((c) => c.trim().replace(/\s+/g, ' ')),
    interval: o.interval ? { every: ms(o.interval.every), offset: ms(o.interval.offset) ?? 0 } : undefined,
    timezone: o.timezone ?? 'UTC',
    workflowType: o.workflowType,
    taskQueue: o.taskQueue,
    workflowId: o.workflowIdPrefix,
    args: o.args,
    overlap: o.overlap ?? 'SKIP',
    catchupWindowMs: ms(o.catchupWindow) ?? 365 * 86_400_000,
  };
}

function specOf(o: EnsureScheduleOptions, window: { startAt?: Date; endAt?: Date }): ScheduleSpec {
  if ((o.cron === undefined) === (o.interval === undefined)) throw new Error(`schedule ${o.scheduleId}: give exactly one of cron and interval`);
  return {
    ...(o.cron !== undefined ? { cronExpressions: typeof o.cron === 'string' ? [o.cron] : [...o.cron] } : {}),
    ...(o.interval ? { intervals: [o.interval] } : {}),
    timezone: o.timezone ?? 'UTC',
    startAt: window.startAt,
    endAt: window.endAt,
  };
}

function actionOf(o: EnsureScheduleOptions) {
  return {
    type: 'startWorkflow' as const,
    workflowType: o.workflowType,
    taskQueue: o.taskQueue,
    workflowId: o.workflowIdPrefix,
    args: o.args,
    memo: { [DEFINITION_MEMO_KEY]: JSON.stringify(definitionOf(o)) },
  };
}

/** What the server shows, in definitionOf's shape, for a schedule created without the memo. */
function observedDefinition(desc: ScheduleDescription, wanted: Record<string, unknown>): Record<string, unknown> {
  // The spec is compared by its next action times against the wanted cron/interval's.
  let specMatches = false;
  const next = desc.info.nextActionTimes;
  if (next.length > 0) {
    const t: FireSchedule = {
      cron: wanted.cron as string[] | undefined,
      interval: wanted.cron ? undefined : wanted.interval ? { everySeconds: (wanted.interval as { every: number }).every / 1000, offsetSeconds: (wanted.interval as { offset: number }).offset / 1000 } : undefined,
      timezone: String(wanted.timezone),
    };
    let cursor = new Date(next[0]!.getTime() - 1);
    specMatches = next.every((n) => {
      const f = nextFireTime(t, cursor);
      cursor = n;
      return f?.getTime() === n.getTime();
    });
  }
  return {
    ...(specMatches ? { cron: wanted.cron, interval: wanted.interval } : { cron: '(other calendar)', interval: undefined }),
    timezone: desc.spec.timezone ?? 'UTC',
    workflowType: desc.action.workflowType,
    taskQueue: desc.action.taskQueue,
    workflowId: desc.action.workflowId,
    args: desc.action.args,
    overlap: desc.policies.overlap,
    catchupWindowMs: desc.policies.catchupWindow,
  };
}

function differences(desc: ScheduleDescription, wanted: Record<string, unknown>): string[] {
  const storedText = desc.action.memo?.[DEFINITION_MEMO_KEY];
  const stored = typeof storedText === 'string' ? (JSON.parse(storedText) as Record<string, unknown>) : observedDefinition(desc, wanted);
  const out: string[] = [];
  for (const key of Object.keys(wanted)) {
    const a = JSON.stringify(stored[key]);
    const b = JSON.stringify(wanted[key]);
    if (a !== b) out.push(`${key}: ${a ?? 'unset'} -> ${b ?? 'unset'}`);
  }
  return out;
}

/** Creates the schedule, or reuses / (with `update`) rewrites an existing one. See the module doc. */
export async function ensureSchedule(client: Client, o: EnsureScheduleOptions): Promise<EnsureScheduleResult> {
  const spec = specOf(o, { startAt: o.startAt, endAt: o.endAt });
  const policies = { overlap: o.overlap ?? 'SKIP', catchupWindow: o.catchupWindow ?? '365 days' };
  try {
    const handle = await client.schedule.create({
      scheduleId: o.scheduleId,
      spec,
      action: actionOf(o),
      policies,
      state: { paused: o.paused, note: o.note },
    });
    return { scheduleId: o.scheduleId, outcome: 'created', description: await handle.describe() };
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  const handle = client.schedule.getHandle(o.scheduleId);
  const existing = await handle.describe();
  const diff = differences(existing, definitionOf(o));
  if (diff.length === 0) return { scheduleId: o.scheduleId, outcome: 'reused', description: existing };
  if (!o.update) throw new ScheduleConflictError(o.scheduleId, diff);
  await handle.update((prev): ScheduleUpdateOptions => ({
    ...prev,
    spec: specOf(o, { startAt: prev.spec.startAt, endAt: prev.spec.endAt }),
    action: actionOf(o),
    policies: { ...prev.policies, ...policies },
    state: { ...prev.state, note: o.note ?? prev.state.note },
  }));
  return { scheduleId: o.scheduleId, outcome: 'updated', description: await handle.describe() };
}

/** The schedule, or undefined when it does not exist. */
export async function describeSchedule(client: Client, scheduleId: string): Promise<ScheduleDescription | undefined> {
  try {
    return await client.schedule.getHandle(scheduleId).describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return undefined;
    throw err;
  }
}

async function mustDescribe(client: Client, scheduleId: string): Promise<ScheduleDescription> {
  const d = await describeSchedule(client, scheduleId);
  if (!d) throw new ScheduleNotFoundError(`schedule ${scheduleId} does not exist in namespace ${client.options.namespace}`, scheduleId);
  return d;
}

/** Pauses the schedule; idempotent. Returns false when it was already paused. Throws ScheduleNotFoundError. */
export async function pauseSchedule(client: Client, scheduleId: string, note?: string): Promise<boolean> {
  if ((await mustDescribe(client, scheduleId)).state.paused) return false;
  await client.schedule.getHandle(scheduleId).pause(note ?? 'paused by pinflow');
  return true;
}

/** Unpauses the schedule; idempotent. Returns false when it was already running. Throws ScheduleNotFoundError. */
export async function unpauseSchedule(client: Client, scheduleId: string, note?: string): Promise<boolean> {
  if (!(await mustDescribe(client, scheduleId)).state.paused) return false;
  await client.schedule.getHandle(scheduleId).unpause(note ?? 'unpaused by pinflow');
  return true;
}

/** Sets the schedule's start/end times (only the ones given); idempotent. Returns whether anything changed. */
export async function setScheduleWindow(client: Client, scheduleId: string, window: { startAt?: Date; endAt?: Date; note?: string }): Promise<boolean> {
  const d = await mustDescribe(client, scheduleId);
  const same = (a: Date | undefined, b: Date | undefined) => b === undefined || a?.getTime() === b.getTime();
  if (same(d.spec.startAt, window.startAt) && same(d.spec.endAt, window.endAt) && (window.note === undefined || d.state.note === window.note)) return false;
  await client.schedule.getHandle(scheduleId).update((prev) => ({
    ...prev,
    spec: { ...prev.spec, startAt: window.startAt ?? prev.spec.startAt, endAt: window.endAt ?? prev.spec.endAt },
    state: { ...prev.state, note: window.note ?? prev.state.note },
  }));
  return true;
}

/** Deletes the schedule (not the workflows it started); idempotent. Returns false when it did not exist. */
export async function deleteSchedule(client: Client, scheduleId: string): Promise<boolean> {
  try {
    await client.schedule.getHandle(scheduleId).delete();
    return true;
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return false;
    throw err;
  }
}

/** Human-readable lines: id, state, spec, action, policies, next actions. */
export function formatSchedule(d: ScheduleDescription): string[] {
  const stored = d.action.memo?.[DEFINITION_MEMO_KEY];
  const def = typeof stored === 'string' ? (JSON.parse(stored) as { cron?: string[]; interval?: { every: number; offset: number } }) : {};
  const spec = def.cron
    ? `cron ${def.cron.map((c) => JSON.stringify(c)).join(' + ')}`
    : def.interval
      ? `every ${formatDuration(def.interval.every)} (offset ${formatDuration(def.interval.offset)})`
      : `${d.spec.calendars?.length ?? 0} calendar(s)`;
  return [
    `schedule ${d.scheduleId}: ${d.state.paused ? 'PAUSED' : 'running'}${d.state.note ? ` (${d.state.note})` : ''}`,
    `  spec: ${spec} ${d.spec.timezone ?? 'UTC'}${d.spec.startAt ? `, from ${d.spec.startAt.toISOString()}` : ''}${d.spec.endAt ? `, until ${d.spec.endAt.toISOString()}` : ''}`,
    `  action: start ${d.action.workflowType} on task queue ${d.action.taskQueue}, workflow id ${d.action.workflowId}-<scheduled time>, args ${JSON.stringify(d.action.args)}`,
    `  policies: overlap ${d.policies.overlap}, catch-up window ${formatDuration(d.policies.catchupWindow)}`,
    `  next actions: ${d.info.nextActionTimes.slice(0, 3).map((t) => t.toISOString()).join(', ') || '(none)'}`,
  ];
}
