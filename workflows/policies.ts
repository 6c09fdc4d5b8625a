/**
 * How pinflow's workflows treat failure, in one place: the retry policies and activity option
 * sets each workflow passes to `proxyActivities`, and the rule that bad input fails a run at
 * once (non-retryable, naming every problem). Workflow-safe (workflows import it).
 *
 * Every policy backs off exponentially (coefficient 2). Errors typed `NonRetryable.*`
 * (common/errors.ts) that a policy lists stop the run at once; everything else is retried.
 */
import type { Duration } from '@temporalio/common';
import { ActivityCancellationType, ApplicationFailure, type ActivityOptions, type RetryPolicy } from '@temporalio/workflow';
import { NonRetryable } from '../common/errors';
import { MWAA_DAG_RUN_FAILED } from '../mwaa/failures';

/** Bad input, a missing resource, access denied, bad configuration: retrying cannot help. */
export const FATAL_ERRORS = [NonRetryable.badInput, NonRetryable.missingResource, NonRetryable.auth, NonRetryable.config];

const backoff = (initialInterval: Duration, maximumInterval: Duration, rest: Partial<RetryPolicy> = {}): RetryPolicy => ({ initialInterval, backoffCoefficient: 2, maximumInterval, ...rest });

/**
 * Throws the failure that ends a run whose input has problems (undefined entries are no
 * problem): `invalid <what> input: <p1>; <p2>`.
 */
export function rejectInvalidInput(what: string, problems: ReadonlyArray<string | undefined>): void {
  const found = problems.filter((p) => p !== undefined);
  if (found.length) throw ApplicationFailure.nonRetryable(`invalid ${what} input: ${found.join('; ')}`, NonRetryable.badInput);
}

/** Set-up calls (planning, creating a stream): retried for a few minutes, then the run fails. */
export const SETUP_RETRY = backoff('1 second', '30 seconds', { maximumAttempts: 30 });

// ---------------------------------------------------------------------------------------------
// landingWorkflow

/** Planning is quick: retried for a few minutes, then the run fails (a missing bucket fails at once). */
export const LANDING_PLAN: ActivityOptions = { startToCloseTimeout: '2 minutes', heartbeatTimeout: '1 minute', retry: SETUP_RETRY };

/**
 * Landing a topic can take long; it heartbeats every object (and every 5 s), and a retry
 * resumes from the last object it reported. Outages of Kafka or S3 are retried until they end.
 */
export const LANDING_WRITE: ActivityOptions = {
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '30 seconds',
  retry: backoff('1 second', '30 seconds', { nonRetryableErrorTypes: [NonRetryable.conflict] }),
};

/**
 * Resolving a date's interval: a few Kafka lookups and S3 reads, more when earlier dates are
 * resolved with it; heartbeats after each S3 listing page, partition and date looked up, so a
 * large bucket is no reason to time out. Retried for a few minutes, then the run fails.
 */
export const INTERVAL_RESOLVE: ActivityOptions = { startToCloseTimeout: '15 minutes', heartbeatTimeout: '1 minute', retry: SETUP_RETRY };

// ---------------------------------------------------------------------------------------------
// streamingWorkflow

/** Ensuring the stream exists. */
export const STREAMING_SETUP: ActivityOptions = { startToCloseTimeout: '2 minutes', retry: SETUP_RETRY };

/**
 * Reading: retried without limit (an outage of Kinesis or the warehouse is waited out, then
 * the stream resumes where it was); a dead worker is noticed within the heartbeat timeout. A
 * stop cancels the activity, which finishes the batch it is writing and returns normally.
 */
export const STREAMING_READ: ActivityOptions = {
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '15 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: backoff('1 second', '20 seconds', { nonRetryableErrorTypes: [NonRetryable.conflict] }),
};

// ---------------------------------------------------------------------------------------------
// emulationWorkflow

/** Set-up calls: a few quick retries, then fail (a missing table is non-retryable anyway). */
export const EMULATION_SETUP: ActivityOptions = { startToCloseTimeout: '1 minute', retry: backoff('1 second', '30 seconds', { maximumAttempts: 20 }) };

/**
 * Batches: retried without limit with backoff capped at 20 s, so an outage of MySQL or Kafka
 * is waited out and the run resumes where it was; the heartbeat timeout notices a dead worker
 * within 10 s (a batch heartbeats after each step and every 2 s while it sends, so a slow
 * transaction is never taken for a dead worker). Non-retryable failures (missing table/column,
 * bad input, auth) stop the run.
 */
export const EMULATION_BATCH: ActivityOptions = { startToCloseTimeout: '5 minutes', heartbeatTimeout: '10 seconds', retry: backoff('500 milliseconds', '20 seconds') };

// ---------------------------------------------------------------------------------------------
// batchCleaningWorkflow

/**
 * Listing only: quick, retried through short outages (a prefix with very many objects can take
 * minutes to list, so the start-to-close timeout stays generous).
 */
export const CLEANING_INVENTORY: ActivityOptions = { startToCloseTimeout: '5 minutes', retry: backoff('2 seconds', '1 minute', { maximumAttempts: 10, nonRetryableErrorTypes: FATAL_ERRORS }) };

/**
 * The cleaning run heartbeats at least every 5 s (a timer, besides download progress and each
 * statement); a worker that dies is noticed within the 30 s heartbeat timeout and the run
 * starts again from the objects.
 */
export const CLEANING_RUN: ActivityOptions = {
  startToCloseTimeout: '3 hours',
  heartbeatTimeout: '30 seconds',
  retry: backoff('5 seconds', '2 minutes', { maximumAttempts: 10, nonRetryableErrorTypes: FATAL_ERRORS }),
};

// ---------------------------------------------------------------------------------------------
// doctorWorkflow

/** A doctor must answer quickly: three tries over a few seconds, then report the system down. */
export const DOCTOR_CHECK: ActivityOptions = { startToCloseTimeout: '30 seconds', retry: { maximumAttempts: 3, initialInterval: '500 milliseconds', backoffCoefficient: 2 } };

// ---------------------------------------------------------------------------------------------
// dailyPipelineWorkflow's legacy stage (an MWAA DAG run)

/**
 * Throttling, 5xx, network errors and a lost worker are retried (12 attempts, about 13 minutes
 * in all, before the pipeline fails); a failed DAG run, bad input, access denied, an unknown
 * environment/DAG or a conflicting run are not. Retries are safe: the trigger adopts the run an
 * earlier attempt created, the wait only reads.
 */
export const LEGACY_DAG_RETRY = backoff('2 seconds', '2 minutes', { maximumAttempts: 12, nonRetryableErrorTypes: [...FATAL_ERRORS, NonRetryable.conflict, MWAA_DAG_RUN_FAILED] });

/**
 * Triggering: a few Airflow calls. The workflow waits for a cancelled trigger to finish, so the
 * run it may still create can be stopped.
 */
export const LEGACY_DAG_TRIGGER: ActivityOptions = { startToCloseTimeout: '5 minutes', retry: LEGACY_DAG_RETRY, cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED };

/**
 * Waiting for a state change: returns within `maxWaitMs`, heartbeating every poll; one slow
 * Airflow answer (the SDK retries for up to ~2 min) is tolerated.
 */
export const legacyDagWait = (maxWaitMs: number, pollIntervalMs: number): ActivityOptions => ({
  startToCloseTimeout: maxWaitMs + 300_000,
  heartbeatTimeout: 2 * pollIntervalMs + 120_000,
  retry: LEGACY_DAG_RETRY,
});

/** Marking the run failed after the pipeline was cancelled. */
export const LEGACY_DAG_STOP: ActivityOptions = { startToCloseTimeout: '2 minutes', retry: { ...LEGACY_DAG_RETRY, maximumAttempts: 5 } };

// ---------------------------------------------------------------------------------------------
// dailyPipelineWorkflow's alerts (a webhook call)

/**
 * Sending an alert: a 10 s request per attempt, 5 attempts over about a minute, then the
 * workflow logs that the alert was not delivered and goes on (an alert never fails a run).
 * A 4xx other than 408 / 429 is not retried (the activity throws it non-retryable).
 */
export const ALERT_SEND: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  scheduleToCloseTimeout: '3 minutes',
  retry: backoff('1 second', '20 seconds', { maximumAttempts: 5 }),
};
