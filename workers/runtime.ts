/**
 * The worker process's Temporal runtime: its logger and its metrics, installed once per
 * process before any connection (Temporal allows one runtime per process).
 *
 * Logs (`LOG_FORMAT=json`; default text): one JSON object per line on stdout, with the SDK's log
 * attributes as fields: `workflowId`, `runId`, `workflowType` on workflow lines;
 * `workflowId`, `workflowRunId`, `activityId`, `activityType`, `attempt` on activity lines;
 * `sdkComponent` names the source (worker, workflow, activity, core); `taskToken` is left
 * out. The SDK logs each workflow's and activity's start and end at DEBUG; the SDK core's own
 * log lines are forwarded to the same logger. `LOG_FORMAT=text` keeps the SDK's plain lines
 * (on stderr; the worker's start and stop lines on stdout).
 *
 * Metrics (`METRICS_PORT`, default off): the SDK's Prometheus exporter on
 * http://METRICS_HOST:METRICS_PORT/metrics, serving the SDK metrics (temporal_*) and
 * pinflow's counters (common/metrics.ts).
 */
import type { LogLevel, LogMetadata } from '@temporalio/common';
import { LevelLogger } from './level-logger';
import { DefaultLogger, LogTimestamp, Runtime, type RuntimeOptions } from '@temporalio/worker';
import type { Config } from '../config';
import { RedactingLogger } from './redaction';

const SEVERITY: Record<LogLevel, number> = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4 };

/** A JSON value for a log field: bigints as strings, errors as name/message/stack. */
function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  // A Buffer has already been through its toJSON here: never print bytes (they may be a key).
  const b = value as { type?: unknown; data?: unknown };
  if (b && typeof b === 'object' && b.type === 'Buffer' && Array.isArray(b.data)) return `<${b.data.length} bytes>`;
  return value;
}

/** One JSON object per line: `{"time", "level", "message", ...metadata}`. */
export class JsonLogger extends LevelLogger {
  private readonly min: number;

  constructor(
    readonly level: LogLevel = 'INFO',
    private readonly write: (line: string) => void = (line) => process.stdout.write(line),
  ) {
    super();
    this.min = SEVERITY[level];
  }

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    if (SEVERITY[level] < this.min) return;
    this.write(jsonLogLine(level, message, meta));
  }
}

export function jsonLogLine(level: LogLevel, message: string, meta: LogMetadata = {}): string {
  // The SDK's own timestamp (ns since the epoch, under a symbol key) when it gives one, otherwise now.
  // taskToken (on activity lines) is left out: a credential-like blob that completes the activity.
  const { [LogTimestamp]: timestampNanos, taskToken: _taskToken, ...fields } = meta;
  const time = typeof timestampNanos === 'bigint' ? new Date(Number(timestampNanos / 1_000_000n)) : new Date();
  return `${JSON.stringify({ time: time.toISOString(), level, message, ...fields }, jsonSafe)}\n`;
}

/** The runtime options of a long-running worker process for this configuration. */
export function workerRuntimeOptions(config: Config, shutdownSignals?: NodeJS.Signals[]): RuntimeOptions {
  // Every line redacted (workers/redaction.ts): no secret value or URL credentials in any log.
  const logger = new RedactingLogger(config.logFormat === 'json' ? new JsonLogger(config.logLevel) : new DefaultLogger(config.logLevel));
  const host = config.metrics.host.includes(':') ? `[${config.metrics.host}]` : config.metrics.host;
  return {
    logger,
    ...(shutdownSignals && { shutdownSignals }),
    telemetryOptions: {
      // Core's lines through the same logger (so they are JSON too); core is chatty below WARN.
      logging: { forward: {}, filter: { core: config.logLevel === 'DEBUG' ? 'INFO' : 'WARN', other: 'ERROR' } },
      ...(config.metrics.port !== undefined && { metrics: { prometheus: { bindAddress: `${host}:${config.metrics.port}` } } }),
    },
  };
}

/** Installs the worker runtime (logger + metrics). Throws if this process already has one. */
export function installWorkerRuntime(config: Config, shutdownSignals?: NodeJS.Signals[]): Runtime {
  try {
    return Runtime.install(workerRuntimeOptions(config, shutdownSignals));
  } catch (err) {
    const { port, host } = config.metrics;
    if (port !== undefined && /prometheus|address/i.test((err as Error).message)) {
      throw new Error(`METRICS_PORT ${port} (METRICS_HOST ${host}): ${(err as Error).message}; choose another port or unset METRICS_PORT`, { cause: err });
    }
    throw err;
  }
}

/** A lifecycle line of the worker process (printed whatever LOG_LEVEL is), in the configured format. */
export function lifecycleLine(config: Config, message: string, fields: Record<string, unknown> = {}): string {
  return config.logFormat === 'json' ? jsonLogLine('INFO', message, fields) : `${message}\n`;
}
