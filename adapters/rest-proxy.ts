/**
 * Kafka REST proxy adapter (Confluent REST v2, what API Gateway fronted in the original):
 * `POST <base>/topics/<topic>` with `application/vnd.kafka.json.v2+json`.
 *
 * Credentials: basic auth (REST_PROXY_USERNAME / REST_PROXY_PASSWORD) and/or extra headers
 * (REST_PROXY_HEADERS, e.g. an API Gateway `x-api-key`), sent with every request; never in
 * the URL (the config refuses `user:pass@`), never in a message (errors go through
 * `classify`, which redacts every secret value, common/redact.ts; the credentials are
 * remembered for it by config/secrets.ts).
 *
 * Answers, decided on purpose:
 * - 401 / 403: non-retryable (PinflowAuthError), naming the proxy's address and the settings
 *   to check. 400 / 404 / 413 / 415 / 422 and the other 4xx: non-retryable (PinflowBadInput).
 * - 429 and 5xx: retried here, up to IN_PROCESS_ATTEMPTS requests, waiting Retry-After when
 *   the proxy gives one (at most MAX_INLINE_WAIT_MS, heartbeating while waiting) or a short
 *   backoff; then a retryable failure whose `nextRetryDelay` is the proxy's Retry-After
 *   (capped at MAX_RETRY_AFTER_MS), so Temporal's retry waits as long as the proxy asked.
 * - Network errors and timeouts (30 s per request): retryable.
 *
 * HTTP gives no transactions, so this sink is at-least-once: a batch whose response was lost
 * may be posted again on retry. Use the kafka sink where exactly-once matters.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../config';
import { classify, NonRetryable } from '../common/errors';
import { basicAuthorization } from '../config/rest-proxy-settings';
import { rememberSecret } from '../config/secrets';

export const REST_PROXY_CONTENT_TYPE = 'application/vnd.kafka.json.v2+json';
const MAX_RECORDS_PER_REQUEST = 500;
const REQUEST_TIMEOUT_MS = 30_000;
/** Requests per chunk before a 429 / 5xx becomes a (retryable) activity failure. */
export const IN_PROCESS_ATTEMPTS = 3;
/** The longest Retry-After waited out inside the activity; longer ones go to Temporal's retry. */
export const MAX_INLINE_WAIT_MS = 5_000;
/** The longest Retry-After honoured at all (a proxy asking for more gets this). */
export const MAX_RETRY_AFTER_MS = 5 * 60_000;
const BACKOFF_MS = [500, 1_000, 2_000];

/** ApplicationFailure type of a proxy that kept answering 429 / 5xx (retryable). */
export const REST_PROXY_UNAVAILABLE = 'PinflowRestProxyUnavailable';

export interface RestRecord {
  key: string;
  value: unknown;
}

/** Where and how to reach the proxy. */
export interface RestProxyTarget {
  url: string;
  basic?: { username: string; password: string };
  headers?: Record<string, string>;
}

export interface PostOptions {
  signal?: AbortSignal;
  /** Called before each in-process wait (the activity heartbeats). */
  onWait?: (info: { status: number; waitMs: number; attempt: number }) => void;
}

/** The proxy of a Config (undefined: REST_PROXY_URL not set). */
export function restProxyTarget(config: Pick<Config, 'restProxyUrl' | 'restProxyAuth'>): RestProxyTarget | undefined {
  if (!config.restProxyUrl) return undefined;
  return { url: config.restProxyUrl, ...config.restProxyAuth };
}

/** The proxy's address for messages: origin and path, never credentials or a query. */
export function proxyAddress(url: string): string {
  try {
    const u = new URL(url);
    return u.origin + u.pathname.replace(/\/$/, '');
  } catch {
    return '(unparseable REST_PROXY_URL)';
  }
}

/** The request headers: content negotiation, then basic auth, then REST_PROXY_HEADERS. */
export function requestHeaders(target: RestProxyTarget): Record<string, string> {
  const headers: Record<string, string> = { 'Content-Type': REST_PROXY_CONTENT_TYPE, Accept: 'application/vnd.kafka.v2+json' };
  if (target.basic) {
    const value = basicAuthorization(target.basic.username, target.basic.password);
    rememberSecret(value.slice('Basic '.length));
    headers.Authorization = value;
  }
  for (const [name, value] of Object.entries(target.headers ?? {})) {
    rememberSecret(value);
    headers[name] = value;
  }
  return headers;
}

/**
 * Milliseconds a Retry-After header asks for (delta-seconds or an HTTP date), capped at
 * MAX_RETRY_AFTER_MS; undefined when absent or unparseable.
 */
export function retryAfterMs(header: string | null | undefined, now = Date.now()): number | undefined {
  const v = (header ?? '').trim();
  if (v === '') return undefined;
  let ms: number;
  if (/^\d+$/.test(v)) ms = Number(v) * 1000;
  else {
    const at = Date.parse(v);
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS);
}

/** What to check when the proxy refuses the credentials. */
function credentialHint(target: RestProxyTarget): string {
  const what: string[] = [];
  if (target.basic) what.push('REST_PROXY_USERNAME / REST_PROXY_PASSWORD');
  if (target.headers) what.push(`REST_PROXY_HEADERS (${Object.keys(target.headers).join(', ')})`);
  if (what.length === 0) return 'no credentials are configured: set REST_PROXY_USERNAME and REST_PROXY_PASSWORD (basic auth) or REST_PROXY_HEADERS (e.g. {"x-api-key": "..."})';
  return `check ${what.join(' and ')}`;
}

/** The network error's own reason (`fetch failed` says nothing): ECONNREFUSED, a timeout, ... */
function networkDetail(err: unknown): Error {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000} s`, { cause: err });
  const inner = e?.cause;
  const detail = [e?.message, inner?.code ?? inner?.message].filter(Boolean).join(': ');
  const wrapped = new Error(detail || String(err), { cause: err });
  wrapped.name = e?.name ?? 'Error';
  return wrapped;
}

/** Posts records to one topic in requests of at most 500 records. */
export async function postRecords(target: RestProxyTarget, topic: string, records: RestRecord[], opts: PostOptions = {}): Promise<void> {
  const address = proxyAddress(target.url);
  const url = `${target.url.replace(/\/$/, '')}/topics/${encodeURIComponent(topic)}`;
  const headers = requestHeaders(target);
  for (let i = 0; i < records.length; i += MAX_RECORDS_PER_REQUEST) {
    const body = JSON.stringify({ records: records.slice(i, i + MAX_RECORDS_PER_REQUEST) });
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
        res = await fetch(url, { method: 'POST', headers, body, signal: opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout });
      } catch (err) {
        // The activity's own cancellation stays a cancellation; anything else is the network (retryable).
        if (opts.signal?.aborted) throw err;
        throw classify('REST proxy', address, networkDetail(err));
      }
      if (res.ok) {
        const answer = (await res.json().catch(() => ({}))) as { offsets?: Array<{ error_code?: number | null; error?: string | null }> };
        const failed = (answer.offsets ?? []).filter((o) => o.error_code);
        if (failed.length) throw classify('REST proxy', address, new Error(`${failed.length} record(s) of ${topic} rejected: ${failed[0]!.error}`));
        break;
      }
      const text = (await res.text().catch(() => '')).replace(/\s+/g, ' ').trim().slice(0, 300);
      const answered = `POST /topics/${topic} answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${text ? `: ${text}` : ''}`;
      const message = `REST proxy at ${address}: ${answered}`;
      if (res.status === 401 || res.status === 403) {
        const why = res.status === 401 ? 'the proxy did not accept the credentials' : 'the proxy refused the request (bad API key, or no permission to produce to this topic)';
        throw classify('REST proxy', address, ApplicationFailure.nonRetryable(`${message}; ${why}: ${credentialHint(target)}`, NonRetryable.auth));
      }
      const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
      if (!retryable) throw classify('REST proxy', address, ApplicationFailure.nonRetryable(message, NonRetryable.badInput));
      const asked = retryAfterMs(res.headers.get('retry-after'));
      const waitMs = asked ?? BACKOFF_MS[Math.min(attempt - 1, BACKOFF_MS.length - 1)]!;
      if (attempt >= IN_PROCESS_ATTEMPTS || waitMs > MAX_INLINE_WAIT_MS) {
        const after = asked !== undefined ? `; asked to retry after ${Math.round(asked / 1000)} s` : '';
        throw classify(
          'REST proxy',
          address,
          ApplicationFailure.create({ message: `${message} (${attempt} request${attempt === 1 ? '' : 's'})${after}`, type: REST_PROXY_UNAVAILABLE, nonRetryable: false, nextRetryDelay: asked }),
        );
      }
      opts.onWait?.({ status: res.status, waitMs, attempt });
      // A cancellation during the wait is thrown as the signal's own reason (as fetch throws it).
      await sleep(waitMs, undefined, { signal: opts.signal }).catch(() => opts.signal?.throwIfAborted());
    }
  }
}
