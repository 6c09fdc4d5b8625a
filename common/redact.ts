/**
 * The one redaction point for secrets in error messages, stack traces and log lines.
 *
 * Contract:
 * - `rememberSecrets(keys, env)` (called by `loadConfig` for every secret setting) and
 *   `rememberSecret(value)` (for secrets derived at run time, e.g. a basic-auth header) add
 *   values to a process-wide set. A URL-valued setting contributes its userinfo (user and
 *   password), a JSON-object-valued setting its string values, an `id:value,id:value` list
 *   each value; any other setting its whole value. Each is also remembered in its
 *   URL-encoded and base64 forms. Values shorter than MIN_SECRET_LENGTH are not remembered
 *   (too likely to occur in ordinary text; such a password is guessed anyway).
 * - `redactText(text)` replaces every remembered value by `[redacted]` and every URL userinfo
 *   (`scheme://user:pass@host`) by `scheme://***@host`.
 * - `redactError(err)` redacts, in place, the message and stack of an error and of every
 *   error in its `cause` chain (and AggregateError's `errors`), then returns it. `classify()`
 *   (common/errors.ts) and the worker's activity interceptor (workers/redaction.ts) call it,
 *   so nothing thrown by an activity reaches a log line or a Temporal failure unredacted.
 *
 * Pure (no Node built-ins): common/errors.ts, which imports it, is in the workflow bundle.
 */

export const REDACTED = '[redacted]';
/** Remembered values must be at least this long. */
export const MIN_SECRET_LENGTH = 8;

const needles = new Set<string>();
let ordered: string[] | undefined;

/** `scheme://userinfo@`: the userinfo of a URL anywhere in a text. */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@"'<>]+@/gi;

function base64(s: string): string {
  // Only ever called outside the workflow sandbox (settings are read by Node processes).
  return Buffer.from(s, 'utf8').toString('base64');
}

function forms(value: string): string[] {
  const b64 = base64(value);
  return [value, encodeURIComponent(value), b64, b64.replace(/=+$/, ''), b64.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')];
}

/** Remembers secret values (and their encoded forms) for `redactText`. */
export function rememberSecret(...values: Array<string | undefined>): void {
  for (const v of values) {
    if (v === undefined) continue;
    const value = v.trim();
    if (value.length < MIN_SECRET_LENGTH) continue;
    for (const f of forms(value)) {
      if (f.length >= MIN_SECRET_LENGTH && !needles.has(f)) {
        needles.add(f);
        ordered = undefined;
      }
    }
  }
}

/** The secret parts of a secret setting's value (see the contract above). */
export function secretPartsOf(value: string | undefined): string[] {
  const v = (value ?? '').trim();
  if (v === '') return [];
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) {
    // A URL: its credentials are the secret; the address is not (it names the system in messages).
    try {
      const u = new URL(v);
      const parts = [u.password, u.username].filter((p) => p !== '');
      return parts.flatMap((p) => {
        let decoded = p;
        try {
          decoded = decodeURIComponent(p);
        } catch {
          /* keep the raw form */
        }
        return decoded === p ? [p] : [p, decoded];
      });
    } catch {
      return [v];
    }
  }
  if (v.startsWith('{')) {
    try {
      const parsed = JSON.parse(v) as unknown;
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
        return [v, ...Object.values(parsed as Record<string, unknown>).filter((x): x is string => typeof x === 'string')];
      }
    } catch {
      /* not JSON: the whole value */
    }
    return [v];
  }
  // `id:value,id:value` (e.g. TEMPORAL_ENCRYPTION_KEYS_OLD): each value; ids are not secret.
  const entries = v.split(',').map((e) => e.trim()).filter(Boolean);
  return [...new Set([v, ...entries.map((e) => (e.includes(':') ? e.slice(e.indexOf(':') + 1) : e))])];
}

/** Remembers the secret parts of every `keys` setting set in `env`. */
export function rememberSecrets(keys: Iterable<string>, env: Record<string, string | undefined>): void {
  for (const key of keys) rememberSecret(...secretPartsOf(env[key]));
}

/** `text` with every remembered secret and every URL userinfo replaced. */
export function redactText(text: string): string {
  if (typeof text !== 'string' || text === '') return text;
  let out = text.replace(URL_USERINFO, '$1***@');
  if (needles.size === 0) return out;
  // Longest first, so a value containing another is replaced whole.
  ordered ??= [...needles].sort((a, b) => b.length - a.length);
  for (const n of ordered) if (out.includes(n)) out = out.split(n).join(REDACTED);
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
