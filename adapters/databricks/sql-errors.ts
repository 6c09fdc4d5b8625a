/**
 * How a Databricks SQL warehouse error becomes an activity error. Non-retryable (an
 * ApplicationFailure whose message names Databricks and the host, never the token): HTTP
 * 401/403 (auth), a warehouse path that does not exist (404), an untrusted TLS certificate,
 * and SQL errors the statement itself causes - syntax/analysis errors with a SQLSTATE such as
 * 42P01 TABLE_OR_VIEW_NOT_FOUND (badInput, with the server's message) - or a permission error
 * (auth). Everything else is retryable: 429, 5xx, connection refused/reset, timeouts,
 * transient SQLSTATE classes (08 connection, 2D/40 commit conflicts such as a Delta
 * concurrent write, 53 resources, 57 operator intervention, 58/XX/HY system errors).
 */
import { ApplicationFailure } from '@temporalio/common';
import { classify, NonRetryable } from '../../common/errors';
import { scrub } from './endpoint';

interface HttpStatusError {
  statusCode?: number;
  response?: { headers?: { get(name: string): string | null } };
}

/** HTTP status of a driver error: a THTTPException, or the driver's "retries exhausted" message. */
export function httpStatusOf(err: unknown): number | undefined {
  const e = err as HttpStatusError & { message?: string };
  if (typeof e?.statusCode === 'number') return e.statusCode;
  const m = /^Hive driver: (\d{3}) when connecting to resource/.exec(e?.message ?? '');
  return m ? Number(m[1]) : undefined;
}

const TLS_CERT_ERRORS = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * SQLSTATE classes worth retrying: the statement itself is fine, the system was not. 2D and 40
 * are commit conflicts (Delta's DELTA_CONCURRENT_APPEND and friends carry 2D521; 40001 is a
 * serialization failure), which succeed when the statement runs again.
 */
const TRANSIENT_SQLSTATE_CLASSES = new Set(['08', '2D', '40', '53', '57', '58', 'XX', 'HY']);

/** Error classes that mean the statement is wrong, for messages that carry no SQLSTATE. */
const STATEMENT_ERROR_CLASS = /^\[(PARSE_SYNTAX_ERROR|[A-Z_]*_NOT_FOUND|UNRESOLVED_[A-Z_]+|[A-Z_]*_ALREADY_EXISTS|DATATYPE_MISMATCH|INVALID_(?!HANDLE)[A-Z_]+|AMBIGUOUS_[A-Z_]+|CAST_INVALID_INPUT|DIVIDE_BY_ZERO)[\].]/;
const PERMISSION_ERROR_CLASS = /^\[(INSUFFICIENT_PERMISSIONS|PERMISSION_DENIED|UNAUTHORIZED_ACCESS)[\].]/;

type SqlKind = keyof typeof NonRetryable | 'retryable';

function sqlKind(sqlState: string | undefined, message: string): SqlKind {
  const state = sqlState?.trim().toUpperCase();
  if (PERMISSION_ERROR_CLASS.test(message) || state === '42501' || state?.startsWith('28')) return 'auth';
  if (state && /^[0-9A-Z]{5}$/.test(state)) return TRANSIENT_SQLSTATE_CLASSES.has(state.slice(0, 2)) ? 'retryable' : 'badInput';
  return STATEMENT_ERROR_CLASS.test(message) ? 'badInput' : 'retryable';
}

/**
 * One error from the driver as an activity error. `what` says which step failed
 * (e.g. `statement 2 of 5 (CREATE TABLE ...)`).
 */
const classified = new WeakSet<object>();

export function classifySql(err: unknown, address: string, token: string, what: string): Error {
  if (err instanceof ApplicationFailure || (typeof err === 'object' && err !== null && classified.has(err))) return err as Error;
  const failure = classifySqlOnce(err, address, token, what);
  classified.add(failure);
  return failure;
}

function classifySqlOnce(err: unknown, address: string, token: string, what: string): Error {
  const e = (err ?? {}) as { name?: string; message?: string; code?: string; errorCode?: string; response?: { sqlState?: string; errorMessage?: string; displayMessage?: string } };
  const status = httpStatusOf(err);
  const where = `Databricks at ${address}`;
  if (status === 401 || status === 403) {
    return ApplicationFailure.nonRetryable(
      `${where}: ${what} was refused with HTTP ${status}: the token in DATABRICKS_TOKEN is invalid, expired, or lacks access to this warehouse`,
      NonRetryable.auth,
    );
  }
  if (status === 404) {
    return ApplicationFailure.nonRetryable(`${where}: ${what} answered HTTP 404: no SQL warehouse at this DATABRICKS_HTTP_PATH`, NonRetryable.config);
  }
  if (typeof e.code === 'string' && TLS_CERT_ERRORS.has(e.code)) {
    return ApplicationFailure.nonRetryable(`${where}: the server's TLS certificate is not trusted (${e.code}); refusing to send the token`, NonRetryable.config);
  }
  // SQL errors: OperationStateError (the operation reached ERROR_STATE; the status response
  // carries sqlState) or StatusError (a call answered ERROR_STATUS; the driver keeps only the
  // message, where Databricks writes "[ERROR_CLASS] ... SQLSTATE: 42P01").
  const isOperationError = (err as object)?.constructor?.name === 'OperationStateError' && e.errorCode === 'ERROR';
  if (isOperationError || e.name === 'Status Error') {
    const serverMessage = scrub(e.response?.errorMessage ?? e.response?.displayMessage ?? e.message ?? String(err), token);
    const sqlState = e.response?.sqlState ?? /SQLSTATE:\s*([0-9A-Z]{5})/.exec(serverMessage)?.[1];
    const kind = sqlKind(sqlState, serverMessage);
    const message = `${where}: ${what} failed${sqlState ? ` (SQLSTATE ${sqlState})` : ''}: ${serverMessage}`;
    if (kind !== 'retryable') return ApplicationFailure.nonRetryable(message, NonRetryable[kind]);
    const wrapped = new Error(message, { cause: err });
    wrapped.name = 'DatabricksError';
    return wrapped;
  }
  const wrapped = classify('Databricks', address, err);
  wrapped.message = scrub(wrapped.message.replace(`${where}: `, `${where}: ${what}: `), token);
  return wrapped;
}

/** Seconds of Retry-After a refused request carried, if any. */
export function retryAfterOf(err: unknown): string | null | undefined {
  return (err as HttpStatusError)?.response?.headers?.get('Retry-After');
}

