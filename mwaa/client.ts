/**
 * The MWAA SDK client (`createMwaaClient`) and the hand-made `InvokeRestApiCommand` it sends.
 * Only mwaa/api.ts uses them.
 *
 * WHY hand-made: MWAA added InvokeRestApi in late 2024, but the newest @aws-sdk/client-mwaa the
 * npm registry reachable here serves is 3.523.0 (early 2024), which predates it. So the command
 * is built here on the SDK client's own machinery: the same client instance sends it, so it gets
 * the same endpoint resolution (and MWAA_ENDPOINT override), credentials chain, SigV4 signing
 * (signing name 'airflow', from the client's auth scheme), retries and logging as the SDK's
 * commands. Request and response follow the service model (botocore mwaa/2020-07-01
 * service-2.json and the API reference): `POST /restapi/{Name}` on host prefix `env.`, JSON body
 * `{Path, Method, QueryParameters, Body}` -> `{RestApiStatusCode, RestApiResponse}`; Airflow's
 * own 4xx/5xx come back as RestApiClientException / RestApiServerException carrying the same
 * two fields. REPLACE this with the SDK's `InvokeRestApiCommand` once the registry has a
 * client-mwaa that ships it (then only `invokeRestApi()` in mwaa/api.ts changes).
 * The request body and the response are marked sensitive: the SDK's logging never shows them.
 */
import { createRequire } from 'node:module';
import { MWAAClient, MWAAServiceException } from '@aws-sdk/client-mwaa';
import type { Config } from '../config';

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
