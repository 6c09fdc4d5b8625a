/**
 * The one redaction point for secrets in error messages, stack traces and log lines.
 *
 * Contract:
 * - `addSecretValues(...values)` adds exact values to a process-wide set; values shorter than
 *   MIN_SECRET_LENGTH are passed over (too likely to occur in ordinary text; such a password is
 *   guessed anyway). Which values of which settings are secrets, and in which encoded forms
 *   they are remembered, is config/secrets.ts's (`rememberSecret`, `rememberSecrets`).
 * - `redactText(text)` replaces every remembered value by `[redacted]` and every URL userinfo
 *   (`scheme://user:pass@host`) by `scheme://***@host`.
 * - `redactError(err)` redacts, in place, the message and stack of an error and of every
 *   error in its `cause` chain (and AggregateError's `errors`), then returns it. `classify()`
 *   (common/errors.ts) and the worker's activity interceptor (workers/redaction.ts) call it,
 *   so nothing thrown by an activity reaches a log line or a Temporal failure unredacted.
 *
 * Pure (no Node built-ins, lint-enforced for common/): common/errors.ts, which imports it, is
 * in the workflow bundle.
 */

export const REDACTED = '[redacted]';
/** Remembered values must be at least this long. */
export const MIN_SECRET_LENGTH = 8;

/** `scheme://userinfo@`: the userinfo of a URL anywhere in a text. */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@"'<>]+@/gi;

/** A set of secret values and their longest-first order (rebuilt on first use after a change). */
function createSecretSet() {
  const values = new Set<string>();
  let longestFirst: string[] | undefined;
  return {
    add(value: string): void {
      if (value.length < MIN_SECRET_LENGTH || values.has(value)) return;
      values.add(value);
      longestFirst = undefined;
    },
    /** Longest first, so a value containing another is replaced whole. */
    ordered(): readonly string[] {
      return (longestFirst ??= [...values].sort((a, b) => b.length - a.length));
    },
  };
}

/** This process's secrets: each process remembers those of its own settings. */
const secrets = createSecretSet();

/** Remembers exact values for `redactText` (each form a secret may appear in is one value). */
export function addSecretValues(...values: string[]): void {
  for (const v of values) secrets.add(v);
}

/** `text` with every remembered secret and every URL userinfo replaced. */
export function redactText(text: string): string {
  if (typeof text !== 'string' || text === '') return text;
  let out = text.replace(URL_USERINFO, '$1***@');
  for (const n of secrets.ordered()) if (out.includes(n)) out = out.split(n).join(REDACTED);
  return out;
}

/** Redacts `err`'s message and stack, and those of its causes, in place; returns `err`. */
export function redactError<T>(err: T): T {
  const seen = new Set<unknown>();
  const visit = (e: unknown, depth: number) => {
    if (!e || typeof e !== 'object' || seen.has(e) || depth > 20) return;
    seen.add(e);
    const x = e as { message?: unknown; stack?: unknown; cause?: unknown; errors?: unknown };
    for (const field of ['message', 'stack'] as const) {
      const value = x[field];
      if (typeof value !== 'string') continue;
      const clean = redactText(value);
      if (clean === value) continue;
      try {
        x[field] = clean;
      } catch {
        Object.defineProperty(e, field, { value: clean, configurable: true, writable: true });
      }
    }
    visit(x.cause, depth + 1);
    if (Array.isArray(x.errors)) for (const inner of x.errors) visit(inner, depth + 1);
  };
  visit(err, 0);
  return err;
}
