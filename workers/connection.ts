/**
 * How every pinflow process reaches Temporal: the one place that turns the configuration
 * (address, TLS / mTLS files, API key) into connection options. The client
 * (`Connection.connect`), the worker (`NativeConnection.connect`), the stack's health
 * check and the test environment all use it, so a Temporal Cloud namespace works everywhere.
 */
import fs from 'node:fs';
import type { TLSConfig } from '@temporalio/client';
import type { Config } from '../config';

export interface TemporalConnectionOptions {
  address: string;
  /** Set: TLS (server-verified; with a client certificate pair: mTLS). Unset: plaintext (the dev server). */
  tls?: TLSConfig;
  apiKey?: string;
}

export function temporalConnectionOptions(config: Pick<Config, 'temporal'>): TemporalConnectionOptions {
  const t = config.temporal;
  const opts: TemporalConnectionOptions = { address: t.address };
  if (t.tls) {
    const tls: TLSConfig = {};
    if (t.tls.serverName) tls.serverNameOverride = t.tls.serverName;
    if (t.tls.caFile) tls.serverRootCACertificate = readPem('TEMPORAL_TLS_CA', t.tls.caFile);
    if (t.tls.certFile && t.tls.keyFile) {
      tls.clientCertPair = { crt: readPem('TEMPORAL_TLS_CERT', t.tls.certFile), key: readPem('TEMPORAL_TLS_KEY', t.tls.keyFile) };
    }
    opts.tls = tls;
  }
  if (t.apiKey) opts.apiKey = t.apiKey;
  return opts;
}

/** What the connection uses, fit for messages: never the key or the API key. */
export function describeConnection(config: Pick<Config, 'temporal'>): string {
  const t = config.temporal;
  const how = !t.tls ? 'plaintext' : [t.tls.certFile ? 'mTLS' : 'TLS', t.apiKey ? 'API key' : undefined].filter(Boolean).join(' + ');
  return `${t.address} (${how})`;
}

function readPem(setting: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new Error(`${setting}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  }
}
