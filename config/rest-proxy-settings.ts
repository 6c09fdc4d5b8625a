/**
 * The REST proxy's credential settings, parsed and checked for config/index.ts.
 *
 * REST_PROXY_HEADERS is a JSON object of header name to value, sent with every request, e.g.
 * `{"x-api-key": "..."}` for an API Gateway key. JSON because header values may hold any
 * printable character (`;`, `,`, `:`, `=`), which a `Name: value; ...` list could not carry
 * unambiguously. `parseProxyHeaders` returns the headers, or a problem that names header
 * names (never values: the whole setting is a secret).
 */

/** Headers pinflow sets itself (or HTTP owns): REST_PROXY_HEADERS may not override them. */
export const RESERVED_PROXY_HEADERS = ['content-type', 'accept', 'content-length', 'host', 'transfer-encoding', 'connection'];

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const VALUE = /^[\t\x20-\x7e]*$/;

/** The headers of a REST_PROXY_HEADERS value, or a problem (a string) naming what is wrong. */
export function parseProxyHeaders(text: string): Record<string, string> | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return 'must be a JSON object of header names to values, e.g. {"x-api-key": "..."}';
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return 'must be a JSON object of header names to values, e.g. {"x-api-key": "..."}';
  const entries = Object.entries(parsed as Record<string, unknown>);
  if (entries.length === 0) return 'must name at least one header (or be unset)';
  const seen = new Set<string>();
  const out: Record<string, string> = {};
  for (const [name, value] of entries) {
    const lower = name.toLowerCase();
    if (!TOKEN.test(name)) return `has a header name that is not an HTTP token: ${JSON.stringify(name.slice(0, 40))}`;
    if (RESERVED_PROXY_HEADERS.includes(lower)) return `may not set ${name}: pinflow sets it`;
    if (seen.has(lower)) return `names header ${name} twice`;
    seen.add(lower);
    if (typeof value !== 'string') return `header ${name} must have a string value`;
    if (value.trim() === '') return `header ${name} has an empty value`;
    if (!VALUE.test(value)) return `header ${name} has a value with characters other than printable ASCII (no line breaks)`;
    out[name] = value;
  }
  return out;
}

/** The `Authorization` value of HTTP basic auth. */
export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}
