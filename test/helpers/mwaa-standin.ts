/**
 * A protocol-level stand-in for Amazon MWAA, for tests: the real `@aws-sdk/client-mwaa` client
 * (and the hand-made InvokeRestApi command) talk to it over loopback via MWAA_ENDPOINT.
 *
 * - MWAA API (restJson1, one host, no host prefixes): `GET /environments/{Name}`
 *   (GetEnvironment), `POST /clitoken/{Name}` (CreateCliToken), `POST /restapi/{Name}`
 *   (InvokeRestApi; refused with ValidationException for Airflow < 2.4.3, as MWAA does).
 *   Every request must be SigV4-signed for service `airflow` with the local test credentials:
 *   the signature is recomputed and compared, so a request the SDK did not sign (or signed
 *   for another service or body) is refused with 403 InvalidSignatureException.
 * - Airflow 2 REST subset behind InvokeRestApi: GET/PATCH /dags/{id}, GET /dags/{id}/details,
 *   GET /dags/{id}/tasks, GET/POST /dags/{id}/dagRuns, GET/PATCH /dags/{id}/dagRuns/{runId}, on
 *   in-memory DAGs whose triggered runs go queued -> running -> success (or a scripted end,
 *   e.g. failed), one step per GET of the run; runs of a paused DAG do not advance.
 * - The webserver's CLI endpoint `POST /aws_mwaa/cli` (bearer CLI token from CreateCliToken,
 *   60 s), speaking Airflow 2.2's CLI: `dags list|list-runs|next-execution|pause|unpause|trigger`,
 *   answers `{stdout, stderr}` in base64.
 * - Faults: `inject({fault: 'throttle' | 'deny' | 'server-error' | 'drop-response', times, operation?, airflow?})`
 *   answers 429 ThrottlingException, 403 AccessDeniedException or 500 InternalServerException
 *   to the matching requests, or (`drop-response`) carries the request out and then closes the
 *   connection without answering (the caller cannot know it worked: a lost response); an
 *   unknown environment is a 404 ResourceNotFoundException.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { LOCAL_MWAA_CREDENTIALS } from '../../config';

const fromMwaaSdk = createRequire(require.resolve('@aws-sdk/client-mwaa'));
const { SignatureV4 } = fromMwaaSdk('@smithy/signature-v4') as {
  SignatureV4: new (o: object) => { sign(req: object, o: { signingDate: Date }): Promise<{ headers: Record<string, string> }> };
};
const { Hash } = fromMwaaSdk('@smithy/hash-node') as { Hash: new (alg: string, secret?: unknown) => unknown };

export interface StandinRun {
  dag_run_id: string;
  dag_id: string;
  logical_date: string;
  execution_date: string;
  state: string;
  run_type: string;
  conf: Record<string, unknown>;
  data_interval_start: string | null;
  data_interval_end: string | null;
  start_date: string | null;
  end_date: string | null;
  external_trigger: boolean;
  /** States still to come, one per GET of the run. */
  steps: string[];
}

export interface StandinDag {
  dagId: string;
  isPaused: boolean;
  /** As the REST API shows it: {__type: 'CronExpression', value} | {__type: 'TimeDelta', ...} | null. */
  scheduleInterval: unknown;
  timetableDescription?: string;
  catchup: boolean;
  startDate: string;
  timezone: string;
  maxActiveRuns: number;
  tasks: Array<{ taskId: string; retries: number; retryDelaySeconds: number }>;
  runs: Map<string, StandinRun>;
  /** States a triggered run goes through after queued (default running, success). */
  runScript: string[];
  nextDagrun?: string;
  nextDagrunCreateAfter?: string;
}

export interface StandinEnvironment {
  name: string;
  airflowVersion: string;
  status: string;
  dags: Map<string, StandinDag>;
}

export interface StandinCall {
  operation: 'GetEnvironment' | 'CreateCliToken' | 'InvokeRestApi' | 'CLI' | 'other';
  environment: string;
  /** InvokeRestApi: "PATCH /dags/x"; CLI: the command. */
  detail: string;
}

export interface Fault {
  fault: 'throttle' | 'deny' | 'server-error' | 'drop-response';
  /** How many matching requests get the fault (default 1). */
  times?: number;
  operation?: StandinCall['operation'];
  /** Only InvokeRestApi calls whose "METHOD /path" matches. */
  airflow?: RegExp;
}

export interface MwaaStandin {
  endpoint: string;
  region: string;
  environments: Map<string, StandinEnvironment>;
  calls: StandinCall[];
  /** Requests refused for a bad signature or token (should stay empty). */
  rejected: string[];
  addEnvironment(name: string, airflowVersion: string): StandinEnvironment;
  addDag(environment: string, dag: Partial<StandinDag> & { dagId: string }): StandinDag;
  /** `count` successful scheduled runs of a daily DAG, the last one for logical date `last`. */
  seedDailyRuns(environment: string, dagId: string, last: Date, count: number): void;
  inject(fault: Fault): void;
  clearFaults(): void;
  close(): Promise<void>;
}

const DAY = 86_400_000;
/** Airflow's REST timestamps: `2024-01-10T00:00:00+00:00`. */
const airflowIso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, '+00:00');

function shellSplit(command: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (c === "'") {
      const end = command.indexOf("'", i + 1);
      if (end < 0) throw new Error('unterminated quote');
      cur += command.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      i++;
      while (i < command.length && command[i] !== '"') {
        if (command[i] === '\\' && i + 1 < command.length) i++;
        cur += command[i];
        i++;
      }
      inWord = true;
    } else if (c === '\\' && i + 1 < command.length) {
      cur += command[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

const versionAtLeast = (v: string, min: number[]) => {
  const parts = v.split('.').map(Number);
  for (let i = 0; i < min.length; i++) if ((parts[i] ?? 0) !== min[i]) return (parts[i] ?? 0) > min[i]!;
  return true;
};

export async function startMwaaStandin(opts: { region?: string } = {}): Promise<MwaaStandin> {
  const region = opts.region ?? 'us-east-1';
  const environments = new Map<string, StandinEnvironment>();
  const calls: StandinCall[] = [];
  const rejected: string[] = [];
  let faults: Array<Fault & { left: number }> = [];
  const tokens = new Map<string, { environment: string; expires: number }>();
  let host = '';

  const signer = new SignatureV4({ credentials: LOCAL_MWAA_CREDENTIALS, region, service: 'airflow', sha256: Hash.bind(null, 'sha256'), uriEscapePath: true });

  /** Recomputes the request's SigV4 signature; returns why it is wrong, or undefined. */
  async function checkSignature(req: http.IncomingMessage, body: string): Promise<string | undefined> {
    const auth = req.headers.authorization ?? '';
    const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
    if (!m) return `no SigV4 Authorization header (got ${JSON.stringify(auth.slice(0, 40))})`;
    const [, akid, , signedRegion, service, signedHeaders, signature] = m;
    if (service !== 'airflow') return `signed for service ${service}, not airflow`;
    if (signedRegion !== region) return `signed for region ${signedRegion}, not ${region}`;
    if (akid !== LOCAL_MWAA_CREDENTIALS.accessKeyId) return `unknown access key ${akid}`;
    const amzDate = String(req.headers['x-amz-date'] ?? '');
    const d = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
    if (!d) return 'no x-amz-date header';
    const headers: Record<string, string> = {};
    for (const name of signedHeaders!.split(';')) headers[name] = String(req.headers[name] ?? '');
    const url = new URL(req.url ?? '/', 'http://x');
    const query: Record<string, string> = {};
    url.searchParams.forEach((v, k) => (query[k] = v));
    const signed = await signer.sign(
      { method: req.method, protocol: 'http:', hostname: headers.host ?? '', path: url.pathname, query, headers, body: body === '' ? undefined : body },
      { signingDate: new Date(Date.UTC(+d[1]!, +d[2]! - 1, +d[3]!, +d[4]!, +d[5]!, +d[6]!)) },
    );
    const expected = /Signature=([0-9a-f]{64})/.exec(signed.headers.authorization ?? '')?.[1];
    return expected === signature ? undefined : 'signature does not match the request';
  }

  /** Responses to drop (drop-response faults): the request is carried out, the answer never sent. */
  const dropping = new WeakSet<http.ServerResponse>();
  const send = (res: http.ServerResponse, status: number, body: unknown, errorType?: string) => {
    if (dropping.has(res)) {
      res.socket?.destroy();
      return;
    }
    const headers: Record<string, string> = { 'Content-Type': 'application/json', 'x-amzn-requestid': randomBytes(8).toString('hex') };
    if (errorType) headers['x-amzn-errortype'] = errorType;
    res.writeHead(status, headers).end(JSON.stringify(body));
  };

  function takeFault(call: StandinCall): Fault | undefined {
    const f = faults.find((x) => x.left > 0 && (!x.operation || x.operation === call.operation) && (!x.airflow || (call.operation === 'InvokeRestApi' && x.airflow.test(call.detail))));
    if (f) f.left--;
    return f;
  }

  function answerFault(res: http.ServerResponse, f: Fault, call: StandinCall) {
    if (f.fault === 'throttle') return send(res, 429, { message: 'Rate exceeded' }, 'ThrottlingException');
    if (f.fault === 'server-error') return send(res, 500, { message: 'Internal server error' }, 'InternalServerException');
    return send(
      res,
      403,
      { Message: `User: arn:aws:iam::123456789012:user/pinflow is not authorized to perform: airflow:${call.operation} on resource: arn:aws:airflow:${region}:123456789012:environment/${call.environment}` },
      'AccessDeniedException',
    );
  }

  // --- Airflow ----------------------------------------------------------------------------

  const dagJson = (dag: StandinDag, details: boolean) => ({
    dag_id: dag.dagId,
    is_paused: dag.isPaused,
    is_active: true,
    fileloc: `/usr/local/airflow/dags/${dag.dagId}.py`,
    owners: ['airflow'],
    schedule_interval: dag.scheduleInterval,
    timetable_description: dag.timetableDescription ?? null,
    max_active_runs: dag.maxActiveRuns,
    next_dagrun: dag.nextDagrun ?? null,
    next_dagrun_create_after: dag.nextDagrunCreateAfter ?? null,
    tags: [],
    ...(details ? { catchup: dag.catchup, start_date: dag.startDate, end_date: null, timezone: `Timezone('${dag.timezone}')`, concurrency: 16, default_view: 'grid' } : {}),
  });

  const runJson = (r: StandinRun) => {
    const { steps: _steps, ...rest } = r;
    return rest;
  };

  const notFound = (detail: string, title: string) => ({ status: 404, body: { detail, status: 404, title, type: 'https://airflow.apache.org/docs/apache-airflow/stable/stable-rest-api-ref.html#section/Errors/NotFound' } });

  function advance(dag: StandinDag, run: StandinRun) {
    if (dag.isPaused || run.steps.length === 0) return;
    run.state = run.steps.shift()!;
    if (run.state === 'running' && !run.start_date) run.start_date = airflowIso(new Date());
    if (run.state === 'success' || run.state === 'failed') run.end_date = airflowIso(new Date());
  }

  function createRun(dag: StandinDag, runId: string, logical: Date, conf: Record<string, unknown>): StandinRun | { status: number; body: unknown } {
    const conflict = (detail: string) => ({ status: 409, body: { detail, status: 409, title: 'Conflict', type: 'https://airflow.apache.org/docs/apache-airflow/stable/stable-rest-api-ref.html#section/Errors/AlreadyExists' } });
    if (dag.runs.has(runId)) return conflict(`DAGRun with DAG ID: '${dag.dagId}' and DAGRun ID: '${runId}' already exists`);
    for (const r of dag.runs.values()) {
      if (new Date(r.logical_date).getTime() === logical.getTime()) return conflict(`DAGRun with DAG ID: '${dag.dagId}' and DAGRun logical date: '${airflowIso(logical)}' already exists`);
    }
    const run: StandinRun = {
      dag_run_id: runId,
      dag_id: dag.dagId,
      logical_date: airflowIso(logical),
      execution_date: airflowIso(logical),
      state: 'queued',
      run_type: 'manual',
      conf,
      data_interval_start: airflowIso(logical),
      data_interval_end: airflowIso(logical),
      start_date: null,
      end_date: null,
      external_trigger: true,
      steps: [...dag.runScript],
    };
    dag.runs.set(runId, run);
    return run;
  }

  function airflowRest(env: StandinEnvironment, method: string, path: string, query: Record<string, unknown>, body: Record<string, unknown>): { status: number; body: unknown } {
    const seg = path.split('/').filter(Boolean).map(decodeURIComponent);
    if (seg[0] !== 'dags' || !seg[1]) return { status: 404, body: { detail: `no route ${method} ${path}`, status: 404, title: 'Not Found' } };
    const dag = env.dags.get(seg[1]);
    if (!dag) return notFound(`DAG with dag_id: '${seg[1]}' not found`, 'DAG not found');
    if (seg.length === 2 && method === 'GET') return { status: 200, body: dagJson(dag, false) };
    if (seg.length === 3 && seg[2] === 'details' && method === 'GET') return { status: 200, body: dagJson(dag, true) };
    if (seg.length === 2 && method === 'PATCH') {
      if (query.update_mask !== undefined && query.update_mask !== 'is_paused') return { status: 400, body: { detail: 'Only `is_paused` field can be updated through the REST API', status: 400, title: 'Bad Request' } };
      if (typeof body.is_paused !== 'boolean') return { status: 400, body: { detail: 'is_paused must be a boolean', status: 400, title: 'Bad Request' } };
      dag.isPaused = body.is_paused;
      return { status: 200, body: dagJson(dag, false) };
    }
    if (seg.length === 3 && seg[2] === 'tasks' && method === 'GET') {
      const tasks = dag.tasks.map((t) => ({
        task_id: t.taskId,
        retries: t.retries,
        retry_delay: { __type: 'TimeDelta', days: 0, seconds: t.retryDelaySeconds, microseconds: 0 },
        retry_exponential_backoff: false,
        max_retry_delay: null,
      }));
      return { status: 200, body: { tasks, total_entries: tasks.length } };
    }
    if (seg[2] === 'dagRuns') {
      if (seg.length === 3 && method === 'GET') {
        const desc = String(query.order_by ?? '-execution_date').startsWith('-');
        const runs = [...dag.runs.values()].sort((a, b) => (desc ? -1 : 1) * (new Date(a.logical_date).getTime() - new Date(b.logical_date).getTime()));
        const limit = Number(query.limit ?? 100);
        return { status: 200, body: { dag_runs: runs.slice(0, limit).map(runJson), total_entries: runs.length } };
      }
      if (seg.length === 3 && method === 'POST') {
        const runId = String(body.dag_run_id ?? `manual__${airflowIso(new Date())}`);
        const logical = new Date(String(body.logical_date ?? body.execution_date ?? new Date().toISOString()));
        if (Number.isNaN(logical.getTime())) return { status: 400, body: { detail: `'${String(body.logical_date)}' is not a 'date-time'`, status: 400, title: 'Bad Request' } };
        const made = createRun(dag, runId, logical, (body.conf as Record<string, unknown>) ?? {});
        return 'dag_run_id' in made ? { status: 200, body: runJson(made) } : made;
      }
      const run = seg[3] ? dag.runs.get(seg[3]) : undefined;
      if (seg.length === 4 && !run) return notFound(`DAGRun with DAG ID: '${dag.dagId}' and DagRun ID: '${seg[3]}' not found`, 'DAGRun not found');
      if (seg.length === 4 && method === 'GET') {
        advance(dag, run!);
        return { status: 200, body: runJson(run!) };
      }
      if (seg.length === 4 && method === 'PATCH') {
        if (!['success', 'failed', 'queued'].includes(String(body.state))) return { status: 400, body: { detail: `'${String(body.state)}' is not one of ['success', 'failed', 'queued']`, status: 400, title: 'Bad Request' } };
        run!.state = String(body.state);
        run!.steps = [];
        return { status: 200, body: runJson(run!) };
      }
    }
    return { status: 405, body: { detail: `method ${method} not allowed on ${path}`, status: 405, title: 'Method Not Allowed' } };
  }

  /** Airflow 2.2's CLI, the commands the adapter uses. */
  function airflowCli(env: StandinEnvironment, command: string): { stdout: string; stderr: string } {
    const argv = shellSplit(command);
    const opt = (flag: string, long: string) => {
      const i = argv.findIndex((a) => a === flag || a === long);
      return i >= 0 ? argv[i + 1] : undefined;
    };
    const missing = (id: string) => ({
      stdout: '',
      stderr: `Traceback (most recent call last):\n  ...\nairflow.exceptions.AirflowException: dag_id could not be found: ${id}. Either the dag did not exist or it failed to parse.\n`,
    });
    if (argv[0] !== 'dags') return { stdout: '', stderr: `airflow command error: argument GROUP_OR_COMMAND: invalid choice: '${argv[0]}'\n` };
    switch (argv[1]) {
      case 'list':
        return {
          stdout: JSON.stringify([...env.dags.values()].map((d) => ({ dag_id: d.dagId, filepath: `${d.dagId}.py`, owner: 'airflow', paused: d.isPaused ? 'True' : 'False' }))),
          stderr: '',
        };
      case 'list-runs': {
        const id = opt('-d', '--dag-id') ?? '';
        const dag = env.dags.get(id);
        if (!dag) return missing(id);
        for (const r of dag.runs.values()) advance(dag, r); // each listing is a poll
        const runs = [...dag.runs.values()]
          .sort((a, b) => new Date(b.logical_date).getTime() - new Date(a.logical_date).getTime())
          .map((r) => ({ dag_id: dag.dagId, run_id: r.dag_run_id, state: r.state, execution_date: r.execution_date, start_date: r.start_date ?? '', end_date: r.end_date ?? '' }));
        return { stdout: JSON.stringify(runs), stderr: '' };
      }
      case 'next-execution': {
        const dag = env.dags.get(argv[2] ?? '');
        if (!dag) return missing(argv[2] ?? '');
        return { stdout: `${dag.isPaused ? '[INFO] Please be reminded this DAG is PAUSED now.\n' : ''}${dag.nextDagrun ?? 'None'}\n`, stderr: '' };
      }
      case 'pause':
      case 'unpause': {
        const dag = env.dags.get(argv[2] ?? '');
        if (!dag) return missing(argv[2] ?? '');
        dag.isPaused = argv[1] === 'pause';
        return { stdout: `Dag: ${dag.dagId}, paused: ${dag.isPaused ? 'True' : 'False'}\n`, stderr: '' };
      }
      case 'trigger': {
        const id = argv[2] ?? '';
        const dag = env.dags.get(id);
        if (!dag) return missing(id);
        const runId = opt('-r', '--run-id') ?? `manual__${airflowIso(new Date())}`;
        const date = new Date(opt('-e', '--exec-date') ?? new Date().toISOString());
        const conf = JSON.parse(opt('-c', '--conf') ?? '{}') as Record<string, unknown>;
        const made = createRun(dag, runId, date, conf);
        if (!('dag_run_id' in made)) {
          return { stdout: '', stderr: `Traceback (most recent call last):\n  ...\nairflow.exceptions.DagRunAlreadyExists: A Dag Run already exists for dag id ${id} at ${airflowIso(date)} with run id ${runId}\n` };
        }
        return { stdout: `Created <DagRun ${id} @ ${made.execution_date}: ${runId}, externally triggered: True>\n`, stderr: '' };
      }
      default:
        return { stdout: '', stderr: `airflow command error: argument COMMAND: invalid choice: '${argv[1]}'\n` };
    }
  }

  // --- HTTP ------------------------------------------------------------------------------------

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, body: string) {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;

    if (path === '/aws_mwaa/cli' && req.method === 'POST') {
      const token = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1];
      const t = token ? tokens.get(token) : undefined;
      if (!t || t.expires < Date.now()) {
        rejected.push(`CLI: bad or expired token`);
        return res.writeHead(403, { 'Content-Type': 'text/plain' }).end('Forbidden: invalid or expired CLI token');
      }
      const env = environments.get(t.environment)!;
      calls.push({ operation: 'CLI', environment: env.name, detail: body });
      const out = airflowCli(env, body);
      return send(res, 200, { stdout: Buffer.from(out.stdout).toString('base64'), stderr: Buffer.from(out.stderr).toString('base64') });
    }

    const m = /^\/(environments|clitoken|restapi)\/([^/]+)$/.exec(path);
    const operation: StandinCall['operation'] = !m ? 'other' : m[1] === 'environments' ? 'GetEnvironment' : m[1] === 'clitoken' ? 'CreateCliToken' : 'InvokeRestApi';
    const name = m ? decodeURIComponent(m[2]!) : '';
    let input: Record<string, unknown>;
    try {
      input = body ? (JSON.parse(body) as Record<string, unknown>) : {};
    } catch {
      return send(res, 400, { message: 'body is not JSON' }, 'SerializationException');
    }
    const call: StandinCall = { operation, environment: name, detail: operation === 'InvokeRestApi' ? `${String(input.Method)} ${String(input.Path)}` : '' };

    const badSignature = await checkSignature(req, body);
    if (badSignature) {
      rejected.push(`${operation} ${name}: ${badSignature}`);
      return send(res, 403, { message: `The request signature we calculated does not match the signature you provided (${badSignature})` }, 'InvalidSignatureException');
    }
    calls.push(call);
    const fault = takeFault(call);
    if (fault?.fault === 'drop-response') dropping.add(res);
    else if (fault) return answerFault(res, fault, call);
    if (operation === 'other') return send(res, 404, { message: `no operation at ${req.method} ${path}` }, 'UnknownOperationException');

    const env = environments.get(name);
    if (!env) return send(res, 404, { message: `Environment ${name} not found` }, 'ResourceNotFoundException');

    if (operation === 'GetEnvironment' && req.method === 'GET') {
      return send(res, 200, {
        Environment: {
          Name: env.name,
          Arn: `arn:aws:airflow:${region}:123456789012:environment/${env.name}`,
          Status: env.status,
          AirflowVersion: env.airflowVersion,
          WebserverUrl: host,
          EnvironmentClass: 'mw1.small',
          WebserverAccessMode: 'PUBLIC_ONLY',
        },
      });
    }
    if (operation === 'CreateCliToken' && req.method === 'POST') {
      const token = randomBytes(24).toString('base64url');
      tokens.set(token, { environment: env.name, expires: Date.now() + 60_000 });
      return send(res, 200, { CliToken: token, WebServerHostname: host });
    }
    if (operation === 'InvokeRestApi' && req.method === 'POST') {
      if (!versionAtLeast(env.airflowVersion, [2, 4, 3])) {
        return send(res, 400, { message: `InvokeRestApi is not supported for Apache Airflow version ${env.airflowVersion}; it needs v2.4.3 or later` }, 'ValidationException');
      }
      const p = String(input.Path ?? '');
      const method = String(input.Method ?? '');
      if (p.length < 1 || p.length > 64) return send(res, 400, { message: '1 validation error detected: Value at \'path\' failed to satisfy constraint: Member must have length less than or equal to 64' }, 'ValidationException');
      if (!['GET', 'PUT', 'POST', 'PATCH', 'DELETE'].includes(method)) return send(res, 400, { message: `Value '${method}' at 'method' failed to satisfy constraint` }, 'ValidationException');
      const out = airflowRest(env, method, p, (input.QueryParameters as Record<string, unknown>) ?? {}, (input.Body as Record<string, unknown>) ?? {});
      if (out.status >= 400) {
        return send(res, 400, { RestApiStatusCode: out.status, RestApiResponse: out.body }, out.status >= 500 ? 'RestApiServerException' : 'RestApiClientException');
      }
      return send(res, 200, { RestApiStatusCode: out.status, RestApiResponse: out.body });
    }
    return send(res, 405, { message: `${req.method} not allowed on ${path}` }, 'ValidationException');
  }

  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      handle(req, res, body).catch((err: Error) => send(res, 500, { message: `stand-in error: ${err.message}` }, 'InternalServerException'));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  host = `127.0.0.1:${port}`;

  return {
    endpoint: `http://${host}`,
    region,
    environments,
    calls,
    rejected,
    addEnvironment(name, airflowVersion) {
      const env: StandinEnvironment = { name, airflowVersion, status: 'AVAILABLE', dags: new Map() };
      environments.set(name, env);
      return env;
    },
    addDag(environment, d) {
      const env = environments.get(environment);
      if (!env) throw new Error(`no stand-in environment ${environment}`);
      const dag: StandinDag = {
        isPaused: false,
        scheduleInterval: { __type: 'CronExpression', value: '@daily' },
        catchup: false,
        startDate: '2023-01-01T00:00:00+00:00',
        timezone: 'UTC',
        maxActiveRuns: 1,
        tasks: ['load_data', 'clean_pin', 'clean_geo', 'clean_user', 'query_data'].map((taskId) => ({ taskId, retries: 1, retryDelaySeconds: 120 })),
        runs: new Map(),
        runScript: ['running', 'success'],
        ...d,
      };
      env.dags.set(dag.dagId, dag);
      return dag;
    },
    seedDailyRuns(environment, dagId, last, count) {
      const dag = environments.get(environment)?.dags.get(dagId);
      if (!dag) throw new Error(`no stand-in DAG ${environment}/${dagId}`);
      for (let i = count - 1; i >= 0; i--) {
        const logical = new Date(last.getTime() - i * DAY);
        const id = `scheduled__${airflowIso(logical)}`;
        const end = new Date(logical.getTime() + DAY);
        dag.runs.set(id, {
          dag_run_id: id,
          dag_id: dagId,
          logical_date: airflowIso(logical),
          execution_date: airflowIso(logical),
          state: 'success',
          run_type: 'scheduled',
          conf: {},
          data_interval_start: airflowIso(logical),
          data_interval_end: airflowIso(end),
          start_date: airflowIso(new Date(end.getTime() + 5_000)),
          end_date: airflowIso(new Date(end.getTime() + 600_000)),
          external_trigger: false,
          steps: [],
        });
      }
      dag.nextDagrun = airflowIso(new Date(last.getTime() + DAY));
      dag.nextDagrunCreateAfter = airflowIso(new Date(last.getTime() + 2 * DAY));
    },
    inject(fault) {
      faults.push({ ...fault, left: fault.times ?? 1 });
    },
    clearFaults() {
      faults = [];
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
