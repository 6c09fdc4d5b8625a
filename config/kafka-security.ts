/**
 * Kafka TLS and SASL settings: their validation rules and their typed form.
 *
 * Contract: `kafkaSecurityProblems(env)` returns `[SETTING, problem]` for every bad combination
 * of the raw settings (config.ts reports them with the rest, secret values never shown);
 * `kafkaSecurity(parsed, root)` turns valid settings into `Config['kafka']`'s `ssl`/`sasl`
 * (file paths made absolute against `root`); `pemProblem(file, kind)` says why a file is not
 * a usable PEM certificate or private key. Settings:
 *   KAFKA_SSL=true|false      TLS with the system CAs (KAFKA_SSL_CA/CERT/KEY imply TLS)
 *   KAFKA_SSL_CA              PEM file of the CA(s) that signed the brokers' certificates
 *   KAFKA_SSL_CERT/KEY        mutual TLS: the client certificate and its key (both or neither)
 *   KAFKA_SASL_MECHANISM      plain | scram-sha-256 | scram-sha-512 (KAFKA_SASL_USERNAME and
 *                             KAFKA_SASL_PASSWORD required, secrets) | aws-msk-iam (an
 *                             OAUTHBEARER token signed with the AWS default credential chain
 *                             for AWS_REGION, required; implies TLS)
 * Pure apart from reading the named files; no dependency on config.ts (it imports this).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const KAFKA_SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512', 'aws-msk-iam'] as const;
export type KafkaSaslMechanism = (typeof KAFKA_SASL_MECHANISMS)[number];

/** Set: connect with TLS. No file: the system's CAs, no client certificate. Paths are absolute. */
export interface KafkaTls {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export type KafkaSasl =
  | { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string }
  | { mechanism: 'aws-msk-iam'; region: string };

/** Why `file` is not a PEM `kind`, or undefined when it is one (parsed, not just grepped). */
export function pemProblem(file: string, kind: 'certificate' | 'private key'): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return 'must be a readable file';
  }
  try {
    if (kind === 'certificate') {
      if (!/-----BEGIN CERTIFICATE-----/.test(text)) return 'must be a PEM file holding a certificate (-----BEGIN CERTIFICATE-----)';
      new crypto.X509Certificate(text);
    } else {
      if (!/-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/.test(text)) return 'must be a PEM file holding a private key (-----BEGIN PRIVATE KEY-----)';
      if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text)) return 'must hold an unencrypted private key';
      crypto.createPrivateKey(text);
    }
  } catch (e) {
    return `is not a valid PEM ${kind} (${(e as Error).message})`;
  }
  return undefined;
}

const isSet = (env: Record<string, string | undefined>, key: string) => (env[key] ?? '').trim() !== '';
const valueOf = (env: Record<string, string | undefined>, key: string) => (env[key] ?? '').trim();

/**
 * Combinations of the raw settings that cannot work. Per-setting checks (a known mechanism, a
 * readable PEM file, true/false) are the schema's; this reports how settings fit together.
 */
export function kafkaSecurityProblems(env: Record<string, string | undefined>, root: string): Array<[string, string]> {
  const problems: Array<[string, string]> = [];
  const ssl = valueOf(env, 'KAFKA_SSL');
  const mechanism = valueOf(env, 'KAFKA_SASL_MECHANISM');
  const tlsFiles = ['KAFKA_SSL_CA', 'KAFKA_SSL_CERT', 'KAFKA_SSL_KEY'].filter((k) => isSet(env, k));
  if (ssl === 'false') {
    for (const key of tlsFiles) problems.push([key, 'needs TLS, but KAFKA_SSL=false: unset KAFKA_SSL (the file implies TLS) or set it to true']);
    if (mechanism === 'aws-msk-iam') problems.push(['KAFKA_SSL', 'must not be false with KAFKA_SASL_MECHANISM=aws-msk-iam: MSK accepts IAM only on its TLS listener (port 9098)']);
  }
  if (isSet(env, 'KAFKA_SSL_CERT') !== isSet(env, 'KAFKA_SSL_KEY')) {
    const missing = isSet(env, 'KAFKA_SSL_CERT') ? 'KAFKA_SSL_KEY' : 'KAFKA_SSL_CERT';
    problems.push([missing, 'must be set together with its pair (mutual TLS needs the client certificate and its private key)']);
  } else if (isSet(env, 'KAFKA_SSL_CERT')) {
    const file = (k: string) => path.resolve(root, valueOf(env, k));
    if (!pemProblem(file('KAFKA_SSL_CERT'), 'certificate') && !pemProblem(file('KAFKA_SSL_KEY'), 'private key')) {
      const cert = new crypto.X509Certificate(fs.readFileSync(file('KAFKA_SSL_CERT')));
      if (!cert.checkPrivateKey(crypto.createPrivateKey(fs.readFileSync(file('KAFKA_SSL_KEY'))))) {
        problems.push(['KAFKA_SSL_KEY', 'is not the private key of the certificate in KAFKA_SSL_CERT']);
      }
    }
  }
  const withPassword = mechanism === 'plain' || mechanism === 'scram-sha-256' || mechanism === 'scram-sha-512';
  for (const key of ['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD']) {
    if (withPassword && !isSet(env, key)) problems.push([key, `is required when KAFKA_SASL_MECHANISM=${mechanism}`]);
    if (mechanism === 'aws-msk-iam' && isSet(env, key)) problems.push([key, 'is not used with KAFKA_SASL_MECHANISM=aws-msk-iam (the AWS credential chain signs a token): unset it']);
    if (mechanism === '' && isSet(env, key)) problems.push([key, 'needs KAFKA_SASL_MECHANISM (plain, scram-sha-256 or scram-sha-512)']);
  }
  if (mechanism === 'aws-msk-iam' && !isSet(env, 'AWS_REGION')) {
    problems.push(['AWS_REGION', 'is required when KAFKA_SASL_MECHANISM=aws-msk-iam (the region of the MSK cluster, part of the signed token)']);
  }
  return problems;
}

export interface KafkaSecuritySettings {
  KAFKA_SSL?: 'true' | 'false';
  KAFKA_SSL_CA?: string;
  KAFKA_SSL_CERT?: string;
  KAFKA_SSL_KEY?: string;
  KAFKA_SASL_MECHANISM?: KafkaSaslMechanism;
  KAFKA_SASL_USERNAME?: string;
  KAFKA_SASL_PASSWORD?: string;
  AWS_REGION: string;
}

/** Valid settings (the problems above ruled out) as `ssl` and `sasl`; neither: plaintext. */
export function kafkaSecurity(e: KafkaSecuritySettings, root: string): { ssl?: KafkaTls; sasl?: KafkaSasl } {
  const file = (p: string | undefined) => (p === undefined ? undefined : path.resolve(root, p));
  const tls: KafkaTls = { caFile: file(e.KAFKA_SSL_CA), certFile: file(e.KAFKA_SSL_CERT), keyFile: file(e.KAFKA_SSL_KEY) };
  const files = Object.fromEntries(Object.entries(tls).filter(([, v]) => v !== undefined)) as KafkaTls;
  const mechanism = e.KAFKA_SASL_MECHANISM;
  const useTls = e.KAFKA_SSL === 'true' || Object.keys(files).length > 0 || mechanism === 'aws-msk-iam';
  const sasl: KafkaSasl | undefined =
    mechanism === undefined
      ? undefined
      : mechanism === 'aws-msk-iam'
        ? { mechanism, region: e.AWS_REGION }
        : { mechanism, username: e.KAFKA_SASL_USERNAME ?? '', password: e.KAFKA_SASL_PASSWORD ?? '' };
  return { ...(useTls && { ssl: files }), ...(sasl && { sasl }) };
}

/** `SASL_SSL (SCRAM-SHA-512, own CA)`: how a client connects, for logs and the doctor; never a credential. */
export function describeKafkaSecurity(k: { ssl?: KafkaTls; sasl?: KafkaSasl }): string {
  const protocol = `${k.sasl ? 'SASL_' : ''}${k.ssl ? 'SSL' : 'PLAINTEXT'}`;
  const parts = [
    ...(k.sasl ? [k.sasl.mechanism === 'aws-msk-iam' ? `AWS_MSK_IAM, ${k.sasl.region}` : k.sasl.mechanism.toUpperCase()] : []),
    ...(k.ssl ? [k.ssl.caFile ? 'CA from KAFKA_SSL_CA' : 'system CAs'] : []),
    ...(k.ssl?.certFile ? ['client certificate'] : []),
  ];
  return parts.length ? `${protocol} (${parts.join(', ')})` : protocol;
}
