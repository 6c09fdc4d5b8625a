/**
 * Shared by the unit and the integration tests of the secured connections (payload encryption,
 * Temporal mTLS and API key, Kafka SASL_SSL and MSK IAM, MySQL TLS and RDS IAM): the ConfigError
 * a set of settings gets, the settings of the stack's secured Kafka listener, certificates made
 * with openssl for a test, and the check of a non-retryable failure. Nothing here connects.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { NonRetryable } from '../../common/errors';
import { ConfigError, LOCAL_KAFKA_SECURED, loadConfig } from '../../config';
import { ensureStackCa, STACK_TLS_DIR } from '../../stack/tls';

/** The ConfigError loadConfig throws for `env`; the test fails if the settings are accepted. */
export function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  assert.fail(`configuration accepted: ${JSON.stringify(env)}`);
}

/** The settings that reach the stack's secured Kafka listener (SASL_SSL, SCRAM-SHA-512, the stack CA). */
export const KAFKA_SECURED: Record<string, string> = {
  KAFKA_BROKERS: LOCAL_KAFKA_SECURED.brokers,
  KAFKA_SSL_CA: LOCAL_KAFKA_SECURED.caFile,
  KAFKA_SASL_MECHANISM: LOCAL_KAFKA_SECURED.mechanism,
  KAFKA_SASL_USERNAME: LOCAL_KAFKA_SECURED.username,
  KAFKA_SASL_PASSWORD: LOCAL_KAFKA_SECURED.password,
};

/** `err` is a non-retryable ApplicationFailure of `type` whose message matches `message`. */
export function expectNonRetryable(err: unknown, type: string, message: RegExp): ApplicationFailure {
  assert.ok(err instanceof ApplicationFailure, `a non-retryable failure expected, got ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
  assert.equal(err.nonRetryable, true, err.message);
  assert.equal(err.type, type, err.message);
  assert.match(err.message, message);
  return err;
}

/** `err` is a non-retryable authentication failure whose message matches `message`. */
export function expectAuthFailure(err: Error | undefined, message: RegExp): asserts err is ApplicationFailure {
  expectNonRetryable(err, NonRetryable.auth, message);
}

/**
 * A temporary folder with Kafka client certificates made by openssl: a client certificate signed
 * by the stack CA (made first if there is none), a foreign CA, a self-signed client.
 */
export function makeKafkaClientCertificates(): { dir: string; client: string; clientKey: string; otherCa: string; selfSigned: string; selfSignedKey: string } {
  const stackCa = ensureStackCa();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-kafka-tls-'));
  const openssl = (...args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    assert.equal(r.status, 0, `openssl ${args[0]}: ${r.stderr}`);
  };
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other-ca-key.pem', '-out', 'other-ca.pem', '-days', '2', '-subj', '/CN=not the stack CA');
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'self-key.pem', '-out', 'self.pem', '-days', '2', '-subj', '/CN=self-signed client');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client-key.pem', '-out', 'client.csr', '-subj', '/CN=pinflow client');
  fs.writeFileSync(path.join(dir, 'ext'), 'extendedKeyUsage=clientAuth\n');
  openssl('x509', '-req', '-in', 'client.csr', '-CA', stackCa, '-CAkey', path.join(STACK_TLS_DIR, 'ca-key.pem'), '-CAcreateserial', '-CAserial', path.join(dir, 'ca.srl'), '-out', 'client.pem', '-days', '2', '-extfile', 'ext');
  const f = (n: string) => path.join(dir, n);
  return { dir, client: f('client.pem'), clientKey: f('client-key.pem'), otherCa: f('other-ca.pem'), selfSigned: f('self.pem'), selfSignedKey: f('self-key.pem') };
}

/**
 * In `dir` (created): a CA (ca.pem, ca.key), a server certificate for `serverName` (server.pem,
 * server.key) and a client certificate (client.pem, client.key), all signed by the CA, EC keys.
 */
export function makeTemporalCertificates(dir: string, serverName: string): void {
  const openssl = (args: string[]) => {
    const res = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (res.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${res.stderr}`);
  };
  fs.mkdirSync(dir, { recursive: true });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=pinflow test CA']);
  fs.writeFileSync(path.join(dir, 'server.ext'), `subjectAltName=DNS:${serverName}\nextendedKeyUsage=serverAuth\n`);
  fs.writeFileSync(path.join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const who of ['server', 'client']) {
    openssl(['req', ...ec, '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=pinflow-${who}`]);
    openssl(['x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${who}.pem`, '-days', '2', '-extfile', `${who}.ext`]);
  }
}
