/**
 * MySQL TLS and RDS IAM authentication settings: their validation rules and their typed form.
 *
 * Contract: `mysqlSecurityProblems(env)` returns `[SETTING, problem]` for every bad combination
 * of the raw settings (config.ts reports them with the rest; MYSQL_URL's value is never shown);
 * `mysqlSecurity(parsed, resolve)` turns valid settings into `Config['mysql']`'s `tls`/`iam` (the
 * CA path made absolute by `resolve`); `describeMysqlSecurity` says how a client connects,
 * without any credential. Settings (the mysql client's --ssl-mode meanings):
 *   MYSQL_SSL_MODE  disabled     plain TCP (the default when neither setting below is set)
 *                   required     TLS, the server's certificate is not verified
 *                   verify-ca    TLS, the certificate must chain to MYSQL_SSL_CA (or, unset, to
 *                                the system's CAs); the host name is not checked
 *                   verify-full  verify-ca plus the certificate must name the host of MYSQL_URL
 *                                (the default when MYSQL_SSL_CA or MYSQL_IAM_AUTH is set); the
 *                                host must be a name: mysql2 checks no IP address (refused here)
 *   MYSQL_SSL_CA    PEM file of the CA(s) that signed the server's certificate (an RDS bundle)
 *   MYSQL_IAM_AUTH  true: every new connection signs a fresh RDS IAM token (AWS default
 *                   credential chain, AWS_REGION) and sends it with mysql_clear_password; needs
 *                   verify-ca or verify-full, a user and no password in MYSQL_URL, AWS_REGION
 * Pure (the CA file's own checks are the schema's); no dependency on config.ts (it imports this).
 */
export const MYSQL_SSL_MODES = ['disabled', 'required', 'verify-ca', 'verify-full'] as const;
export type MysqlSslMode = (typeof MYSQL_SSL_MODES)[number];

/** Set: connect with TLS. `caFile` (absolute) undefined: the system's CAs (verify-* modes). */
export interface MysqlTls {
  mode: Exclude<MysqlSslMode, 'disabled'>;
  caFile?: string;
}

/** Set: authenticate with an RDS IAM token signed for `region`, a new one per connection. */
export interface MysqlIam {
  region: string;
}

export function isMysqlSslMode(v: string): v is MysqlSslMode {
  return (MYSQL_SSL_MODES as readonly string[]).includes(v);
}

const valueOf = (env: Record<string, string | undefined>, key: string) => (env[key] ?? '').trim();

/** The mode in force: the setting, or verify-full when a CA or IAM asks for TLS, else disabled. */
export function effectiveSslMode(mode: string | undefined, caSet: boolean, iam: boolean): MysqlSslMode {
  if (mode && isMysqlSslMode(mode)) return mode;
  return caSet || iam ? 'verify-full' : 'disabled';
}

/** An IPv4 or IPv6 literal (URL hostnames keep IPv6 in brackets). */
export function isIpHost(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');
}

/** `eu-west-1` for `db.abc123.eu-west-1.rds.amazonaws.com` (instances, clusters, proxies), else undefined. */
export function rdsRegionOf(host: string): string | undefined {
  return /\.([a-z]{2}(?:-[a-z]+)+-\d)\.rds\.amazonaws\.com(?:\.cn)?$/.exec(host.toLowerCase())?.[1];
}

/**
 * Combinations of the raw settings that cannot work. Per-setting checks (a known mode, a readable
 * PEM file, true/false) are the schema's; this reports how the settings fit together.
 */
export function mysqlSecurityProblems(env: Record<string, string | undefined>): Array<[string, string]> {
  const problems: Array<[string, string]> = [];
  const explicitMode = valueOf(env, 'MYSQL_SSL_MODE');
  const caSet = valueOf(env, 'MYSQL_SSL_CA') !== '';
  const iam = valueOf(env, 'MYSQL_IAM_AUTH') === 'true';
  const mode = effectiveSslMode(explicitMode || undefined, caSet, iam);
  if (caSet && (explicitMode === 'disabled' || explicitMode === 'required')) {
    problems.push(['MYSQL_SSL_CA', `is only used to verify the server's certificate, which MYSQL_SSL_MODE=${explicitMode} does not do: set MYSQL_SSL_MODE=verify-full (or verify-ca), or unset MYSQL_SSL_CA`]);
  }
  let url: URL | undefined;
  try {
    url = new URL(valueOf(env, 'MYSQL_URL') || 'mysql://pinflow:pinflow@127.0.0.1:3306/pinterest');
  } catch {
    url = undefined; // the schema reports it
  }
  if (mode === 'verify-full' && url && isIpHost(url.hostname)) {
    const why = explicitMode ? 'verify-full' : `verify-full (implied by ${caSet ? 'MYSQL_SSL_CA' : 'MYSQL_IAM_AUTH'})`;
    problems.push(['MYSQL_SSL_MODE', `${why} checks the server's certificate against the host name in MYSQL_URL, but ${url.hostname} is an IP address, which the MySQL client (mysql2) cannot check: use the host name the certificate lists (for the local stack: localhost), or set MYSQL_SSL_MODE=verify-ca`]);
  }
  if (url?.searchParams.has('ssl')) {
    problems.push(['MYSQL_URL', 'must not set TLS itself (?ssl=...): use MYSQL_SSL_MODE and MYSQL_SSL_CA']);
  }
  if (!iam) return problems;
  if (mode === 'disabled') {
    problems.push(['MYSQL_SSL_MODE', 'must not be disabled when MYSQL_IAM_AUTH=true: RDS accepts IAM tokens only over TLS (set MYSQL_SSL_MODE=verify-full and MYSQL_SSL_CA to the RDS CA bundle)']);
  } else if (mode === 'required') {
    problems.push(['MYSQL_SSL_MODE', 'must be verify-full or verify-ca when MYSQL_IAM_AUTH=true: the token travels in clear text inside TLS, so the server must be verified first']);
  }
  if (valueOf(env, 'MYSQL_URL') === '') {
    problems.push(['MYSQL_URL', 'must be set when MYSQL_IAM_AUTH=true: the RDS endpoint and the IAM database user, mysql://user@host:3306/database']);
  } else if (url && url.password !== '') {
    problems.push(['MYSQL_URL', 'must not contain a password when MYSQL_IAM_AUTH=true (a token signed for each connection replaces it): use mysql://user@host:port/database']);
  }
  if (url && url.username === '') problems.push(['MYSQL_URL', 'must name the database user when MYSQL_IAM_AUTH=true (the token is signed for it)']);
  const region = valueOf(env, 'AWS_REGION');
  if (region === '') {
    problems.push(['AWS_REGION', 'is required when MYSQL_IAM_AUTH=true (the region of the RDS instance, part of the signed token)']);
  } else {
    const hostRegion = url ? rdsRegionOf(url.hostname) : undefined;
    if (hostRegion && hostRegion !== region) {
      problems.push(['AWS_REGION', `must be the RDS endpoint's region when MYSQL_IAM_AUTH=true: MYSQL_URL's host is in ${hostRegion}, and a token signed for another region is refused`]);
    }
  }
  return problems;
}

export interface MysqlSecuritySettings {
  MYSQL_SSL_MODE?: MysqlSslMode;
  MYSQL_SSL_CA?: string;
  MYSQL_IAM_AUTH?: 'true' | 'false';
  AWS_REGION: string;
}

/** Valid settings (the problems above ruled out) as `tls` and `iam`; neither: plain, password. */
export function mysqlSecurity(e: MysqlSecuritySettings, resolve: (file: string) => string): { tls?: MysqlTls; iam?: MysqlIam } {
  const iam = e.MYSQL_IAM_AUTH === 'true';
  const mode = effectiveSslMode(e.MYSQL_SSL_MODE, e.MYSQL_SSL_CA !== undefined, iam);
  const tls: MysqlTls | undefined = mode === 'disabled' ? undefined : { mode, ...(e.MYSQL_SSL_CA !== undefined && mode !== 'required' && { caFile: resolve(e.MYSQL_SSL_CA) }) };
  return { ...(tls && { tls }), ...(iam && { iam: { region: e.AWS_REGION } }) };
}

/** `verify-full, CA from MYSQL_SSL_CA, RDS IAM token (eu-west-1)`: how a client connects, for the doctor; never a credential. */
export function describeMysqlSecurity(m: { tls?: MysqlTls; iam?: MysqlIam }): string {
  const tls = !m.tls ? 'MYSQL_SSL_MODE=disabled' : m.tls.mode === 'required' ? 'required, certificate not verified' : `${m.tls.mode}, ${m.tls.caFile ? 'CA from MYSQL_SSL_CA' : 'system CAs'}`;
  return m.iam ? `${tls}, RDS IAM token (${m.iam.region})` : tls;
}
