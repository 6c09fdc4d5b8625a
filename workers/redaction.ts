/**
 * Where the worker applies the redaction point (common/redact.ts) to everything an activity
 * throws and everything the worker logs.
 *
 * - `redactingActivityInterceptor`: an activity inbound interceptor; whatever an activity
 *   throws (a classified failure or a stray library error) has its message, stack and causes
 *   redacted before the SDK logs it ("Activity failed") and turns it into a Temporal failure.
 * - `RedactingLogger`: wraps the worker runtime's logger; every line's message, string fields
 *   and error fields are redacted before they are written.
 */
import type { LogLevel, LogMetadata, Logger } from '@temporalio/common';
import { LevelLogger } from './level-logger';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { redactError, redactText } from '../common/redact';

export const redactingActivityInterceptor: ActivityInterceptorsFactory = () => ({
  inbound: {
    async execute(input, next) {
      try {
        return await next(input);
      } catch (err) {
        throw redactError(err);
      }
    },
  },
});

function redactMeta(meta: LogMetadata | undefined): LogMetadata | undefined {
  if (!meta) return meta;
  const out: LogMetadata = {};
  for (const [k, v] of Object.entries(meta)) out[k] = typeof v === 'string' ? redactText(v) : v instanceof Error ? redactError(v) : v;
  // Symbol keys (the SDK's LogTimestamp) are carried over as they are.
  for (const s of Object.getOwnPropertySymbols(meta)) (out as Record<symbol, unknown>)[s] = (meta as Record<symbol, unknown>)[s];
  return out;
}

export class RedactingLogger extends LevelLogger {
  constructor(private readonly inner: Logger) {
    super();
  }

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    this.inner.log(level, redactText(message), redactMeta(meta));
  }
}
