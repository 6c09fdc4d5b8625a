/**
 * An Airflow DAG's scheduling facts -> the equivalent Temporal Schedule, as a pure translation
 * (no I/O, no Node built-ins: safe to import anywhere). Cron parsing and fire-time arithmetic
 * are common/cron.ts's; this module adds Airflow's meaning: presets, timedeltas, catchup,
 * max_active_runs, task retries, the logical-date convention and the cutover window.
 *
 * What maps to what:
 * - `schedule_interval`: the cron presets (`@hourly` ... `@yearly`), 5-field cron strings
 *   (Airflow evaluates them with croniter) and timedeltas (`{__type: 'TimeDelta', days, seconds}`
 *   from the REST API) become Temporal cron expressions or an interval spec, in the DAG's
 *   timezone. `None` and `@once` are no recurring schedule. Anything else (a custom Timetable,
 *   `@continuous`, a RelativeDelta, `L`/`W`/`#` cron syntax, seconds fields) is refused with an
 *   error naming the DAG and the expression, never approximated.
 * - Cron fields are re-emitted in one canonical numeric form (no month or weekday names, Sunday
 *   = 0, `a/n` spelled `a-max/n`), so the Temporal server's cron parser never has to agree with
 *   croniter on a dialect detail. croniter ORs day-of-month and day-of-week when both are
 *   restricted, while a Temporal calendar ANDs its fields: such a cron becomes two expressions
 *   (one per day field), whose union is what Airflow runs.
 * - `catchup`: False -> a catch-up window of one period (after an outage only the latest missed
 *   run is started, as Airflow would); True -> Temporal's default year, and older dates are a
 *   backfill (`temporal schedule backfill` / `npm run schedule -- backfill`).
 * - `max_active_runs`: 1 -> BUFFER_ALL with catchup (runs one after another, in order) or
 *   BUFFER_ONE without; more -> ALLOW_ALL (Temporal cannot cap concurrent runs at N).
 * - `retries` / `retry_delay` (/ `retry_exponential_backoff`, `max_retry_delay`) per task ->
 *   the activity retry policy to use: `maximumAttempts = retries + 1`, fixed or doubling delay.
 * - `start_date` / `end_date` -> the schedule's start and end times.
 *
 * The time convention (Airflow's): the run for logical date L covers [L, next(L)) and starts
 * at next(L). A Temporal action scheduled at T therefore stands for the logical date
 * `previousFireTime(T)` (for @daily: T - 1 day), and cutover makes Temporal's first action the
 * first time Airflow would have fired after its last run (see `cutoverWindow`).
 */
import type { RetryPolicy } from '@temporalio/common';
import { canonicalCrons, CronSyntaxError, formatDuration, isValidTimezone, nextFireTime, parseCron, previousFireTime } from '../common/cron';

export type AirflowScheduleInterval = string | null | { __type: string; value?: unknown; days?: number; seconds?: number; microseconds?: number; [k: string]: unknown };

export interface AirflowTaskRetry {
  taskId: string;
  retries?: number;
  retryDelaySeconds?: number;
  retryExponentialBackoff?: boolean;
  maxRetryDelaySeconds?: number;
}

/** What Airflow says about a DAG's scheduling (from GET /dags/{id}/details and /tasks). */
export interface AirflowDagFacts {
  dagId: string;
  /** `undefined` = unknown (the old CLI does not show it); `null` = None. */
  scheduleInterval: AirflowScheduleInterval | undefined;
  timetableDescription?: string;
  catchup?: boolean;
  startDate?: string;
  endDate?: string;
  /** "UTC", "Europe/Berlin" or the REST API's "Timezone('UTC')". */
  timezone?: string;
  maxActiveRuns?: number;
  tasks?: AirflowTaskRetry[];
}

export type TemporalOverlap = 'BUFFER_ONE' | 'BUFFER_ALL' | 'ALLOW_ALL';

/** The Temporal Schedule for a DAG; a FireSchedule (common/cron.ts), so its fire times can be stepped through. */
export interface ScheduleTranslation {
  dagId: string;
  /** The Airflow expression as the user knows it (`@daily`, `0 6 * * 1-5`, `timedelta(hours=6)`). */
  expression: string;
  kind: 'cron' | 'interval' | 'none' | 'once';
  /** Temporal cron expressions (canonical 5-field), for kind 'cron'. */
  cron: string[];
  /** For kind 'interval': every N seconds, aligned so that start_date is a tick. */
  interval?: { everySeconds: number; offsetSeconds: number };
  timezone: string;
  catchup: boolean;
  /** Schedule start (from start_date: just after the first logical date, so its run is the first action). */
  startAt?: Date;
  /** Schedule end (inclusive): the time the run of the last logical date <= end_date fires. */
  endAt?: Date;
  overlap: TemporalOverlap;
  catchupWindowMs: number;
  /** Recommended activity retry policy; per task when tasks differ; undefined when unknown. */
  retry?: RetryPolicy;
  retryByTask?: Record<string, RetryPolicy>;
  notes: string[];
}

/** A schedule the translator refuses to map: names the DAG and the expression. */
export class MwaaTranslationError extends Error {
  constructor(
    public readonly dagId: string,
    public readonly expression: string,
    reason: string,
  ) {
    super(`DAG ${dagId}: schedule ${expression} cannot be translated to a Temporal Schedule: ${reason}`);
    this.name = 'MwaaTranslationError';
  }
}

// Airflow's cron presets (airflow.utils.dates.cron_presets, plus croniter's aliases).
const PRESETS: Record<string, string> = {
  '@hourly': '0 * * * *',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@weekly': '0 0 * * 0',
  '@monthly': '0 0 1 * *',
  '@quarterly': '0 0 1 */3 *',
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
};

/** The logical date (Airflow's convention: the data interval's start) of the action scheduled at `fireTime`. */
export function logicalDateOfFire(t: ScheduleTranslation, fireTime: Date): Date | undefined {
  return previousFireTime(t, fireTime);
}

// ----------------------------------------------------------------------------------------------
// Translation

function describeInterval(x: AirflowScheduleInterval | undefined): string {
  if (x === undefined) return '(unknown)';
  if (x === null) return 'None';
  if (typeof x === 'string') return JSON.stringify(x);
  if (x.__type === 'CronExpression') return JSON.stringify(x.value);
  if (x.__type === 'TimeDelta') {
    const parts = [x.days ? `days=${x.days}` : '', x.seconds ? `seconds=${x.seconds}` : '', x.microseconds ? `microseconds=${x.microseconds}` : ''].filter(Boolean);
    return `timedelta(${parts.join(', ')})`;
  }
  return JSON.stringify(x);
}

/** "Timezone('Europe/Berlin')" or "Europe/Berlin" -> "Europe/Berlin"; default UTC. */
export function normalizeTimezone(tz: string | undefined): string {
  if (!tz) return 'UTC';
  const m = /Timezone\('([^']+)'\)/.exec(tz);
  const name = (m ? m[1]! : tz).trim();
  return name === '+00:00' || name === 'Etc/UTC' || name === 'UTC' ? 'UTC' : name;
}

function parseDate(dagId: string, field: string, value: string | undefined): Date | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new MwaaTranslationError(dagId, `${field}=${JSON.stringify(value)}`, 'not a date');
  return d;
}

function retryPolicyOf(task: AirflowTaskRetry): RetryPolicy {
  const delayMs = Math.round((task.retryDelaySeconds ?? 300) * 1000); // Airflow's default retry_delay: 5 minutes
  const exp = task.retryExponentialBackoff === true;
  const policy: RetryPolicy = {
    maximumAttempts: (task.retries ?? 0) + 1,
    initialInterval: delayMs,
    backoffCoefficient: exp ? 2 : 1,
  };
  if (task.maxRetryDelaySeconds !== undefined) policy.maximumInterval = Math.round(task.maxRetryDelaySeconds * 1000);
  else if (!exp) policy.maximumInterval = delayMs;
  return policy;
}

/** The smallest gap between consecutive fires over the next 16 (a cron's period). */
function periodMs(t: ScheduleTranslation, from: Date): number {
  if (t.kind === 'interval' && t.interval) return t.interval.everySeconds * 1000;
  let min = Number.POSITIVE_INFINITY;
  let prev = nextFireTime(t, from);
  for (let i = 0; i < 16 && prev; i++) {
    const next = nextFireTime(t, prev);
    if (!next) break;
    min = Math.min(min, next.getTime() - prev.getTime());
    prev = next;
  }
  return Number.isFinite(min) ? min : 24 * 3600_000;
}

const YEAR_MS = 365 * 24 * 3600_000;

/**
 * Translates a DAG's scheduling facts. Throws MwaaTranslationError for what cannot be mapped
 * exactly. `now` only anchors the sampling of a cron's period (for the catch-up window).
 */
export function translateDag(facts: AirflowDagFacts, now: Date = new Date()): ScheduleTranslation {
  const { dagId } = facts;
  const expression = describeInterval(facts.scheduleInterval);
  const notes: string[] = [];
  const fail = (why: string): never => {
    throw new MwaaTranslationError(dagId, expression, why);
  };
  const raw = facts.scheduleInterval;
  if (raw === undefined) return fail('Airflow did not report the schedule (give it explicitly, e.g. --schedule @daily)');
  const timezone = normalizeTimezone(facts.timezone);
  if (!isValidTimezone(timezone)) fail(`unknown timezone ${JSON.stringify(facts.timezone)}`);
  if (facts.catchup === undefined) fail('Airflow did not report catchup (give it explicitly, e.g. --catchup false)');
  const catchup = facts.catchup === true;

  let kind: ScheduleTranslation['kind'];
  let cron: string[] = [];
  let interval: ScheduleTranslation['interval'];
  const startDate = parseDate(dagId, 'start_date', facts.startDate);
  const endDate = parseDate(dagId, 'end_date', facts.endDate);

  let cronText: string | undefined;
  if (raw === null || raw === 'None' || raw === 'null') {
    const desc = (facts.timetableDescription ?? '').trim();
    // Airflow 2.2+ reports a custom Timetable (or a dataset trigger) as a null interval with a description.
    if (desc !== '' && !/^Never/i.test(desc)) fail(`a custom timetable ("${desc}"), which has no Temporal equivalent here`);
    kind = 'none';
  } else if (typeof raw === 'string') {
    cronText = raw;
  } else if (raw.__type === 'CronExpression' && typeof raw.value === 'string') {
    cronText = raw.value;
  } else if (raw.__type === 'TimeDelta') {
    if (raw.microseconds) fail('a timedelta with microseconds');
    const seconds = (raw.days ?? 0) * 86_400 + (raw.seconds ?? 0);
    if (!Number.isInteger(seconds) || seconds <= 0) fail('a timedelta that is not a positive whole number of seconds');
    if (!startDate) fail('a timedelta schedule needs start_date to align its ticks');
    const everyMs = seconds * 1000;
    interval = { everySeconds: seconds, offsetSeconds: ((startDate!.getTime() % everyMs) + everyMs) % everyMs / 1000 };
    kind = 'interval';
  } else {
    fail(`a ${raw.__type ?? 'custom'} schedule (only cron expressions, presets and timedeltas map exactly)`);
  }

  if (cronText !== undefined) {
    const text = cronText.trim();
    if (text === '@once') kind = 'once';
    else if (text === '@continuous') fail('@continuous (back-to-back runs) is not a calendar schedule');
    else if (text.startsWith('@')) {
      if (!PRESETS[text]) fail(`unknown preset ${text}`);
      cron = canonicalCrons(parseCron(PRESETS[text]!));
      kind = 'cron';
    } else {
      try {
        cron = canonicalCrons(parseCron(text));
      } catch (err) {
        if (err instanceof CronSyntaxError) fail(err.reason);
        throw err;
      }
      kind = 'cron';
    }
  }

  const t: ScheduleTranslation = {
    dagId,
    expression,
    kind: kind!,
    cron,
    interval,
    timezone,
    catchup,
    overlap: 'ALLOW_ALL',
    catchupWindowMs: YEAR_MS,
    notes,
  };

  if (t.kind === 'cron' || t.kind === 'interval') {
    // First logical date = first tick >= start_date; its run is the first action.
    if (startDate) {
      const firstLogical = t.kind === 'interval' ? startDate : nextFireTime(t, new Date(startDate.getTime() - 1));
      if (firstLogical) t.startAt = new Date(firstLogical.getTime() + 1000);
    }
    if (endDate) t.endAt = nextFireTime(t, endDate);
    if (catchup) {
      t.catchupWindowMs = YEAR_MS;
      notes.push('catchup=True: missed runs within a year are caught up; dates before the cutover are a backfill (npm run schedule -- backfill, or temporal schedule backfill)');
    } else {
      t.catchupWindowMs = Math.max(10_000, periodMs(t, now));
      notes.push('catchup=False: the catch-up window is one period, so after an outage only the latest missed run starts, as in Airflow');
    }
  } else if (t.kind === 'once') {
    notes.push('@once: the DAG runs once at start_date; there is no recurring schedule to migrate (trigger it on demand instead)');
  } else {
    notes.push('schedule None: the DAG only runs when triggered; there is no schedule to migrate (trigger it on demand instead)');
  }

  const maxActive = facts.maxActiveRuns;
  if (maxActive === 1) t.overlap = catchup ? 'BUFFER_ALL' : 'BUFFER_ONE';
  else {
    t.overlap = 'ALLOW_ALL';
    notes.push(`max_active_runs=${maxActive ?? '(default 16)'}: Temporal cannot cap concurrent runs at N, so overlapping runs are allowed (ALLOW_ALL)`);
  }

  const tasks = facts.tasks ?? [];
  if (tasks.length === 0) notes.push('task retry settings unknown: choose the activity retry policies explicitly');
  else {
    const byTask: Record<string, RetryPolicy> = {};
    for (const task of tasks) byTask[task.taskId] = retryPolicyOf(task);
    const distinct = new Set(Object.values(byTask).map((p) => JSON.stringify(p)));
    if (distinct.size === 1) t.retry = Object.values(byTask)[0];
    else t.retryByTask = byTask;
  }
  return t;
}

/** One line per policy, for printing. */
export function describeRetry(p: RetryPolicy): string {
  const ms = (v: RetryPolicy['initialInterval']) => (typeof v === 'number' ? formatDuration(v) : String(v));
  return `maximumAttempts ${p.maximumAttempts}, initialInterval ${ms(p.initialInterval)}, backoffCoefficient ${p.backoffCoefficient}${p.maximumInterval !== undefined ? `, maximumInterval ${ms(p.maximumInterval)}` : ''}`;
}

// ----------------------------------------------------------------------------------------------
// Cutover arithmetic

export interface AirflowRunFacts {
  runId: string;
  logicalDate: string;
  state: string;
  /** The run's data interval end (= when Airflow started it); absent from the old CLI. */
  dataIntervalEnd?: string;
}

export interface CutoverWindow {
  /** What the first action follows: Airflow's last scheduled run, the DAG's start_date, or now. */
  basis: 'last-run' | 'start-date' | 'now';
  /** The logical date the first Temporal action stands for. */
  firstLogicalDate?: Date;
  /** The schedule's start time: one second after Airflow's last fire time (excluded). */
  startAt?: Date;
  /** When Temporal fires first (the first time Airflow would have fired after its last run). */
  firstFire?: Date;
  /** Fire times in [firstFire, now]: neither Airflow nor the new schedule runs them (backfill them). */
  missed: Date[];
}

/**
 * Where Temporal takes over. Airflow fired its last run (logical date L) at F = L's data
 * interval end; the schedule starts at F + 1 s, so its first action is the first tick after F:
 * Airflow's next run, never L again (no double run) and nothing between (no gap). Ticks that
 * are already past (the DAG was paused or behind before the cutover) are reported in `missed`.
 */
export function cutoverWindow(t: ScheduleTranslation, lastRun: AirflowRunFacts | undefined, now: Date): CutoverWindow {
  if (t.kind !== 'cron' && t.kind !== 'interval') return { basis: 'now', missed: [] };
  let lastFire: Date | undefined;
  let basis: CutoverWindow['basis'] = 'now';
  if (lastRun) {
    basis = 'last-run';
    lastFire = lastRun.dataIntervalEnd ? new Date(lastRun.dataIntervalEnd) : nextFireTime(t, new Date(lastRun.logicalDate));
  } else if (t.startAt) {
    basis = 'start-date';
    lastFire = new Date(t.startAt.getTime() - 1000); // the first logical date itself: excluded
  }
  const startAt = lastFire ? new Date(lastFire.getTime() + 1000) : undefined;
  const firstFire = nextFireTime(t, lastFire ?? now);
  const missed: Date[] = [];
  for (let f = firstFire; f && f <= now && missed.length < 1000; f = nextFireTime(t, f)) missed.push(f);
  const withinEnd = (d: Date | undefined) => (d && t.endAt && d > t.endAt ? undefined : d);
  return {
    basis,
    startAt,
    firstFire: withinEnd(firstFire),
    firstLogicalDate: firstFire ? logicalDateOfFire(t, firstFire) : undefined,
    missed: missed.filter((d) => withinEnd(d)),
  };
}
