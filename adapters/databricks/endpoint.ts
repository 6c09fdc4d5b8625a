/**
 * What the Databricks clients (SQL warehouse, Jobs API) share: the workspace address parsed
 * from DATABRICKS_HOST (https only, plain http only on loopback), the token check, scrubbing
 * the token out of text, and the backoff of their retries.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../../config';
import { NonRetryable } from '../../common/errors';

export type DatabricksConfig = Config['warehouse']['databricks'];

export interface Endpoint {
  /** `https:` unless an explicit `http://` loopback address was configured (tests, local proxies). */
  protocol: 'https:' | 'http:';
  hostname: string;
  port: number;
  /** host[:port] as it appears in messages. */
  address: string;
  origin: string;
}

export function configFailure(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, NonRetryable.config);
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** DATABRICKS_HOST as `adb-123.4.azuredatabricks.net`, `https://dbc-x.cloud.databricks.com/` or `127.0.0.1:8443`. */
export function parseEndpoint(host: string | undefined): Endpoint {
  if (!host) throw configFailure('Databricks: DATABRICKS_HOST is not set');
  let u: URL;
  try {
    u = new URL(/^[a-z]+:\/\//i.test(host) ? host : `https://${host}`);
  } catch {
    throw configFailure(`Databricks: DATABRICKS_HOST ${JSON.stringify(host)} is not a host name or https URL`);
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && LOOPBACK.has(u.hostname))) {
    throw configFailure(`Databricks at ${u.host}: only https is allowed (plain http only for a loopback address); the token must not travel in clear text`);
  }
  if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.username) {
    throw configFailure(`Databricks: DATABRICKS_HOST must be the workspace host only, without path, query or credentials (got ${u.host}${u.pathname})`);
  }
  const protocol = u.protocol as Endpoint['protocol'];
  const port = u.port ? Number(u.port) : protocol === 'https:' ? 443 : 80;
  return { protocol, hostname: u.hostname, port, address: u.host, origin: `${protocol}//${u.host}` };
}

export function requireToken(config: DatabricksConfig, address: string): string {
  if (!config.token) throw configFailure(`Databricks at ${address}: DATABRICKS_TOKEN is not set`);
  return config.token;
}

/** Removes the token from text that may echo it (server messages, URLs). */
export function scrub(text: string, token: string): string {
  return token.length >= 4 ? text.split(token).join('***') : text;
}

/** Waits `ms`, or less when `signal` aborts; never throws (the caller looks at the signal). */
export async function pause(ms: number, signal?: AbortSignal): Promise<void> {
  await delay(ms, undefined, { signal }).catch((err: unknown) => {
    if ((err as Error)?.name !== 'AbortError') throw err;
  });
}

export function defaultWarn(message: string): void {
  try {
    Context.current().log.warn(message);
  } catch {
    console.warn(message);
  }
}

export interface RetryOptions {
  /** Total attempts of one request (first try included). */
  maxAttempts: number;
  /** First backoff; doubles per attempt. */
  delayMinMs: number;
  /** Cap of one backoff, also of a server's Retry-After. */
  delayMaxMs: number;
}

export function backoff(retry: RetryOptions, attempt: number, retryAfterHeader: string | null | undefined): number {
  const exp = Math.min(retry.delayMaxMs, retry.delayMinMs * 2 ** (attempt - 1));
  const seconds = Number(retryAfterHeader);
  if (retryAfterHeader && Number.isFinite(seconds) && seconds > 0) return Math.min(retry.delayMaxMs, Math.max(exp, seconds * 1000));
  return exp;
}
