/**
 * Statements and queries on a Databricks SQL warehouse through `@databricks/sql` (Thrift
 * TCLIService over HTTPS), one session reused across statements, the certificate verified.
 * Errors are classified by adapters/databricks/sql-errors.ts.
 *
 * Table names: every pipeline prefix keeps its tables in the configured
 * DATABRICKS_CATALOG.DATABRICKS_SCHEMA under names of its own, `<prefix>__<table>`
 * (`prefixedName`), so two prefixes never share a table.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import { ApplicationFailure } from '@temporalio/common';
import { DBSQLClient, LogLevel } from '@databricks/sql';
import type IDBSQLSession from '@databricks/sql/dist/contracts/IDBSQLSession';
import type IOperation from '@databricks/sql/dist/contracts/IOperation';
import { prefixProblem } from '../../common/ids';
import { NonRetryable } from '../../common/errors';
import { backoff, configFailure, defaultWarn, parseEndpoint, pause, requireToken, scrub, type DatabricksConfig, type RetryOptions } from './endpoint';
import { classifySql, httpStatusOf, retryAfterOf } from './sql-errors';

export type { DatabricksConfig } from './endpoint';

function abbreviate(sql: string, max = 160): string {
  const flat = sql.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}


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
        await pause(backoff(retry, attempt, retryAfterOf(err)));
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


/** `catalog`.`schema`.`name` in the configured catalog and schema. */
export function qualifiedName(config: DatabricksConfig, name: string): string {
  return `\`${config.catalog}\`.\`${config.schema}\`.\`${name}\``;
}

/** A table's own part of a name: lowercase words joined by single '_' (no "__", no leading or trailing '_'). */
const TABLE_PART = /^[a-z0-9]+(_[a-z0-9]+)*$/;

/**
 * The unquoted name of a pipeline prefix's table: `<prefix>__<name>`. A prefix of [a-z0-9_]
 * stands as it is (`pinflow__pin_clean`); in a prefix with '-' each '-' becomes '_' and it ends
 * in `_` and the first 8 hex digits of the prefix's SHA-256 (`pin-prod` ->
 * `pin_prod_<8 hex>__pin_clean`), so prefixes that differ only by '-' and '_' keep apart. Since
 * `name` holds no "__" and does not start with '_', the last "__" separates the two parts.
 * The result is lowercase [a-z0-9_] only, which Hive metastore, Spark's session catalog and
 * Unity Catalog all accept, and at most 57 + 2 + name characters.
 */
export function prefixTableName(prefix: string, name: string): string {
  const problem = prefixProblem(prefix);
  if (problem) throw ApplicationFailure.nonRetryable(`Databricks table names: ${problem}`, NonRetryable.badInput);
  if (!TABLE_PART.test(name)) throw new Error(`Databricks table names: ${JSON.stringify(name)} is not a table name (lowercase words joined by single "_")`);
  const own = prefix.includes('-') ? `${prefix.replace(/-/g, '_')}_${createHash('sha256').update(prefix).digest('hex').slice(0, 8)}` : prefix;
  return `${own}__${name}`;
}

/** `catalog`.`schema`.`<prefix>__<name>`: a table of the pipeline prefix in the configured catalog and schema. */
export function prefixedName(config: DatabricksConfig, prefix: string, name: string): string {
  return qualifiedName(config, prefixTableName(prefix, name));
}

/** The client options of the configured warehouse: the extra CA of DATABRICKS_CA_FILE, if set. */
export function configuredSqlOptions(config: DatabricksConfig): DatabricksSqlOptions {
  return config.caFile ? { ca: fs.readFileSync(config.caFile, 'utf8') } : {};
}

/** Creates the configured schema if missing, from a session that does not start in it (opening a session in a missing schema fails). */
export async function ensureSchema(config: DatabricksConfig, opts: DatabricksSqlOptions = {}, signal?: AbortSignal): Promise<void> {
  const setup = createDatabricksSql(config, { ...opts, initialSchema: null });
  try {
    await setup.run([`CREATE SCHEMA IF NOT EXISTS \`${config.catalog}\`.\`${config.schema}\``], { signal });
  } finally {
    await setup.close();
  }
}
