/**
 * The settings' validation rules: `settingsSchema` checks each environment variable on its own
 * (and parses it: lists, ports, absolute endpoints), `crossCheck` the rules that tie settings
 * together. config/index.ts reports both together and builds the typed Config from `Settings`.
 * Problems name the setting, never a value; relative file paths are resolved against the
 * project root and must name readable files.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { PREFIX_PATTERN, PREFIX_RULE } from '../common/ids';
import { decodeEncryptionKey, derivedKeyId, KEY_ID, parseKeyFile, parseOldKeys } from './encryption-keys';
import { KAFKA_SASL_MECHANISMS, kafkaSecurityProblems, pemProblem, type KafkaSaslMechanism } from './kafka-security';
import { isMysqlSslMode, mysqlSecurityProblems, type MysqlSslMode } from './mysql-security';
import { PROJECT_ROOT } from './project-root';
import { parseProxyHeaders } from './rest-proxy-settings';

const hostPort = /^[A-Za-z0-9.-]+:\d{1,5}$/;
/** An AWS KMS key as S3 takes it: key id (incl. multi-Region mrk-), key ARN, alias/NAME or alias ARN. */
const KMS_KEY_ID =
  /^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|mrk-[0-9a-f]{32}|alias\/[A-Za-z0-9/_-]{1,250}|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(?:key\/(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|mrk-[0-9a-f]{32})|alias\/[A-Za-z0-9/_-]{1,250}))$/;

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

/** An optional setting that `problemOf` checks when set (it returns the problem, or undefined). */
const checked = (problemOf: (v: string) => string | undefined) =>
  optionalString.superRefine((v, ctx) => {
    const problem = v === undefined ? undefined : problemOf(v);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** The problem a parser returned in place of its result. */
const problemIn = (r: unknown) => (typeof r === 'string' ? r : undefined);

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

/** "true" or "false" (or unset). */
const trueOrFalse = optionalString
  .refine((v) => v === undefined || v === 'true' || v === 'false', 'must be "true" or "false"')
  .transform((v) => v as 'true' | 'false' | undefined);

/** An AWS service endpoint. Unset: the local stack's server at `local`. Empty or "aws": AWS's regional endpoint (undefined). */
const awsEndpoint = (local: string) =>
  z
    .string()
    .optional()
    .transform((v) => (v === undefined ? local : v.trim() === '' || v.trim() === 'aws' ? undefined : v.trim()))
    .pipe(z.union([z.undefined(), httpUrl]));

function isReadableFile(p: string): boolean {
  try {
    const file = path.resolve(PROJECT_ROOT, p);
    fs.accessSync(file, fs.constants.R_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** A file path (relative: to the project root) that must name a readable file. */
const readableFile = optionalString.refine((v) => v === undefined || isReadableFile(v), 'must be a readable file');
/** A readable PEM file (relative: to the project root) holding a certificate or a private key. */
const pemFile = (kind: 'certificate' | 'private key') =>
  checked((v) => (isReadableFile(v) ? pemProblem(path.resolve(PROJECT_ROOT, v), kind) : 'must be a readable file'));
const port = z
  .string()
  .regex(/^\d{1,5}$/, 'must be a TCP port (1-65535)')
  .transform(Number)
  .refine((n) => n >= 1 && n <= 65535, 'must be a TCP port (1-65535)');

export const settingsSchema = z
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
    TEMPORAL_ENCRYPTION_KEYS_OLD: checked((v) => problemIn(parseOldKeys(v))),
    TEMPORAL_ENCRYPTION_KEY_FILE: checked((v) => (isReadableFile(v) ? problemIn(parseKeyFile(path.resolve(PROJECT_ROOT, v))) : 'must be a readable file')),
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
    KAFKA_SSL: trueOrFalse,
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
    MYSQL_IAM_AUTH: trueOrFalse,

    S3_ENDPOINT: awsEndpoint('http://127.0.0.1:7070'),
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

    KINESIS_ENDPOINT: awsEndpoint('http://127.0.0.1:4567'),

    PIPELINE_PREFIX: z.string().regex(PREFIX_PATTERN, PREFIX_RULE).default('pinflow'),

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
    REST_PROXY_HEADERS: checked((v) => problemIn(parseProxyHeaders(v))),
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
    // The daily pipeline's alerts (late, failed) are POSTed here as JSON; unset: none sent. A
    // secret as a whole (a webhook URL carries its token): only its origin is ever named.
    ALERT_WEBHOOK_URL: optionalString.pipe(z.union([z.undefined(), httpUrl])),
  });

/** The settings as the schema parsed them. */
export type Settings = z.output<typeof settingsSchema>;

/** Rules that tie settings together; checked on the raw values so they are reported with the rest. */
export function crossCheck(env: Record<string, string | undefined>): Array<[string, string]> {
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
