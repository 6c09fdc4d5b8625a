/**
 * The daily pipeline's contract: input, result, ids and date rules. Pure (workflows import it).
 *
 * Logical date, as in Airflow: the run a schedule starts at 00:00 UTC on day D+1 processes
 * day D (the day that has just ended). A manual run names its date (default: today, UTC).
 */
import type { CleaningResult } from './cleaning';

export interface DailyPipelineInput {
  prefix: string;
  /** `YYYY-MM-DD`. Unset: the day before the schedule's start time (scheduled runs). */
  date?: string;
  /** Key prefix for the outputs (tests); default '' = `cleaned/` and `analytics/` at the bucket root. */
  outputRoot?: string;
}

export type DailyStage = 'starting' | 'landing' | 'cleaning' | 'analytics' | 'done' | 'failed';

export interface DailyStatus {
  date: string;
  stage: DailyStage;
  children: Partial<Record<'landing' | 'cleaning', string>>;
  stageMs: Partial<Record<'landing' | 'cleaning', number>>;
}

export interface DailyPipelineResult {
  date: string;
  prefix: string;
  landing: { records: number; objects: number; deadLetters: number };
  cleaning: CleaningResult;
  /** Wall time of each stage as the workflow saw it. */
  stageMs: Record<'landing' | 'cleaning', number>;
}

export const dailyWorkflowId = (prefix: string, date: string) => `daily-pipeline-${prefix}-${date}`;
export const scheduleId = (prefix: string) => `daily-pipeline-${prefix}`;

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
