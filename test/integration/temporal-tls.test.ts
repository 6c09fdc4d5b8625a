/**
 * Temporal Cloud / TLS for real: mTLS connections of the client and the worker through a
 * TLS-terminating proxy in front of the dev server (which itself has no TLS), with a certificate
 * authority, server and client certificates made with openssl for the test; a client without
 * its certificate is refused. The settings and connection options alone:
 * test/unit/temporal-tls.test.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { PROJECT_ROOT } from '../../config';
import type { DoctorReport } from '../../common/types';
import { connectClient } from '../../workers/client';
import { createWorker } from '../../workers/worker';
import { ensureStack, quietRuntime, testConfig, uniqueName } from '../helpers/env';
import { makeTemporalCertificates } from '../helpers/secured';

const DIR = path.join(PROJECT_ROOT, '.cache', 'tmp', `helper6-tls-${process.pid}`);
const SERVER_NAME = 'temporal.pinflow.test';
const file = (name: string) => path.join(DIR, name);

describe('Temporal over mTLS (a TLS proxy in front of the dev server)', () => {
  let proxy: tls.Server;
  let port: number;
  const handshakes: Array<{ authorized: boolean; cn?: string }> = [];

  before(async () => {
    quietRuntime();
    makeTemporalCertificates(DIR, SERVER_NAME);
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
