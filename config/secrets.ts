/**
 * The secret settings, and which parts of their values are remembered for redaction.
 *
 * Contract:
 * - SECRET_SETTINGS: the settings whose values are never printed, logged or put in a workflow
 *   payload (`loadConfig` hides them in its errors).
 * - `rememberSecrets(keys, env)` (called by `loadConfig` for every secret setting) and
 *   `rememberSecret(value)` (for secrets derived at run time, e.g. a basic-auth header) hand
 *   values to common/redact.ts, which replaces them in errors and log lines. A URL-valued
 *   setting contributes its userinfo (user and password), a JSON-object-valued setting its
 *   string values, an `id:value,id:value` list each value; any other setting its whole value
 *   (`secretPartsOf`). A URL whose address is itself the credential (SECRET_URL_SETTINGS: a
 *   webhook carries its token in the path or the query) contributes the whole URL, its path and
 *   query, each query value and each token-like path segment (`secretUrlParts`). Each is also
 *   remembered in its URL-encoded and base64 forms. Values shorter than MIN_SECRET_LENGTH are
 *   not remembered.
 * Node-only (base64 through Buffer); the redaction itself is pure, in common/redact.ts.
 */
import { Buffer } from 'node:buffer';
import { addSecretValues, MIN_SECRET_LENGTH } from '../common/redact';

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
  'ALERT_WEBHOOK_URL',
]);

/** Secret settings whose whole URL is the credential: only its origin may be named in messages. */
export const SECRET_URL_SETTINGS = new Set(['ALERT_WEBHOOK_URL']);

/** The forms a secret may appear in: as it is, URL-encoded, base64 (padded, unpadded, base64url). */
function forms(value: string): string[] {
  const b64 = Buffer.from(value, 'utf8').toString('base64');
  return [value, encodeURIComponent(value), b64, b64.replace(/=+$/, ''), b64.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')];
}

/** Remembers secret values (and their encoded forms) for redaction. */
export function rememberSecret(...values: Array<string | undefined>): void {
  for (const v of values) {
    if (v === undefined) continue;
    const value = v.trim();
    if (value.length >= MIN_SECRET_LENGTH) addSecretValues(...forms(value));
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

/** A path segment that may be a token: at least 20 characters, or 8 with a digit or a capital ("services" is not; "T0A1B2C3" is). */
const tokenLike = (segment: string) => segment.length >= 20 || (segment.length >= MIN_SECRET_LENGTH && /[0-9A-Z]/.test(segment));

/** The secret parts of a URL that is a credential as a whole (SECRET_URL_SETTINGS). */
export function secretUrlParts(value: string | undefined): string[] {
  const v = (value ?? '').trim();
  if (v === '') return [];
  const parts = [v];
  try {
    const u = new URL(v);
    const segments = u.pathname.split('/').filter(tokenLike);
    parts.push(u.href, u.pathname + u.search, u.search.slice(1), ...u.searchParams.values(), u.username, u.password, ...segments);
    for (const segment of segments) {
      try {
        parts.push(decodeURIComponent(segment));
      } catch {
        /* keep the raw form */
      }
    }
  } catch {
    /* not a URL: the whole value */
  }
  return [...new Set(parts.filter((p) => p.length >= MIN_SECRET_LENGTH))];
}

/** Remembers the secret parts of every `keys` setting set in `env`. */
export function rememberSecrets(keys: Iterable<string>, env: Record<string, string | undefined>): void {
  for (const key of keys) rememberSecret(...(SECRET_URL_SETTINGS.has(key) ? secretUrlParts(env[key]) : secretPartsOf(env[key])));
}
