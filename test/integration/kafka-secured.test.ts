/**
 * Kafka over TLS with authentication: the local stack's SASL_SSL listener (127.0.0.1:9094,
 * SCRAM-SHA-512 user `pinflow`, broker certificate signed by the stack's CA) and AWS MSK IAM.
 * The settings and the MSK IAM token provider alone: test/unit/kafka-secured.test.ts.
 *
 * Covers: every SASL mechanism and mutual TLS against the real broker; the real sample
 * emulated and landed through the secured listener and cleaned, equal to the same run over
 * the plain listener; a wrong password and a missing or wrong CA failing fast, non-retryably,
 * naming the broker and the setting to check (adapter, workflow, CLI, doctor); the stack
 * recreating a missing SCRAM user. `PINFLOW_LIVE_MSK_BROKERS` (with AWS_REGION and AWS credentials) runs
 * the doctor's Kafka check against a real MSK cluster with IAM; skipped otherwise.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createKafka, kafkaAdapter } from '../../adapters/kafka';
import { ANALYTICS_NAMES, CLEANED_NAMES, type CleaningResult } from '../../common/cleaning';
import { LOCAL_KAFKA_SECURED, loadConfig, PROJECT_ROOT, type Config } from '../../config';
import { classify, NonRetryable } from '../../common/errors';
import type { DoctorReport } from '../../common/types';
import { kafka as kafkaService, localKafkaLayout } from '../../stack/kafka-broker';
import { stackUp } from '../../stack';
import { createWorker } from '../../workers/worker';
import { rootMessage, testDatabase } from '../helpers/data';
import { ensureStack, quietRuntime, runScript, runWorkflow, testConfig, uniqueName, workflowTestEnv } from '../helpers/env';
import { expectAuthFailure, KAFKA_SECURED as SECURED, makeKafkaClientCertificates } from '../helpers/secured';

const L = LOCAL_KAFKA_SECURED;
const WRONG_PASSWORD = 'not-the-password-4711';
const BROKER = /Kafka at 127\.0\.0\.1:9094: /;
const CHECK_CREDENTIALS = /check KAFKA_SASL_USERNAME\/KAFKA_SASL_PASSWORD/;
const SET_CA = /TLS certificate verification failed: .*set KAFKA_SSL_CA to the CA that signed the broker's certificate/;

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

/** Every string in a value, byte arrays (payload data) decoded as UTF-8. */
function allStrings(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (value instanceof Uint8Array) out.push(Buffer.from(value).toString('utf8'));
  else if (Array.isArray(value)) for (const v of value) allStrings(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) allStrings(v, out);
  return out;
}

describe('Kafka over TLS and SASL: the local SASL_SSL listener', () => {
  let env: TestWorkflowEnvironment;
  let certs: ReturnType<typeof makeKafkaClientCertificates>;
  let sampleUrl: string;
  const secured = testConfig(SECURED);
  const wrongPassword = testConfig({ ...SECURED, KAFKA_SASL_PASSWORD: WRONG_PASSWORD });
  const systemCas = testConfig({ ...SECURED, KAFKA_SSL_CA: '', KAFKA_SSL: 'true' });

  before(async () => {
    quietRuntime();
    await ensureStack();
    env = await workflowTestEnv(testConfig());
    certs = makeKafkaClientCertificates();
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
  const liveBrokers = saved.PINFLOW_LIVE_MSK_BROKERS;
  it('live: the doctor check produces and consumes on a real MSK cluster with IAM', { skip: liveBrokers && saved.AWS_REGION ? false : 'set PINFLOW_LIVE_MSK_BROKERS (the IAM bootstrap brokers, port 9098) and AWS_REGION, with AWS credentials' }, async () => {
    const keep = { ...process.env };
    Object.assign(process.env, saved); // the credentials this process started with
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
