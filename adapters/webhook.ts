/**
 * An HTTP webhook (ALERT_WEBHOOK_URL, the daily pipeline's alerts): `postWebhook(url, body)`
 * POSTs one JSON document.
 *
 * The URL is a credential as a whole (a webhook carries its token in the path or the query):
 * messages name only its origin (`webhookAddress`), and every message goes through `classify`
 * or `redactText`, which remove the URL's parts config/secrets.ts remembered, also when the
 * endpoint echoes them in its answer. Redirects are not followed (the body goes to the
 * configured address only).
 *
 * Answers, decided on purpose:
 * - 2xx: delivered.
 * - 408, 429 and 5xx: retryable (type PinflowWebhookUnavailable), with the endpoint's
 *   Retry-After as the next retry's delay when it gives one (capped, adapters/rest-proxy.ts).
 * - 401 / 403: non-retryable (PinflowAuthError); 3xx: non-retryable (PinflowConfigError: set
 *   the final address); any other 4xx: non-retryable (PinflowBadInput).
 * - Network errors and timeouts (WEBHOOK_TIMEOUT_MS per request): retryable.
 * Messages carry the status and at most 200 characters of the answer.
 */
import { ApplicationFailure } from '@temporalio/common';
import { classify, NonRetryable } from '../common/errors';
import { redactText } from '../common/redact';
import { retryAfterMs } from './rest-proxy';

export const WEBHOOK_TIMEOUT_MS = 10_000;
/** ApplicationFailure type of an endpoint answering 408 / 429 / 5xx (retryable). */
export const WEBHOOK_UNAVAILABLE = 'PinflowWebhookUnavailable';

export interface WebhookOptions {
  /** The activity's cancellation. */
  signal?: AbortSignal;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/** The webhook's origin (scheme, host, port): all of the URL a message may name. */
export function webhookAddress(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(unparseable ALERT_WEBHOOK_URL)';
  }
}

/** The reason of a failed request (`fetch failed` alone says nothing): a timeout, ECONNREFUSED, ... */
function requestError(err: unknown, timeoutMs: number): Error {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return new Error(`no answer within ${timeoutMs / 1000} s`, { cause: err });
  return new Error([e?.message, e?.cause?.code ?? e?.cause?.message].filter(Boolean).join(': ') || String(err), { cause: err });
}

/** POSTs `body` as JSON to `url`; returns the status of a 2xx answer, throws a classified failure otherwise. */
export async function postWebhook(url: string, body: unknown, opts: WebhookOptions = {}): Promise<{ status: number }> {
  const address = webhookAddress(url);
  const timeoutMs = opts.timeoutMs ?? WEBHOOK_TIMEOUT_MS;
  let res: Response;
  try {
    const timeout = AbortSignal.timeout(timeoutMs);
    res = await fetch(url, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'Content-Type': 'application/json', 'User-Agent': 'pinflow-alerts', ...opts.headers },
      body: JSON.stringify(body),
      signal: opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout,
    });
  } catch (err) {
    // The activity's own cancellation stays a cancellation; anything else is the network (retryable).
    if (opts.signal?.aborted) throw err;
    throw classify('Alert webhook', address, requestError(err, timeoutMs));
  }
  const text = (await res.text().catch(() => '')).replace(/\s+/g, ' ').trim().slice(0, 200);
  if (res.ok) return { status: res.status };
  const message = redactText(`Alert webhook at ${address}: POST answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${text ? `: ${text}` : ''}`);
  if (res.status === 408 || res.status === 429 || res.status >= 500) {
    throw ApplicationFailure.create({ message, type: WEBHOOK_UNAVAILABLE, nonRetryable: false, nextRetryDelay: retryAfterMs(res.headers.get('retry-after')) });
  }
  if (res.status === 401 || res.status === 403) throw ApplicationFailure.nonRetryable(`${message}; the endpoint refused the request: check ALERT_WEBHOOK_URL (its token)`, NonRetryable.auth);
  if (res.status >= 300 && res.status < 400) throw ApplicationFailure.nonRetryable(`${message}; redirects are not followed: set ALERT_WEBHOOK_URL to the final address`, NonRetryable.config);
  throw ApplicationFailure.nonRetryable(message, NonRetryable.badInput);
}
