/**
 * MySQL over TLS and RDS IAM authentication without the stack's MariaDB
 * (adapters/mysql-connection.ts, config/mysql-security.ts): the settings and every bad
 * combination at start-up; RDS IAM: the token's shape and signature (checked with node:crypto,
 * not the SDK), a new token per new pool connection even after the first expired, through a
 * protocol-level RDS stand-in on a port of its own (test/helpers/rds-iam-standin.ts); failures
 * classified; every MySQL connection built by the one options builder.
 * test/integration/mysql-tls.test.ts connects to the stack's MariaDB over TLS.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { createMysqlPool } from '../../adapters/mysql';
import { guardedMysql, mysqlConnectionOptions, rdsIamTokenProvider } from '../../adapters/mysql-connection';
import { loadConfig, PROJECT_ROOT } from '../../config';
import { classify, NonRetryable } from '../../common/errors';
import { ensureServerCert, ensureStackCa, STACK_CA } from '../../stack/tls';
import { startRdsIamStandin, verifyRdsIamToken, type RdsIamStandin } from '../helpers/rds-iam-standin';
import { configError, expectNonRetryable as expectFailure } from '../helpers/secured';

const CA = path.relative(PROJECT_ROOT, ensureStackCa()); // .data/kafka/tls/ca.pem, as a user writes it
const configProblems = (env: Record<string, string>): string => configError(env).message;
const FAKE_AWS = { accessKeyId: 'AKIAPINFLOWFAKE00001', secretAccessKey: 'pinflow-fake-secret-access-key-0001' };

/** Runs `fn` with process.env changed by `vars` (undefined: removed), restoring it after. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (v: Record<string, string | undefined>) => {
    for (const [k, val] of Object.entries(v)) {
      if (val === undefined) delete process.env[k];
      else process.env[k] = val;
    }
  };
  apply(vars);
  try {
    return await fn();
  } finally {
    apply(saved);
  }
}

/** The fixed fake AWS credentials in the environment, nothing else of the chain. */
const FAKE_AWS_ENV = {
  AWS_ACCESS_KEY_ID: FAKE_AWS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: FAKE_AWS.secretAccessKey,
  AWS_SESSION_TOKEN: undefined,
  AWS_PROFILE: undefined,
};

describe('MySQL settings: TLS and RDS IAM', () => {
  const rdsHost = 'pinflow-db.c9akciq32.eu-west-1.rds.amazonaws.com';

  it('plain by default; a CA alone means verify-full; modes map to the mysql client meanings', () => {
    assert.equal(loadConfig({}).mysql.tls, undefined);
    assert.equal(loadConfig({}).mysql.iam, undefined);
    const local = 'mysql://pinflow:pinflow@localhost:3306/pinterest';
    assert.deepEqual(loadConfig({ MYSQL_URL: local, MYSQL_SSL_CA: CA }).mysql.tls, { mode: 'verify-full', caFile: STACK_CA });
    assert.deepEqual(loadConfig({ MYSQL_SSL_MODE: 'verify-ca', MYSQL_SSL_CA: CA }).mysql.tls, { mode: 'verify-ca', caFile: STACK_CA });
    assert.deepEqual(loadConfig({ MYSQL_URL: local, MYSQL_SSL_MODE: 'verify-full' }).mysql.tls, { mode: 'verify-full' }, 'no CA: the system CAs');
    assert.deepEqual(loadConfig({ MYSQL_SSL_MODE: 'required' }).mysql.tls, { mode: 'required' });
    assert.equal(loadConfig({ MYSQL_SSL_MODE: 'disabled' }).mysql.tls, undefined);
    const iam = loadConfig({ MYSQL_IAM_AUTH: 'true', MYSQL_URL: `mysql://app_iam@${rdsHost}:3306/pinterest`, AWS_REGION: 'eu-west-1', MYSQL_SSL_CA: CA });
    assert.deepEqual(iam.mysql, { url: `mysql://app_iam@${rdsHost}:3306/pinterest`, tls: { mode: 'verify-full', caFile: STACK_CA }, iam: { region: 'eu-west-1' } });
    // mysql2 options: verification on for verify-*, off for required; the CA file's text.
    const full = mysqlConnectionOptions(loadConfig({ MYSQL_URL: local, MYSQL_SSL_CA: CA })).ssl as mysql.SslOptions;
    assert.equal(full.ca, fs.readFileSync(STACK_CA, 'utf8'));
    assert.equal(full.rejectUnauthorized, true);
    assert.equal(full.verifyIdentity, true);
    assert.equal((mysqlConnectionOptions(loadConfig({ MYSQL_SSL_MODE: 'verify-ca', MYSQL_SSL_CA: CA })).ssl as mysql.SslOptions).verifyIdentity, false);
    assert.equal((mysqlConnectionOptions(loadConfig({ MYSQL_SSL_MODE: 'required' })).ssl as mysql.SslOptions).rejectUnauthorized, false);
    assert.equal(mysqlConnectionOptions(loadConfig({})).ssl, undefined);
    const iamOptions = mysqlConnectionOptions(iam);
    assert.equal(iamOptions.password, undefined);
    assert.equal(typeof iamOptions.authPlugins?.mysql_clear_password, 'function');
  });

  it('bad values and bad combinations fail at start-up naming each setting, never the URL', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-mysql-tls-'));
    const notPem = path.join(tmp, 'not-a-cert.pem');
    fs.writeFileSync(notPem, 'hello\n');
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ MYSQL_SSL_MODE: 'preferred' }, /MYSQL_SSL_MODE must be disabled, required, verify-ca or verify-full \(got "preferred"\)/],
      [{ MYSQL_SSL_MODE: 'verify-full', MYSQL_SSL_CA: path.join(tmp, 'missing.pem') }, /MYSQL_SSL_CA must be a readable file/],
      [{ MYSQL_SSL_MODE: 'verify-ca', MYSQL_SSL_CA: notPem }, /MYSQL_SSL_CA must be a PEM file holding a certificate/],
      [{ MYSQL_SSL_MODE: 'required', MYSQL_SSL_CA: CA }, /MYSQL_SSL_CA is only used to verify the server's certificate, which MYSQL_SSL_MODE=required does not do/],
      [{ MYSQL_SSL_MODE: 'disabled', MYSQL_SSL_CA: CA }, /MYSQL_SSL_CA is only used .* MYSQL_SSL_MODE=disabled/],
      [{ MYSQL_IAM_AUTH: 'yes' }, /MYSQL_IAM_AUTH must be "true" or "false"/],
      [{ MYSQL_IAM_AUTH: 'true', MYSQL_SSL_MODE: 'disabled', MYSQL_URL: `mysql://app_iam@${rdsHost}:3306/db`, AWS_REGION: 'eu-west-1' }, /MYSQL_SSL_MODE must not be disabled when MYSQL_IAM_AUTH=true: RDS accepts IAM tokens only over TLS/],
      [{ MYSQL_IAM_AUTH: 'true', MYSQL_SSL_MODE: 'required', MYSQL_URL: `mysql://app_iam@${rdsHost}:3306/db`, AWS_REGION: 'eu-west-1' }, /MYSQL_SSL_MODE must be verify-full or verify-ca when MYSQL_IAM_AUTH=true/],
      [{ MYSQL_IAM_AUTH: 'true', MYSQL_URL: `mysql://app_iam:Hunter2-Secret@${rdsHost}:3306/db`, AWS_REGION: 'eu-west-1' }, /MYSQL_URL must not contain a password when MYSQL_IAM_AUTH=true .*\(value hidden: secret\)/],
      [{ MYSQL_IAM_AUTH: 'true', MYSQL_URL: `mysql://${rdsHost}:3306/db`, AWS_REGION: 'eu-west-1' }, /MYSQL_URL must name the database user when MYSQL_IAM_AUTH=true/],
      [{ MYSQL_IAM_AUTH: 'true', AWS_REGION: 'eu-west-1' }, /MYSQL_URL must be set when MYSQL_IAM_AUTH=true: the RDS endpoint and the IAM database user/],
      [{ MYSQL_IAM_AUTH: 'true', MYSQL_URL: `mysql://app_iam@${rdsHost}:3306/db` }, /AWS_REGION is required when MYSQL_IAM_AUTH=true/],
      [{ MYSQL_IAM_AUTH: 'true', MYSQL_URL: `mysql://app_iam@${rdsHost}:3306/db`, AWS_REGION: 'us-east-1' }, /AWS_REGION must be the RDS endpoint's region when MYSQL_IAM_AUTH=true: MYSQL_URL's host is in eu-west-1/],
      [{ MYSQL_URL: 'mysql://u:p@127.0.0.1:3306/db?ssl={"rejectUnauthorized":false}' }, /MYSQL_URL must not set TLS itself \(\?ssl=\.\.\.\): use MYSQL_SSL_MODE and MYSQL_SSL_CA/],
      // mysql2 sends no SNI for an IP and then checks the certificate against nothing: refused.
      [{ MYSQL_SSL_MODE: 'verify-full', MYSQL_SSL_CA: CA, MYSQL_URL: 'mysql://u:p@127.0.0.1:3306/db' }, /MYSQL_SSL_MODE verify-full checks the server's certificate against the host name in MYSQL_URL, but 127\.0\.0\.1 is an IP address, which the MySQL client \(mysql2\) cannot check: use the host name the certificate lists \(for the local stack: localhost\), or set MYSQL_SSL_MODE=verify-ca/],
      [{ MYSQL_SSL_CA: CA, MYSQL_URL: 'mysql://u:p@[::1]:3306/db' }, /MYSQL_SSL_MODE verify-full \(implied by MYSQL_SSL_CA\) checks .* \[::1\] is an IP address/],
    ];
    for (const [env, message] of cases) {
      const text = configProblems(env);
      assert.match(text, message, JSON.stringify(env));
      assert.doesNotMatch(text, /Hunter2-Secret|app_iam@|rejectUnauthorized/, 'MYSQL_URL is never printed');
    }
    // All at once: one error naming every setting.
    const all = configProblems({ MYSQL_IAM_AUTH: 'true', MYSQL_SSL_MODE: 'required', MYSQL_SSL_CA: notPem, MYSQL_URL: `mysql://app_iam:pw@${rdsHost}/db`, AWS_REGION: 'us-west-2' });
    for (const key of ['MYSQL_SSL_MODE', 'MYSQL_SSL_CA', 'MYSQL_URL', 'AWS_REGION']) assert.match(all, new RegExp(`^  - ${key} `, 'm'), key);
    fs.rmSync(tmp, { recursive: true, force: true });
  });
});

describe('RDS IAM authentication', () => {
  const cert = ensureServerCert('mysql'); // localhost / 127.0.0.1, signed by the stack CA
  let standin: RdsIamStandin;
  const region = 'eu-west-1';

  before(async () => {
    standin = await startRdsIamStandin({ region, credentials: FAKE_AWS, certFile: cert.cert, keyFile: cert.key });
  });
  after(async () => standin?.close());

  const iamConfig = (vars: Record<string, string> = {}) =>
    loadConfig({ MYSQL_URL: `mysql://iam_app@localhost:${standin.port}/pinterest`, MYSQL_IAM_AUTH: 'true', MYSQL_SSL_MODE: 'verify-full', MYSQL_SSL_CA: CA, AWS_REGION: region, ...vars });

  it('signs a presigned rds-db:connect token for host:port and user, in AWS_REGION, valid 900 s', async () => {
    const host = 'pinflow-db.c9akciq32.eu-west-1.rds.amazonaws.com';
    const config = loadConfig({ MYSQL_URL: `mysql://iam_app@${host}:3306/pinterest`, MYSQL_IAM_AUTH: 'true', MYSQL_SSL_CA: CA, AWS_REGION: region });
    const token = await withEnv(FAKE_AWS_ENV, () => rdsIamTokenProvider(config)());
    assert.match(
      token,
      new RegExp(
        `^${host.replace(/\./g, '\\.')}:3306/\\?Action=connect&DBUser=iam_app&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${FAKE_AWS.accessKeyId}%2F\\d{8}%2Feu-west-1%2Frds-db%2Faws4_request&X-Amz-Date=\\d{8}T\\d{6}Z&X-Amz-Expires=900&X-Amz-Signature=[0-9a-f]{64}&X-Amz-SignedHeaders=host$`,
      ),
    );
    // The signature, recomputed with node:crypto from the fixed secret.
    assert.equal(verifyRdsIamToken(token, { endpoint: `${host}:3306`, user: 'iam_app', region, credentials: FAKE_AWS }), undefined);
    assert.equal(verifyRdsIamToken(token, { endpoint: `${host}:3306`, user: 'iam_app', region, credentials: { ...FAKE_AWS, secretAccessKey: 'another-secret' } }), 'signature does not match');
    assert.match(verifyRdsIamToken(token, { endpoint: `${host}:3306`, user: 'iam_app', region, credentials: FAKE_AWS, now: Date.now() + 901_000 })!, /^expired/);
  });

  it('each new pool connection signs its own token: a connection opened after the first token expired still logs in', async (t) => {
    const before = standin.attempts.length;
    await withEnv(FAKE_AWS_ENV, async () => {
      t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
      const pool = createMysqlPool(iamConfig(), 3);
      try {
        const first = await pool.getConnection();
        const [rows] = await first.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER()');
        assert.equal(Object.values(rows[0]!)[0], 'iam_app@%');
        // 16 minutes later the first token is dead; a new connection must not reuse it.
        t.mock.timers.tick(16 * 60_000);
        const second = await pool.getConnection();
        await second.ping();
        first.release();
        second.release();
        await pool.query('SELECT 1'); // an idle connection is reused: no new login, no new token
        const mine = standin.attempts.slice(before);
        assert.equal(mine.length, 2, 'one login per new connection');
        assert.ok(mine.every((a) => a.tls && a.refused === undefined), JSON.stringify(mine.map((a) => a.refused)));
        const dateOf = (token: string) => new URL(`https://${token}`).searchParams.get('X-Amz-Date');
        assert.notEqual(dateOf(mine[1]!.token!), dateOf(mine[0]!.token!), 'a new token, signed 16 minutes later');
        assert.match(verifyRdsIamToken(mine[0]!.token!, { endpoint: `localhost:${standin.port}`, user: 'iam_app', region, credentials: FAKE_AWS })!, /^expired/);
        // What a pool with a fixed password would have done: the stale token is refused.
        const stale = await mysql
          .createConnection({ host: 'localhost', port: standin.port, user: 'iam_app', password: mine[0]!.token!, enableCleartextPlugin: true, ssl: { ca: fs.readFileSync(STACK_CA, 'utf8') } })
          .then(() => assert.fail('a stale token logged in'), (e: { code?: string }) => e);
        assert.equal(stale.code, 'ER_ACCESS_DENIED_ERROR');
        assert.match(standin.attempts.at(-1)!.refused!, /^expired/);
      } finally {
        await pool.end();
        t.mock.timers.reset();
      }
    });
  });

  it('a refused token is non-retryable with IAM advice; no AWS credentials fails naming MYSQL_IAM_AUTH; the token is never in the error', async () => {
    const config = iamConfig();
    const wrongKey = await withEnv({ ...FAKE_AWS_ENV, AWS_SECRET_ACCESS_KEY: 'a-different-secret-key' }, () => {
      const pool = createMysqlPool(config, 1);
      return guardedMysql(config, () => pool.query('SELECT 1')).then(() => assert.fail('a token signed with another secret logged in'), (e: unknown) => e).finally(() => pool.end());
    });
    expectFailure(wrongKey, NonRetryable.auth, new RegExp(`^MySQL at localhost:${standin.port}: Access denied .*: the IAM token was refused: check that the IAM policy allows rds-db:connect on arn:aws:rds-db:<region>:<account>:dbuser:<resource-id>/<user>`));
    assert.equal(standin.attempts.at(-1)!.refused, 'signature does not match');
    assert.doesNotMatch((wrongKey as Error).message, /X-Amz|Signature=/);

    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-no-aws-'));
    const noCredentials = await withEnv(
      {
        AWS_ACCESS_KEY_ID: undefined,
        AWS_SECRET_ACCESS_KEY: undefined,
        AWS_SESSION_TOKEN: undefined,
        AWS_PROFILE: undefined,
        AWS_SHARED_CREDENTIALS_FILE: path.join(tmp, 'credentials'),
        AWS_CONFIG_FILE: path.join(tmp, 'config'),
        AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
        AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
        AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
        AWS_EC2_METADATA_DISABLED: 'true',
      },
      () => {
        const pool = createMysqlPool(config, 1);
        return guardedMysql(config, () => pool.query('SELECT 1')).then(() => assert.fail('logged in without credentials'), (e: unknown) => e).finally(() => pool.end());
      },
    );
    fs.rmSync(tmp, { recursive: true, force: true });
    expectFailure(noCredentials, NonRetryable.auth, new RegExp(`^MySQL at localhost:${standin.port}: could not sign an RDS IAM token for iam_app@localhost:${standin.port} in eu-west-1 \\(MYSQL_IAM_AUTH=true\\): .*credentials.*; give the process AWS credentials`));
  });

  it('an IAM database user without MYSQL_IAM_AUTH: the clear-text switch is refused, non-retryable, naming MYSQL_IAM_AUTH', async () => {
    const config = loadConfig({ MYSQL_URL: `mysql://iam_app:a-password@localhost:${standin.port}/pinterest`, MYSQL_SSL_MODE: 'verify-full', MYSQL_SSL_CA: CA });
    const pool = createMysqlPool(config, 1);
    const err = await guardedMysql(config, () => pool.query('SELECT 1')).then(() => assert.fail('logged in'), (e: unknown) => e).finally(() => pool.end());
    expectFailure(err, NonRetryable.config, new RegExp(`^MySQL at localhost:${standin.port}: Server requested authentication using mysql_clear_password.*: for an RDS IAM database user set MYSQL_IAM_AUTH=true`));
    assert.equal(standin.attempts.at(-1)!.token, undefined, 'no password was sent in clear text');
  });

  it('MySQL require_secure_transport=ON over plain TCP is a configuration error naming MYSQL_SSL_MODE', () => {
    // MySQL's answer (MariaDB answers "Access denied", covered above); not reproducible on the shared local server.
    const e = Object.assign(new Error('Connections using insecure transport are prohibited while --require_secure_transport=ON.'), { code: 'ER_SECURE_TRANSPORT_REQUIRED', errno: 3159 });
    expectFailure(classify('MySQL', 'db.example:3306', e, { tlsMode: 'disabled', iam: false }), NonRetryable.config, /^MySQL at db\.example:3306: Connections using insecure transport .*: the server requires TLS: set MYSQL_SSL_MODE=required or verify-full with MYSQL_SSL_CA$/);
  });

  it('TLS asked for, a server without TLS: refused before any credential is sent, non-retryable', async () => {
    const plainServer = await startRdsIamStandin({ region, credentials: FAKE_AWS, certFile: cert.cert, keyFile: cert.key, tls: false });
    try {
      for (const mode of ['required', 'verify-full']) {
        const config = loadConfig({ MYSQL_URL: `mysql://app:app-password@localhost:${plainServer.port}/pinterest`, MYSQL_SSL_MODE: mode, ...(mode === 'verify-full' && { MYSQL_SSL_CA: CA }) });
        const pool = createMysqlPool(config, 1);
        const err = await guardedMysql(config, () => pool.query('SELECT 1')).then(() => assert.fail('connected in clear text'), (e: unknown) => e).finally(() => pool.end());
        expectFailure(err, NonRetryable.config, new RegExp(`^MySQL at localhost:${plainServer.port}: Server does not support secure connection: MYSQL_SSL_MODE=${mode} asks for TLS: enable TLS on the server`));
      }
      assert.equal(plainServer.attempts.length, 0, 'no handshake response (user, password) was sent');
    } finally {
      await plainServer.close();
    }
  });

  it('verify-full refuses a certificate that does not name the host; verify-ca accepts it and logs in', async () => {
    // A server certificate signed by the stack CA for db.pinflow.test only, reached as localhost.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-other-host-'));
    const key = path.join(dir, 'key.pem');
    const crt = path.join(dir, 'cert.pem');
    const ext = path.join(dir, 'ext.cnf');
    fs.writeFileSync(ext, 'subjectAltName=DNS:db.pinflow.test\n');
    execFileSync('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', path.join(dir, 'csr.pem'), '-subj', '/CN=db.pinflow.test'], { stdio: 'ignore' });
    execFileSync('openssl', ['x509', '-req', '-in', path.join(dir, 'csr.pem'), '-CA', STACK_CA, '-CAkey', path.join(path.dirname(STACK_CA), 'ca-key.pem'), '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '2', '-out', crt, '-extfile', ext], { stdio: 'ignore' });
    const other = await startRdsIamStandin({ region, credentials: FAKE_AWS, certFile: crt, keyFile: key });
    try {
      const url = `mysql://iam_app@localhost:${other.port}/pinterest`;
      const full = loadConfig({ MYSQL_URL: url, MYSQL_IAM_AUTH: 'true', MYSQL_SSL_MODE: 'verify-full', MYSQL_SSL_CA: CA, AWS_REGION: region });
      const err = await withEnv(FAKE_AWS_ENV, () => {
        const pool = createMysqlPool(full, 1);
        return guardedMysql(full, () => pool.query('SELECT 1')).then(() => assert.fail('verify-full accepted a certificate for another host'), (e: unknown) => e).finally(() => pool.end());
      });
      expectFailure(err, NonRetryable.config, new RegExp(`^MySQL at localhost:${other.port}: Hostname/IP does not match certificate's altnames: .*db\\.pinflow\\.test: TLS certificate verification failed: the server's certificate does not name this host \\(MYSQL_SSL_MODE=verify-full\\)`));
      assert.equal(other.attempts.length, 0, 'nothing was sent to the wrong server');
      const ca = loadConfig({ MYSQL_URL: url, MYSQL_IAM_AUTH: 'true', MYSQL_SSL_MODE: 'verify-ca', MYSQL_SSL_CA: CA, AWS_REGION: region });
      await withEnv(FAKE_AWS_ENV, async () => {
        const pool = createMysqlPool(ca, 1);
        try {
          const [rows] = await pool.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER()');
          assert.equal(Object.values(rows[0]!)[0], 'iam_app@%');
        } finally {
          await pool.end();
        }
      });
      assert.deepEqual(other.attempts.map((a) => [a.tls, a.refused]), [[true, undefined]]);
    } finally {
      await other.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('every MySQL connection goes through the one options builder', () => {
  it('no createPool/createConnection over TCP outside adapters/mysql-connection.ts options', () => {
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        if (['node_modules', '.data', '.cache', '.git'].includes(e.name)) continue;
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (/\.ts$/.test(e.name)) {
          const text = fs.readFileSync(p, 'utf8');
          for (const m of text.matchAll(/mysql\.(createPool|createConnection)\(([\s\S]{0,120})/g)) {
            const args = m[2]!;
            // Allowed: the builder's options, and a root login over the Unix socket.
            if (/mysqlConnectionOptions\(|socketPath/.test(args)) continue;
            offenders.push(`${path.relative(PROJECT_ROOT, p)}: ${m[0].split('\n')[0]}`);
          }
        }
      }
    };
    walk(PROJECT_ROOT);
    // test/integration/errors.test.ts opens raw clients on purpose: it feeds classify() what the library throws.
    assert.deepEqual(offenders.filter((o) => !o.startsWith('test/integration/errors.test.ts')), []);
  });
});
