/**
 * Databricks adapter: the only module that talks to Databricks.
 *
 * - `createDatabricksSql`: statements and queries on a SQL warehouse through `@databricks/sql`
 *   (Thrift TCLIService over HTTPS), one session reused across statements.
 * - `createDatabricksJobs`: one-time runs through the Jobs API 2.1 (`runs/submit` with an
 *   idempotency token, `runs/get`, `runs/cancel`) over `fetch`.
 * - `databricksActivities`: the `runDatabricksJob` activity (submit, poll with heartbeats,
 *   cancel the run when the activity is cancelled).
 *
 * Errors are classified on purpose. Non-retryable (an ApplicationFailure whose message names
 * Databricks and the host, never the token): HTTP 401/403 (auth), SQL errors the statement
 * itself causes - syntax/analysis errors with a SQLSTATE such as 42P01 TABLE_OR_VIEW_NOT_FOUND
 * (badInput, with the server's message) - a warehouse path that does not exist, an untrusted
 * TLS certificate, a rejected Jobs request (badInput / missingResource) and a job run that
 * ended without success. Everything else is retryable: 429, 5xx, connection refused/reset,
 * timeouts, transient SQLSTATE classes (08 connection, 2D/40 commit conflicts such as a Delta
 * concurrent write, 53 resources, 57 operator intervention, 58/XX/HY system errors).
 */
import https from 'node:https';
import tls from 'node:tls';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { DBSQLClient, LogLevel } from '@databricks/sql';
import type IDBSQLSession from '@databricks/sql/dist/contracts/IDBSQLSession';
import type IOperation from '@databricks/sql/dist/contracts/IOperation';
import type { Config } from '../config';
import { classify, NonRetryable } from '../common/errors';

export type DatabricksConfig = Config['warehouse']['databricks'];

/** ApplicationFailure type of a job run that ended without success (non-retryable). */
export const DATABRICKS_RUN_FAILED = 'PinflowDatabricksRunFailed';

// ---------------------------------------------------------------------------------------------
// Shared helpers

interface Endpoint {
  /** `https:` unless an explicit `http://` loopback address was configured (tests, local proxies). */
  protocol: 'https:' | 'http:';
  hostname: string;
  port: number;
  /** host[:port] as it appears in messages. */
  address: string;
  origin: string;
}

function configFailure(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, NonRetryable.config);
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** DATABRICKS_HOST as `adb-123.4.azuredatabricks.net`, `https://dbc-x.cloud.databricks.com/` or `127.0.0.1:8443`. */
function parseEndpoint(host: string | undefined): Endpoint {
  if (!host) throw configFailure('Databricks: DATABRICKS_HOST is not set');
  let u: URL;
  try {
    u = new URL(/^[a-z]+:\/\//i.test(host) ? host : `https://${host}`);
  } catch {
    throw configFailure(`Databricks: DATABRICKS_HOST ${JSON.stringify(host)} is not a host name or https URL`);
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && LOOPBACK.has(u.hostname))) {
    throw configFailure(`Databricks at ${u.host}: only https is allowed (plain http only for a loopback address); the token must not travel in clear text`);
  }
  if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.username) {
    throw configFailure(`Databricks: DATABRICKS_HOST must be the workspace host only, without path, query or credentials (got ${u.host}${u.pathname})`);
  }
  const protocol = u.protocol as Endpoint['protocol'];
  const port = u.port ? Number(u.port) : protocol === 'https:' ? 443 : 80;
  return { protocol, hostname: u.hostname, port, address: u.host, origin: `${protocol}//${u.host}` };
}

function requireToken(config: DatabricksConfig, address: string): string {
  if (!config.token) throw configFailure(`Databricks at ${address}: DATABRICKS_TOKEN is not set`);
  return config.token;
}

/** Removes the token from text that may echo it (server messages, URLs). */
function scrub(text: string, token: string): string {
  return token.length >= 4 ? text.split(token).join('***') : text;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function defaultWarn(message: string): void {
  try {
    Context.current().log.warn(message);
  } catch {
    console.warn(message);
  }
}

export interface RetryOptions {
  /** Total attempts of one request (first try included). */
  maxAttempts: number;
  /** First backoff; doubles per attempt. */
  delayMinMs: number;
  /** Cap of one backoff, also of a server's Retry-After. */
  delayMaxMs: number;
}

function backoff(retry: RetryOptions, attempt: number, retryAfterHeader: string | null | undefined): number {
  const exp = Math.min(retry.delayMaxMs, retry.delayMinMs * 2 ** (attempt - 1));
  const seconds = Number(retryAfterHeader);
  if (retryAfterHeader && Number.isFinite(seconds) && seconds > 0) return Math.min(retry.delayMaxMs, Math.max(exp, seconds * 1000));
  return exp;
}

function abbreviate(sql: string, max = 160): string {
  const flat = sql.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

// ---------------------------------------------------------------------------------------------
// SQL warehouse

export interface DatabricksSqlOptions {
  /**
   * Extra trusted CA certificates (PEM), added to Node's public roots: a TLS-intercepting
   * proxy's CA, or a test server's self-signed certificate.
   */
  ca?: string | string[];
  /** Socket inactivity timeout of one HTTP request. Default 120 s (the driver's default is 15 min). */
  socketTimeoutMs?: number;
  /** Retries inside the client; see the comment on `DEFAULT_SQL_RETRY`. */
  retry?: Partial<RetryOptions> & { timeoutMs?: number };
  /** Driver log lines at warn/error level go here. Default: the activity logger, else console.warn. */
  warn?: (message: string) => void;
  /**
   * Schema the session starts in. Default DATABRICKS_SCHEMA. `null`: the catalog only, for
   * statements that create the schema (opening a session in a missing schema fails).
   */
  initialSchema?: string | null;
}

/**
 * How 429/503 are retried, and what is configured here.
 *
 * `@databricks/sql` 2.0.0 retries inside `ThriftHttpConnection` with `HttpRetryPolicy`, but
 * only for Thrift methods that are safe to repeat (GetOperationStatus, GetResultSetMetadata,
 * CancelOperation, CloseOperation, CloseSession and the metadata calls). OpenSession,
 * ExecuteStatement and FetchResults get a `NullRetryPolicy`: one try. The policy retries
 * HTTP 429, every 5xx but 501, and network errors (ECONNRESET, ECONNREFUSED, ETIMEDOUT, socket
 * hang up...), up to `retryMaxAttempts` total attempts (default 5) within `retriesTimeout`
 * (default 15 min), sleeping `min(retryDelayMax, 2^attempt * retryDelayMin)` (defaults 1 s and
 * 60 s: 2, 4, 8, 16 s). It means to use Retry-After as a floor but compares the header's
 * seconds with milliseconds (`max(retryDelayMin, seconds)`), so in effect it ignores it.
 *
 * Configured: 4 attempts, 250 ms doubling to at most 4 s, 30 s overall (at most ~3.5 s of
 * sleeping per request): enough to ride out a throttling blip inside one activity attempt,
 * short enough that a real outage becomes an activity retry, visible in the Temporal UI and
 * governed by the workflow's retry policy. The same budget drives this adapter's own retry of
 * OpenSession (any 429/503) and ExecuteStatement (429, or 503 with Retry-After): those answers
 * mean the front end refused the request before it ran, so sending it again cannot run the
 * statement twice (the rule the Python connector applies). A 503 without Retry-After, a
 * network error or a 5xx on ExecuteStatement may have run the statement, so it is not retried
 * here but surfaces as a retryable failure (the pipeline's statements are idempotent).
 * Telemetry to Databricks is switched off: it adds requests (feature flags, event export) a
 * pipeline does not need.
 */
export const DEFAULT_SQL_RETRY = { maxAttempts: 4, delayMinMs: 250, delayMaxMs: 4_000, timeoutMs: 30_000 } as const;

export interface DatabricksSql {
  /** host[:port], for messages. */
  readonly address: string;
  /** Executes the statements in order in one session, each to completion. */
  run(statements: string[], opts?: { signal?: AbortSignal }): Promise<void>;
  /** Runs one query and returns all its rows (column name -> value). */
  query(sql: string, opts?: { signal?: AbortSignal }): Promise<Record<string, unknown>[]>;
  /** Closes the session and the connection (idempotent). */
  close(): Promise<void>;
}

interface HttpStatusError {
  statusCode?: number;
  response?: { headers?: { get(name: string): string | null } };
}

/** HTTP status of a driver error: a THTTPException, or the driver's "retries exhausted" message. */
function httpStatusOf(err: unknown): number | undefined {
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

function classifySql(err: unknown, address: string, token: string, what: string): Error {
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
function retryAfterOf(err: unknown): string | null | undefined {
  return (err as HttpStatusError)?.response?.headers?.get('Retry-After');
}

interface DriverInternals {
  createConnectionProvider?: (options: unknown) => unknown;
}
interface ConnectionProviderInternals {
  createHttpsAgent?: () => https.Agent;
  getAgentDefaultOptions?: () => https.AgentOptions;
}

/**
 * `@databricks/sql` 2.0.0 builds its HTTPS agent with `rejectUnauthorized: false`: it would send
 * the bearer token to any server that answers on the address, certificate or not. This swaps
 * in an agent that verifies the certificate chain and host name (same keep-alive and timeout
 * options). It relies on two private methods of the pinned version and fails loudly if they
 * are gone rather than connect unverified.
 */
function enforceTlsVerification(client: DBSQLClient, ca: string[] | undefined): void {
  const internals = client as unknown as DriverInternals;
  const create = internals.createConnectionProvider;
  if (typeof create !== 'function') throw configFailure('Databricks: @databricks/sql internals changed (createConnectionProvider); cannot enforce TLS verification');
  internals.createConnectionProvider = (options: unknown) => {
    const provider = create.call(client, options) as ConnectionProviderInternals;
    const defaults = provider.getAgentDefaultOptions;
    if (typeof provider.createHttpsAgent !== 'function' || typeof defaults !== 'function') {
      throw configFailure('Databricks: @databricks/sql internals changed (HttpConnection agent); cannot enforce TLS verification');
    }
    provider.createHttpsAgent = () =>
      new https.Agent({ ...defaults.call(provider), minVersion: 'TLSv1.2', rejectUnauthorized: true, ca: ca ? [...tls.rootCertificates, ...ca] : undefined });
    return provider;
  };
}

export function createDatabricksSql(config: DatabricksConfig, opts: DatabricksSqlOptions = {}): DatabricksSql {
  const endpoint = parseEndpoint(config.host);
  const address = endpoint.address;
  const token = requireToken(config, address);
  if (endpoint.protocol !== 'https:') throw configFailure(`Databricks at ${address}: the SQL warehouse is reached over https only`);
  if (!config.httpPath) throw configFailure(`Databricks at ${address}: DATABRICKS_HTTP_PATH is not set (e.g. /sql/1.0/warehouses/<id>)`);
  const httpPath = config.httpPath;
  const retry = { ...DEFAULT_SQL_RETRY, ...opts.retry };
  const ca = opts.ca === undefined ? undefined : [opts.ca].flat();
  const warn = opts.warn ?? defaultWarn;
  const initialSchema = opts.initialSchema === undefined ? config.schema : opts.initialSchema;

  let connecting: Promise<{ client: DBSQLClient; session: IDBSQLSession }> | undefined;

  /** Retries a call the front end refused with 429 (or 503, when `any503`) - see DEFAULT_SQL_RETRY. */
  async function refusedRetry<T>(fn: () => Promise<T>, any503: boolean): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const status = httpStatusOf(err);
        const refused = status === 429 || (status === 503 && (any503 || Boolean(retryAfterOf(err))));
        if (!refused || attempt >= retry.maxAttempts) throw err;
        await sleep(backoff(retry, attempt, retryAfterOf(err)));
      }
    }
  }

  async function connect() {
    const client = new DBSQLClient({
      logger: {
        log: (level: LogLevel, message: string) => {
          if (level === LogLevel.error || level === LogLevel.warn) warn(`Databricks at ${address}: ${scrub(message, token)}`);
        },
      },
    });
    // The client emits 'error' for connection-level problems; the failing call rejects too.
    client.on('error', () => undefined);
    enforceTlsVerification(client, ca);
    try {
      await client.connect({
        host: endpoint.hostname,
        port: endpoint.port,
        path: httpPath,
        token,
        userAgentEntry: 'pinflow',
        socketTimeout: opts.socketTimeoutMs ?? 120_000,
        retryMaxAttempts: retry.maxAttempts,
        retryDelayMin: retry.delayMinMs,
        retryDelayMax: retry.delayMaxMs,
        retriesTimeout: retry.timeoutMs,
        telemetryEnabled: false,
      });
      const session = await refusedRetry(() => client.openSession({ initialCatalog: config.catalog, initialSchema: initialSchema ?? undefined }), true);
      return { client, session };
    } catch (err) {
      await client.close().catch(() => undefined);
      throw classifySql(err, address, token, `opening a session (catalog ${config.catalog}${initialSchema ? `, schema ${initialSchema}` : ''})`);
    }
  }

  function session() {
    connecting ??= connect();
    const current = connecting;
    current.catch(() => {
      if (connecting === current) connecting = undefined;
    });
    return current.then((c) => c.session);
  }

  /** After a failure that may have broken the session, the next call starts a fresh one. */
  async function reset(): Promise<void> {
    const current = connecting;
    connecting = undefined;
    if (!current) return;
    const c = await current.catch(() => undefined);
    if (!c) return;
    await c.session.close().catch(() => undefined);
    await c.client.close().catch(() => undefined);
  }

  async function execute<T>(sql: string, what: string, signal: AbortSignal | undefined, consume: (op: IOperation) => Promise<T>): Promise<T> {
    if (signal?.aborted) throw signal.reason ?? new Error('aborted');
    try {
      const s = await session();
      const op = await refusedRetry(() => s.executeStatement(sql, { runAsync: true }), false);
      const onAbort = () => void op.cancel().catch(() => undefined);
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        return await consume(op);
      } finally {
        signal?.removeEventListener('abort', onAbort);
        await op.close().catch(() => undefined);
      }
    } catch (err) {
      if (signal?.aborted) throw signal.reason ?? err;
      const failure = classifySql(err, address, token, what);
      if (!(failure instanceof ApplicationFailure)) await reset();
      throw failure;
    }
  }

  return {
    address,
    async run(statements, runOpts = {}) {
      for (const [i, sql] of statements.entries()) {
        await execute(sql, `statement ${i + 1} of ${statements.length} (${abbreviate(sql)})`, runOpts.signal, (op) => op.finished());
      }
    },
    async query(sql, queryOpts = {}) {
      return execute(sql, `query (${abbreviate(sql)})`, queryOpts.signal, async (op) => {
        // Wait first: fetchAll() returns [] without waiting when the operation handle says
        // "no result set", which would swallow the error of a statement that then fails.
        await op.finished();
        return (await op.fetchAll()) as Record<string, unknown>[];
      });
    },
    async close() {
      await reset();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Jobs API 2.1

/**
 * What a one-time run executes (a single task, key `main`):
 * - `notebook`: a workspace notebook on the all-purpose cluster DATABRICKS_CLUSTER_ID
 *   (`notebook_task`, parameters are the notebook's widgets).
 * - `pythonFile`: a Python file on the same cluster (`spark_python_task`, argv parameters).
 * - `sqlFile`: a SQL file from the workspace on a SQL warehouse (`sql_task.file`): the
 *   warehouse of DATABRICKS_HTTP_PATH (`/sql/1.0/warehouses/<id>`) unless `warehouseId` is given.
 */
export type DatabricksTask =
  | { kind: 'notebook'; notebookPath: string; parameters?: Record<string, string> }
  | { kind: 'pythonFile'; pythonFile: string; parameters?: string[] }
  | { kind: 'sqlFile'; path: string; parameters?: Record<string, string>; warehouseId?: string };

export interface SubmitRunInput {
  runName: string;
  /** At most 64 characters. Databricks launches at most one run per token: a repeat returns the same run_id. */
  idempotencyToken: string;
  task: DatabricksTask;
  /** Databricks stops the run after this long (TIMEDOUT). Default: no limit. */
  timeoutSeconds?: number;
}

export interface RunState {
  runId: number;
  lifeCycleState: string;
  resultState?: string;
  stateMessage: string;
  runPageUrl?: string;
}

export interface WaitOptions {
  /** Between two runs/get. Default 5 s. */
  pollMs?: number;
  /** Called with every state seen (heartbeat here). */
  onPoll?: (state: RunState) => void | Promise<void>;
  /** Aborting cancels the run (runs/cancel), waits up to `cancelWaitMs` for it to end, then throws `signal.reason`. */
  signal?: AbortSignal;
  /** Default 30 s. */
  cancelWaitMs?: number;
}

export interface DatabricksJobsOptions {
  retry?: Partial<RetryOptions>;
  /** Timeout of one HTTP request. Default 30 s. */
  requestTimeoutMs?: number;
  warn?: (message: string) => void;
}

export interface DatabricksJobs {
  readonly address: string;
  submitRun(input: SubmitRunInput): Promise<number>;
  getRun(runId: number, signal?: AbortSignal): Promise<RunState>;
  cancelRun(runId: number): Promise<void>;
  waitForRun(runId: number, opts?: WaitOptions): Promise<RunState>;
}

/** Life-cycle states of a run still on its way (the Jobs API 2.1 list). */
export const ACTIVE_LIFE_CYCLE_STATES = new Set(['QUEUED', 'PENDING', 'RUNNING', 'TERMINATING', 'BLOCKED', 'WAITING_FOR_RETRY']);
/** Life-cycle states after which nothing changes. */
export const FINAL_LIFE_CYCLE_STATES = new Set(['TERMINATED', 'SKIPPED', 'INTERNAL_ERROR']);
/**
 * Result states counted as success. SUCCESS_WITH_FAILURES: every leaf task succeeded though
 * some task with a run-if condition failed (a single-task run cannot get it). Every other
 * result state (FAILED, TIMEDOUT, CANCELED, MAXIMUM_CONCURRENT_RUNS_REACHED, EXCLUDED,
 * UPSTREAM_FAILED, UPSTREAM_CANCELED, DISABLED, anything new) is a failure.
 */
export const SUCCESS_RESULT_STATES = new Set(['SUCCESS', 'SUCCESS_WITH_FAILURES']);

/** Default Jobs retry: all three calls are idempotent (submit by its token), so 429/5xx/network errors are retried. */
export const DEFAULT_JOBS_RETRY: RetryOptions = { maxAttempts: 3, delayMinMs: 250, delayMaxMs: 4_000 };

const JOBS_ERROR_KINDS: Record<string, keyof typeof NonRetryable> = {
  INVALID_PARAMETER_VALUE: 'badInput',
  MALFORMED_REQUEST: 'badInput',
  BAD_REQUEST: 'badInput',
  INVALID_STATE: 'badInput',
  RESOURCE_DOES_NOT_EXIST: 'missingResource',
  FEATURE_DISABLED: 'config',
  PERMISSION_DENIED: 'auth',
  UNAUTHENTICATED: 'auth',
};

function warehouseIdOf(httpPath: string | undefined): string | undefined {
  return httpPath ? /\/warehouses\/([0-9A-Za-z]+)/.exec(httpPath)?.[1] : undefined;
}

interface RawRun {
  run_id?: number;
  run_page_url?: string;
  state?: { life_cycle_state?: string; result_state?: string; state_message?: string };
  status?: { state?: string; termination_details?: { code?: string; message?: string } };
}

function toRunState(runId: number, raw: RawRun): RunState {
  // `state` is the documented field; `status` is its newer replacement (used if `state` is absent).
  const term = raw.status?.termination_details;
  return {
    runId,
    lifeCycleState: raw.state?.life_cycle_state ?? raw.status?.state ?? 'UNKNOWN',
    resultState: raw.state?.result_state ?? (raw.status?.state === 'TERMINATED' ? term?.code : undefined),
    stateMessage: raw.state?.state_message ?? term?.message ?? '',
    runPageUrl: raw.run_page_url,
  };
}

export function createDatabricksJobs(config: DatabricksConfig, opts: DatabricksJobsOptions = {}): DatabricksJobs {
  const endpoint = parseEndpoint(config.host);
  const address = endpoint.address;
  const token = requireToken(config, address);
  const retry = { ...DEFAULT_JOBS_RETRY, ...opts.retry };
  const warn = opts.warn ?? defaultWarn;
  const where = `Databricks at ${address}`;

  async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const what = `${method} ${path.split('?')[0]}`;
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        const timeout = AbortSignal.timeout(opts.requestTimeoutMs ?? 30_000);
        res = await fetch(`${endpoint.origin}${path}`, {
          method,
          headers: { Authorization: `Bearer ${token}`, Accept: 'application/json', 'User-Agent': 'pinflow', ...(body ? { 'Content-Type': 'application/json' } : {}) },
          body: body ? JSON.stringify(body) : undefined,
          signal: signal ? AbortSignal.any([timeout, signal]) : timeout,
        });
      } catch (err) {
        if (signal?.aborted) throw signal.reason ?? err;
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        const detail = cause?.code ? `${cause.code} ${cause.message ?? ''}`.trim() : (err as Error).message;
        if (attempt < retry.maxAttempts) {
          await sleep(backoff(retry, attempt, undefined), signal);
          continue;
        }
        const wrapped = new Error(scrub(`${where}: ${what} failed: ${detail}`, token), { cause: err });
        wrapped.name = 'DatabricksError';
        throw wrapped;
      }
      const text = await res.text().catch(() => '');
      if (res.ok) {
        try {
          return (text ? JSON.parse(text) : {}) as T;
        } catch {
          throw new Error(`${where}: ${what} answered ${res.status} with a body that is not JSON`);
        }
      }
      let apiError: { error_code?: string; message?: string } = {};
      try {
        apiError = JSON.parse(text) as typeof apiError;
      } catch {
        /* not JSON: an HTML error page from a proxy, say */
      }
      const detail = scrub(apiError.message ?? text.slice(0, 300), token);
      const message = `${where}: ${what} answered ${res.status}${apiError.error_code ? ` ${apiError.error_code}` : ''}: ${detail}`;
      if (res.status === 401 || res.status === 403) {
        throw ApplicationFailure.nonRetryable(`${message} (check DATABRICKS_TOKEN and its permissions)`, NonRetryable.auth);
      }
      const transient = res.status === 408 || res.status === 429 || res.status >= 500;
      if (!transient) {
        const kind = (apiError.error_code && JOBS_ERROR_KINDS[apiError.error_code]) || (res.status === 404 ? 'missingResource' : 'badInput');
        throw ApplicationFailure.nonRetryable(message, NonRetryable[kind]);
      }
      if (attempt >= retry.maxAttempts) {
        const wrapped = new Error(message);
        wrapped.name = 'DatabricksError';
        throw wrapped;
      }
      await sleep(backoff(retry, attempt, res.headers.get('Retry-After')), signal);
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
    }
  }

  function taskSpec(task: DatabricksTask): Record<string, unknown> {
    const needCluster = () => {
      if (!config.clusterId) throw configFailure(`${where}: DATABRICKS_CLUSTER_ID is not set; a ${task.kind} task runs on an existing cluster`);
      return config.clusterId;
    };
    switch (task.kind) {
      case 'notebook':
        return { task_key: 'main', existing_cluster_id: needCluster(), notebook_task: { notebook_path: task.notebookPath, base_parameters: task.parameters ?? {}, source: 'WORKSPACE' } };
      case 'pythonFile':
        return { task_key: 'main', existing_cluster_id: needCluster(), spark_python_task: { python_file: task.pythonFile, parameters: task.parameters ?? [] } };
      case 'sqlFile': {
        const warehouseId = task.warehouseId ?? warehouseIdOf(config.httpPath);
        if (!warehouseId) throw configFailure(`${where}: a sqlFile task needs a warehouse id (give warehouseId, or a DATABRICKS_HTTP_PATH like /sql/1.0/warehouses/<id>)`);
        return { task_key: 'main', sql_task: { warehouse_id: warehouseId, file: { path: task.path, source: 'WORKSPACE' }, parameters: task.parameters ?? {} } };
      }
    }
  }

  const jobs: DatabricksJobs = {
    address,

    async submitRun(input) {
      if (!input.idempotencyToken || input.idempotencyToken.length > 64) {
        throw ApplicationFailure.nonRetryable(`${where}: the idempotency token must be 1-64 characters (got ${input.idempotencyToken.length})`, NonRetryable.badInput);
      }
      const body = {
        run_name: input.runName,
        idempotency_token: input.idempotencyToken,
        tasks: [taskSpec(input.task)],
        ...(input.timeoutSeconds ? { timeout_seconds: input.timeoutSeconds } : {}),
      };
      const res = await call<{ run_id?: number }>('POST', '/api/2.1/jobs/runs/submit', body);
      if (typeof res.run_id !== 'number') throw new Error(`${where}: runs/submit answered without a run_id`);
      return res.run_id;
    },

    async getRun(runId, signal) {
      return toRunState(runId, await call<RawRun>('GET', `/api/2.1/jobs/runs/get?run_id=${encodeURIComponent(runId)}`, undefined, signal));
    },

    async cancelRun(runId) {
      await call('POST', '/api/2.1/jobs/runs/cancel', { run_id: runId });
    },

    async waitForRun(runId, w = {}) {
      const pollMs = w.pollMs ?? 5_000;
      const unknown = new Set<string>();
      const signal = w.signal;

      const cancelAndThrow = async (): Promise<never> => {
        let last: RunState | undefined;
        try {
          await jobs.cancelRun(runId);
          const deadline = Date.now() + (w.cancelWaitMs ?? 30_000);
          while (Date.now() < deadline) {
            last = await jobs.getRun(runId);
            await w.onPoll?.(last);
            if (FINAL_LIFE_CYCLE_STATES.has(last.lifeCycleState)) break;
            await sleep(Math.min(pollMs, 1_000));
          }
        } catch (err) {
          warn(`${where}: cancelling run ${runId} after abort: ${(err as Error).message}`);
        }
        const reason: unknown = signal?.reason;
        if (reason instanceof Error) throw reason;
        throw new Error(`${where}: waiting for run ${runId} was aborted; run cancelled${last ? ` (now ${last.lifeCycleState}${last.resultState ? `/${last.resultState}` : ''})` : ''}`);
      };

      for (;;) {
        if (signal?.aborted) return cancelAndThrow();
        let state: RunState;
        try {
          state = await jobs.getRun(runId, signal);
        } catch (err) {
          if (signal?.aborted) return cancelAndThrow();
          throw err;
        }
        await w.onPoll?.(state);
        const { lifeCycleState: lc, resultState: rs } = state;
        if (FINAL_LIFE_CYCLE_STATES.has(lc) && (lc !== 'TERMINATED' || rs !== undefined)) {
          if (lc === 'TERMINATED' && SUCCESS_RESULT_STATES.has(rs!)) return state;
          throw ApplicationFailure.create({
            message: `${where}: run ${runId} ended ${lc}${rs ? `/${rs}` : ''}: ${scrub(state.stateMessage, token) || '(no state message)'}${state.runPageUrl ? ` - see ${state.runPageUrl}` : ''}`,
            type: DATABRICKS_RUN_FAILED,
            nonRetryable: true,
            details: [state],
          });
        }
        if (!ACTIVE_LIFE_CYCLE_STATES.has(lc) && !unknown.has(`${lc}/${rs}`)) {
          // A state this code does not know (a newer API), or TERMINATED without a result yet: keep polling.
          unknown.add(`${lc}/${rs}`);
          warn(`${where}: run ${runId} is in unexpected state ${lc}${rs ? `/${rs}` : ''}; still polling`);
        }
        await sleep(pollMs, signal);
      }
    },
  };
  return jobs;
}

// ---------------------------------------------------------------------------------------------
// Activity

export interface RunDatabricksJobInput extends SubmitRunInput {
  /** Between two polls (each one heartbeats). Default 5 s. */
  pollMs?: number;
}

export interface DatabricksRunResult {
  runId: number;
  lifeCycleState: string;
  resultState?: string;
  stateMessage: string;
  runPageUrl?: string;
}

/**
 * The Databricks activities. `runDatabricksJob` submits a one-time run (idempotent by its
 * token: a retried attempt gets the same run back, and resumes from the run id in its last
 * heartbeat), polls it to the end heartbeating `{runId, lifeCycleState}`, and cancels the run
 * when the activity is cancelled. Give it a heartbeatTimeout (a few poll intervals) so
 * cancellation and worker loss reach it.
 */
export function databricksActivities(config: Config, opts: DatabricksJobsOptions = {}) {
  let jobs: DatabricksJobs | undefined;
  const client = () => (jobs ??= createDatabricksJobs(config.warehouse.databricks, opts));

  return {
    async runDatabricksJob(input: RunDatabricksJobInput): Promise<DatabricksRunResult> {
      const ctx = Context.current();
      const jobsClient = client();
      const resumed = (ctx.info.heartbeatDetails as { runId?: number } | undefined)?.runId;
      const runId = typeof resumed === 'number' ? resumed : await jobsClient.submitRun(input);
      ctx.heartbeat({ runId, lifeCycleState: 'SUBMITTED' });
      const final = await jobsClient.waitForRun(runId, {
        pollMs: input.pollMs,
        signal: ctx.cancellationSignal,
        onPoll: (s) => ctx.heartbeat({ runId, lifeCycleState: s.lifeCycleState }),
      });
      return { runId, lifeCycleState: final.lifeCycleState, resultState: final.resultState, stateMessage: final.stateMessage, runPageUrl: final.runPageUrl };
    },
  };
}
