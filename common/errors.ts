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

export type System = 'MySQL' | 'Kafka' | 'S3' | 'Kinesis' | 'Databricks' | 'MWAA' | 'REST proxy';

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
};

const s3Fatal: Record<string, keyof typeof NonRetryable> = {
  NoSuchBucket: 'missingResource',
  AccessDenied: 'auth',
  InvalidAccessKeyId: 'auth',
  SignatureDoesNotMatch: 'auth',
  InvalidBucketName: 'config',
  AllAccessDisabled: 'auth',
  XAdminUserNotFound: 'auth', // versitygw's answer to an unknown access key (AWS: InvalidAccessKeyId)
};

const kafkaFatal: Record<string, keyof typeof NonRetryable> = {
  KafkaJSSASLAuthenticationError: 'auth',
  TOPIC_AUTHORIZATION_FAILED: 'auth',
  CLUSTER_AUTHORIZATION_FAILED: 'auth',
  INVALID_TOPIC_EXCEPTION: 'config',
  MESSAGE_TOO_LARGE: 'badInput', // the same request would be refused again
  RECORD_LIST_TOO_LARGE: 'badInput',
};

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
      return (e.name && kafkaFatal[e.name]) || (e.type && kafkaFatal[e.type]) || (inner?.type && kafkaFatal[inner.type]) || undefined;
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
 */
export function classify(system: System, address: string, err: unknown): Error {
  // Already decided, or the activity's own cancellation: never dressed up as the system failing.
  if (err instanceof ApplicationFailure || err instanceof CancelledFailure) return err;
  const e = (err ?? {}) as ErrorLike;
  const detail = e.message || e.name || String(err);
  const message = `${system} at ${address}: ${detail}`;
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
