/**
 * Temporal Cloud / TLS: the settings (mTLS pair, readable files, API key as a secret), the
 * connection options every process builds from them, and real mTLS connections of the
 * client and the worker through a TLS-terminating proxy in front of the dev server (which
 * itself has no TLS): a certificate authority, server and client certificates made with
 * openssl for the test; a client without its certificate is refused.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig, PROJECT_ROOT } from '../../config';
import type { DoctorReport } from '../../common/types';
import { connectClient } from '../../workers/client';
import { describeConnection, temporalConnectionOptions } from '../../workers/connection';
import { createWorker } from '../../workers/worker';
import { ensureStack, quietRuntime, testConfig, uniqueName } from '../helpers/env';

const DIR = path.join(PROJECT_ROOT, '.cache', 'tmp', `helper6-tls-${process.pid}`);
const SERVER_NAME = 'temporal.pinflow.test';
const file = (name: string) => path.join(DIR, name);

function openssl(args: string[]): void {
  const res = spawnSync('openssl', args, { cwd: DIR, encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${res.stderr}`);
}

/** A CA, a server certificate for SERVER_NAME and a client certificate, all signed by the CA. */
function makeCertificates(): void {
  fs.mkdirSync(DIR, { recursive: true });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=pinflow test CA']);
  fs.writeFileSync(file('server.ext'), `subjectAltName=DNS:${SERVER_NAME}\nextendedKeyUsage=serverAuth\n`);
  fs.writeFileSync(file('client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const who of ['server', 'client']) {
    openssl(['req', ...ec, '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=pinflow-${who}`]);
    openssl(['x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${who}.pem`, '-days', '2', '-extfile', `${who}.ext`]);
  }
}

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  assert.fail('expected a ConfigError');
}

describe('Temporal TLS and API key settings', () => {
  before(makeCertificates);
  after(() => fs.rmSync(DIR, { recursive: true, force: true }));

  it('mTLS needs the certificate and its key together, each a readable file', () => {
    assert.match(configError({ TEMPORAL_TLS_CERT: file('client.pem') }).message, /- TEMPORAL_TLS_KEY must be set together with its pair/);
    assert.match(configError({ TEMPORAL_TLS_KEY: file('client.key') }).message, /- TEMPORAL_TLS_CERT must be set together with its pair/);
    const e = configError({ TEMPORAL_TLS_CERT: file('nope.pem'), TEMPORAL_TLS_KEY: DIR, TEMPORAL_TLS_CA: '/no/such/ca.pem', TEMPORAL_TLS_SERVER_NAME: 'bad name!' });
    assert.match(e.message, /- TEMPORAL_TLS_CERT must be a readable file \(got ".*nope\.pem"\)/);
    assert.match(e.message, /- TEMPORAL_TLS_KEY must be a readable file/, 'a directory is not a file');
    assert.match(e.message, /- TEMPORAL_TLS_CA must be a readable file/);
    assert.match(e.message, /- TEMPORAL_TLS_SERVER_NAME must be a host name/);
    assert.equal(e.problems.length, 4);
  });

  it('the API key is a secret: never printed, and it turns TLS on', () => {
    const apiKey = 'eyJhbGciOiJFUzI1NiJ9.pinflow-test-api-key.signature';
    const e = configError({ TEMPORAL_API_KEY: apiKey, TEMPORAL_ADDRESS: 'no-port' });
    assert.match(e.message, /TEMPORAL_ADDRESS must be host:port/);
    assert.ok(!e.message.includes(apiKey));
    const c = loadConfig({ TEMPORAL_API_KEY: apiKey, TEMPORAL_ADDRESS: 'us-east-1.aws.api.temporal.io:7233', TEMPORAL_NAMESPACE: 'pinflow.a1b2c' });
    assert.deepEqual(temporalConnectionOptions(c), { address: 'us-east-1.aws.api.temporal.io:7233', tls: {}, apiKey });
    assert.equal(describeConnection(c), 'us-east-1.aws.api.temporal.io:7233 (TLS + API key)');
    assert.ok(!describeConnection(c).includes(apiKey));
  });

  it('builds the connection options: plaintext by default; mTLS files, CA and server name read into them', () => {
    assert.deepEqual(temporalConnectionOptions(loadConfig({})), { address: '127.0.0.1:7233' });
    assert.equal(describeConnection(loadConfig({})), '127.0.0.1:7233 (plaintext)');
    // Relative paths are relative to the project root.
    const rel = path.relative(PROJECT_ROOT, DIR);
    const c = loadConfig({
      TEMPORAL_ADDRESS: 'pinflow.a1b2c.tmprl.cloud:7233',
      TEMPORAL_TLS_CERT: path.join(rel, 'client.pem'),
      TEMPORAL_TLS_KEY: file('client.key'),
      TEMPORAL_TLS_CA: file('ca.pem'),
      TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
    });
    assert.equal(c.temporal.tls!.certFile, file('client.pem'));
    const o = temporalConnectionOptions(c);
    assert.equal(o.address, 'pinflow.a1b2c.tmprl.cloud:7233');
    assert.equal(o.apiKey, undefined);
    assert.equal(o.tls!.serverNameOverride, SERVER_NAME);
    assert.deepEqual(Buffer.from(o.tls!.serverRootCACertificate!), fs.readFileSync(file('ca.pem')));
    assert.deepEqual(Buffer.from(o.tls!.clientCertPair!.crt), fs.readFileSync(file('client.pem')));
    assert.deepEqual(Buffer.from(o.tls!.clientCertPair!.key), fs.readFileSync(file('client.key')));
    assert.equal(describeConnection(c), 'pinflow.a1b2c.tmprl.cloud:7233 (mTLS)');
    // A CA alone (server-verified TLS, no client certificate) is TLS too.
    assert.deepEqual(Object.keys(temporalConnectionOptions(loadConfig({ TEMPORAL_TLS_CA: file('ca.pem') })).tls!), ['serverRootCACertificate']);
  });
});

describe('Temporal over mTLS (a TLS proxy in front of the dev server)', () => {
  let proxy: tls.Server;
  let port: number;
  const handshakes: Array<{ authorized: boolean; cn?: string }> = [];

  before(async () => {
    quietRuntime();
    makeCertificates();
    const base = testConfig();
    await ensureStack(base);
    const [upHost, upPort] = [base.temporal.address.slice(0, base.temporal.address.lastIndexOf(':')), Number(base.temporal.address.split(':').pop())];
    proxy = tls.createServer(
      { key: fs.readFileSync(file('server.key')), cert: fs.readFileSync(file('server.pem')), ca: fs.readFileSync(file('ca.pem')), requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2'] },
      (sock) => {
        const peer = sock.getPeerCertificate();
        handshakes.push({ authorized: sock.authorized, cn: typeof peer?.subject?.CN === 'string' ? peer.subject.CN : undefined });
        const up = net.connect(upPort, upHost);
        sock.pipe(up).pipe(sock);
        const close = () => {
          sock.destroy();
          up.destroy();
        };
        sock.on('error', close);
        up.on('error', close);
        sock.on('close', close);
        up.on('close', close);
      },
    );
    proxy.on('tlsClientError', () => {});
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    port = (proxy.address() as net.AddressInfo).port;
  });
  after(async () => {
    await new Promise<void>((resolve) => proxy?.close(() => resolve()));
    fs.rmSync(DIR, { recursive: true, force: true });
  });

  const mtls = (extra: Record<string, string> = {}) =>
    testConfig({
      TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
      TEMPORAL_TLS_CERT: file('client.pem'),
      TEMPORAL_TLS_KEY: file('client.key'),
      TEMPORAL_TLS_CA: file('ca.pem'),
      TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
      TEMPORAL_TASK_QUEUE: uniqueName('tq-tls'),
      ...extra,
    });

  it('the client and the worker connect with mTLS (and an API key) and run a workflow', async () => {
    const config = mtls({ TEMPORAL_API_KEY: 'pinflow-test-api-key-ignored-by-the-dev-server' });
    const client = await connectClient(config);
    const worker = await createWorker(config);
    try {
      const info = await client.workflowService.getSystemInfo({});
      assert.ok(info.capabilities, 'a real answer through TLS');
      const report = (await worker.worker.runUntil(client.workflow.execute('doctorWorkflow', { taskQueue: config.temporal.taskQueue, workflowId: uniqueName('doctor-tls') }))) as DoctorReport;
      assert.equal(report.systems.length, 3);
    } finally {
      await worker.close();
      await client.connection.close();
    }
    assert.ok(handshakes.length >= 2, 'client and worker connections went through the TLS proxy');
    assert.ok(handshakes.every((h) => h.authorized && h.cn === 'pinflow-client'), JSON.stringify(handshakes));
  });

  it('without its client certificate the connection is refused; a wrong server name fails verification', async () => {
    const noCert = testConfig({ TEMPORAL_ADDRESS: `127.0.0.1:${port}`, TEMPORAL_TLS_CA: file('ca.pem'), TEMPORAL_TLS_SERVER_NAME: SERVER_NAME });
    await assert.rejects(
      (async () => {
        const c = await connectClient(noCert);
        try {
          await c.workflowService.getSystemInfo({});
        } finally {
          await c.connection.close();
        }
      })(),
      /unreachable|UNAVAILABLE|handshake|certificate|Connection|closed/i,
    );
    await assert.rejects(connectClient(mtls({ TEMPORAL_TLS_SERVER_NAME: 'other.pinflow.test' })), /Temporal at 127\.0\.0\.1:\d+ is unreachable/);
  });
});
