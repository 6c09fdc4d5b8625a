/**
 * The daily pipeline's alerts: its deadline and what an alert says. Pure (workflows import it).
 *
 * Deadline: `DailyPipelineInput.deadline` is a duration after the end of the run's data
 * interval (D+1 00:00 UTC for logical date D), written as whole units, largest first: `6h`,
 * `90m`, `1h30m`, `2d`, `45s` (0 .. 30 days). A run not done by then is late: the workflow
 * raises a `late` alert and goes on. A run that fails raises a `failed` alert.
 *
 * An alert is a search attribute (`PipelineLate`, late only), a metric and a log line in the
 * worker, and a call of the `sendAlert` activity, which POSTs an AlertBody to the webhook
 * ALERT_WEBHOOK_URL names (a secret setting: it never appears in an input, a result or an error).
 */
import { intervalBounds } from './interval';

export type AlertKind = 'late' | 'failed';

/** What the workflow hands `sendAlert` (the activity adds the run's ids and UI link). */
export interface AlertInput {
  kind: AlertKind;
  prefix: string;
  date: string;
  /** The deadline instant, ISO-8601 (when the run has one). */
  deadline?: string;
  message: string;
}

/** The JSON body POSTed to the webhook. */
export interface AlertBody {
  kind: AlertKind;
  prefix: string;
  date: string;
  workflowId: string;
  runId: string;
  /** The deadline instant, ISO-8601; null when the run has none. */
  deadline: string | null;
  /** The run in the Temporal Web UI. */
  uiUrl?: string;
  message: string;
}

/** What `sendAlert` did. */
export interface AlertDelivery {
  /** False when no webhook is configured (ALERT_WEBHOOK_URL unset). */
  delivered: boolean;
  /** The webhook's HTTP status. */
  status?: number;
}

/** The longest deadline taken (a longer one is a typo). */
export const MAX_DEADLINE_MS = 30 * 86_400_000;

const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000 } as const;
const DEADLINE = /^(?:\d+d)?(?:\d+h)?(?:\d+m)?(?:\d+s)?$/;
const DEADLINE_RULE = 'a duration such as 6h, 90m, 1h30m or 2d (whole d, h, m, s, largest first; at most 30d)';

/** `6h`, `1h30m`, ... -> milliseconds; throws a TypeError naming `field`, the value and the rule. */
export function parseDeadline(text: string, field = 'deadline'): number {
  const t = typeof text === 'string' ? text.trim() : '';
  if (t === '' || !DEADLINE.test(t)) throw new TypeError(`${field} ${JSON.stringify(text)} is not ${DEADLINE_RULE}`);
  let ms = 0;
  for (const [, n, unit] of t.matchAll(/(\d+)([dhms])/g)) ms += Number(n) * UNIT_MS[unit as keyof typeof UNIT_MS];
  if (ms > MAX_DEADLINE_MS) throw new TypeError(`${field} ${JSON.stringify(text)} is more than 30 days after the interval end`);
  return ms;
}

/** Problems with a deadline (empty: fine, or not given). */
export function deadlineProblems(deadline: unknown, field = 'deadline'): string[] {
  if (deadline === undefined) return [];
  if (typeof deadline !== 'string') return [`${field} must be a string, ${DEADLINE_RULE}`];
  try {
    parseDeadline(deadline, field);
    return [];
  } catch (err) {
    return [(err as Error).message];
  }
}

/** The instant (epoch ms) a run of `date` is due: its interval end plus `deadline`. */
export function deadlineInstant(date: string, deadline: string): number {
  return intervalBounds(date).endMs + parseDeadline(deadline);
}
