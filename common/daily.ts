/**
 * The daily pipeline's contract: input, result, ids and date rules. Pure (workflows import it).
 *
 * Logical date, as in Airflow: the run a schedule starts at 00:00 UTC on day D+1 processes
 * day D (the day that has just ended). A manual run names its date (default: today, UTC).
 *
 * The optional legacy stage (`legacyDag`) runs an MWAA DAG for the same logical date between
 * landing and cleaning, while tasks move off MWAA one at a time: its DAG run id is derived from
 * the pipeline's workflow id (prefix + date), so retries and reruns of a date adopt one run.
 *
 * The optional `deadline` makes a run that is not done in time raise a `late` alert and go on
 * (its rules and the alerts' shape: common/alerts.ts).
 */
import type { CleaningResult } from './cleaning';
import type { IntervalSummary } from './interval';

export interface DailyPipelineInput {
  prefix: string;
  /** `YYYY-MM-DD`. Unset: the day before the schedule's start time (scheduled runs). */
  date?: string;
  /** Key prefix for the outputs (tests); default '' = `cleaned/` and `analytics/` at the bucket root. */
  outputRoot?: string;
  /** A legacy MWAA DAG to run for this date after landing and before cleaning (see LegacyDagInput). */
  legacyDag?: LegacyDagInput;
  /**
   * When the run should be done, as a duration after its interval end (D+1 00:00 UTC): `6h`,
   * `90m`, `1h30m`. Passed: a `late` alert while the run goes on (common/alerts.ts).
   */
  deadline?: string;
}

/** The legacy stage: one run of an MWAA DAG (Airflow 2) for the pipeline's logical date (`<date>T00:00:00Z`). */
export interface LegacyDagInput {
  /** MWAA environment name. */
  environment: string;
  dagId: string;
  /** The DAG run's conf (JSON; stored in Temporal's history and in Airflow: no secrets). Default {}. */
  conf?: Record<string, unknown>;
  /** Between two polls of the run. Default 10 s (50 ms .. 5 min). */
  pollIntervalMs?: number;
  /** How long the stage waits for the run to end before failing the pipeline (the run goes on). Default 6 h. */
  timeoutMs?: number;
}

/** The legacy DAG run as the pipeline last saw it (status query, result). */
export interface LegacyDagStatus {
  environment: string;
  dagId: string;
  dagRunId: string;
  /** `<date>T00:00:00.000Z`. */
  logicalDate: string;
  /** Airflow's state (queued, running, success, failed), or `triggering` before the first answer. */
  state: string;
  /** The run already existed (an earlier attempt or run of this date created it). */
  adopted?: boolean;
  startDate?: string;
  endDate?: string;
}

export type DailyStage = 'starting' | 'landing' | 'legacy-dag' | 'cleaning' | 'analytics' | 'done' | 'failed';

export interface DailyStatus {
  date: string;
  stage: DailyStage;
  children: Partial<Record<'landing' | 'cleaning', string>>;
  stageMs: Partial<Record<'landing' | 'legacyDag' | 'cleaning', number>>;
  /** Present when the run has a legacy stage. */
  legacyDag?: LegacyDagStatus;
  /** The date's data interval, once resolved (common/interval.ts). */
  interval?: IntervalSummary;
  /** The deadline instant (ISO-8601), when the run has one; `late` once it passed before the run was done. */
  deadline?: string;
  late?: boolean;
}

export interface DailyPipelineResult {
  date: string;
  prefix: string;
  landing: { records: number; objects: number; deadLetters: number };
  cleaning: CleaningResult;
  /** Wall time of each stage as the workflow saw it. */
  stageMs: Record<'landing' | 'cleaning', number> & { legacyDag?: number };
  /** The legacy DAG run (state `success`), when the run had a legacy stage. */
  legacyDag?: LegacyDagStatus;
  /** True when the run's deadline passed before it was done (a `late` alert was raised). */
  late?: boolean;
  /**
   * The date's data interval (common/interval.ts): what landing landed up to and cleaning was
   * given. Absent only in a run replayed from a history without the `daily-intervals` patch.
   */
  interval?: IntervalSummary;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Problems with a logical date, given "now" (ms since epoch, UTC). */
export function dateProblems(date: string, nowMs: number): string[] {
  const m = DATE.exec(date);
  if (!m) return [`date ${JSON.stringify(date)} is not YYYY-MM-DD`];
  const t = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!);
  const back = new Date(t);
  if (back.getUTCFullYear() !== +m[1]! || back.getUTCMonth() !== +m[2]! - 1 || back.getUTCDate() !== +m[3]!) return [`date ${date} does not exist`];
  const today = new Date(nowMs).toISOString().slice(0, 10);
  if (date > today) return [`date ${date} is in the future (today is ${today} UTC)`];
  return [];
}

/** The logical date of a scheduled run: the UTC day before its scheduled start. */
export function logicalDateOf(scheduledStart: Date): string {
  return new Date(scheduledStart.getTime() - 24 * 3600 * 1000).toISOString().slice(0, 10);
}

export const todayUtc = (nowMs: number) => new Date(nowMs).toISOString().slice(0, 10);

// ---------------------------------------------------------------------------------------------
// The legacy stage

export const LEGACY_DAG_DEFAULTS = { pollIntervalMs: 10_000, timeoutMs: 6 * 3600_000 } as const;
const MWAA_ENVIRONMENT_NAME = /^[a-zA-Z][0-9a-zA-Z_-]{0,79}$/;
const AIRFLOW_DAG_ID = /^[A-Za-z0-9_.-]{1,250}$/;

const ENV_RULE = 'an MWAA environment name: a letter, then up to 79 letters, digits, - or _';
const DAG_RULE = 'an Airflow DAG id: 1-250 letters, digits, _ . -';

/** Problems with a legacy stage's input, each naming its field (empty: fine). */
export function legacyDagProblems(legacy: unknown, field = 'legacyDag'): string[] {
  if (legacy === undefined) return [];
  if (legacy === null || typeof legacy !== 'object' || Array.isArray(legacy)) return [`${field} must be an object {environment, dagId, conf?}`];
  const l = legacy as Record<string, unknown>;
  const out: string[] = [];
  if (typeof l.environment !== 'string' || !MWAA_ENVIRONMENT_NAME.test(l.environment)) out.push(`${field}.environment ${JSON.stringify(l.environment)} is not ${ENV_RULE}`);
  if (typeof l.dagId !== 'string' || !AIRFLOW_DAG_ID.test(l.dagId)) out.push(`${field}.dagId ${JSON.stringify(l.dagId)} is not ${DAG_RULE}`);
  if (l.conf !== undefined && (l.conf === null || typeof l.conf !== 'object' || Array.isArray(l.conf))) out.push(`${field}.conf must be a JSON object`);
  if (l.pollIntervalMs !== undefined && !(typeof l.pollIntervalMs === 'number' && l.pollIntervalMs >= 50 && l.pollIntervalMs <= 300_000)) out.push(`${field}.pollIntervalMs must be a number of milliseconds from 50 to 300000`);
  if (l.timeoutMs !== undefined && !(typeof l.timeoutMs === 'number' && l.timeoutMs >= 1_000)) out.push(`${field}.timeoutMs must be a number of milliseconds, at least 1000`);
  for (const k of Object.keys(l)) if (!['environment', 'dagId', 'conf', 'pollIntervalMs', 'timeoutMs'].includes(k)) out.push(`${field}.${k} is not a known field`);
  return out;
}

/**
 * `ENV/DAG` (the CLI's `--legacy-dag`) -> {environment, dagId}; throws an Error naming `flag`,
 * the value and the expected form.
 */
export function parseLegacyDag(text: string, flag = '--legacy-dag'): LegacyDagInput {
  const m = /^([^/]*)\/([^/]*)$/.exec(text);
  if (!m) throw new Error(`${flag} ${JSON.stringify(text)} must be ENVIRONMENT/DAG_ID (${ENV_RULE}; ${DAG_RULE})`);
  const [, environment, dagId] = m as unknown as [string, string, string];
  const problems: string[] = [];
  if (!MWAA_ENVIRONMENT_NAME.test(environment)) problems.push(`${flag} ${JSON.stringify(text)}: ${JSON.stringify(environment)} is not ${ENV_RULE}`);
  if (!AIRFLOW_DAG_ID.test(dagId)) problems.push(`${flag} ${JSON.stringify(text)}: ${JSON.stringify(dagId)} is not ${DAG_RULE}`);
  if (problems.length) throw new Error(problems.join('\n'));
  return { environment, dagId };
}

/** FNV-1a, 32 bits: a short, stable digest (no Node built-ins: workflows use it). */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * The legacy DAG run id of a pipeline run: `pinflow__<YYYYMMDD>_<7 base-36 digits of a hash of
 * the workflow id>` (25 characters: InvokeRestApi paths are at most 64, so a DAG id of up to 24
 * characters fits). The same for every attempt and rerun of that workflow id (one per prefix and
 * date), different for another prefix on the same date.
 */
export function legacyDagRunId(workflowId: string, date: string): string {
  return `pinflow__${date.replace(/-/g, '')}_${fnv1a(workflowId).toString(36).padStart(7, '0')}`;
}

/** The logical date of the legacy DAG run for a pipeline date: midnight UTC, as Airflow's @daily. */
export const legacyLogicalDate = (date: string) => `${date}T00:00:00.000Z`;

/**
 * The schedule times a backfill of logical dates `from` .. `to` must cover: a run scheduled on
 * day D+1 (at whatever time the cron says) processes day D, so the window is day from+1
 * 00:00 UTC up to the end of day to+1 (both ends inclusive, as Temporal's backfill takes them).
 */
export function backfillWindow(from: string, to: string): { start: Date; end: Date } {
  const day = 86_400_000;
  return { start: new Date(Date.parse(`${from}T00:00:00Z`) + day), end: new Date(Date.parse(`${to}T00:00:00Z`) + 2 * day - 1_000) };
}
