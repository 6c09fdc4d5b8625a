/**
 * How pinflow connects to MySQL: the one builder of mysql2 connection options. Every pool and
 * connection the project opens over TCP (the adapter, db:load, db:seed, the stack's health
 * check, the test helpers) takes its options from `mysqlConnectionOptions(config)`, so
 * MYSQL_SSL_MODE, MYSQL_SSL_CA and MYSQL_IAM_AUTH (config/mysql-security.ts) apply everywhere.
 *
 * TLS, the mysql client's meanings: `required` encrypts without checking the certificate;
 * `verify-ca` checks that it chains to MYSQL_SSL_CA (only those CAs are trusted; without the
 * setting, Node's bundled public CAs), whatever host it names; `verify-full` also checks that it
 * names the host of MYSQL_URL, which must be a host name: mysql2 sends no SNI for an IP address
 * and then checks the certificate against nothing (its "localhost" fallback), so that
 * combination is refused. A server without TLS is refused by all three, never used in clear text.
 *
 * RDS IAM: no password goes into the handshake. RDS IAM users authenticate with
 * AWSAuthenticationPlugin, which switches the client to mysql_clear_password; our
 * `mysql_clear_password` plugin then signs a new token (`rdsIamTokenProvider`: the AWS SDK's RDS
 * signer, default credential chain, AWS_REGION, 15 minutes) for that one connection. So a pool
 * never reuses a token: each new connection, now or in an hour, authenticates with its own, and
 * connections already open stay open (a token is only checked at authentication). Tokens are
 * credentials: never logged, never part of an error.
 */
import fs from 'node:fs';
import { Signer } from '@aws-sdk/rds-signer';
import mysql from 'mysql2/promise';
import { addressOf, type Config } from '../config';
import { classify, type MysqlErrorContext } from '../common/errors';
import { isIpHost } from '../config/mysql-security';

/** Where MYSQL_URL points and who it names (never its password). */
function endpointOf(config: Config): { host: string; port: number; user: string } {
  const u = new URL(config.mysql.url);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 3306), user: decodeURIComponent(u.username) };
}

/**
 * A function that signs a new RDS IAM token for MYSQL_URL's user, host and port on each call
 * (`host:port/?Action=connect&DBUser=user&X-Amz-...&X-Amz-Expires=900&X-Amz-Signature=...`).
 * A failure names the user, endpoint and region and how credentials are found, not the token.
 */
export function rdsIamTokenProvider(config: Config): () => Promise<string> {
  if (!config.mysql.iam) throw new Error('rdsIamTokenProvider: MYSQL_IAM_AUTH is not true');
  const { host, port, user } = endpointOf(config);
  const region = config.mysql.iam.region;
  const signer = new Signer({ hostname: host, port, username: user, region });
  return async () => {
    try {
      return await signer.getAuthToken();
    } catch (err) {
      const e = new Error(
        `could not sign an RDS IAM token for ${user}@${host}:${port} in ${region} (MYSQL_IAM_AUTH=true): ${(err as Error).message}; ` +
          'give the process AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance/task role)',
      );
      e.name = 'RdsIamTokenError';
      throw e;
    }
  };
}

/** mysql2's `ssl` option for the configured mode (undefined: plain). The CA file is read here. */
export function mysqlSslOptions(config: Config): mysql.SslOptions | undefined {
  const tls = config.mysql.tls;
  if (!tls) return undefined;
  if (tls.mode === 'required') return { rejectUnauthorized: false, verifyIdentity: false };
  // mysql2 checks the certificate against a host *name* only; for an IP it silently checks nothing
  // (config refuses this combination; kept here for Configs built in code).
  if (tls.mode === 'verify-full' && isIpHost(endpointOf(config).host)) throw new Error(`MYSQL_SSL_MODE=verify-full needs a host name in MYSQL_URL, not the IP address ${endpointOf(config).host}`);
  const ca = tls.caFile ? fs.readFileSync(tls.caFile, 'utf8') : undefined;
  return { ...(ca && { ca }), rejectUnauthorized: true, verifyIdentity: tls.mode === 'verify-full' };
}

/**
 * Options for `mysql.createPool` / `mysql.createConnection` to the database in MYSQL_URL, with
 * TLS and IAM applied; `extra` adds pool or session options (it cannot turn TLS or IAM off).
 * With IAM, one token provider serves every connection made from these options.
 */
export function mysqlConnectionOptions(config: Config, extra: mysql.PoolOptions = {}): mysql.PoolOptions {
  const ssl = mysqlSslOptions(config);
  const token = config.mysql.iam ? rdsIamTokenProvider(config) : undefined;
  return {
    connectTimeout: 5_000,
    ...extra,
    uri: config.mysql.url,
    ...(ssl && { ssl }),
    ...(token && {
      password: undefined,
      authPlugins: {
        // Called once per connection that authenticates: a fresh token each time.
        mysql_clear_password: () => async () => Buffer.from(`${await token()}\0`, 'utf8'),
      },
    }),
  };
}

/** True when the server accepts these credentials over TLS (not verified: a diagnosis only, never used for data). */
async function acceptedOverTls(config: Config): Promise<boolean> {
  try {
    const conn = await mysql.createConnection(mysqlConnectionOptions({ ...config, mysql: { ...config.mysql, tls: { mode: 'required' } } }, { connectTimeout: 3_000 }));
    await conn.end().catch(() => undefined);
    return true;
  } catch {
    return false;
  }
}

/**
 * What classify() needs to turn `err` into advice about MYSQL_SSL_MODE, MYSQL_SSL_CA and
 * MYSQL_IAM_AUTH. Access denied over plain TCP is checked once more over TLS: when the same
 * credentials pass there, the server requires TLS for this user (MySQL and MariaDB answer a
 * REQUIRE SSL user on a plain connection with the same "Access denied" as a wrong password).
 */
export async function mysqlErrorContext(config: Config, err: unknown): Promise<MysqlErrorContext> {
  const ctx: MysqlErrorContext = { tlsMode: config.mysql.tls?.mode ?? 'disabled', caFile: config.mysql.tls?.caFile, iam: config.mysql.iam !== undefined };
  if ((err as { code?: unknown } | undefined)?.code === 'ER_ACCESS_DENIED_ERROR' && !config.mysql.tls && !config.mysql.iam) {
    ctx.tlsRequired = await acceptedOverTls(config);
  }
  return ctx;
}

/** Runs `fn` against MySQL; what it throws is classified (common/errors.ts) with that advice. */
export async function guardedMysql<T>(config: Config, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw classify('MySQL', addressOf(config, 'mysql'), err, await mysqlErrorContext(config, err));
  }
}

/** `TLSv1.3 TLS_AES_256_GCM_SHA384`, or `not encrypted`: the session's transport, as the server sees it. */
export async function mysqlTlsStatus(conn: mysql.Pool | mysql.Connection | mysql.PoolConnection): Promise<string> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>("SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')");
  const status = Object.fromEntries(rows.map((r) => [String(r.Variable_name), String(r.Value ?? '')]));
  return status.Ssl_cipher ? `${status.Ssl_version} ${status.Ssl_cipher}` : 'not encrypted';
}
