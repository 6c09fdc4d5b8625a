/**
 * Kafka over TLS with authentication: the local stack's SASL_SSL listener (127.0.0.1:9094,
 * SCRAM-SHA-512 user `pinflow`, broker certificate signed by the stack's CA) and the AWS MSK
 * IAM token provider.
 *
 * Covers: the settings (bad combinations fail at start-up naming each setting, secrets never
 * printed); every SASL mechanism and mutual TLS against the real broker; the real sample
 * emulated and landed through the secured listener and cleaned, equal to the same run over
 * the plain listener; a wrong password and a missing or wrong CA failing fast, non-retryably,
 * naming the broker and the setting to check (adapter, workflow, CLI, doctor); the stack
 * recreating a missing SCRAM user; the MSK IAM token's shape (its SigV4 signature recomputed
 * here) and its refresh. `PINFLOW_LIVE_MSK_BROKERS` (with AWS_REGION and AWS credentials) runs
 * the doctor's Kafka check against a real MSK cluster with IAM; skipped otherwise.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createKafka, kafkaAdapter } from '../../adapters/kafka';
import { MSK_IAM_REFRESH_MARGIN_MS, mskIamTokenProvider } from '../../adapters/kafka-msk-iam';
import { ANALYTICS_NAMES, CLEANED_NAMES, type CleaningResult } from '../../common/cleaning';
import { ConfigError, LOCAL_KAFKA_SECURED, loadConfig, PROJECT_ROOT, type Config } from '../../config';
import { classify, NonRetryable } from '../../common/errors';
import type { DoctorReport } from '../../common/types';
import { kafka as kafkaService, localKafkaLayout } from '../../stack/services';
import { stackUp } from '../../stack';
import { STACK_CA, STACK_TLS_DIR } from '../../stack/tls';
import { createWorker } from '../../workers/worker';
import { rootMessage, testDatabase } from '../helpers/data';
import { ensureStack, quietRuntime, runScript, runWorkflow, testConfig, uniqueName, workflowTestEnv } from '../helpers/env';

const L = LOCAL_KAFKA_SECURED;
/** The settings that reach the local secured listener. */
const SECURED: Record<string, string> = {
  KAFKA_BROKERS: L.brokers,
  KAFKA_SSL_CA: L.caFile,
  KAFKA_SASL_MECHANISM: L.mechanism,
  KAFKA_SASL_USERNAME: L.username,
  KAFKA_SASL_PASSWORD: L.password,
};
const WRONG_PASSWORD = 'not-the-password-4711';
const BROKER = /Kafka at 127\.0\.0\.1:9094: /;
const CHECK_CREDENTIALS = /check KAFKA_SASL_USERNAME\/KAFKA_SASL_PASSWORD/;
const SET_CA = /TLS certificate verification failed: .*set KAFKA_SSL_CA to the CA that signed the broker's certificate/;

/** A temporary folder with certificates made by openssl: a client certificate signed by the stack CA, a foreign CA, a self-signed client. */
function makeCertificates(): { dir: string; client: string; clientKey: string; otherCa: string; selfSigned: string; selfSignedKey: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-kafka-tls-'));
  const openssl = (...args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    assert.equal(r.status, 0, `openssl ${args[0]}: ${r.stderr}`);
  };
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other-ca-key.pem', '-out', 'other-ca.pem', '-days', '2', '-subj', '/CN=not the stack CA');
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'self-key.pem', '-out', 'self.pem', '-days', '2', '-subj', '/CN=self-signed client');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client-key.pem', '-out', 'client.csr', '-subj', '/CN=pinflow client');
  fs.writeFileSync(path.join(dir, 'ext'), 'extendedKeyUsage=clientAuth\n');
  openssl('x509', '-req', '-in', 'client.csr', '-CA', STACK_CA, '-CAkey', path.join(STACK_TLS_DIR, 'ca-key.pem'), '-CAcreateserial', '-CAserial', path.join(dir, 'ca.srl'), '-out', 'client.pem', '-days', '2', '-extfile', 'ext');
  const f = (n: string) => path.join(dir, n);
  return { dir, client: f('client.pem'), clientKey: f('client-key.pem'), otherCa: f('other-ca.pem'), selfSigned: f('self.pem'), selfSignedKey: f('self-key.pem') };
}

/** Connects an admin client and describes the cluster: the broker list, or the classified error and how long it took. */
async function tryConnect(config: Config): Promise<{ ports?: number[]; error?: Error; ms: number }> {
  const started = Date.now();
  const admin = createKafka(config).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return { ports: cluster.brokers.map((b) => b.port), ms: Date.now() - started };
  } catch (err) {
    return { error: classify('Kafka', config.kafka.brokers.join(','), err), ms: Date.now() - started };
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

function expectAuthFailure(err: Error | undefined, message: RegExp): asserts err is ApplicationFailure {
  assert.ok(err instanceof ApplicationFailure, `a non-retryable failure expected, got ${err?.constructor.name}: ${err?.message}`);
  assert.equal(err.nonRetryable, true);
  assert.equal(err.type, NonRetryable.auth);
  assert.match(err.message, message);
}

/** Every string in a value, byte arrays (payload data) decoded as UTF-8. */
function allStrings(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (value instanceof Uint8Array) out.push(Buffer.from(value).toString('utf8'));
  else if (Array.isArray(value)) for (const v of value) allStrings(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) allStrings(v, out);
  return out;
}

function configProblems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  return [];
}

describe('Kafka over TLS and SASL: settings', () => {
  let certs: ReturnType<typeof makeCertificates>;
  before(() => (certs = makeCertificates()));
  after(() => fs.rmSync(certs.dir, { recursive: true, force: true }));

  it('valid settings become the client security: TLS implied by a CA or IAM, files resolved, secrets kept out of descriptions', () => {
    const c = loadConfig(SECURED);
    assert.deepEqual(c.kafka.ssl, { caFile: path.join(PROJECT_ROOT, L.caFile) });
    assert.deepEqual(c.kafka.sasl, { mechanism: 'scram-sha-512', username: 'pinflow', password: 'pinflow-local-scram' });
    assert.deepEqual(loadConfig({ KAFKA_SSL: 'true' }).kafka.ssl, {});
    assert.equal(loadConfig({ KAFKA_SSL: 'false' }).kafka.ssl, undefined);
    assert.equal(loadConfig({}).kafka.ssl, undefined, 'plaintext by default');
    assert.equal(loadConfig({}).kafka.sasl, undefined);
    const iam = loadConfig({ KAFKA_SASL_MECHANISM: 'aws-msk-iam', AWS_REGION: 'eu-west-1' }).kafka;
    assert.deepEqual(iam, { brokers: ['127.0.0.1:9092'], clientId: 'pinflow', ssl: {}, sasl: { mechanism: 'aws-msk-iam', region: 'eu-west-1' } });
    const mtls = loadConfig({ KAFKA_SSL_CERT: certs.client, KAFKA_SSL_KEY: certs.clientKey }).kafka.ssl;
    assert.deepEqual(mtls, { certFile: certs.client, keyFile: certs.clientKey });
  });

  it('bad combinations fail at start-up naming each setting, and never print the username or password', () => {
    const secretUser = 'kafka-user-secret-name';
    const secretPassword = 'kafka-password-secret-value';
    const cases: Array<[Record<string, string>, RegExp[]]> = [
      [{ KAFKA_SASL_MECHANISM: 'scram-sha-512' }, [/^KAFKA_SASL_USERNAME is required when KAFKA_SASL_MECHANISM=scram-sha-512 \(not set\)$/, /^KAFKA_SASL_PASSWORD is required when KAFKA_SASL_MECHANISM=scram-sha-512 \(not set\)$/]],
      [{ KAFKA_SASL_MECHANISM: 'GSSAPI' }, [/^KAFKA_SASL_MECHANISM must be one of plain, scram-sha-256, scram-sha-512, aws-msk-iam \(got "GSSAPI"\)$/]],
      [{ KAFKA_SSL: 'yes' }, [/^KAFKA_SSL must be "true" or "false" \(got "yes"\)$/]],
      [{ KAFKA_SSL: 'false', KAFKA_SSL_CA: L.caFile }, [/^KAFKA_SSL_CA needs TLS, but KAFKA_SSL=false/]],
      [{ KAFKA_SSL_CERT: certs.client }, [/^KAFKA_SSL_KEY must be set together with its pair/]],
      [{ KAFKA_SSL_KEY: certs.clientKey }, [/^KAFKA_SSL_CERT must be set together with its pair/]],
      [{ KAFKA_SSL_CERT: certs.client, KAFKA_SSL_KEY: certs.selfSignedKey }, [/^KAFKA_SSL_KEY is not the private key of the certificate in KAFKA_SSL_CERT/]],
      [{ KAFKA_SSL_CA: '/nonexistent/ca.pem' }, [/^KAFKA_SSL_CA must be a readable file \(got "\/nonexistent\/ca.pem"\)$/]],
      [{ KAFKA_SSL_CA: 'package.json' }, [/^KAFKA_SSL_CA must be a PEM file holding a certificate/]],
      [{ KAFKA_SSL_CERT: certs.clientKey, KAFKA_SSL_KEY: certs.client }, [/^KAFKA_SSL_CERT must be a PEM file holding a certificate/, /^KAFKA_SSL_KEY must be a PEM file holding a private key/]],
      [{ KAFKA_SASL_USERNAME: secretUser, KAFKA_SASL_PASSWORD: secretPassword }, [/^KAFKA_SASL_USERNAME needs KAFKA_SASL_MECHANISM .*\(value hidden: secret\)$/, /^KAFKA_SASL_PASSWORD needs KAFKA_SASL_MECHANISM .*\(value hidden: secret\)$/]],
      [{ KAFKA_SASL_MECHANISM: 'aws-msk-iam' }, [/^AWS_REGION is required when KAFKA_SASL_MECHANISM=aws-msk-iam/]],
      [{ KAFKA_SASL_MECHANISM: 'aws-msk-iam', AWS_REGION: 'us-east-1', KAFKA_SSL: 'false', KAFKA_SASL_PASSWORD: secretPassword }, [/^KAFKA_SSL must not be false with KAFKA_SASL_MECHANISM=aws-msk-iam/, /^KAFKA_SASL_PASSWORD is not used with KAFKA_SASL_MECHANISM=aws-msk-iam.*\(value hidden: secret\)$/]],
    ];
    for (const [env, expected] of cases) {
      const problems = configProblems(env);
      assert.equal(problems.length, expected.length, `${JSON.stringify(env)}: ${problems.join(' | ')}`);
      for (const re of expected) assert.ok(problems.some((p) => re.test(p)), `${JSON.stringify(env)}: no problem matches ${re}: ${problems.join(' | ')}`);
      const text = problems.join('\n');
      assert.ok(!text.includes(secretUser) && !text.includes(secretPassword), 'no secret value in the message');
    }
    // Everything at once: one error naming each setting.
    const all = configProblems({ KAFKA_SSL: 'maybe', KAFKA_SASL_MECHANISM: 'plain', KAFKA_SSL_CERT: certs.client });
    assert.deepEqual(all.map((p) => p.split(' ')[0]).sort(), ['KAFKA_SASL_PASSWORD', 'KAFKA_SASL_USERNAME', 'KAFKA_SSL', 'KAFKA_SSL_KEY']);
  });
});

describe('Kafka over TLS and SASL: the local SASL_SSL listener', () => {
  let env: TestWorkflowEnvironment;
  let certs: ReturnType<typeof makeCertificates>;
  let sampleUrl: string;
  const secured = testConfig(SECURED);
  const wrongPassword = testConfig({ ...SECURED, KAFKA_SASL_PASSWORD: WRONG_PASSWORD });
  const systemCas = testConfig({ ...SECURED, KAFKA_SSL_CA: '', KAFKA_SSL: 'true' });

  before(async () => {
    quietRuntime();
    await ensureStack();
    env = await workflowTestEnv(testConfig());
    certs = makeCertificates();
    sampleUrl = (await testDatabase({ sample: true })).url;
  });
  after(async () => {
    await env?.teardown();
    if (certs) fs.rmSync(certs.dir, { recursive: true, force: true });
  });

  it('the stack runs both listeners: the plain one stays the default, the secured one answers the stack health check', async () => {
    assert.deepEqual(localKafkaLayout(testConfig()), { host: '127.0.0.1', plainPort: 9092, controllerPort: 9093, securedPort: 9094 });
    assert.deepEqual(localKafkaLayout(secured), { host: '127.0.0.1', plainPort: 9092, controllerPort: 9093, securedPort: 9094 });
    assert.equal(await kafkaService.healthy(testConfig()), true);
    assert.equal(await kafkaService.healthy(secured), true);
    assert.equal(await kafkaService.healthy(wrongPassword), false);
    const props = path.join(PROJECT_ROOT, '.data', 'kafka', 'server.properties');
    const text = fs.readFileSync(props, 'utf8');
    assert.match(text, /^listeners=PLAINTEXT:\/\/127\.0\.0\.1:9092,CONTROLLER:\/\/127\.0\.0\.1:9093,SASL_SSL:\/\/127\.0\.0\.1:9094$/m);
    assert.match(text, /^listener\.name\.sasl_ssl\.ssl\.keystore\.type=PEM$/m);
    assert.equal(fs.statSync(props).mode & 0o077, 0, 'server.properties holds the broker key: owner only');
    const plain = await tryConnect(testConfig());
    assert.deepEqual(plain.ports, [9092], 'the plain listener advertises itself');
  });

  it('every SASL mechanism authenticates over TLS; mutual TLS works with a client certificate the broker trusts and is refused otherwise', async () => {
    for (const mechanism of ['scram-sha-512', 'scram-sha-256', 'plain']) {
      const r = await tryConnect(testConfig({ ...SECURED, KAFKA_SASL_MECHANISM: mechanism }));
      assert.deepEqual(r.ports, [9094], `${mechanism}: ${r.error?.message}`);
      const wrong = await tryConnect(testConfig({ ...SECURED, KAFKA_SASL_MECHANISM: mechanism, KAFKA_SASL_PASSWORD: WRONG_PASSWORD }));
      expectAuthFailure(wrong.error, CHECK_CREDENTIALS);
    }
    const mtls = await tryConnect(testConfig({ ...SECURED, KAFKA_SSL_CERT: certs.client, KAFKA_SSL_KEY: certs.clientKey }));
    assert.deepEqual(mtls.ports, [9094], mtls.error?.message);
    const refused = await tryConnect(testConfig({ ...SECURED, KAFKA_SSL_CERT: certs.selfSigned, KAFKA_SSL_KEY: certs.selfSignedKey }));
    expectAuthFailure(refused.error, /Kafka at 127\.0\.0\.1:9094: .*the broker refused the client certificate: check KAFKA_SSL_CERT\/KAFKA_SSL_KEY/);
    // The IAM mechanism reaches the broker over TLS (kafkajs' SASL handshake), which does not offer it here.
    const iam = await tryConnect(testConfig({ ...SECURED, KAFKA_SASL_MECHANISM: 'aws-msk-iam', KAFKA_SASL_USERNAME: '', KAFKA_SASL_PASSWORD: '', AWS_REGION: 'us-east-1' }));
    expectAuthFailure(iam.error, /^Kafka at 127\.0\.0\.1:9094: The broker does not support the requested SASL mechanism: .*check KAFKA_SASL_MECHANISM/);
  });

  it('a wrong password fails fast and non-retryably, naming the broker and the settings, never the password', async () => {
    const direct = await tryConnect(wrongPassword);
    expectAuthFailure(direct.error, new RegExp(`${BROKER.source}SASL SCRAM SHA512 authentication failed: .*${CHECK_CREDENTIALS.source}`));
    assert.ok(direct.ms < 3_000, `failed in ${direct.ms} ms`);
    // The adapter the activities use: the doctor's check.
    const adapter = kafkaAdapter(wrongPassword);
    const started = Date.now();
    const err = await adapter.activities.checkKafka().then(() => undefined, (e: Error) => e);
    await adapter.close();
    expectAuthFailure(err, CHECK_CREDENTIALS);
    assert.ok(Date.now() - started < 3_000, `checkKafka failed in ${Date.now() - started} ms`);

    // A workflow: one attempt, no retries, the failure names the broker.
    const t0 = Date.now();
    await assert.rejects(runWorkflow(env, wrongPassword, 'landingWorkflow', [{ prefix: uniqueName('sec-wrong'), mode: 'untilNow' }]), (e: unknown) => {
      assert.ok(e instanceof WorkflowFailedError);
      let cause: unknown = e;
      while ((cause as { cause?: unknown }).cause) cause = (cause as { cause: unknown }).cause;
      assert.ok(cause instanceof ApplicationFailure && cause.type === NonRetryable.auth, String(cause));
      assert.match(rootMessage(e), new RegExp(`${BROKER.source}.*${CHECK_CREDENTIALS.source}`));
      assert.ok(!rootMessage(e).includes(WRONG_PASSWORD));
      return true;
    });
    assert.ok(Date.now() - t0 < 15_000, `landing failed after ${Date.now() - t0} ms`);

    // The command: exit 1 within seconds, the reason on stderr.
    const vars = { ...SECURED, KAFKA_SASL_PASSWORD: WRONG_PASSWORD, MYSQL_URL: sampleUrl, PIPELINE_PREFIX: uniqueName('sec-wrong'), TEMPORAL_TASK_QUEUE: uniqueName('sec-wrong') };
    const t1 = Date.now();
    const res = runScript('emulate', ['--all', '--wait'], vars, 60_000);
    assert.equal(res.code, 1, res.stdout + res.stderr);
    assert.match(res.stderr, new RegExp(`emulate failed: .*${BROKER.source}SASL SCRAM SHA512 authentication failed.*${CHECK_CREDENTIALS.source}`));
    assert.ok(!`${res.stdout}${res.stderr}`.includes(WRONG_PASSWORD));
    assert.ok(Date.now() - t1 < 40_000, `emulate exited after ${Date.now() - t1} ms`);
  });

  it('a missing or wrong CA fails certificate verification with a clear message, non-retryably; a CA file that is not there fails at start-up', async () => {
    for (const config of [systemCas, testConfig({ ...SECURED, KAFKA_SSL_CA: certs.otherCa })]) {
      const r = await tryConnect(config);
      expectAuthFailure(r.error, new RegExp(`${BROKER.source}Connection error: self-signed certificate in certificate chain: ${SET_CA.source}`));
      assert.ok(r.ms < 5_000, `failed in ${r.ms} ms`);
    }
    assert.throws(() => testConfig({ ...SECURED, KAFKA_SSL_CA: '.data/kafka/tls/no-such-ca.pem' }), /KAFKA_SSL_CA must be a readable file/);
    // No TLS at all towards the TLS listener: the broker just closes; retryable (a restart looks the same), with the hint.
    const r = await tryConnect(testConfig({ ...SECURED, KAFKA_SSL_CA: '' }));
    assert.ok(r.error && !(r.error instanceof ApplicationFailure), r.error?.message);
    assert.match(r.error.message, /Kafka at 127\.0\.0\.1:9094: Closed connection \(if this persists: .*check KAFKA_SSL\/KAFKA_SSL_CA and KAFKA_SASL_MECHANISM\)/);
  });

  it('the doctor checks Kafka through the secured listener and reports a wrong password and a missing CA', async () => {
    async function doctorWith(config: Config): Promise<DoctorReport> {
      const taskQueue = uniqueName('doctor-sec');
      const w = await createWorker({ ...config, temporal: { ...config.temporal, taskQueue } }, { connection: env.nativeConnection });
      try {
        return await w.worker.runUntil(env.client.workflow.execute('doctorWorkflow', { taskQueue, workflowId: uniqueName('doctor-sec') }));
      } finally {
        await w.close();
      }
    }
    const ok = (await doctorWith(secured)).systems.find((s) => s.system === 'kafka')!;
    assert.equal(ok.ok, true, ok.detail);
    assert.equal(ok.address, '127.0.0.1:9094');
    assert.match(ok.detail, /produced and consumed on .* over SASL_SSL \(SCRAM-SHA-512, CA from KAFKA_SSL_CA\)/);
    const wrong = (await doctorWith(wrongPassword)).systems.find((s) => s.system === 'kafka')!;
    assert.equal(wrong.ok, false);
    assert.match(wrong.detail, new RegExp(`^${BROKER.source}SASL SCRAM SHA512 authentication failed: .*${CHECK_CREDENTIALS.source}`));
    const noCa = (await doctorWith(systemCas)).systems.find((s) => s.system === 'kafka')!;
    assert.equal(noCa.ok, false);
    assert.match(noCa.detail, SET_CA);

    const cli = runScript('doctor', [], { ...SECURED, TEMPORAL_TASK_QUEUE: uniqueName('doctor-sec-cli') });
    assert.equal(cli.code, 0, cli.stdout + cli.stderr);
    assert.match(cli.stdout, /^kafka\s+ok\s+127\.0\.0\.1:9094\s+\d+ ms\s+produced and consumed on .* over SASL_SSL/m);
    const cliWrong = runScript('doctor', [], { ...SECURED, KAFKA_SASL_PASSWORD: WRONG_PASSWORD, TEMPORAL_TASK_QUEUE: uniqueName('doctor-sec-cli') });
    assert.equal(cliWrong.code, 1);
    assert.match(cliWrong.stdout, new RegExp(`^kafka\\s+DOWN\\s+${BROKER.source}SASL SCRAM SHA512 authentication failed.*${CHECK_CREDENTIALS.source}`, 'm'));
    assert.ok(!`${cliWrong.stdout}${cliWrong.stderr}`.includes(WRONG_PASSWORD));
    const cliNoCa = runScript('doctor', [], { ...SECURED, KAFKA_SSL_CA: '', KAFKA_SSL: 'true', TEMPORAL_TASK_QUEUE: uniqueName('doctor-sec-cli') });
    assert.equal(cliNoCa.code, 1);
    assert.match(cliNoCa.stdout, new RegExp(`^kafka\\s+DOWN\\s+${BROKER.source}.*${SET_CA.source}`, 'm'));
  });

  it('emulate + land through the secured listener, then clean: 2,019 rows per table, the same outputs as over the plain listener', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-kafka-secured-'));
    const duckdbPath = path.join(out, 'w.duckdb');
    const runs: Array<{ prefix: string; result: CleaningResult }> = [];
    for (const [label, kafkaVars] of [['secured', SECURED], ['plain', {}]] as const) {
      const prefix = uniqueName(`sec-${label}`).replace(/-/g, '_');
      const vars = { ...kafkaVars, MYSQL_URL: sampleUrl, PIPELINE_PREFIX: prefix, TEMPORAL_TASK_QUEUE: uniqueName(`sec-${label}`) };
      const emulated = runScript('emulate', ['--all', '--wait'], vars);
      assert.equal(emulated.code, 0, emulated.stderr);
      const landed = runScript('land', ['--until-now', '--wait'], vars);
      assert.equal(landed.code, 0, landed.stderr);
      assert.match(landed.stdout, /done: 6057 records in \d+ objects, 0 dead letters/, `${label}: every record of the sample landed`);
      const config = testConfig({ ...vars, DUCKDB_PATH: duckdbPath });
      const { result } = await runWorkflow<CleaningResult>(env, config, 'batchCleaningWorkflow', [{ prefix, outputRoot: `${prefix}/` }]);
      for (const t of ['pin_clean', 'geo_clean', 'user_clean'] as const) assert.equal(result.tables[t].rows, 2019, `${label} ${t}`);
      runs.push({ prefix, result });
    }
    const [sec, plain] = runs as [(typeof runs)[0], (typeof runs)[0]];
    // No credential of the secured run in any event of its workflows (payloads decoded).
    const needles = [L.password, Buffer.from(L.password).toString('base64')];
    let scanned = 0;
    for await (const w of env.client.workflow.list({ query: `PipelinePrefix = '${sec.prefix}'` })) {
      const history = await env.client.workflow.getHandle(w.workflowId, w.runId).fetchHistory();
      const text = allStrings(history).join('\n');
      assert.ok(text.includes(sec.prefix), 'the scan sees payload contents');
      for (const n of needles) assert.ok(!text.includes(n), `${w.workflowId}: the SASL password in its history`);
      scanned++;
    }
    assert.ok(scanned >= 2, `emulation and landing scanned (${scanned})`);
    const counts = (r: CleaningResult) => ({
      tables: Object.fromEntries(Object.entries(r.tables).map(([k, v]) => [k, { read: v.read, rows: v.rows, duplicates: v.duplicates, leftOut: v.leftOut }])),
      analytics: Object.fromEntries(Object.entries(r.analytics).map(([k, v]) => [k, v.rows])),
    });
    assert.deepEqual(counts(sec.result), counts(plain.result));
    // Row for row: every table of the secured run equals the plain run's (both directions, duplicates counted).
    const db = await DuckDBInstance.fromCache(duckdbPath);
    const c = await db.connect();
    try {
      for (const table of [...CLEANED_NAMES, ...ANALYTICS_NAMES]) {
        const q = (a: string, b: string) => `SELECT count(*) AS n FROM (SELECT * FROM "${a}"."${table}" EXCEPT ALL SELECT * FROM "${b}"."${table}")`;
        const n = async (sql: string) => Number((await c.runAndReadAll(sql)).getRowObjectsJS()[0]!.n);
        assert.equal(await n(q(sec.prefix, plain.prefix)), 0, `${table}: rows only in the secured run`);
        assert.equal(await n(q(plain.prefix, sec.prefix)), 0, `${table}: rows only in the plain run`);
        assert.equal(await n(`SELECT count(*) AS n FROM "${sec.prefix}"."${table}"`), table.endsWith('_clean') ? 2019 : sec.result.analytics[table as keyof CleaningResult['analytics']].rows);
      }
    } finally {
      c.closeSync();
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

  it('the stack creates the SCRAM user again when it is missing (an existing data dir)', async () => {
    const java = (...args: string[]) => {
      const r = spawnSync('java', ['-Xmx256m', '-cp', `${path.join(PROJECT_ROOT, '.cache', 'kafka', 'libs')}/*`, 'kafka.admin.ConfigCommand', '--bootstrap-server', '127.0.0.1:9092', ...args], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    };
    java('--alter', '--entity-type', 'users', '--entity-name', L.username, '--delete-config', 'SCRAM-SHA-512');
    let gone = false;
    for (let i = 0; i < 30 && !gone; i++) {
      gone = (await tryConnect(secured)).error !== undefined;
      if (!gone) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(gone, 'the user can no longer log in');
    await stackUp(testConfig(), ['kafka']);
    const r = await tryConnect(secured);
    assert.deepEqual(r.ports, [9094], r.error?.message);
  });
});

describe('AWS MSK IAM token provider', () => {
  const saved = { ...process.env };
  const accessKeyId = 'AKIAIOSFODNN7EXAMPLE';
  const secretAccessKey = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
  before(() => {
    for (const k of Object.keys(process.env)) if (k.startsWith('AWS_')) delete process.env[k];
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true' });
  });
  after(() => {
    for (const k of Object.keys(process.env)) if (k.startsWith('AWS_')) delete process.env[k];
    Object.assign(process.env, saved);
  });

  it('signs a kafka-cluster:Connect presigned URL for the region (its SigV4 signature recomputed here), valid 15 minutes', async () => {
    const before = Date.now();
    const { value } = await mskIamTokenProvider({ region: 'eu-west-1' })();
    assert.match(value, /^[A-Za-z0-9_-]+$/, 'base64url without padding');
    const url = new URL(Buffer.from(value, 'base64url').toString('utf8'));
    assert.equal(url.origin, 'https://kafka.eu-west-1.amazonaws.com');
    assert.equal(url.pathname, '/');
    const q = url.searchParams;
    assert.equal(q.get('Action'), 'kafka-cluster:Connect');
    assert.equal(q.get('X-Amz-Algorithm'), 'AWS4-HMAC-SHA256');
    const date = q.get('X-Amz-Date')!;
    assert.match(date, /^\d{8}T\d{6}Z$/);
    assert.equal(q.get('X-Amz-Credential'), `${accessKeyId}/${date.slice(0, 8)}/eu-west-1/kafka-cluster/aws4_request`);
    assert.equal(q.get('X-Amz-Expires'), '900');
    assert.equal(q.get('X-Amz-SignedHeaders'), 'host');
    assert.match(q.get('User-Agent')!, /^aws-msk-iam-sasl-signer-js\//);
    const signedAt = Date.parse(`${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`);
    assert.ok(signedAt >= before - 1_000 && signedAt <= Date.now(), 'signed now');
    assert.ok(!value.includes(secretAccessKey) && !url.toString().includes(secretAccessKey), 'the secret key is not in the token');

    // What MSK checks: the SigV4 signature over the canonical request (User-Agent is added after signing).
    const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);
    const canonicalQuery = [...q.entries()]
      .filter(([k]) => k !== 'X-Amz-Signature' && k !== 'User-Agent')
      .map(([k, v]) => [enc(k), enc(v)])
      .sort(([a], [b]) => (a! < b! ? -1 : a! > b! ? 1 : 0))
      .map(([k, v]) => `${k}=${v}`)
      .join('&');
    const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');
    const canonicalRequest = ['GET', '/', canonicalQuery, `host:${url.host}`, '', 'host', sha256('')].join('\n');
    const scope = `${date.slice(0, 8)}/eu-west-1/kafka-cluster/aws4_request`;
    const stringToSign = ['AWS4-HMAC-SHA256', date, scope, sha256(canonicalRequest)].join('\n');
    const hmac = (key: crypto.BinaryLike, data: string) => crypto.createHmac('sha256', key).update(data).digest();
    let key = hmac(`AWS4${secretAccessKey}`, date.slice(0, 8));
    for (const part of ['eu-west-1', 'kafka-cluster', 'aws4_request']) key = hmac(key, part);
    assert.equal(q.get('X-Amz-Signature'), crypto.createHmac('sha256', key).update(stringToSign).digest('hex'));
  });

  it('reuses a fresh token, renews one near its expiry (one renewal for concurrent callers), and keeps the expiry the signer reports', async () => {
    let clock = Date.now();
    const issued: Array<{ token: string; expiryTime: number }> = [];
    const { generateAuthToken } = await import('aws-msk-iam-sasl-signer-js');
    const provider = mskIamTokenProvider({
      region: 'us-east-1',
      now: () => clock,
      generate: async (region) => {
        const t = await generateAuthToken({ region });
        // Two tokens signed in the same second are identical: mark each issue.
        issued.push({ token: `${t.token}.${issued.length}`, expiryTime: t.expiryTime });
        return issued[issued.length - 1]!;
      },
    });
    const first = await provider();
    assert.equal(issued.length, 1);
    assert.ok(Math.abs(issued[0]!.expiryTime - (Date.now() + 900_000)) < 5_000, 'expires 15 minutes after signing');
    clock = issued[0]!.expiryTime - MSK_IAM_REFRESH_MARGIN_MS - 1_000;
    assert.equal((await provider()).value, first.value, 'still fresh: reused');
    assert.equal(issued.length, 1);
    clock = issued[0]!.expiryTime - MSK_IAM_REFRESH_MARGIN_MS + 1_000;
    const [a, b, c] = await Promise.all([provider(), provider(), provider()]);
    assert.equal(issued.length, 2, 'near expiry: renewed once for three concurrent callers');
    assert.notEqual(a.value, first.value);
    assert.equal(a.value, b.value);
    assert.equal(b.value, c.value);
    clock = Date.now();
    assert.equal((await provider()).value, a.value, 'the renewed token is reused');
    assert.equal(issued.length, 2);
  });

  it('without AWS credentials: a non-retryable failure naming the region and where credentials come from', async () => {
    const keep = { ...process.env };
    for (const k of Object.keys(process.env)) if (k.startsWith('AWS_')) delete process.env[k];
    Object.assign(process.env, { AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: '/nonexistent/config', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials' });
    try {
      const err = await mskIamTokenProvider({ region: 'ap-south-1' })().then(() => undefined, (e: Error) => e);
      assert.ok(err, 'no token without credentials');
      assert.equal(err.name, 'MskIamNoCredentials', err.message);
      const failure = classify('Kafka', 'b-1.msk.example:9098', err);
      expectAuthFailure(failure, /^Kafka at b-1\.msk\.example:9098: AWS MSK IAM: no AWS credentials to sign the authentication token for ap-south-1 .*AWS_ACCESS_KEY_ID\/AWS_SECRET_ACCESS_KEY, AWS_PROFILE/);
    } finally {
      for (const k of Object.keys(process.env)) if (k.startsWith('AWS_')) delete process.env[k];
      Object.assign(process.env, keep);
    }
  });

  const liveBrokers = saved.PINFLOW_LIVE_MSK_BROKERS;
  it('live: the doctor check produces and consumes on a real MSK cluster with IAM', { skip: liveBrokers && saved.AWS_REGION ? false : 'set PINFLOW_LIVE_MSK_BROKERS (the IAM bootstrap brokers, port 9098) and AWS_REGION, with AWS credentials' }, async () => {
    const keep = { ...process.env };
    Object.assign(process.env, saved); // the real credentials, not the fakes above
    try {
      const config = loadConfig({ ...process.env, KAFKA_BROKERS: liveBrokers!, KAFKA_SASL_MECHANISM: 'aws-msk-iam', KAFKA_SSL_CA: '', KAFKA_SASL_USERNAME: '', KAFKA_SASL_PASSWORD: '' });
      const adapter = kafkaAdapter(config);
      try {
        const check = await adapter.activities.checkKafka();
        assert.match(check.detail, /over SASL_SSL \(AWS_MSK_IAM/);
      } finally {
        await adapter.close();
      }
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in keep)) delete process.env[k];
      Object.assign(process.env, keep);
    }
  });
});
