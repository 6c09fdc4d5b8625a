/**
 * The one typed, validated configuration of pinflow.
 *
 * Every setting comes from an environment variable, optionally from a `.env` file in the
 * project root (the environment wins over the file). `.env.example` documents each one with
 * its local default. `loadConfig()` validates everything at once and throws a
 * `ConfigError` naming every bad setting; values of secret settings never appear in it.
 * The rules are config/schema.ts's; this module turns valid settings into the typed Config.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { decodeEncryptionKey, derivedKeyId, parseKeyFile, parseOldKeys } from './encryption-keys';
import { kafkaSecurity, type KafkaSasl, type KafkaTls } from './kafka-security';
import { mysqlSecurity, type MysqlIam, type MysqlTls } from './mysql-security';
import { PROJECT_ROOT } from './project-root';
import { parseProxyHeaders } from './rest-proxy-settings';
import { crossCheck, settingsSchema, type Settings } from './schema';
import { rememberSecret, rememberSecrets, SECRET_SETTINGS } from './secrets';

export { PROJECT_ROOT };

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
  /** Where the daily pipeline's alerts go (activities/alerts.ts); webhookUrl is a secret, never logged. */
  alerts: { webhookUrl?: string };
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
  const result = settingsSchema.safeParse(env);
  const problems: Array<[string, string]> = [
    ...(result.success ? [] : result.error.issues.map((i): [string, string] => [String(i.path[0] ?? '(config)'), i.message])),
    ...crossCheck(env),
  ];
  if (!result.success || problems.length > 0) {
    const byKey = new Map<string, string[]>();
    for (const [key, message] of problems) byKey.set(key, [...(byKey.get(key) ?? []), message]);
    throw new ConfigError([...byKey].map(([key, msgs]) => `${key} ${[...new Set(msgs)].join('; ')}${describeValue(key, env[key])}`));
  }
  // Every secret setting's value (and a key file's keys) is redacted from errors and logs (config/secrets.ts).
  rememberSecrets(SECRET_SETTINGS, env);
  const config = toConfig(result.data);
  rememberSecret(...Object.values(config.encryption?.keys ?? {}));
  return config;
}

function toConfig(e: Settings): Config {
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
    alerts: { webhookUrl: e.ALERT_WEBHOOK_URL },
  };
}

function temporalSecurity(e: Settings): Pick<Config['temporal'], 'tls' | 'apiKey'> {
  const file = (p: string | undefined) => (p === undefined ? undefined : path.resolve(PROJECT_ROOT, p));
  const tls = { certFile: file(e.TEMPORAL_TLS_CERT), keyFile: file(e.TEMPORAL_TLS_KEY), caFile: file(e.TEMPORAL_TLS_CA), serverName: e.TEMPORAL_TLS_SERVER_NAME };
  const defined = Object.fromEntries(Object.entries(tls).filter(([, v]) => v !== undefined));
  const useTls = Object.keys(defined).length > 0 || e.TEMPORAL_API_KEY !== undefined;
  return { ...(useTls && { tls: defined }), ...(e.TEMPORAL_API_KEY !== undefined && { apiKey: e.TEMPORAL_API_KEY }) };
}

function restProxyAuth(e: Settings): Config['restProxyAuth'] {
  const basic = e.REST_PROXY_USERNAME && e.REST_PROXY_PASSWORD ? { username: e.REST_PROXY_USERNAME, password: e.REST_PROXY_PASSWORD } : undefined;
  const parsed = e.REST_PROXY_HEADERS ? parseProxyHeaders(e.REST_PROXY_HEADERS) : undefined;
  const headers = typeof parsed === 'object' ? parsed : undefined;
  return basic || headers ? { ...(basic && { basic }), ...(headers && { headers }) } : undefined;
}

function encryptionKeys(e: Settings): Config['encryption'] {
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
