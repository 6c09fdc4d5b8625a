/**
 * Amazon MWAA adapter: the only module that talks to MWAA and the Airflow inside it. Used to
 * migrate off MWAA (`npm run mwaa`) and by the legacy-DAG activities (`triggerMwaaDag`,
 * `waitMwaaDagRun`, `stopMwaaDagRun`, registered on the worker), which let a Temporal pipeline
 * call a legacy DAG while the migration is under way (dailyPipelineWorkflow's `legacyDag` stage).
 *
 * - `GetEnvironment` and `CreateCliToken` go through `@aws-sdk/client-mwaa`.
 * - Airflow's REST API goes through MWAA's `InvokeRestApi` (Airflow >= 2.4.3: IAM-signed, no
 *   webserver login), or, for older environments (chosen by the environment's AirflowVersion),
 *   through the CLI-token flow: `CreateCliToken`, then `POST https://<webserver>/aws_mwaa/cli`
 *   with `Authorization: Bearer <token>` and an Airflow CLI command as the body (answer:
 *   `{stdout, stderr}` in base64). `airflowRest()` speaks REST either way: on an old environment
 *   the subset of REST calls used here is carried out with the equivalent CLI commands.
 * - Errors are classified on purpose (common/errors.ts, system 'MWAA'): access denied and bad
 *   signatures are non-retryable auth failures, unknown environments/DAGs/runs missing
 *   resources, validation errors bad input; throttling, 5xx and network errors are retried
 *   (first by the SDK, then by Temporal). Every message names MWAA, the endpoint and the environment.
 */
import { createRequire } from 'node:module';
import { CreateCliTokenCommand, GetEnvironmentCommand, MWAAClient, MWAAServiceException } from '@aws-sdk/client-mwaa';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../config';
import { classify, NonRetryable } from '../common/errors';
import { MWAA_DAG_RUN_FAILED, TERMINAL_DAG_RUN_STATES, type AirflowDagFacts, type AirflowRunFacts, type AirflowTaskRetry } from './translate';

// ---------------------------------------------------------------------------------------------
// InvokeRestApi, hand-made.
//
// WHY: MWAA added InvokeRestApi in late 2024, but the newest @aws-sdk/client-mwaa the npm
// registry reachable here serves is 3.523.0 (early 2024), which predates it. So the command is
// built here on the SDK client's own machinery: the same client instance sends it, so it gets
// the same endpoint resolution (and MWAA_ENDPOINT override), credentials chain, SigV4 signing
// (signing name 'airflow', from the client's auth scheme), retries and logging as the SDK's
// commands. Request and response follow the service model (botocore mwaa/2020-07-01
// service-2.json and the API reference): `POST /restapi/{Name}` on host prefix `env.`, JSON body
// `{Path, Method, QueryParameters, Body}` -> `{RestApiStatusCode, RestApiResponse}`; Airflow's
// own 4xx/5xx come back as RestApiClientException / RestApiServerException carrying the same
// two fields. REPLACE this with the SDK's `InvokeRestApiCommand` once the registry has a
// client-mwaa that ships it (then only `invokeRestApi()` below changes).

// The smithy packages the installed client-mwaa itself uses (resolved from its location, so the
// command is built with the same generation of the SDK core as the client that sends it).
const fromMwaaSdk = createRequire(require.resolve('@aws-sdk/client-mwaa'));

export type AirflowMethod = 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

export interface InvokeRestApiInput {
  Name: string;
  Path: string;
  Method: AirflowMethod;
  QueryParameters?: Record<string, unknown>;
  Body?: unknown;
}

export interface InvokeRestApiOutput {
  $metadata: { httpStatusCode?: number; requestId?: string; attempts?: number };
  RestApiStatusCode?: number;
  RestApiResponse?: unknown;
}

interface SerdeContext {
  endpoint: () => Promise<{ protocol: string; hostname: string; port?: number; path: string; query?: Record<string, string> }>;
  disableHostPrefix?: boolean;
  streamCollector: (stream: unknown) => Promise<Uint8Array>;
}

interface HttpResponseLike {
  statusCode: number;
  headers: Record<string, string>;
  body: unknown;
}

interface ClassBuilder {
  ep(params: object): ClassBuilder;
  m(plugins: (this: { serialize: unknown; deserialize: unknown }, command: { getEndpointParameterInstructions(): unknown }, cs: unknown, config: unknown, o: unknown) => unknown[]): ClassBuilder;
  s(service: string, operation: string, smithyContext: object): ClassBuilder;
  n(clientName: string, commandName: string): ClassBuilder;
  f(inputFilter?: (x: InvokeRestApiInput) => unknown, outputFilter?: (x: InvokeRestApiOutput) => unknown): ClassBuilder;
  ser(fn: (input: InvokeRestApiInput, context: SerdeContext) => Promise<unknown>): ClassBuilder;
  de(fn: (output: HttpResponseLike, context: SerdeContext) => Promise<InvokeRestApiOutput>): ClassBuilder;
  build(): new (input: InvokeRestApiInput) => object;
}

const { Command } = fromMwaaSdk('@smithy/smithy-client') as { Command: { classBuilder(): ClassBuilder } };
const { getSerdePlugin } = fromMwaaSdk('@smithy/middleware-serde') as { getSerdePlugin(config: unknown, ser: unknown, de: unknown): unknown };
const { getEndpointPlugin } = fromMwaaSdk('@smithy/middleware-endpoint') as { getEndpointPlugin(config: unknown, instructions: unknown): unknown };
const { HttpRequest } = fromMwaaSdk('@smithy/protocol-http') as { HttpRequest: new (options: object) => object };
const { NodeHttpHandler } = fromMwaaSdk('@smithy/node-http-handler') as { NodeHttpHandler: new (options: object) => object };

const SENSITIVE = '***SensitiveInformation***';

async function serializeInvokeRestApi(input: InvokeRestApiInput, context: SerdeContext): Promise<unknown> {
  if (!input.Name) throw new Error('InvokeRestApi: Name is required');
  const endpoint = await context.endpoint();
  // The service model's endpoint host prefix for InvokeRestApi (as for CreateCliToken).
  const hostname = context.disableHostPrefix === true ? endpoint.hostname : `env.${endpoint.hostname}`;
  const basePath = (endpoint.path ?? '').replace(/\/$/, '');
  const body: Record<string, unknown> = { Path: input.Path, Method: input.Method };
  if (input.QueryParameters !== undefined) body.QueryParameters = input.QueryParameters;
  if (input.Body !== undefined) body.Body = input.Body;
  return new HttpRequest({
    protocol: endpoint.protocol,
    hostname,
    port: endpoint.port,
    method: 'POST',
    path: `${basePath}/restapi/${encodeURIComponent(input.Name)}`,
    query: endpoint.query,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** restJson1 error code: the x-amzn-errortype header or the body's __type / code, without namespace. */
function errorCode(headers: Record<string, string>, data: Record<string, unknown>): string | undefined {
  const header = Object.entries(headers).find(([k]) => k.toLowerCase() === 'x-amzn-errortype')?.[1];
  const raw = header ?? (data.__type as string | undefined) ?? (data.code as string | undefined) ?? (data.Code as string | undefined);
  if (!raw) return undefined;
  return String(raw).split(':')[0]!.split('#').pop();
}

async function deserializeInvokeRestApi(output: HttpResponseLike, context: SerdeContext): Promise<InvokeRestApiOutput> {
  const bytes = await context.streamCollector(output.body);
  const text = new TextDecoder().decode(bytes);
  let data: Record<string, unknown>;
  try {
    data = text.trim() === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
  } catch {
    data = { message: text.slice(0, 500) };
  }
  const $metadata = {
    httpStatusCode: output.statusCode,
    requestId: output.headers['x-amzn-requestid'] ?? output.headers['x-amzn-request-id'] ?? output.headers['x-amz-request-id'],
  };
  if (output.statusCode >= 300) {
    const name = errorCode(output.headers, data) ?? String(output.statusCode);
    const err = new MWAAServiceException({
      name,
      $fault: output.statusCode >= 500 ? 'server' : 'client',
      $metadata,
      message: String(data.message ?? data.Message ?? name),
    });
    if (typeof data.RestApiStatusCode === 'number') Object.assign(err, { RestApiStatusCode: data.RestApiStatusCode, RestApiResponse: data.RestApiResponse });
    throw err;
  }
  return { $metadata, RestApiStatusCode: data.RestApiStatusCode as number | undefined, RestApiResponse: data.RestApiResponse };
}

/** The hand-made `InvokeRestApiCommand` (see WHY above). */
export class InvokeRestApiCommand extends Command.classBuilder()
  .ep({
    UseFIPS: { type: 'builtInParams', name: 'useFipsEndpoint' },
    Endpoint: { type: 'builtInParams', name: 'endpoint' },
    Region: { type: 'builtInParams', name: 'region' },
    UseDualStack: { type: 'builtInParams', name: 'useDualstackEndpoint' },
  })
  .m(function (command, _cs, config) {
    return [getSerdePlugin(config, this.serialize, this.deserialize), getEndpointPlugin(config, command.getEndpointParameterInstructions())];
  })
  .s('AmazonMWAA', 'InvokeRestApi', {})
  .n('MWAAClient', 'InvokeRestApiCommand')
  .f(
    (i) => ({ ...i, ...(i.Body !== undefined ? { Body: SENSITIVE } : {}) }),
    (o) => ({ ...o, ...(o.RestApiResponse !== undefined ? { RestApiResponse: SENSITIVE } : {}) }),
  )
  .ser(serializeInvokeRestApi)
  .de(deserializeInvokeRestApi)
  .build() {}

// ---------------------------------------------------------------------------------------------
// Client

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return h === '127.0.0.1' || h === 'localhost' || h === '::1';
}

/**
 * The MWAA client: AWS's regional endpoint with the default credential chain, or
 * MWAA_ENDPOINT (then no `api.`/`env.` host prefixes: one host serves every operation, as the
 * tests' stand-in does; a loopback endpoint gets the fixed local test credentials).
 */
export function createMwaaClient(config: Config): MWAAClient {
  return new MWAAClient({
    region: config.mwaa.region,
    endpoint: config.mwaa.endpoint,
    credentials: config.mwaa.credentials,
    disableHostPrefix: config.mwaa.endpoint !== undefined,
    maxAttempts: 4,
    requestHandler: new NodeHttpHandler({ connectionTimeout: 5_000, requestTimeout: 30_000 }) as MWAAClient['config']['requestHandler'],
  });
}

export function mwaaEndpointLabel(config: Config): string {
  return config.mwaa.endpoint ?? `https://airflow.${config.mwaa.region}.amazonaws.com`;
}

// ---------------------------------------------------------------------------------------------
// Adapter

export interface MwaaEnvironment {
  name: string;
  arn?: string;
  status?: string;
  airflowVersion?: string;
  webserverUrl?: string;
  environmentClass?: string;
  /** True when Airflow >= 2.4.3 (InvokeRestApi); otherwise the CLI-token flow is used. */
  restApi: boolean;
}

export interface AirflowResponse<T = unknown> {
  status: number;
  body: T;
  via: 'rest-api' | 'cli';
}

/** Airflow answered 4xx/5xx (through InvokeRestApi or the CLI). `RestApiStatusCode` drives classification. */
export class AirflowApiError extends Error {
  constructor(
    message: string,
    public readonly RestApiStatusCode: number,
    public readonly RestApiResponse?: unknown,
  ) {
    super(message);
    this.name = 'AirflowApiError';
  }
}

/** A call this environment cannot make (a REST call the old CLI cannot do, a path over the API's limit). */
export class UnsupportedCallError extends Error {
  override name = 'UnsupportedCallError';
}

export { MWAA_DAG_RUN_FAILED };
export const MIN_REST_API_VERSION = [2, 4, 3] as const;
/** InvokeRestApi's limit on `Path` (service model: RestApiPath max 64). */
export const MAX_REST_PATH = 64;

export function parseAirflowVersion(v: string | undefined): number[] | undefined {
  const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(v ?? '');
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

export function supportsRestApi(version: string | undefined): boolean {
  const v = parseAirflowVersion(version);
  if (!v) return true; // unknown: try the REST API (the newer path)
  for (let i = 0; i < 3; i++) if (v[i] !== MIN_REST_API_VERSION[i]) return v[i]! > MIN_REST_API_VERSION[i]!;
  return true;
}

interface RawDagRun {
  dag_run_id?: string;
  run_id?: string;
  logical_date?: string;
  execution_date?: string;
  state?: string;
  run_type?: string;
  data_interval_end?: string | null;
  start_date?: string | null;
  end_date?: string | null;
  conf?: Record<string, unknown> | null;
}

export interface DagRunView extends AirflowRunFacts {
  runType: string;
  startDate?: string;
  endDate?: string;
  conf?: Record<string, unknown>;
}

export interface MwaaDagView {
  environment: string;
  dagId: string;
  isPaused: boolean;
  /** The scheduling facts (translator input). */
  facts: AirflowDagFacts;
  nextDagrun?: string;
  nextDagrunCreateAfter?: string;
  /** Most recent runs first (up to 25), any type. */
  recentRuns: DagRunView[];
  /** The most recent scheduled (or backfill) run: the one the schedule continues from. */
  lastScheduledRun?: DagRunView;
  via: 'rest-api' | 'cli';
}

const ACTIVE_RUN_STATES = new Set(['queued', 'running', 'scheduled', 'restarting', 'up_for_retry']);
export const isActiveRunState = (state: string) => ACTIVE_RUN_STATES.has(state);

function runTypeOf(r: RawDagRun): string {
  if (r.run_type) return r.run_type;
  const id = r.dag_run_id ?? r.run_id ?? '';
  const m = /^(scheduled|manual|backfill|dataset_triggered)__/.exec(id);
  return m ? m[1]! : 'manual';
}

function toRunView(r: RawDagRun): DagRunView {
  return {
    runId: r.dag_run_id ?? r.run_id ?? '',
    logicalDate: r.logical_date ?? r.execution_date ?? '',
    state: r.state ?? 'unknown',
    runType: runTypeOf(r),
    dataIntervalEnd: r.data_interval_end || undefined,
    startDate: r.start_date || undefined,
    endDate: r.end_date || undefined,
    conf: r.conf ?? undefined,
  };
}

const seconds = (td: unknown): number | undefined => {
  if (!td || typeof td !== 'object') return undefined;
  const t = td as { days?: number; seconds?: number; microseconds?: number };
  return (t.days ?? 0) * 86_400 + (t.seconds ?? 0) + (t.microseconds ?? 0) / 1e6;
};

/** A shell word for the Airflow CLI endpoint (it splits the command like a POSIX shell). */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_.:+=@%/-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

export interface MwaaAdapterOptions {
  /** How long a GetEnvironment answer is reused (default 5 min). */
  environmentTtlMs?: number;
}

export function mwaaAdapter(config: Config, opts: MwaaAdapterOptions = {}) {
  let client: MWAAClient | undefined;
  const getClient = () => (client ??= createMwaaClient(config));
  const endpoint = mwaaEndpointLabel(config);
  const where = (environment: string) => `${endpoint} environment ${environment}`;
  const envCache = new Map<string, { at: number; env: MwaaEnvironment }>();
  const tokenCache = new Map<string, { at: number; token: string; host: string }>();
  const ttl = opts.environmentTtlMs ?? 300_000;

  /** Runs `fn`, classifying what it throws as an MWAA error of `environment`. */
  async function guard<T>(environment: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof UnsupportedCallError) throw ApplicationFailure.nonRetryable(`MWAA at ${where(environment)}: ${err.message}`, NonRetryable.badInput);
      throw classify('MWAA', where(environment), err);
    }
  }

  async function getEnvironment(name: string): Promise<MwaaEnvironment> {
    const cached = envCache.get(name);
    if (cached && Date.now() - cached.at < ttl) return cached.env;
    const out = await guard(name, () => getClient().send(new GetEnvironmentCommand({ Name: name })));
    const e = out.Environment ?? {};
    const env: MwaaEnvironment = {
      name,
      arn: e.Arn,
      status: e.Status,
      airflowVersion: e.AirflowVersion,
      webserverUrl: e.WebserverUrl,
      environmentClass: e.EnvironmentClass,
      restApi: supportsRestApi(e.AirflowVersion),
    };
    const major = parseAirflowVersion(e.AirflowVersion)?.[0];
    if (major !== undefined && major >= 3) {
      throw ApplicationFailure.nonRetryable(
        `MWAA at ${where(name)}: Airflow ${e.AirflowVersion} is not supported (its REST API v2 has no schedule_interval/execution_date); this tool handles Airflow 2`,
        NonRetryable.badInput,
      );
    }
    envCache.set(name, { at: Date.now(), env });
    return env;
  }

  async function invokeRestApi(name: string, method: AirflowMethod, path: string, body?: unknown, query?: Record<string, unknown>): Promise<AirflowResponse> {
    if (path.length > MAX_REST_PATH) {
      throw new UnsupportedCallError(`InvokeRestApi path ${path} is longer than ${MAX_REST_PATH} characters (the API's limit); use a shorter DAG or run id`);
    }
    const send = getClient().send.bind(getClient()) as unknown as (command: object) => Promise<InvokeRestApiOutput>;
    try {
      const out = await send(new InvokeRestApiCommand({ Name: name, Path: path, Method: method, QueryParameters: query, Body: body }));
      return { status: out.RestApiStatusCode ?? 200, body: out.RestApiResponse, via: 'rest-api' };
    } catch (err) {
      const e = err as { RestApiStatusCode?: number; RestApiResponse?: { detail?: string; title?: string } };
      if (typeof e.RestApiStatusCode === 'number') {
        const detail = e.RestApiResponse?.detail ?? e.RestApiResponse?.title ?? (err as Error).message;
        throw new AirflowApiError(`Airflow REST ${method} ${path} answered ${e.RestApiStatusCode}: ${detail}`, e.RestApiStatusCode, e.RestApiResponse);
      }
      throw err;
    }
  }

  /** Runs one Airflow CLI command through the CLI-token flow; returns decoded stdout/stderr. */
  async function airflowCli(name: string, command: string): Promise<{ stdout: string; stderr: string }> {
    let tok = tokenCache.get(name);
    if (!tok || Date.now() - tok.at > 30_000) {
      const out = await getClient().send(new CreateCliTokenCommand({ Name: name }));
      if (!out.CliToken || !out.WebServerHostname) throw new Error('CreateCliToken returned no token or webserver hostname');
      tok = { at: Date.now(), token: out.CliToken, host: out.WebServerHostname };
      tokenCache.set(name, tok);
    }
    const url = `${isLoopbackHost(tok.host) ? 'http' : 'https'}://${tok.host}/aws_mwaa/cli`;
    for (let attempt = 1; ; attempt++) {
      const res = await fetch(url, {
        method: 'POST',
        headers: { Authorization: `Bearer ${tok.token}`, 'Content-Type': 'text/plain' },
        body: command,
        signal: AbortSignal.timeout(60_000),
      });
      if (res.ok) {
        const data = (await res.json()) as { stdout?: string; stderr?: string };
        return { stdout: Buffer.from(data.stdout ?? '', 'base64').toString('utf8'), stderr: Buffer.from(data.stderr ?? '', 'base64').toString('utf8') };
      }
      const text = (await res.text()).slice(0, 300);
      if ((res.status === 429 || res.status >= 500) && attempt < 4) {
        await sleep(250 * 2 ** attempt);
        continue;
      }
      if (res.status === 401 || res.status === 403) tokenCache.delete(name);
      throw Object.assign(new Error(`Airflow CLI endpoint ${url} answered ${res.status}: ${text}`), { $metadata: { httpStatusCode: res.status } });
    }
  }

  /** A CLI answer that is an error, as the REST status it stands for (undefined: success). */
  function cliFailure(out: { stdout: string; stderr: string }): number | undefined {
    const all = `${out.stderr}\n${out.stdout}`;
    if (/already exists/i.test(all)) return 409;
    if (/could not be found|not found|does not exist/i.test(all)) return 404;
    if (/invalid choice|unrecognized arguments|the following arguments are required|error: argument/i.test(all)) return 400;
    if (/Traceback \(most recent call last\)/.test(all)) return 500;
    return undefined;
  }

  async function cli(name: string, method: string, path: string, command: string): Promise<string> {
    const out = await airflowCli(name, command);
    const status = cliFailure(out);
    if (status !== undefined) {
      const detail = (out.stderr.trim() || out.stdout.trim()).split('\n').slice(-3).join(' ').slice(0, 400);
      throw new AirflowApiError(`Airflow CLI "${command}" (for ${method} ${path}) failed: ${detail}`, status);
    }
    return out.stdout;
  }

  const cliRuns = async (name: string, dagId: string, method: string, path: string): Promise<RawDagRun[]> => {
    const stdout = await cli(name, method, path, `dags list-runs -d ${shellWord(dagId)} -o json`);
    const runs = JSON.parse(stdout.trim() || '[]') as RawDagRun[];
    return runs
      .map((r) => ({ ...r, dag_run_id: r.run_id, logical_date: r.execution_date, run_type: runTypeOf(r) }))
      .sort((a, b) => new Date(b.execution_date ?? 0).getTime() - new Date(a.execution_date ?? 0).getTime());
  };

  /**
   * The subset of Airflow's REST API this module uses, carried out with Airflow 2.0-2.4 CLI
   * commands (`dags list|list-runs|next-execution|pause|unpause|trigger`) for environments
   * without InvokeRestApi. The 2.x CLI does not show a DAG's schedule_interval, catchup or task
   * retries: those come back absent (the caller must be told them).
   */
  async function restViaCli(name: string, method: AirflowMethod, path: string, body?: unknown, query?: Record<string, unknown>): Promise<AirflowResponse> {
    const seg = path.split('/').filter(Boolean).map(decodeURIComponent);
    const ok = (b: unknown): AirflowResponse => ({ status: 200, body: b, via: 'cli' });
    if (seg[0] !== 'dags' || !seg[1]) throw new UnsupportedCallError(`${method} ${path} is not available through the Airflow CLI of this environment`);
    const dagId = seg[1];
    const dagFromList = async () => {
      const list = JSON.parse((await cli(name, method, path, 'dags list -o json')).trim() || '[]') as Array<{ dag_id: string; paused: string | boolean; filepath?: string; owner?: string }>;
      const dag = list.find((d) => d.dag_id === dagId);
      if (!dag) throw new AirflowApiError(`Airflow: DAG ${dagId} not found`, 404);
      return { dag_id: dagId, is_paused: dag.paused === true || String(dag.paused).toLowerCase() === 'true', fileloc: dag.filepath, owners: dag.owner ? [dag.owner] : [] };
    };
    if (seg.length === 2 || (seg.length === 3 && seg[2] === 'details')) {
      if (method === 'GET') {
        const dag = await dagFromList();
        const next = await cli(name, method, path, `dags next-execution ${shellWord(dagId)}`);
        const nextDate = next
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/.test(l))
          .pop();
        return ok({ ...dag, next_dagrun: nextDate ?? null });
      }
      if (method === 'PATCH' && seg.length === 2 && typeof (body as { is_paused?: unknown })?.is_paused === 'boolean') {
        const paused = (body as { is_paused: boolean }).is_paused;
        await cli(name, method, path, `dags ${paused ? 'pause' : 'unpause'} ${shellWord(dagId)}`);
        return ok({ ...(await dagFromList()), is_paused: paused });
      }
    }
    if (seg[2] === 'dagRuns') {
      if (seg.length === 3 && method === 'GET') {
        const limit = Number(query?.limit ?? 100);
        const runs = await cliRuns(name, dagId, method, path);
        return ok({ dag_runs: runs.slice(0, limit), total_entries: runs.length });
      }
      if (seg.length === 3 && method === 'POST') {
        const b = (body ?? {}) as { dag_run_id?: string; logical_date?: string; execution_date?: string; conf?: unknown };
        const date = b.logical_date ?? b.execution_date;
        const parts = ['dags', 'trigger', shellWord(dagId)];
        if (b.dag_run_id) parts.push('-r', shellWord(b.dag_run_id));
        if (date) parts.push('-e', shellWord(date));
        if (b.conf !== undefined) parts.push('-c', shellWord(JSON.stringify(b.conf)));
        await cli(name, method, path, parts.join(' '));
        const run = (await cliRuns(name, dagId, method, path)).find((r) => r.dag_run_id === b.dag_run_id);
        if (!run) throw new AirflowApiError(`Airflow CLI triggered ${dagId} but run ${b.dag_run_id} is not listed`, 500);
        return ok(run);
      }
      if (seg.length === 4 && method === 'GET') {
        const run = (await cliRuns(name, dagId, method, path)).find((r) => r.dag_run_id === seg[3]);
        if (!run) throw new AirflowApiError(`Airflow: DAG run ${dagId}/${seg[3]} not found`, 404);
        return ok(run);
      }
    }
    throw new UnsupportedCallError(`${method} ${path} is not available through the Airflow CLI of this environment (Airflow < ${MIN_REST_API_VERSION.join('.')}: no InvokeRestApi)`);
  }

  /**
   * One Airflow REST API call on `environment`: InvokeRestApi, or the CLI-token flow for
   * Airflow < 2.4.3. Returns Airflow's 2xx answer; 4xx/5xx throw (classified).
   */
  async function airflowRest<T = unknown>(environment: string, method: AirflowMethod, path: string, body?: unknown, query?: Record<string, unknown>): Promise<AirflowResponse<T>> {
    const env = await getEnvironment(environment);
    return guard(environment, async () => {
      const res = env.restApi ? await invokeRestApi(environment, method, path, body, query) : await restViaCli(environment, method, path, body, query);
      return res as AirflowResponse<T>;
    });
  }

  const dagPath = (dagId: string, rest = '') => `/dags/${encodeURIComponent(dagId)}${rest}`;

  async function listRuns(environment: string, dagId: string, limit = 25): Promise<DagRunView[]> {
    const res = await airflowRest<{ dag_runs?: RawDagRun[] }>(environment, 'GET', dagPath(dagId, '/dagRuns'), undefined, { order_by: '-execution_date', limit });
    return (res.body.dag_runs ?? []).map(toRunView);
  }

  async function describeDag(environment: string, dagId: string): Promise<MwaaDagView> {
    const env = await getEnvironment(environment);
    const details = await airflowRest<Record<string, unknown>>(environment, 'GET', dagPath(dagId, env.restApi ? '/details' : ''));
    const d = details.body;
    let tasks: AirflowTaskRetry[] | undefined;
    if (env.restApi) {
      const t = await airflowRest<{ tasks?: Array<Record<string, unknown>> }>(environment, 'GET', dagPath(dagId, '/tasks'));
      tasks = (t.body.tasks ?? []).map((x) => ({
        taskId: String(x.task_id),
        retries: typeof x.retries === 'number' ? x.retries : undefined,
        retryDelaySeconds: seconds(x.retry_delay),
        retryExponentialBackoff: typeof x.retry_exponential_backoff === 'boolean' ? x.retry_exponential_backoff : undefined,
        maxRetryDelaySeconds: seconds(x.max_retry_delay),
      }));
    }
    const recentRuns = await listRuns(environment, dagId);
    const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
    return {
      environment,
      dagId,
      isPaused: d.is_paused === true,
      facts: {
        dagId,
        scheduleInterval: 'schedule_interval' in d ? (d.schedule_interval as AirflowDagFacts['scheduleInterval']) : undefined,
        timetableDescription: str(d.timetable_description),
        catchup: typeof d.catchup === 'boolean' ? d.catchup : undefined,
        startDate: str(d.start_date),
        endDate: str(d.end_date),
        timezone: str(d.timezone),
        maxActiveRuns: typeof d.max_active_runs === 'number' ? d.max_active_runs : undefined,
        tasks,
      },
      nextDagrun: str(d.next_dagrun),
      nextDagrunCreateAfter: str(d.next_dagrun_create_after),
      recentRuns,
      lastScheduledRun: recentRuns.find((r) => r.runType === 'scheduled' || r.runType === 'backfill'),
      via: details.via,
    };
  }

  async function isDagPaused(environment: string, dagId: string): Promise<boolean> {
    const res = await airflowRest<{ is_paused?: boolean }>(environment, 'GET', dagPath(dagId));
    return res.body.is_paused === true;
  }

  /** Pauses or unpauses a DAG; idempotent. Returns whether it changed. */
  async function setDagPaused(environment: string, dagId: string, paused: boolean): Promise<{ isPaused: boolean; changed: boolean }> {
    if ((await isDagPaused(environment, dagId)) === paused) return { isPaused: paused, changed: false };
    const res = await airflowRest<{ is_paused?: boolean }>(environment, 'PATCH', dagPath(dagId), { is_paused: paused }, { update_mask: 'is_paused' });
    return { isPaused: res.body.is_paused ?? paused, changed: true };
  }

  async function getRun(environment: string, dagId: string, runId: string): Promise<DagRunView> {
    const res = await airflowRest<RawDagRun>(environment, 'GET', dagPath(dagId, `/dagRuns/${encodeURIComponent(runId)}`));
    return toRunView(res.body);
  }

  /**
   * Creates the DAG run `runId` for `logicalDate`, or adopts it when it already exists (a
   * retry, or a second call for the same date): Airflow's 409 is not an error then. A 409 for
   * another reason (another run holds that logical date) is a conflict naming it.
   */
  async function triggerRun(environment: string, dagId: string, runId: string, logicalDate: string, conf?: Record<string, unknown>): Promise<{ run: DagRunView; adopted: boolean }> {
    try {
      const res = await airflowRest<RawDagRun>(environment, 'POST', dagPath(dagId, '/dagRuns'), { dag_run_id: runId, logical_date: logicalDate, conf: conf ?? {} });
      return { run: toRunView(res.body), adopted: false };
    } catch (err) {
      if (!(err instanceof ApplicationFailure && err.type === NonRetryable.conflict)) throw err;
      let existing: DagRunView;
      try {
        existing = await getRun(environment, dagId, runId);
      } catch (e) {
        if (!(e instanceof ApplicationFailure && e.type === NonRetryable.missingResource)) throw e;
        throw ApplicationFailure.nonRetryable(`${err.message} (and no run ${runId} exists: another run holds logical date ${logicalDate})`, NonRetryable.conflict);
      }
      if (new Date(existing.logicalDate).getTime() !== new Date(logicalDate).getTime()) {
        throw ApplicationFailure.nonRetryable(`MWAA at ${where(environment)}: DAG run ${dagId}/${runId} exists for logical date ${existing.logicalDate}, not ${logicalDate}`, NonRetryable.conflict);
      }
      if (conf !== undefined && existing.conf !== undefined && JSON.stringify(existing.conf) !== JSON.stringify(conf)) {
        throw ApplicationFailure.nonRetryable(`MWAA at ${where(environment)}: DAG run ${dagId}/${runId} exists with a different conf`, NonRetryable.conflict);
      }
      return { run: existing, adopted: true };
    }
  }

  /** Marks a run failed (REST only: Airflow >= 2.4.3); used when a trigger is cancelled. */
  async function markRunFailed(environment: string, dagId: string, runId: string): Promise<boolean> {
    const env = await getEnvironment(environment);
    if (!env.restApi) return false;
    await airflowRest(environment, 'PATCH', dagPath(dagId, `/dagRuns/${encodeURIComponent(runId)}`), { state: 'failed' });
    return true;
  }

  return {
    endpoint,
    where,
    getEnvironment,
    airflowRest,
    airflowCli: (environment: string, command: string) => guard(environment, () => airflowCli(environment, command)),
    describeDag,
    isDagPaused,
    setDagPaused,
    listRuns,
    getRun,
    triggerRun,
    markRunFailed,
    close() {
      client?.destroy();
      client = undefined;
    },
  };
}

export type MwaaAdapter = ReturnType<typeof mwaaAdapter>;

// ---------------------------------------------------------------------------------------------
// Activities

/** A deterministic DAG run id for a logical date: `pinflow__20240102T000000Z` (short: InvokeRestApi paths are <= 64 chars). */
export function mwaaDagRunId(logicalDate: string | Date): string {
  const iso = new Date(logicalDate).toISOString();
  return `pinflow__${iso.replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z')}`;
}

export interface TriggerMwaaDagInput {
  /** Default: MWAA_ENVIRONMENT. */
  environment?: string;
  dagId: string;
  /** ISO-8601 date or date-time (UTC unless it has an offset). */
  logicalDate: string;
  conf?: Record<string, unknown>;
  /** Default: mwaaDagRunId(logicalDate). */
  dagRunId?: string;
  /** Between two polls of the run (each one heartbeats). Default 10 s. */
  pollIntervalMs?: number;
  /**
   * Default true: wait for the run's end. false: trigger (or adopt) the run and return its
   * current state at once (a run already `failed` still fails); follow it with waitMwaaDagRun.
   */
  wait?: boolean;
}

export interface TriggerMwaaDagResult {
  environment: string;
  dagId: string;
  dagRunId: string;
  logicalDate: string;
  state: string;
  /** True when the run already existed (an earlier attempt or call created it). */
  adopted: boolean;
  startDate?: string;
  endDate?: string;
}

export interface WaitMwaaDagRunInput {
  /** Default: MWAA_ENVIRONMENT. */
  environment?: string;
  dagId: string;
  dagRunId: string;
  /** The state the caller last saw: the activity returns as soon as the run's state differs. */
  since?: string;
  /** Return the current state after this long even when it has not changed. Default 5 min. */
  maxWaitMs?: number;
  /** Between two polls of the run (each one heartbeats). Default 10 s. */
  pollIntervalMs?: number;
}

export type MwaaDagRunStatus = Omit<TriggerMwaaDagResult, 'adopted'>;

const DAG_ID = /^[A-Za-z0-9_.-]{1,250}$/;

function badInput(message: string): never {
  throw ApplicationFailure.nonRetryable(message, NonRetryable.badInput);
}

function dagRunFailed(environment: string, dagId: string, dagRunId: string, logicalDate: string, state: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`MWAA environment ${environment}: DAG run ${dagId}/${dagRunId} (logical date ${logicalDate}) ended in state ${state}`, MWAA_DAG_RUN_FAILED);
}

const isoOf = (d: string) => {
  const t = new Date(d);
  return Number.isNaN(t.getTime()) ? d : t.toISOString();
};

/**
 * Activities on a legacy MWAA DAG. Give `triggerMwaaDag` a heartbeatTimeout of a few poll
 * intervals (so cancellation and worker loss reach it) and a startToCloseTimeout longer than
 * the DAG's runtime; or, to follow the run from a workflow (as dailyPipelineWorkflow does),
 * `triggerMwaaDag({wait: false})` then `waitMwaaDagRun` in a loop, and `stopMwaaDagRun` when
 * the workflow is cancelled. `opts.adapter`: share an adapter (the worker closes it).
 */
export function mwaaActivities(config: Config, opts: MwaaAdapterOptions & { adapter?: MwaaAdapter } = {}) {
  let adapter: MwaaAdapter | undefined = opts.adapter;
  const mwaa = () => (adapter ??= mwaaAdapter(config, opts));
  const envName = (e: string | undefined) => e ?? config.mwaa.environment ?? badInput('no MWAA environment given (input.environment or MWAA_ENVIRONMENT)');
  const checkDag = (dagId: string) => (DAG_ID.test(dagId) ? dagId : badInput(`invalid DAG id ${JSON.stringify(dagId)}`));
  const checkRunId = (runId: string) => (typeof runId === 'string' && /^[A-Za-z0-9_.~:+-]{1,250}$/.test(runId) ? runId : badInput(`invalid DAG run id ${JSON.stringify(runId)}`));

  return {
    /**
     * Triggers `dagId` for `logicalDate` with a deterministic dag_run_id (an existing run with
     * that id is adopted, so retries and repeated calls never start a second run), then polls
     * the run, heartbeating `{dagRunId, state}`, until it succeeds (returned) or fails
     * (non-retryable `PinflowMwaaDagRunFailed` naming the run and its state). Cancelling the
     * activity marks the Airflow run failed (Airflow >= 2.4.3) and stops. With `wait: false`
     * it returns right after the trigger.
     */
    async triggerMwaaDag(input: TriggerMwaaDagInput): Promise<TriggerMwaaDagResult> {
      const ctx = Context.current();
      const environment = envName(input.environment);
      const dagId = checkDag(input.dagId);
      const when = new Date(input.logicalDate);
      if (Number.isNaN(when.getTime())) badInput(`invalid logical date ${JSON.stringify(input.logicalDate)}`);
      const logicalDate = when.toISOString();
      const dagRunId = checkRunId(input.dagRunId ?? mwaaDagRunId(when));
      const pollMs = input.pollIntervalMs ?? 10_000;
      const m = mwaa();

      ctx.heartbeat({ dagRunId, state: 'triggering' });
      // The run must be followable once triggered: over InvokeRestApi its path has a length limit.
      const runPath = `/dags/${encodeURIComponent(dagId)}/dagRuns/${encodeURIComponent(dagRunId)}`;
      if (runPath.length > MAX_REST_PATH && (await m.getEnvironment(environment)).restApi) {
        badInput(
          `MWAA environment ${environment}: DAG run path ${runPath} would be ${runPath.length} characters, over InvokeRestApi's limit of ${MAX_REST_PATH}, so the run could be started but never followed; nothing was triggered (use a DAG id of at most ${MAX_REST_PATH - runPath.length + dagId.length} characters, or a shorter run id)`,
        );
      }
      // Airflow accepts a run for a paused DAG but never starts it: fail now, not after the timeout.
      if (await m.isDagPaused(environment, dagId)) {
        badInput(`MWAA environment ${environment}: DAG ${dagId} is paused (cut over to Temporal?), so a run for ${logicalDate} would stay queued; unpause it first (npm run mwaa -- rollback) or stop calling it`);
      }
      const { run: first, adopted } = await m.triggerRun(environment, dagId, dagRunId, logicalDate, input.conf);
      let run = first;
      if (input.wait === false) {
        ctx.heartbeat({ dagRunId, state: run.state });
        if (run.state === 'failed') throw dagRunFailed(environment, dagId, dagRunId, logicalDate, run.state);
        return { environment, dagId, dagRunId, logicalDate, state: run.state, adopted, startDate: run.startDate, endDate: run.endDate };
      }
      const signal = ctx.cancellationSignal;
      try {
        for (;;) {
          ctx.heartbeat({ dagRunId, state: run.state });
          if (run.state === 'success') {
            return { environment, dagId, dagRunId, logicalDate, state: run.state, adopted, startDate: run.startDate, endDate: run.endDate };
          }
          if (run.state === 'failed') throw dagRunFailed(environment, dagId, dagRunId, logicalDate, run.state);
          await sleep(pollMs, signal);
          run = await m.getRun(environment, dagId, dagRunId);
        }
      } catch (err) {
        if (signal.aborted) {
          await m.markRunFailed(environment, dagId, dagRunId).catch((e: Error) => ctx.log.warn(`MWAA: could not mark ${dagId}/${dagRunId} failed after cancellation: ${e.message}`));
          throw signal.reason ?? err;
        }
        throw err;
      }
    },

    /**
     * Follows an existing DAG run, heartbeating `{dagRunId, state}` every poll: returns when the
     * run succeeds, when its state differs from `since`, or after `maxWaitMs` (then, if the DAG
     * is paused, fails non-retryably: Airflow would never finish the run). A `failed` run fails
     * non-retryably (`PinflowMwaaDagRunFailed`). Read-only: cancelling it only stops waiting.
     */
    async waitMwaaDagRun(input: WaitMwaaDagRunInput): Promise<MwaaDagRunStatus> {
      const ctx = Context.current();
      const environment = envName(input.environment);
      const dagId = checkDag(input.dagId);
      const dagRunId = checkRunId(input.dagRunId);
      const pollMs = input.pollIntervalMs ?? 10_000;
      const maxWaitMs = input.maxWaitMs ?? 300_000;
      const started = Date.now();
      const m = mwaa();
      for (;;) {
        const run = await m.getRun(environment, dagId, dagRunId);
        ctx.heartbeat({ dagRunId, state: run.state });
        const logicalDate = isoOf(run.logicalDate);
        if (run.state === 'failed') throw dagRunFailed(environment, dagId, dagRunId, logicalDate, run.state);
        const status: MwaaDagRunStatus = { environment, dagId, dagRunId, logicalDate, state: run.state, startDate: run.startDate, endDate: run.endDate };
        if (TERMINAL_DAG_RUN_STATES.includes(run.state) || (input.since !== undefined && run.state !== input.since)) return status;
        if (Date.now() - started + pollMs > maxWaitMs) {
          if (await m.isDagPaused(environment, dagId)) {
            badInput(`MWAA environment ${environment}: DAG ${dagId} is paused while its run ${dagRunId} is ${run.state}, so Airflow will not finish it; unpause the DAG (the run then goes on) and run the caller again`);
          }
          return status;
        }
        await sleep(pollMs, ctx.cancellationSignal);
      }
    },

    /**
     * Stops a DAG run that is not finished by marking it failed (Airflow >= 2.4.3; older
     * environments cannot: `stopped: false`). Idempotent: a finished run is left as it is.
     */
    async stopMwaaDagRun(input: { environment?: string; dagId: string; dagRunId: string }): Promise<{ dagRunId: string; state: string; stopped: boolean }> {
      const environment = envName(input.environment);
      const dagId = checkDag(input.dagId);
      const dagRunId = checkRunId(input.dagRunId);
      const m = mwaa();
      const run = await m.getRun(environment, dagId, dagRunId);
      if (TERMINAL_DAG_RUN_STATES.includes(run.state)) return { dagRunId, state: run.state, stopped: false };
      const stopped = await m.markRunFailed(environment, dagId, dagRunId);
      return { dagRunId, state: stopped ? 'failed' : run.state, stopped };
    },

    /** Pauses (default) or unpauses a DAG; idempotent. */
    async pauseMwaaDag(input: { environment?: string; dagId: string; paused?: boolean }): Promise<{ environment: string; dagId: string; isPaused: boolean; changed: boolean }> {
      const environment = envName(input.environment);
      const dagId = checkDag(input.dagId);
      const res = await mwaa().setDagPaused(environment, dagId, input.paused ?? true);
      return { environment, dagId, ...res };
    },

    /** The DAG's scheduling facts, pause state, next run and recent runs. */
    async describeMwaaDag(input: { environment?: string; dagId: string }): Promise<MwaaDagView> {
      return mwaa().describeDag(envName(input.environment), checkDag(input.dagId));
    },
  };
}
