/**
 * The local stack's TLS material, made with `openssl` on first use and reused afterwards:
 * one CA (`.data/kafka/tls/ca.pem`, the file users point KAFKA_SSL_CA and MYSQL_SSL_CA at) and
 * one server certificate per service signed by it, valid for `localhost` and 127.0.0.1.
 * Local defaults only, like the local S3 keys: nothing here is meant for a real deployment.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../config';
import { run, which } from './proc';

export const STACK_TLS_DIR = path.join(PROJECT_ROOT, '.data', 'kafka', 'tls');
export const STACK_CA = path.join(STACK_TLS_DIR, 'ca.pem');

export interface ServerCert {
  /** PEM certificate (leaf), then the CA: what a server presents. */
  chain: string;
  cert: string;
  /** Unencrypted PKCS#8 private key. */
  key: string;
  ca: string;
}

function openssl(args: string[], label: string): void {
  if (!which('openssl')) throw new Error('the local stack makes its TLS certificates with openssl: apt-get install openssl');
  run('openssl', args, { label, cwd: STACK_TLS_DIR });
}

/** The stack's CA, created once. */
export function ensureStackCa(): string {
  fs.mkdirSync(STACK_TLS_DIR, { recursive: true });
  const key = path.join(STACK_TLS_DIR, 'ca-key.pem');
  if (fs.existsSync(STACK_CA) && fs.existsSync(key)) return STACK_CA;
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', STACK_CA, '-days', '3650', '-subj', '/CN=pinflow local stack CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], 'openssl: stack CA');
  fs.chmodSync(key, 0o600);
  return STACK_CA;
}

/** A server certificate for `name` (localhost, 127.0.0.1), signed by the stack's CA; created once. */
export function ensureServerCert(name: string): ServerCert {
  ensureStackCa();
  const cert = path.join(STACK_TLS_DIR, `${name}.pem`);
  const key = path.join(STACK_TLS_DIR, `${name}-key.pem`);
  const chain = path.join(STACK_TLS_DIR, `${name}-chain.pem`);
  if (![cert, key, chain].every((f) => fs.existsSync(f))) {
    const csr = path.join(STACK_TLS_DIR, `${name}.csr`);
    const ext = path.join(STACK_TLS_DIR, `${name}.ext`);
    fs.writeFileSync(ext, 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n');
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=localhost/O=pinflow ${name}`], `openssl: ${name} key`);
    openssl(['x509', '-req', '-in', csr, '-CA', STACK_CA, '-CAkey', path.join(STACK_TLS_DIR, 'ca-key.pem'), '-CAcreateserial', '-out', cert, '-days', '3650', '-extfile', ext], `openssl: ${name} certificate`);
    // openssl 3 writes PKCS#8 keys ("BEGIN PRIVATE KEY"), the form Kafka's PEM key store reads.
    fs.writeFileSync(chain, fs.readFileSync(cert, 'utf8') + fs.readFileSync(STACK_CA, 'utf8'));
    fs.chmodSync(key, 0o600);
    fs.rmSync(csr, { force: true });
    fs.rmSync(ext, { force: true });
  }
  return { chain, cert, key, ca: STACK_CA };
}
