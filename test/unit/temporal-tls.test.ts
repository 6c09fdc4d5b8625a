/**
 * Temporal Cloud / TLS settings without a server: the mTLS pair, readable files, the API key
 * as a secret, and the connection options every process builds from them (certificates made
 * with openssl for the test). test/integration/temporal-tls.test.ts connects for real through
 * a TLS proxy in front of the dev server.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig, PROJECT_ROOT } from '../../config';
import { describeConnection, temporalConnectionOptions } from '../../workers/connection';
import { configError, makeTemporalCertificates } from '../helpers/secured';

const DIR = path.join(PROJECT_ROOT, '.cache', 'tmp', `helper6-tls-${process.pid}`);
const SERVER_NAME = 'temporal.pinflow.test';
const file = (name: string) => path.join(DIR, name);

describe('Temporal TLS and API key settings', () => {
  before(() => makeTemporalCertificates(DIR, SERVER_NAME));
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
