/**
 * The failure types and run states of a legacy MWAA DAG run, shared by the legacy-DAG activities
 * (mwaa/activities.ts) and dailyPipelineWorkflow's legacy stage, which matches on them. Pure
 * constants: the one mwaa/ module workflows import.
 */

/** A DAG run ended in state `failed` (non-retryable: a retry would only adopt the same failed run). */
export const MWAA_DAG_RUN_FAILED = 'PinflowMwaaDagRunFailed';
/** A DAG run did not reach a terminal state within the caller's deadline (the run goes on in Airflow). */
export const MWAA_DAG_RUN_TIMED_OUT = 'PinflowMwaaDagRunTimedOut';
/** The Airflow states a DAG run does not leave by itself. */
export const TERMINAL_DAG_RUN_STATES: readonly string[] = ['success', 'failed'];
