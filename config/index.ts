/**
 * The one typed, validated configuration of pinflow.
 *
 * Every setting comes from an environment variable, optionally from a `.env` file in the
 * project root (the environment wins over the file). `.env.example` documents each one with
 * its local default. `loadConfig()` validates everything at once and throws a
 * `ConfigError` naming every bad setting; values of secret settings never appear in it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { z } from 'zod';
import { decodeEncryptionKey, derivedKeyId, KEY_ID, parseKeyFile, parseOldKeys } from './encryption-keys';
import { KAFKA_SASL_MECHANISMS, kafkaSecurity, kafkaSecurityProblems, pemProblem, type KafkaSasl, type KafkaSaslMechanism, type KafkaTls } from './kafka-security';
import { isMysqlSslMode, mysqlSecurity, mysqlSecurityProblems, type MysqlIam, type MysqlSslMode, type MysqlTls } from './mysql-security';
import { rememberSecret, rememberSecrets } from '../common/redact';
import { parseProxyHeaders } from './rest-proxy-settings';

export const PROJECT_ROOT = path.resolve(__dirname, '..');

/** Settings whose values must never be printed, logged or put in a workflow payload. */
export const SECRET_SETTINGS = new Set([
  'MYSQL_URL',
  'S3_ACCESS_KEY_ID',
  'S3_SECRET_ACCESS_KEY',
  'DATABRICKS_TOKEN',
  'REST_PROXY_URL',
  'REST_PROXY_PASSWORD',
  'REST_PROXY_HEADERS',
  'TEMPORAL_API_KEY',
  'TEMPORAL_ENCRYPTION_KEY',
  'TEMPORAL_ENCRYPTION_KEYS_OLD',
  'CODEC_SERVER_TOKEN',
  'KAFKA_SASL_USERNAME',
  'KAFKA_SASL_PASSWORD',
]);

/** The local stack's credentials for the S3 server it starts (used only against loopback). */
export const LOCAL_S3_CREDENTIALS = { accessKeyId: 'pinflow', secretAccessKey: 'pinflow-local-secret' };
/** Signing credentials for a loopback Kinesis endpoint (kinesalite requires a signature but checks none). */
export const LOCAL_KINESIS_CREDENTIALS = { accessKeyId: 'pinflow', secretAccessKey: 'pinflow-local-kinesis' };

/** Fixed credentials for a loopback MWAA endpoint (the tests' stand-in); never used against AWS. */
export const LOCAL_MWAA_CREDENTIALS = { accessKeyId: 'pinflow-mwaa', secretAccessKey: 'pinflow-mwaa-local-secret' };

/**
 * The local stack's secured Kafka listener (SASL_SSL, SCRAM-SHA-512; SCRAM-SHA-256 and PLAIN
 * accept the same user), beside the plain one on 127.0.0.1:9092, and the SCRAM user it creates.
 * Its broker certificate is signed by the stack's CA, `caFile` (relative to the project root).
 */
export const LOCAL_KAFKA_SECURED = {
  brokers: '127.0.0.1:9094',
  mechanism: 'scram-sha-512',
  username: 'pinflow',
  password: 'pinflow-local-scram',
  caFile: '.data/kafka/tls/ca.pem',
} as const;

const hostPort = /^[A-Za-z0-9.-]+:\d{1,5}$/;
/** An AWS KMS key as S3 takes it: key id (incl. multi-Region mrk-), key ARN, alias/NAME or alias ARN. */
const KMS_KEY_ID =
  /^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|mrk-[0-9a-f]{32}|alias\/[A-Za-z0-9/_-]{1,250}|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(?:key\/(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|mrk-[0-9a-f]{32})|alias\/[A-Za-z0-9/_-]{1,250}))$/;

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

/** A file path (relative: to the project root) that must name a readable file. */
const readableFile = optionalString.refine((v) => v === undefined || isReadableFile(v), 'must be a readable file');
/** A readable PEM file (relative: to the project root) holding a certificate or a private key. */
const pemFile = (kind: 'certificate' | 'private key') =>
  optionalString.superRefine((v, ctx) => {
    const problem = v === undefined ? undefined : isReadableFile(v) ? pemProblem(path.resolve(PROJECT_ROOT, v), kind) : 'must be a readable file';
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
const port = z
  .string()
  .regex(/^\d{1,5}$/, 'must be a TCP port (1-65535)')
  .transform(Number)
  .refine((n) => n >= 1 && n <= 65535, 'must be a TCP port (1-65535)');

function isReadableFile(p: string): boolean {
  try {
    const file = path.resolve(PROJECT_ROOT, p);
    fs.accessSync(file, fs.constants.R_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

const problemOf = (r: unknown) => (typeof r === 'string' ? r : undefined);

const schema = z
  .object({
    TEMPORAL_ADDRESS: z.string().regex(hostPort, 'must be host:port').default('127.0.0.1:7233'),
    TEMPORAL_NAMESPACE: z.string().regex(/^[A-Za-z0-9._-]{1,255}$/, 'must be a namespace name').default('default'),
    TEMPORAL_TASK_QUEUE: z.string().regex(/^[A-Za-z0-9._-]{1,200}$/, 'must be a task queue name').default('pinflow'),
    TEMPORAL_UI_URL: httpUrl.default('http://127.0.0.1:8233'),
    TEMPORAL_CLI_PATH: optionalString,
    // TLS (mTLS: cert and key together) and/or an API key (implies TLS): Temporal Cloud or a secured cluster.
    TEMPORAL_TLS_CERT: readableFile,
    TEMPORAL_TLS_KEY: readableFile,
    TEMPORAL_TLS_CA: readableFile,
    TEMPORAL_TLS_SERVER_NAME: optionalString.refine((v) => v === undefined || /^[A-Za-z0-9.-]{1,253}$/.test(v), 'must be a host name'),
    TEMPORAL_API_KEY: optionalString,
    // Payload encryption (AES-256-GCM, workers/codec.ts): the current key, or a key file.
    TEMPORAL_ENCRYPTION_KEY: optionalString.refine((v) => v === undefined || decodeEncryptionKey(v) !== undefined, 'must be base64 of exactly 32 bytes (openssl rand -base64 32)'),
    TEMPORAL_ENCRYPTION_KEY_ID: optionalString.refine((v) => v === undefined || KEY_ID.test(v), 'must be 1-64 letters, digits, ".", "_" or "-"'),
    TEMPORAL_ENCRYPTION_KEYS_OLD: optionalString.superRefine((v, ctx) => {
      const problem = v === undefined ? undefined : problemOf(parseOldKeys(v));
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
    TEMPORAL_ENCRYPTION_KEY_FILE: optionalString.superRefine((v, ctx) => {
      const problem = v === undefined ? undefined : isReadableFile(v) ? problemOf(parseKeyFile(path.resolve(PROJECT_ROOT, v))) : 'must be a readable file';
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
    // The codec server (npm run codec-server) for the Web UI and the CLI.
    CODEC_SERVER_PORT: z.string().default('8888').pipe(port),
    CODEC_SERVER_TOKEN: optionalString.refine((v) => v === undefined || v.length >= 16, 'must be at least 16 characters (openssl rand -hex 32)'),
    // The codec endpoint the local dev server's UI uses (`npm run stack` passes it as --ui-codec-endpoint).
    // Unset: the local codec server when encryption is on, none otherwise.
    TEMPORAL_UI_CODEC_ENDPOINT: optionalString.pipe(z.union([z.undefined(), httpUrl])),

    KAFKA_BROKERS: z
      .string()
      .default('127.0.0.1:9092')
      .transform((v) => v.split(',').map((b) => b.trim()).filter(Boolean))
      .refine((list) => list.length > 0 && list.every((b) => hostPort.test(b)), 'must be a comma-separated list of host:port'),
    KAFKA_CLIENT_ID: z.string().min(1).default('pinflow'),
    // TLS and SASL towards the brokers (config/kafka-security.ts; combinations checked in crossCheck).
    KAFKA_SSL: optionalString.refine((v) => v === undefined || v === 'true' || v === 'false', 'must be "true" or "false"').transform((v) => v as 'true' | 'false' | undefined),
    KAFKA_SSL_CA: pemFile('certificate'),
    KAFKA_SSL_CERT: pemFile('certificate'),
    KAFKA_SSL_KEY: pemFile('private key'),
    KAFKA_SASL_MECHANISM: optionalString
      .refine((v) => v === undefined || (KAFKA_SASL_MECHANISMS as readonly string[]).includes(v), `must be one of ${KAFKA_SASL_MECHANISMS.join(', ')}`)
      .transform((v) => v as KafkaSaslMechanism | undefined),
    KAFKA_SASL_USERNAME: optionalString,
    KAFKA_SASL_PASSWORD: optionalString,

    MYSQL_URL: z
      .string()
      .default('mysql://pinflow:pinflow@127.0.0.1:3306/pinterest')
      .refine((v) => {
        try {
          const u = new URL(v);
          return (u.protocol === 'mysql:' || u.protocol === 'mariadb:') && u.hostname !== '' && u.pathname.length > 1;
        } catch {
          return false;
        }
      }, 'must be mysql://user:password@host:port/database'),
    // TLS and RDS IAM tokens towards MySQL (config/mysql-security.ts; combinations checked in crossCheck).
    MYSQL_SSL_MODE: optionalString
      .refine((v) => v === undefined || isMysqlSslMode(v), 'must be disabled, required, verify-ca or verify-full')
      .transform((v) => v as MysqlSslMode | undefined),
    MYSQL_SSL_CA: pemFile('certificate'),
    MYSQL_IAM_AUTH: optionalString
      .refine((v) => v === undefined || v === 'true' || v === 'false', 'must be "true" or "false"')
      .transform((v) => v as 'true' | 'false' | undefined),

    // Unset: the local stack's server. Empty or "aws": AWS's regional endpoint.
    S3_ENDPOINT: z
      .string()
      .optional()
      .transform((v) => (v === undefined ? 'http://127.0.0.1:7070' : v.trim() === '' || v.trim() === 'aws' ? undefined : v.trim()))
      .pipe(z.union([z.undefined(), httpUrl])),
    S3_BUCKET: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)')
      .default('user-pinflow-bucket'),
    S3_ACCESS_KEY_ID: optionalString,
    S3_SECRET_ACCESS_KEY: optionalString,
    // Server-side encryption of every object pinflow writes; unset: the bucket's default encryption.
    S3_SSE: optionalString
      .refine((v) => v === undefined || v === 'AES256' || v === 'aws:kms', 'must be "AES256" or "aws:kms" (or unset: the bucket\'s default encryption)')
      .transform((v) => v as 'AES256' | 'aws:kms' | undefined),
    // Only with S3_SSE=aws:kms; unset there: the bucket's default KMS key, or the AWS managed key aws/s3.
    S3_SSE_KMS_KEY_ID: optionalString.refine((v) => v === undefined || KMS_KEY_ID.test(v), 'must be a KMS key id, key ARN, alias/NAME or alias ARN'),
    AWS_REGION: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region such as us-east-1').default('us-east-1'),

    // Unset: the local stack's kinesalite. Empty or "aws": AWS's regional endpoint.
    KINESIS_ENDPOINT: z
      .string()
      .optional()
      .transform((v) => (v === undefined ? 'http://127.0.0.1:4567' : v.trim() === '' || v.trim() === 'aws' ? undefined : v.trim()))
      .pipe(z.union([z.undefined(), httpUrl])),

    PIPELINE_PREFIX: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,47}$/, 'must be 1-48 lowercase letters, digits, "-" or "_", starting with a letter or digit')
      .default('pinflow'),

    WAREHOUSE: z.enum(['duckdb', 'databricks'], { error: 'must be "duckdb" or "databricks"' }).default('duckdb'),
    DUCKDB_PATH: z.string().min(1).default('.data/warehouse/pinflow.duckdb'),
    DATABRICKS_HOST: optionalString,
    DATABRICKS_TOKEN: optionalString,
    DATABRICKS_HTTP_PATH: optionalString,
    DATABRICKS_CATALOG: z.string().regex(/^[A-Za-z0-9_]+$/, 'must be an identifier').default('main'),
    DATABRICKS_SCHEMA: z.string().regex(/^[A-Za-z0-9_]+$/, 'must be an identifier').default('pinflow'),
    DATABRICKS_CLUSTER_ID: optionalString,
    // Extra trusted CA (PEM file) for the warehouse's TLS: a corporate proxy, or the tests' stand-in.
    DATABRICKS_CA_FILE: optionalString.refine((v) => v === undefined || fs.existsSync(v), 'must be a readable PEM file'),

    REST_PROXY_URL: optionalString
      .pipe(z.union([z.undefined(), httpUrl]))
      .refine((v) => v === undefined || !/^[a-z]+:\/\/[^/?#]*@/i.test(v), 'must not carry credentials (user:password@): set REST_PROXY_USERNAME and REST_PROXY_PASSWORD, or REST_PROXY_HEADERS'),
    // Basic auth for the REST proxy (both or neither; the password is a secret), and/or extra
    // headers (a secret JSON object, e.g. {"x-api-key": "..."} for API Gateway).
    REST_PROXY_USERNAME: optionalString.refine((v) => v === undefined || !v.includes(':'), 'must not contain ":" (basic auth splits user and password at the first ":")'),
    REST_PROXY_PASSWORD: optionalString,
    REST_PROXY_HEADERS: optionalString.superRefine((v, ctx) => {
      const problem = v === undefined ? undefined : problemOf(parseProxyHeaders(v));
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
    // Unset or empty: AWS's regional MWAA endpoint (credentials from the AWS default chain).
    MWAA_ENDPOINT: optionalString.pipe(z.union([z.undefined(), httpUrl])),
    MWAA_ENVIRONMENT: optionalString.refine(
      (v) => v === undefined || /^[a-zA-Z][0-9a-zA-Z_-]{0,79}$/.test(v),
      'must be an MWAA environment name (1-80 letters, digits, "-" or "_", starting with a letter)',
    ),
    LOG_LEVEL: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR'], { error: 'must be DEBUG, INFO, WARN or ERROR' }).default('INFO'),
    // The worker's log lines: the SDK's plain text, or one JSON object per line (for log collectors).
    LOG_FORMAT: z.enum(['text', 'json'], { error: 'must be "text" or "json"' }).default('text'),
    // Prometheus metrics of `npm run worker` on http://METRICS_HOST:METRICS_PORT/metrics; unset: off.
    METRICS_PORT: optionalString.pipe(z.union([z.undefined(), port])),
    METRICS_HOST: z.string().regex(/^[A-Za-z0-9.:-]+$/, 'must be an IP address or host name').default('127.0.0.1'),
  });

/** Rules that tie settings together; checked on the raw values so they are reported with the rest. */
function crossCheck(env: Record<string, string | undefined>): Array<[string, string]> {
  const set = (key: string) => (env[key] ?? '').trim() !== '';
  const problems: Array<[string, string]> = [];
  if ((env.WAREHOUSE ?? '').trim() === 'databricks') {
    for (const key of ['DATABRICKS_HOST', 'DATABRICKS_TOKEN', 'DATABRICKS_HTTP_PATH']) {
      if (!set(key)) problems.push([key, 'is required when WAREHOUSE=databricks']);
    }
  }
  if (set('S3_ACCESS_KEY_ID') !== set('S3_SECRET_ACCESS_KEY')) {
    const missing = set('S3_ACCESS_KEY_ID') ? 'S3_SECRET_ACCESS_KEY' : 'S3_ACCESS_KEY_ID';
    problems.push([missing, 'must be set together with its pair (or neither, to use the AWS default credential chain)']);
  }
  if (set('S3_SSE_KMS_KEY_ID') && (env.S3_SSE ?? '').trim() !== 'aws:kms') {
    problems.push(['S3_SSE_KMS_KEY_ID', 'needs S3_SSE=aws:kms (a KMS key is used only for SSE-KMS)']);
  }
  if (set('TEMPORAL_TLS_CERT') !== set('TEMPORAL_TLS_KEY')) {
    const missing = set('TEMPORAL_TLS_CERT') ? 'TEMPORAL_TLS_KEY' : 'TEMPORAL_TLS_CERT';
    problems.push([missing, 'must be set together with its pair (mTLS needs the client certificate and its private key)']);
  }
  if (set('TEMPORAL_ENCRYPTION_KEY_FILE') && set('TEMPORAL_ENCRYPTION_KEY')) {
    problems.push(['TEMPORAL_ENCRYPTION_KEY_FILE', 'cannot be combined with TEMPORAL_ENCRYPTION_KEY: use one or the other']);
  }
  for (const key of ['TEMPORAL_ENCRYPTION_KEY_ID', 'TEMPORAL_ENCRYPTION_KEYS_OLD']) {
    if (set(key) && !set('TEMPORAL_ENCRYPTION_KEY')) problems.push([key, 'needs TEMPORAL_ENCRYPTION_KEY (the current key)']);
  }
  const current = decodeEncryptionKey(env.TEMPORAL_ENCRYPTION_KEY ?? '');
  const old = parseOldKeys(env.TEMPORAL_ENCRYPTION_KEYS_OLD ?? '');
  if (current && typeof old !== 'string') {
    const currentId = (env.TEMPORAL_ENCRYPTION_KEY_ID ?? '').trim() || derivedKeyId(current);
    const ids = old.map(([id]) => id);
    if (ids.includes(currentId)) problems.push(['TEMPORAL_ENCRYPTION_KEYS_OLD', `must not reuse the current key's id "${currentId}"`]);
    else if (new Set(ids).size !== ids.length) problems.push(['TEMPORAL_ENCRYPTION_KEYS_OLD', 'lists a key id twice']);
  }
  problems.push(...kafkaSecurityProblems(env, PROJECT_ROOT));
  problems.push(...mysqlSecurityProblems(env));
  problems.push(...restProxyProblems(env, set));
  return problems;
}

/** The REST proxy's credentials: basic auth as a pair, not with an Authorization header too, only with a URL. */
function restProxyProblems(env: Record<string, string | undefined>, set: (key: string) => boolean): Array<[string, string]> {
  const problems: Array<[string, string]> = [];
  if (set('REST_PROXY_USERNAME') !== set('REST_PROXY_PASSWORD')) {
    const missing = set('REST_PROXY_USERNAME') ? 'REST_PROXY_PASSWORD' : 'REST_PROXY_USERNAME';
    problems.push([missing, 'must be set together with its pair (basic auth needs both; or neither)']);
  }
  const headers = set('REST_PROXY_HEADERS') ? parseProxyHeaders((env.REST_PROXY_HEADERS ?? '').trim()) : {};
  if (typeof headers !== 'string' && set('REST_PROXY_USERNAME') && Object.keys(headers).some((h) => h.toLowerCase() === 'authorization')) {
    problems.push(['REST_PROXY_HEADERS', 'sets Authorization, which REST_PROXY_USERNAME / REST_PROXY_PASSWORD also set: use one or the other']);
  }
  for (const key of ['REST_PROXY_USERNAME', 'REST_PROXY_PASSWORD', 'REST_PROXY_HEADERS']) {
    if (set(key) && !set('REST_PROXY_URL')) problems.push([key, 'needs REST_PROXY_URL (the proxy it authenticates to)']);
  }
  return problems;
}

type Env = z.output<typeof schema>;

export interface Config {
  temporal: {
    address: string;
    namespace: string;
    taskQueue: string;
    uiUrl: string;
    cliPath?: string;
    /** Set: connect with TLS (absolute file paths; mTLS when certFile and keyFile are set). */
    tls?: { certFile?: string; keyFile?: string; caFile?: string; serverName?: string };
    /** Temporal Cloud API key (sent as a bearer token, over TLS). */
    apiKey?: string;
  };
  /** Set: every payload is encrypted (workers/codec.ts). `keys` are base64, by id; `keyId` encrypts. */
  encryption?: { keyId: string; keys: Record<string, string> };
  /** `uiCodecEndpoint`: what the local dev server's UI decodes through (undefined: none). */
  codecServer: { port: number; token?: string; uiCodecEndpoint?: string };
  /** The worker's Prometheus endpoint; port undefined: no metrics. */
  metrics: { port?: number; host: string };
  logFormat: 'text' | 'json';
  /** `ssl` set: TLS (files absolute; none: the system CAs); `sasl` set: authenticate (adapters/kafka.ts). */
  kafka: { brokers: string[]; clientId: string; ssl?: KafkaTls; sasl?: KafkaSasl };
  /** `tls` set: TLS with that verification (adapters/mysql-connection.ts); `iam` set: an RDS IAM token per connection. */
  mysql: { url: string; tls?: MysqlTls; iam?: MysqlIam };
  s3: {
    endpoint?: string;
    bucket: string;
    region: string;
    forcePathStyle: boolean;
    credentials?: { accessKeyId: string; secretAccessKey: string };
    /** Server-side encryption sent with every object write (adapters/s3.ts); undefined: the bucket's default. */
    sse?: { algorithm: 'AES256' | 'aws:kms'; kmsKeyId?: string };
  };
  kinesis: {
    /** undefined: AWS's regional endpoint. */
    endpoint?: string;
    region: string;
    /** Set for a loopback endpoint (kinesalite checks no signature); otherwise the AWS default chain. */
    credentials?: { accessKeyId: string; secretAccessKey: string };
  };
  prefix: string;
  warehouse: {
    kind: 'duckdb' | 'databricks';
    duckdbPath: string;
    databricks: { host?: string; token?: string; httpPath?: string; catalog: string; schema: string; clusterId?: string; caFile?: string };
  };
  restProxyUrl?: string;
  /** Sent with every REST proxy request (secrets: never logged): basic auth and/or extra headers. */
  restProxyAuth?: { basic?: { username: string; password: string }; headers?: Record<string, string> };
  /** Amazon MWAA, only for migrating off it (`npm run mwaa`) and the `triggerMwaaDag` activity. */
  mwaa: { endpoint?: string; environment?: string; region: string; credentials?: { accessKeyId: string; secretAccessKey: string } };
  logLevel: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
}

export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(`Invalid configuration (${problems.length} setting${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function isLoopback(endpoint: string | undefined): boolean {
  if (!endpoint) return false;
  const host = new URL(endpoint).hostname;
  return host === '127.0.0.1' || host === 'localhost' || host === '[::1]';
}

/** Reads `.env` (if present) below the environment: a variable already set wins. */
export function readEnv(env: NodeJS.ProcessEnv = process.env, envFile = path.join(PROJECT_ROOT, '.env')): Record<string, string | undefined> {
  const fromFile = fs.existsSync(envFile) ? parseEnv(fs.readFileSync(envFile, 'utf8')) : {};
  return { ...fromFile, ...env };
}

function describeValue(key: string, value: unknown): string {
  if (SECRET_SETTINGS.has(key)) return value === undefined ? ' (not set)' : ' (value hidden: secret)';
  if (value === undefined) return ' (not set)';
  return ` (got ${JSON.stringify(value)})`;
}

export function loadConfig(env: Record<string, string | undefined> = readEnv()): Config {
  const result = schema.safeParse(env);
  const problems: Array<[string, string]> = [
    ...(result.success ? [] : result.error.issues.map((i): [string, string] => [String(i.path[0] ?? '(config)'), i.message])),
    ...crossCheck(env),
  ];
  if (!result.success || problems.length > 0) {
    const byKey = new Map<string, string[]>();
    for (const [key, message] of problems) byKey.set(key, [...(byKey.get(key) ?? []), message]);
    throw new ConfigError([...byKey].map(([key, msgs]) => `${key} ${[...new Set(msgs)].join('; ')}${describeValue(key, env[key])}`));
  }
  // Every secret setting's value (and a key file's keys) is redacted from errors and logs (common/redact.ts).
  rememberSecrets(SECRET_SETTINGS, env);
  const config = toConfig(result.data);
  rememberSecret(...Object.values(config.encryption?.keys ?? {}));
  return config;
}

function toConfig(e: Env): Config {
  const credentials =
    e.S3_ACCESS_KEY_ID && e.S3_SECRET_ACCESS_KEY
      ? { accessKeyId: e.S3_ACCESS_KEY_ID, secretAccessKey: e.S3_SECRET_ACCESS_KEY }
      : isLoopback(e.S3_ENDPOINT)
        ? LOCAL_S3_CREDENTIALS
        : undefined;
  return {
    temporal: {
      address: e.TEMPORAL_ADDRESS,
      namespace: e.TEMPORAL_NAMESPACE,
      taskQueue: e.TEMPORAL_TASK_QUEUE,
      uiUrl: e.TEMPORAL_UI_URL.replace(/\/$/, ''),
      cliPath: e.TEMPORAL_CLI_PATH,
      ...temporalSecurity(e),
    },
    encryption: encryptionKeys(e),
    codecServer: {
      port: e.CODEC_SERVER_PORT,
      token: e.CODEC_SERVER_TOKEN,
      uiCodecEndpoint: e.TEMPORAL_UI_CODEC_ENDPOINT ?? (e.TEMPORAL_ENCRYPTION_KEY || e.TEMPORAL_ENCRYPTION_KEY_FILE ? `http://127.0.0.1:${e.CODEC_SERVER_PORT}` : undefined),
    },
    metrics: { port: e.METRICS_PORT, host: e.METRICS_HOST },
    logFormat: e.LOG_FORMAT,
    kafka: { brokers: e.KAFKA_BROKERS, clientId: e.KAFKA_CLIENT_ID, ...kafkaSecurity(e, PROJECT_ROOT) },
    mysql: { url: e.MYSQL_URL, ...mysqlSecurity(e, (f) => path.resolve(PROJECT_ROOT, f)) },
    s3: {
      endpoint: e.S3_ENDPOINT,
      bucket: e.S3_BUCKET,
      region: e.AWS_REGION,
      forcePathStyle: e.S3_ENDPOINT !== undefined,
      credentials,
      ...(e.S3_SSE && { sse: { algorithm: e.S3_SSE, ...(e.S3_SSE_KMS_KEY_ID && { kmsKeyId: e.S3_SSE_KMS_KEY_ID }) } }),
    },
    kinesis: { endpoint: e.KINESIS_ENDPOINT, region: e.AWS_REGION, credentials: isLoopback(e.KINESIS_ENDPOINT) ? LOCAL_KINESIS_CREDENTIALS : undefined },
    prefix: e.PIPELINE_PREFIX,
    warehouse: {
      kind: e.WAREHOUSE,
      duckdbPath: path.resolve(PROJECT_ROOT, e.DUCKDB_PATH),
      databricks: {
        host: e.DATABRICKS_HOST,
        token: e.DATABRICKS_TOKEN,
        httpPath: e.DATABRICKS_HTTP_PATH,
        catalog: e.DATABRICKS_CATALOG,
        schema: e.DATABRICKS_SCHEMA,
        clusterId: e.DATABRICKS_CLUSTER_ID,
        caFile: e.DATABRICKS_CA_FILE,
      },
    },
    restProxyUrl: e.REST_PROXY_URL,
    restProxyAuth: restProxyAuth(e),
    mwaa: {
      endpoint: e.MWAA_ENDPOINT,
      environment: e.MWAA_ENVIRONMENT,
      region: e.AWS_REGION,
      credentials: isLoopback(e.MWAA_ENDPOINT) ? LOCAL_MWAA_CREDENTIALS : undefined,
    },
    logLevel: e.LOG_LEVEL,
  };
}

function temporalSecurity(e: Env): Pick<Config['temporal'], 'tls' | 'apiKey'> {
  const file = (p: string | undefined) => (p === undefined ? undefined : path.resolve(PROJECT_ROOT, p));
  const tls = { certFile: file(e.TEMPORAL_TLS_CERT), keyFile: file(e.TEMPORAL_TLS_KEY), caFile: file(e.TEMPORAL_TLS_CA), serverName: e.TEMPORAL_TLS_SERVER_NAME };
  const defined = Object.fromEntries(Object.entries(tls).filter(([, v]) => v !== undefined));
  const useTls = Object.keys(defined).length > 0 || e.TEMPORAL_API_KEY !== undefined;
  return { ...(useTls && { tls: defined }), ...(e.TEMPORAL_API_KEY !== undefined && { apiKey: e.TEMPORAL_API_KEY }) };
}

function restProxyAuth(e: Env): Config['restProxyAuth'] {
  const basic = e.REST_PROXY_USERNAME && e.REST_PROXY_PASSWORD ? { username: e.REST_PROXY_USERNAME, password: e.REST_PROXY_PASSWORD } : undefined;
  const parsed = e.REST_PROXY_HEADERS ? parseProxyHeaders(e.REST_PROXY_HEADERS) : undefined;
  const headers = typeof parsed === 'object' ? parsed : undefined;
  return basic || headers ? { ...(basic && { basic }), ...(headers && { headers }) } : undefined;
}

function encryptionKeys(e: Env): Config['encryption'] {
  if (e.TEMPORAL_ENCRYPTION_KEY_FILE) {
    const file = parseKeyFile(path.resolve(PROJECT_ROOT, e.TEMPORAL_ENCRYPTION_KEY_FILE));
    if (typeof file === 'string') throw new ConfigError([`TEMPORAL_ENCRYPTION_KEY_FILE ${file}`]);
    return { keyId: file.current, keys: Object.fromEntries(file.keys.map(([id, k]) => [id, k.toString('base64')])) };
  }
  const current = e.TEMPORAL_ENCRYPTION_KEY === undefined ? undefined : decodeEncryptionKey(e.TEMPORAL_ENCRYPTION_KEY);
  if (!current) return undefined;
  const keyId = e.TEMPORAL_ENCRYPTION_KEY_ID ?? derivedKeyId(current);
  const old = e.TEMPORAL_ENCRYPTION_KEYS_OLD ? parseOldKeys(e.TEMPORAL_ENCRYPTION_KEYS_OLD) : [];
  const entries = typeof old === 'string' ? [] : old;
  return { keyId, keys: Object.fromEntries([[keyId, current.toString('base64')], ...entries.map(([id, k]) => [id, k.toString('base64')])]) };
}

/** `mysql://user:***@host:3306/db`: a URL fit for logs and error messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/** Where a system lives, for messages that must name it without leaking credentials. */
export function addressOf(config: Config, system: 'temporal' | 'kafka' | 'mysql' | 's3' | 'kinesis'): string {
  switch (system) {
    case 'temporal':
      return config.temporal.address;
    case 'kafka':
      return config.kafka.brokers.join(',');
    case 'mysql': {
      const u = new URL(config.mysql.url);
      return `${u.hostname}:${u.port || 3306}`;
    }
    case 's3':
      return `${config.s3.endpoint ?? `https://s3.${config.s3.region}.amazonaws.com`}/${config.s3.bucket}`;
    case 'kinesis':
      return config.kinesis.endpoint ?? `https://kinesis.${config.kinesis.region}.amazonaws.com`;
  }
}
