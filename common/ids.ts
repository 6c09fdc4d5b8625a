/**
 * Workflow identity: the id of every workflow pinflow starts, the daily schedule's id, and the
 * pipeline-prefix rule every input and option is checked against. Pure (workflows import it).
 *
 * Ids (a prefix is 1-48 of [a-z0-9_-], see PREFIX_PATTERN):
 * - `landing-<prefix>`: one lander per prefix (follow or untilNow), the daily pipeline's child too.
 * - `cleaning-<prefix>`: one batch cleaning run per prefix at a time, the daily pipeline's child too.
 * - `streaming-<prefix>-<topic>`: one streaming workflow per Kinesis stream (named the same).
 * - `daily-pipeline-<prefix>-<YYYY-MM-DD>`: the canonical daily pipeline run of a date.
 * - `daily-pipeline-<prefix>`: the daily schedule, and its runs' id prefix (Temporal appends the
 *   scheduled time).
 * - `emulation-<prefix>-<UTC time to the ms>-<nonce>`: a new id per emulation start.
 * - `doctor-<prefix>-<ISO time with - for : and .>`: one doctor run.
 */

/** A pipeline prefix: names topics, streams, tables, workflows and the warehouse schema. */
export const PREFIX_PATTERN = /^[a-z0-9][a-z0-9_-]{0,47}$/;
/** PREFIX_PATTERN in words (configuration errors). */
export const PREFIX_RULE = 'must be 1-48 lowercase letters, digits, "-" or "_", starting with a letter or digit';

/**
 * The problem with a prefix, or undefined when it is one: `<label> "<prefix>" is not <what>`
 * (e.g. `prefix "Bad!" is not a pipeline prefix`, `--prefix "x y" is not a pipeline prefix`).
 */
export function prefixProblem(prefix: unknown, label = 'prefix', what = 'a pipeline prefix'): string | undefined {
  return typeof prefix === 'string' && PREFIX_PATTERN.test(prefix) ? undefined : `${label} ${JSON.stringify(prefix)} is not ${what}`;
}

export const landingWorkflowId = (prefix: string) => `landing-${prefix}`;
export const cleaningWorkflowId = (prefix: string) => `cleaning-${prefix}`;
/** Also the name of the Kinesis stream the workflow reads (pipeline-spec.md section 2). */
export const streamingWorkflowId = (prefix: string, topic: string) => `streaming-${prefix}-${topic}`;
export const dailyWorkflowId = (prefix: string, date: string) => `daily-pipeline-${prefix}-${date}`;
/** The default daily schedule id, and the id prefix of the runs the schedule starts. */
export const dailyScheduleId = (prefix: string) => `daily-pipeline-${prefix}`;
/** `nonce` (e.g. 6 random hex digits) keeps two starts in the same millisecond apart. */
export const emulationWorkflowId = (prefix: string, at: Date, nonce: string) => `emulation-${prefix}-${at.toISOString().replace(/[-:.]/g, '')}-${nonce}`;
export const doctorWorkflowId = (prefix: string, at: Date) => `doctor-${prefix}-${at.toISOString().replace(/[:.]/g, '-')}`;
