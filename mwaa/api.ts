/**
 * Airflow inside Amazon MWAA, spoken to as Airflow's REST API (`airflowApi(config).airflowRest`),
 * plus GetEnvironment (cached per environment, `environmentTtlMs`) and the raw CLI. mwaa/adapter.ts
 * builds the DAG operations on it.
 *
 * - `GetEnvironment` and `CreateCliToken` go through `@aws-sdk/client-mwaa` (mwaa/client.ts).
 * - Airflow's REST API goes through MWAA's `InvokeRestApi` (Airflow >= 2.4.3: IAM-signed, no
 *   webserver login), or, for older environments (chosen by the environment's AirflowVersion),
 *   through the CLI-token flow: `CreateCliToken`, then `POST https://<webserver>/aws_mwaa/cli`
 *   with `Authorization: Bearer <token>` and an Airflow CLI command as the body (answer:
 *   `{stdout, stderr}` in base64). `airflowRest()` speaks REST either way: on an old environment
 *   the subset of REST calls used here is carried out with the equivalent CLI commands.
 * - Errors are classified on purpose (common/errors.ts, system 'MWAA'): access denied and bad
 *   signatures are non-retryable auth failures, unknown environments/DAGs/runs missing
 *   resources, validation errors bad input; throttling, 5xx and network errors are retried
 *   (first by the SDK, then by Temporal). Every message names MWAA, the endpoint and the
 *   environment; the CLI token never appears in one.
 * - Airflow 3 environments are refused (non-retryable): their REST API has other fields.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { CreateCliTokenCommand, GetEnvironmentCommand, type MWAAClient } from '@aws-sdk/client-mwaa';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../config';
import { classify, NonRetryable } from '../common/errors';
import { createMwaaClient, InvokeRestApiCommand, mwaaEndpointLabel, type AirflowMethod, type InvokeRestApiOutput } from './client';

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

/** A DAG run as Airflow's REST API (or, mapped, its CLI) shows it. */
export interface RawDagRun {
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

/** The run's type: Airflow's own field, else the prefix of its run id (the old CLI shows no type). */
export function runTypeOf(r: RawDagRun): string {
  if (r.run_type) return r.run_type;
  const id = r.dag_run_id ?? r.run_id ?? '';
  const m = /^(scheduled|manual|backfill|dataset_triggered)__/.exec(id);
  return m ? m[1]! : 'manual';
}

/** The CLI endpoint of a loopback webserver (the tests' stand-in) is plain http. */
function isLoopbackHost(host: string): boolean {
  const h = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return h === '127.0.0.1' || h === 'localhost' || h === '::1';
}

/** A shell word for the Airflow CLI endpoint (it splits the command like a POSIX shell). */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_.:+=@%/-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface AirflowApiOptions {
  /** How long a GetEnvironment answer is reused (default 5 min). */
  environmentTtlMs?: number;
}

export function airflowApi(config: Config, opts: AirflowApiOptions = {}) {
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
        await delay(250 * 2 ** attempt);
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

  return {
    endpoint,
    where,
    getEnvironment,
    airflowRest,
    airflowCli: (environment: string, command: string) => guard(environment, () => airflowCli(environment, command)),
    close() {
      client?.destroy();
      client = undefined;
    },
  };
}

export type AirflowApi = ReturnType<typeof airflowApi>;
