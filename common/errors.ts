/**
 * Error classification for activities, decided on purpose per external system.
 *
 * Non-retryable: the request can never succeed as configured (bad credentials, a missing
 * bucket / table / column, malformed input). Temporal stops retrying and the workflow sees a
 * failure whose message names the system, its address and what to fix.
 * Retryable (everything else): connection refused/reset, timeouts, throttling, 5xx. They
 * are rethrown with the same naming so the UI shows where the problem is.
 */
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { redactError, redactText } from './redact';

export type System = 'MySQL' | 'Kafka' | 'S3' | 'Kinesis' | 'Databricks' | 'MWAA' | 'REST proxy' | 'Alert webhook';

/** Error types (ApplicationFailure.type) that workflows and retry policies can match on. */
export const NonRetryable = {
  config: 'PinflowConfigError',
  missingResource: 'PinflowMissingResource',
  auth: 'PinflowAuthError',
  badInput: 'PinflowBadInput',
  conflict: 'PinflowConflict',
  /** Offsets that can no longer be landed (retention, recreated topic): never retried. */
  dataGap: 'PinflowDataGap',
} as const;

interface ErrorLike {
  name?: string;
  code?: string | number;
  errno?: number;
  message?: string;
  type?: string;
  $metadata?: { httpStatusCode?: number };
  Code?: string;
  /** MWAA InvokeRestApi / CLI endpoint: the status Airflow's own REST API answered. */
  RestApiStatusCode?: number;
}

const mysqlFatal: Record<string, keyof typeof NonRetryable> = {
  ER_ACCESS_DENIED_ERROR: 'auth',
  ER_DBACCESS_DENIED_ERROR: 'auth',
  ER_TABLEACCESS_DENIED_ERROR: 'auth',
  ER_BAD_DB_ERROR: 'missingResource',
  ER_NO_SUCH_TABLE: 'missingResource',
  ER_BAD_FIELD_ERROR: 'missingResource',
  ER_PARSE_ERROR: 'badInput',
  ER_SECURE_TRANSPORT_REQUIRED: 'config', // MySQL's require_secure_transport=ON, over a plain connection
  HANDSHAKE_NO_SSL_SUPPORT: 'config', // TLS asked for (MYSQL_SSL_MODE), the server offers none
  MYSQL_CLEAR_PASSWORD_NOT_ENABLED: 'config', // the server wants a clear-text password (an RDS IAM user) and MYSQL_IAM_AUTH is off
  AUTH_SWITCH_PLUGIN_ERROR: 'auth', // our RDS IAM token could not be signed (no AWS credentials)
};

/** How the MySQL client was configured, for advice in classify()'s message (adapters/mysql-connection.ts). */
export interface MysqlErrorContext {
  tlsMode: 'disabled' | 'required' | 'verify-ca' | 'verify-full';
  caFile?: string;
  iam: boolean;
  /** Access was denied over plain TCP, and the same credentials were accepted over TLS. */
  tlsRequired?: boolean;
}

/** A certificate the client refused (mysql2 reports every TLS handshake failure as HANDSHAKE_SSL_ERROR). */
const CERT_PROBLEM = /certificate|altnames|self[- ]signed|unable to (?:get|verify)|CERT_|issuer/i;

/** What the user should change, when the error and the client's settings say it; '' otherwise. */
function mysqlAdvice(e: ErrorLike, ctx: MysqlErrorContext | undefined): string {
  const setCa = 'set MYSQL_SSL_MODE=required or verify-full with MYSQL_SSL_CA';
  switch (e.code) {
    case 'ER_ACCESS_DENIED_ERROR':
      if (ctx?.tlsRequired) return `: the server requires TLS for this user: ${setCa}`;
      if (ctx?.iam) return ': the IAM token was refused: check that the IAM policy allows rds-db:connect on arn:aws:rds-db:<region>:<account>:dbuser:<resource-id>/<user>, that AWS_REGION is the instance\'s region, and that the user was created IDENTIFIED WITH AWSAuthenticationPlugin';
      return '';
    case 'ER_SECURE_TRANSPORT_REQUIRED':
      return `: the server requires TLS: ${setCa}`;
    case 'HANDSHAKE_NO_SSL_SUPPORT':
      return `: MYSQL_SSL_MODE=${ctx?.tlsMode ?? 'required'} asks for TLS: enable TLS on the server (ssl_cert, ssl_key), or set MYSQL_SSL_MODE=disabled where clear text is acceptable`;
    case 'MYSQL_CLEAR_PASSWORD_NOT_ENABLED':
      return ': for an RDS IAM database user set MYSQL_IAM_AUTH=true (with MYSQL_SSL_MODE=verify-full and MYSQL_SSL_CA)';
    case 'HANDSHAKE_SSL_ERROR': {
      if (!CERT_PROBLEM.test(e.message ?? '')) return '';
      if (/altnames|Hostname\/IP/i.test(e.message ?? '')) {
        return ': TLS certificate verification failed: the server\'s certificate does not name this host (MYSQL_SSL_MODE=verify-full): connect with a host name the certificate lists, or set MYSQL_SSL_MODE=verify-ca';
      }
      const trusted = ctx?.caFile ? `the CA file MYSQL_SSL_CA=${ctx.caFile}` : 'the system CAs (MYSQL_SSL_CA is not set)';
      return `: TLS certificate verification failed: the server's certificate is not signed by ${trusted}: set MYSQL_SSL_CA to the CA bundle that signed it (for RDS: https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem)`;
    }
    default:
      return '';
  }
}

const s3Fatal: Record<string, keyof typeof NonRetryable> = {
  NoSuchBucket: 'missingResource',
  AccessDenied: 'auth',
  InvalidAccessKeyId: 'auth',
  SignatureDoesNotMatch: 'auth',
  InvalidBucketName: 'config',
  AllAccessDisabled: 'auth',
  XAdminUserNotFound: 'auth', // versitygw's answer to an unknown access key (AWS: InvalidAccessKeyId)
  // SSE (S3_SSE, S3_SSE_KMS_KEY_ID): a key that does not exist, is disabled or pending deletion, or an algorithm the server lacks.
  'KMS.NotFoundException': 'config',
  'KMS.DisabledException': 'config',
  'KMS.KMSInvalidStateException': 'config',
  InvalidEncryptionAlgorithmError: 'config',
};

const kafkaFatal: Record<string, keyof typeof NonRetryable> = {
  KafkaJSSASLAuthenticationError: 'auth',
  TOPIC_AUTHORIZATION_FAILED: 'auth',
  CLUSTER_AUTHORIZATION_FAILED: 'auth',
  INVALID_TOPIC_EXCEPTION: 'config',
  MESSAGE_TOO_LARGE: 'badInput', // the same request would be refused again
  RECORD_LIST_TOO_LARGE: 'badInput',
  SASL_AUTHENTICATION_FAILED: 'auth',
  UNSUPPORTED_SASL_MECHANISM: 'auth',
  MskIamNoCredentials: 'auth', // adapters/kafka-msk-iam.ts: no AWS credentials to sign the token
};

/** Node/OpenSSL codes (KafkaJSConnectionError.code) of a broker certificate this client does not trust. */
const KAFKA_TLS_UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
]);

/** Certificate problems other than trust, with what to do about them. */
const KAFKA_TLS_ADVICE: Record<string, string> = {
  CERT_HAS_EXPIRED: "TLS certificate verification failed: the broker's certificate has expired: renew it on the broker",
  CERT_NOT_YET_VALID: "TLS certificate verification failed: the broker's certificate is not valid yet: check the clocks of this host and the broker",
  ERR_TLS_CERT_ALTNAME_INVALID: "TLS certificate verification failed: the broker's certificate does not name this host: use a broker address (KAFKA_BROKERS, and the brokers' advertised listeners) that the certificate lists",
};

/** The chain kafkajs builds (KafkaJSNumberOfRetriesExceeded -> KafkaJSConnectionError), outermost first. */
function errorChain(e: ErrorLike): ErrorLike[] {
  const chain: ErrorLike[] = [];
  for (let x: ErrorLike | undefined = e; x && chain.length < 5 && !chain.includes(x); x = (x as { cause?: ErrorLike }).cause) chain.push(x);
  return chain;
}

/** The TLS code of a Kafka connection failure that retrying cannot fix, if it is one. */
function kafkaTlsCode(e: ErrorLike): string | undefined {
  for (const x of errorChain(e)) {
    const code = typeof x.code === 'string' ? x.code : '';
    if (KAFKA_TLS_UNTRUSTED.has(code) || KAFKA_TLS_ADVICE[code]) return code;
    // The broker refused our client certificate (alerts: certificate unknown/required, bad certificate, unknown CA, access denied).
    if (/^ERR_SSL_.*ALERT_(?:.*CERTIFICATE.*|UNKNOWN_CA|ACCESS_DENIED)$/.test(code)) return code;
  }
  return undefined;
}

/** What to check, for Kafka's authentication and TLS failures; '' otherwise. */
function kafkaAdvice(e: ErrorLike): string {
  const chain = errorChain(e);
  const sasl = chain.find((x) => x.name === 'KafkaJSSASLAuthenticationError' || x.type === 'SASL_AUTHENTICATION_FAILED' || x.type === 'UNSUPPORTED_SASL_MECHANISM');
  if (sasl) {
    if (/mechanism is not supported|UNSUPPORTED_SASL_MECHANISM/i.test(`${sasl.message} ${sasl.type}`)) return ': the broker does not offer this SASL mechanism on this listener: check KAFKA_SASL_MECHANISM and KAFKA_BROKERS';
    if (/OAUTHBEARER/i.test(sasl.message ?? '')) return ': the AWS MSK IAM token was refused: check that the AWS credentials are allowed kafka-cluster:Connect on the cluster, and AWS_REGION is the cluster\'s region';
    return ': check KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD (and KAFKA_SASL_MECHANISM)';
  }
  const code = kafkaTlsCode(e);
  if (!code) {
    // What a listener does to a client whose TLS or SASL does not match it; also what a broker
    // restart looks like, so it stays retryable, with the hint.
    const closed = chain.some((x) => x.name === 'KafkaJSConnectionClosedError');
    return closed ? ' (if this persists: the listener may expect other security than this client uses: check KAFKA_SSL/KAFKA_SSL_CA and KAFKA_SASL_MECHANISM)' : '';
  }
  if (KAFKA_TLS_UNTRUSTED.has(code)) {
    return ": TLS certificate verification failed: the broker's certificate is not signed by a CA this client trusts (KAFKA_SSL_CA, or the system CAs when it is unset): set KAFKA_SSL_CA to the CA that signed the broker's certificate";
  }
  return `: ${KAFKA_TLS_ADVICE[code] ?? 'the broker refused the client certificate: check KAFKA_SSL_CERT/KAFKA_SSL_KEY (a certificate signed by a CA the broker trusts, with its key)'}`;
}

/**
 * Kinesis (AWS JSON 1.1 error types; kinesalite answers the same). Throttling
 * (ProvisionedThroughputExceededException, LimitExceededException), ResourceInUseException
 * (a stream still being created or updated) and 5xx stay retryable; ExpiredIteratorException is
 * handled where iterators are used (re-acquired after the checkpoint), never surfaced.
 */
const kinesisFatal: Record<string, keyof typeof NonRetryable> = {
  ResourceNotFoundException: 'missingResource',
  UnrecognizedClientException: 'auth',
  InvalidSignatureException: 'auth',
  IncompleteSignature: 'auth',
  MissingAuthenticationToken: 'auth',
  ExpiredTokenException: 'auth',
  KMSAccessDeniedException: 'auth',
  InvalidArgumentException: 'badInput',
  ValidationException: 'badInput',
};

// Amazon MWAA's own errors (the control plane and InvokeRestApi). Throttling is retried.
const mwaaFatal: Record<string, keyof typeof NonRetryable> = {
  AccessDeniedException: 'auth',
  UnrecognizedClientException: 'auth',
  InvalidSignatureException: 'auth',
  ExpiredTokenException: 'auth',
  MissingAuthenticationTokenException: 'auth',
  ResourceNotFoundException: 'missingResource',
  ValidationException: 'badInput',
};

/** An HTTP status decided on purpose: 401/403 auth, 404 missing, 409 conflict, 400/422 bad input, others retry. */
function kindOfStatus(status: number | undefined): keyof typeof NonRetryable | undefined {
  switch (status) {
    case 401:
    case 403:
      return 'auth';
    case 404:
      return 'missingResource';
    case 409:
      return 'conflict';
    case 400:
    case 422:
      return 'badInput';
    default:
      return undefined; // 429, 5xx, no status (network): retryable
  }
}

function kindOf(system: System, e: ErrorLike): keyof typeof NonRetryable | undefined {
  if (e instanceof ApplicationFailure && e.nonRetryable) return undefined;
  switch (system) {
    case 'MySQL':
      // A refused certificate stays refused; other handshake failures (a reset) may pass.
      if (e.code === 'HANDSHAKE_SSL_ERROR') return CERT_PROBLEM.test(e.message ?? '') ? 'config' : undefined;
      return typeof e.code === 'string' ? mysqlFatal[e.code] : undefined;
    case 'S3': {
      const code = e.name ?? e.Code;
      if (code && s3Fatal[code]) return s3Fatal[code];
      // 403 is a permission problem whatever the server calls it; 429/5xx stay retryable.
      return e.$metadata?.httpStatusCode === 403 ? 'auth' : undefined;
    }
    case 'Kinesis': {
      const code = e.name ?? e.Code;
      if (code && kinesisFatal[code]) return kinesisFatal[code];
      if (code?.startsWith('AccessDenied')) return 'auth';
      return e.$metadata?.httpStatusCode === 403 ? 'auth' : undefined;
    }
    case 'Kafka': {
      const inner = (e as { cause?: ErrorLike }).cause;
      const fatal = (e.name && kafkaFatal[e.name]) || (e.type && kafkaFatal[e.type]) || (inner?.type && kafkaFatal[inner.type]) || (inner?.name && kafkaFatal[inner.name]);
      // A certificate refused once is refused on every retry (kafkajs already retried briefly).
      return fatal || (kafkaTlsCode(e) ? 'auth' : undefined);
    }
    case 'MWAA': {
      // Airflow's answer relayed by InvokeRestApi (RestApiClientException/RestApiServerException
      // are both HTTP 400 at the MWAA level): its own status decides.
      if (typeof e.RestApiStatusCode === 'number') return kindOfStatus(e.RestApiStatusCode);
      const code = e.name ?? e.Code ?? '';
      if (/Throttl|TooManyRequests/i.test(code)) return undefined;
      if (mwaaFatal[code]) return mwaaFatal[code];
      return kindOfStatus(e.$metadata?.httpStatusCode);
    }
    default:
      return undefined;
  }
}

/**
 * Wraps an error from `system` at `address`: a non-retryable ApplicationFailure for errors
 * that retrying cannot fix, otherwise an Error (retryable) whose message names the system.
 * `mysql`: the MySQL client's TLS/IAM settings, so the message can say which one to change.
 */
export function classify(system: System, address: string, err: unknown, mysql?: MysqlErrorContext): Error {
  // The redaction point (common/redact.ts): no secret value or URL userinfo survives into the
  // message, the stack or any cause, whatever the client library put there.
  redactError(err);
  // Already decided, or the activity's own cancellation: never dressed up as the system failing.
  if (err instanceof ApplicationFailure || err instanceof CancelledFailure) return err;
  const e = (err ?? {}) as ErrorLike;
  const detail = (e.message || e.name || String(err)).trim();
  const message = redactText(`${system} at ${address}: ${detail}${system === 'MySQL' ? mysqlAdvice(e, mysql) : system === 'Kafka' ? kafkaAdvice(e) : ''}`);
  const kind = kindOf(system, e);
  if (kind) return ApplicationFailure.nonRetryable(message, NonRetryable[kind]);
  const wrapped = new Error(message, { cause: err });
  wrapped.name = `${system.replace(/\s/g, '')}Error`;
  return wrapped;
}

/** Runs `fn`, classifying whatever it throws. */
export async function guarded<T>(system: System, address: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw classify(system, address, err);
  }
}
