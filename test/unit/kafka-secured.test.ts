/**
 * Kafka over TLS with authentication, without a broker: the settings (valid ones into the client
 * security, bad combinations failing at start-up naming each setting, secrets never printed)
 * and the AWS MSK IAM token provider (the token's shape, its SigV4 signature recomputed here,
 * its reuse and refresh, no credentials). test/integration/kafka-secured.test.ts runs every
 * mechanism against the stack's SASL_SSL listener.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MSK_IAM_REFRESH_MARGIN_MS, mskIamTokenProvider } from '../../adapters/kafka-msk-iam';
import { LOCAL_KAFKA_SECURED, loadConfig, PROJECT_ROOT } from '../../config';
import { classify } from '../../common/errors';
import { configError, expectAuthFailure, KAFKA_SECURED as SECURED, makeKafkaClientCertificates } from '../helpers/secured';

const L = LOCAL_KAFKA_SECURED;
const configProblems = (env: Record<string, string>): string[] => configError(env).problems;

describe('Kafka over TLS and SASL: settings', () => {
  let certs: ReturnType<typeof makeKafkaClientCertificates>;
  before(() => (certs = makeKafkaClientCertificates()));
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
});
