/**
 * MySQL over TLS and RDS IAM authentication (adapters/mysql-connection.ts,
 * config/mysql-security.ts) against real servers: the stack's MariaDB serving TLS with the
 * stack CA to a user created REQUIRE SSL (verify-full, verify-ca, required), refused without TLS
 * with advice naming MYSQL_SSL_MODE, refused with a wrong CA or a host name the certificate does
 * not list; the real sample emulated over TLS giving the same records as over plain TCP; the
 * doctor's TLS line. An opt-in live test runs against a real RDS endpoint when
 * PINFLOW_LIVE_RDS_URL is set, and is skipped otherwise. The settings, and RDS IAM against a
 * protocol-level stand-in: test/unit/mysql-tls.test.ts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Kafka } from 'kafkajs';
import mysql from 'mysql2/promise';
import { createKafka } from '../../adapters/kafka';
import { createMysqlPool, mysqlAdapter } from '../../adapters/mysql';
import { mysqlConnectionOptions, mysqlTlsStatus } from '../../adapters/mysql-connection';
import { loadConfig, PROJECT_ROOT, type Config } from '../../config';
import type { EmulationInput, EmulationProgress } from '../../common/emulation';
import { NonRetryable } from '../../common/errors';
import { MYSQL_SOCKET } from '../../stack/mysql-server';
import { STACK_CA } from '../../stack/tls';
import { consumeTopics, mysqlRows, testDatabase, TOPICS } from '../helpers/data';
import { ensureStack, quietRuntime, runScript, runWorkflow, testConfig, uniqueName, workflowTestEnv } from '../helpers/env';
import { expectNonRetryable as expectFailure } from '../helpers/secured';

const CA = path.relative(PROJECT_ROOT, STACK_CA); // .data/kafka/tls/ca.pem, as a user writes it

describe('MySQL over TLS: the stack MariaDB', () => {
  let db: string;
  let sample: Config;
  let tlsUser: { user: string; password: string; url: string };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-mysql-tls-'));

  const asRoot = async <T>(fn: (root: mysql.Connection) => Promise<T>) => {
    const root = await mysql.createConnection({ socketPath: MYSQL_SOCKET, user: 'root' });
    try {
      return await fn(root);
    } finally {
      await root.end();
    }
  };

  before(async () => {
    quietRuntime();
    await ensureStack();
    const haveSsl = await asRoot(async (root) => (await root.query<mysql.RowDataPacket[]>("SHOW GLOBAL VARIABLES LIKE 'have_ssl'"))[0][0]?.Value);
    assert.equal(haveSsl, 'YES', 'the stack MariaDB serves TLS (restart it: npm run stack -- down mysql && npm run stack -- up mysql)');
    ({ db, config: sample } = await testDatabase({ sample: true }));
    // A least-privilege user that can only log in over TLS: SELECT on the three tables.
    const user = `tls_${randomBytes(4).toString('hex')}`;
    const password = randomBytes(12).toString('hex');
    await asRoot(async (root) => {
      await root.query('CREATE USER ?@? IDENTIFIED BY ? REQUIRE SSL', [user, '127.0.0.1', password]);
      for (const t of ['pinterest_data', 'geolocation_data', 'user_data']) await root.query(`GRANT SELECT ON \`${db}\`.\`${t}\` TO ?@?`, [user, '127.0.0.1']);
    });
    // localhost: the name the stack's certificate lists (verify-full needs a host name).
    tlsUser = { user, password, url: `mysql://${user}:${password}@localhost:3306/${db}` };
  });

  after(async () => {
    if (tlsUser) await asRoot((root) => root.query('DROP USER IF EXISTS ?@?', [tlsUser.user, '127.0.0.1']));
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const tlsConfig = (vars: Record<string, string> = {}) => testConfig({ MYSQL_URL: tlsUser.url, MYSQL_SSL_CA: CA, MYSQL_SSL_MODE: 'verify-full', ...vars });

  it('a REQUIRE SSL user connects with verify-full and the stack CA, as do verify-ca and required', async () => {
    for (const mode of ['verify-full', 'verify-ca', 'required']) {
      const config = tlsConfig(mode === 'required' ? { MYSQL_SSL_MODE: mode, MYSQL_SSL_CA: '' } : { MYSQL_SSL_MODE: mode });
      const conn = await mysql.createConnection(mysqlConnectionOptions(config));
      try {
        const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS u, COUNT(*) AS n FROM pinterest_data');
        assert.equal(rows[0]!.u, `${tlsUser.user}@127.0.0.1`, mode);
        assert.equal(Number(rows[0]!.n), 2019, mode);
        assert.match(await mysqlTlsStatus(conn), /^TLSv1\.[23] \S+$/, mode);
      } finally {
        await conn.end();
      }
    }
    // The adapter and the doctor's check go the same way; a plain connection says so.
    const plainAdapter = mysqlAdapter(sample);
    try {
      assert.match((await plainAdapter.activities.checkMysql()).detail, /MariaDB\S* database pinterest_test_\w+, not encrypted \(MYSQL_SSL_MODE=disabled\)$/);
    } finally {
      await plainAdapter.close();
    }
    const adapter = mysqlAdapter(tlsConfig());
    try {
      const check = await adapter.activities.checkMysql();
      assert.match(check.detail, /MariaDB\S* database pinterest_test_\w+, TLSv1\.[23] \S+ \(verify-full, CA from MYSQL_SSL_CA\)$/);
      const source = await adapter.activities.describeSource();
      assert.deepEqual(source.counts, { pinterest_data: 2019, geolocation_data: 2019, user_data: 2019 });
    } finally {
      await adapter.close();
    }
  });

  it('without TLS the REQUIRE SSL user is refused, non-retryable, naming MYSQL_SSL_MODE; a wrong password is not blamed on TLS', async () => {
    const plain = mysqlAdapter(testConfig({ MYSQL_URL: tlsUser.url }));
    try {
      const err = await plain.activities.checkMysql().then(() => assert.fail('connected without TLS'), (e: unknown) => e);
      expectFailure(err, NonRetryable.auth, /^MySQL at localhost:3306: Access denied .*: the server requires TLS for this user: set MYSQL_SSL_MODE=required or verify-full with MYSQL_SSL_CA$/);
      assert.doesNotMatch((err as Error).message, new RegExp(tlsUser.password));
    } finally {
      await plain.close();
    }
    const wrong = new URL(tlsUser.url);
    wrong.password = 'not-the-password';
    const bad = mysqlAdapter(testConfig({ MYSQL_URL: wrong.toString() }));
    try {
      const err = await bad.activities.checkMysql().then(() => assert.fail('connected with a wrong password'), (e: unknown) => e);
      const failure = expectFailure(err, NonRetryable.auth, /^MySQL at localhost:3306: Access denied/);
      assert.doesNotMatch(failure.message, /requires TLS/);
    } finally {
      await bad.close();
    }
  });

  it('a CA that did not sign the server certificate fails verification, non-retryable, naming MYSQL_SSL_CA', async () => {
    const otherCa = path.join(tmp, 'other-ca.pem');
    fs.writeFileSync(otherCa, tls.rootCertificates[0]!);
    for (const mode of ['verify-full', 'verify-ca']) {
      const adapter = mysqlAdapter(tlsConfig({ MYSQL_SSL_MODE: mode, MYSQL_SSL_CA: otherCa }));
      try {
        const err = await adapter.activities.checkMysql().then(() => assert.fail(`${mode}: connected with a CA that did not sign the certificate`), (e: unknown) => e);
        expectFailure(err, NonRetryable.config, new RegExp(`^MySQL at localhost:3306: .*certificate.*: TLS certificate verification failed: the server's certificate is not signed by the CA file MYSQL_SSL_CA=${otherCa.replace(/[.]/g, '\\.')}: set MYSQL_SSL_CA to the CA bundle that signed it`));
      } finally {
        await adapter.close();
      }
    }
    // No CA at all: the system CAs do not know the stack's CA either.
    const system = mysqlAdapter(tlsConfig({ MYSQL_SSL_CA: '' }));
    try {
      const err = await system.activities.checkMysql().then(() => assert.fail('the system CAs trusted the stack CA'), (e: unknown) => e);
      expectFailure(err, NonRetryable.config, /is not signed by the system CAs \(MYSQL_SSL_CA is not set\)/);
    } finally {
      await system.close();
    }
  });

  it('the real sample emulated over TLS gives the same records as over plain TCP', async () => {
    const env: TestWorkflowEnvironment = await workflowTestEnv(testConfig());
    const kafka: Kafka = createKafka(testConfig());
    try {
      const input = (prefix: string): EmulationInput => ({ prefix, sink: 'kafka', rate: 'max', selection: { mode: 'all' }, batchSize: 500 });
      const plainPrefix = uniqueName('tls-plain');
      const tlsPrefix = uniqueName('tls-over');
      const plain = await runWorkflow<EmulationProgress>(env, sample, 'emulationWorkflow', [input(plainPrefix)]);
      const overTls = await runWorkflow<EmulationProgress>(env, tlsConfig(), 'emulationWorkflow', [input(tlsPrefix)]);
      assert.equal(plain.result.sent, 2019);
      assert.equal(overTls.result.sent, 2019);
      const rows = await mysqlRows(sample);
      const read = async (prefix: string) => {
        const records = await consumeTopics(kafka, TOPICS.map((t) => `${prefix}.${t}`), 3 * 2019);
        return Object.fromEntries(TOPICS.map((t) => [t, new Map(records.filter((r) => r.topic === `${prefix}.${t}`).map((r) => [r.key, r.value]))])) as Record<(typeof TOPICS)[number], Map<string, string>>;
      };
      const [a, b] = [await read(plainPrefix), await read(tlsPrefix)];
      for (const t of TOPICS) {
        assert.equal(b[t].size, 2019, `${t}: 2,019 records over TLS`);
        assert.deepEqual(b[t], a[t], `${t}: over TLS = over plain, key by key, byte for byte`);
        for (const [key, value] of b[t]) assert.deepEqual(JSON.parse(value), rows[t].get(key), `${t} ${key} equals MySQL`);
      }
    } finally {
      await env.teardown();
    }
  });

  it('npm run doctor reports the MySQL connection TLS version and cipher', () => {
    const res = runScript('doctor', [], { MYSQL_URL: tlsUser.url, MYSQL_SSL_CA: CA, MYSQL_SSL_MODE: 'verify-full', TEMPORAL_TASK_QUEUE: uniqueName('tls-doctor') });
    assert.equal(res.code, 0, res.stdout + res.stderr);
    assert.match(res.stdout, /^mysql\s+ok\s+localhost:3306\s+\d+ ms\s+\S+MariaDB\S* database pinterest_test_\w+, TLSv1\.[23] \S+ \(verify-full, CA from MYSQL_SSL_CA\)$/m);
    assert.doesNotMatch(res.stdout + res.stderr, new RegExp(tlsUser.password));
  });
});

describe('RDS IAM authentication', () => {
  const live = process.env.PINFLOW_LIVE_RDS_URL;
  it('live: a real RDS endpoint with IAM auth (PINFLOW_LIVE_RDS_URL, PINFLOW_LIVE_RDS_REGION, PINFLOW_LIVE_RDS_CA)', { skip: live ? false : 'set PINFLOW_LIVE_RDS_URL=mysql://iam_user@<endpoint>:3306/<db>, PINFLOW_LIVE_RDS_REGION and PINFLOW_LIVE_RDS_CA (the RDS CA bundle) to run' }, async () => {
    const config = loadConfig({
      ...process.env,
      MYSQL_URL: live!,
      MYSQL_IAM_AUTH: 'true',
      MYSQL_SSL_MODE: 'verify-full',
      ...(process.env.PINFLOW_LIVE_RDS_CA && { MYSQL_SSL_CA: process.env.PINFLOW_LIVE_RDS_CA }),
      AWS_REGION: process.env.PINFLOW_LIVE_RDS_REGION ?? process.env.AWS_REGION ?? '',
    } as Record<string, string>);
    const pool = createMysqlPool(config, 2);
    try {
      const [a, b] = [await pool.getConnection(), await pool.getConnection()]; // two logins, two tokens
      const [rows] = await a.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS u');
      assert.match(String(rows[0]!.u), new RegExp(`^${decodeURIComponent(new URL(live!).username)}@`));
      assert.match(await mysqlTlsStatus(b), /^TLSv1\.[23] /);
      a.release();
      b.release();
      const adapter = mysqlAdapter(config);
      try {
        assert.match((await adapter.activities.checkMysql()).detail, /TLSv1\.[23] \S+ \(verify-full, .*RDS IAM token/);
      } finally {
        await adapter.close();
      }
    } finally {
      await pool.end();
    }
  });
});
