/**
 * Kafka REST proxy adapter (Confluent REST v2, what API Gateway fronted in the original):
 * `POST <base>/topics/<topic>` with `application/vnd.kafka.json.v2+json`.
 *
 * HTTP gives no transactions, so this sink is at-least-once: a batch whose response was lost
 * may be posted again on retry. Use the kafka sink where exactly-once matters.
 */
import { ApplicationFailure } from '@temporalio/common';
import { NonRetryable } from '../common/errors';

export const REST_PROXY_CONTENT_TYPE = 'application/vnd.kafka.json.v2+json';
const MAX_RECORDS_PER_REQUEST = 500;

export interface RestRecord {
  key: string;
  value: unknown;
}

function redact(url: string): string {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  return u.origin + u.pathname.replace(/\/$/, '');
}

/** Posts records to one topic in requests of at most 500 records. */
export async function postRecords(baseUrl: string, topic: string, records: RestRecord[], signal?: AbortSignal): Promise<void> {
  const url = `${baseUrl.replace(/\/$/, '')}/topics/${encodeURIComponent(topic)}`;
  for (let i = 0; i < records.length; i += MAX_RECORDS_PER_REQUEST) {
    const chunk = records.slice(i, i + MAX_RECORDS_PER_REQUEST);
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': REST_PROXY_CONTENT_TYPE, Accept: 'application/vnd.kafka.v2+json' },
        body: JSON.stringify({ records: chunk }),
        signal: signal ?? AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new Error(`REST proxy at ${redact(baseUrl)}: ${(err as Error).message}`, { cause: err });
    }
    if (res.ok) {
      const body = (await res.json().catch(() => ({}))) as { offsets?: Array<{ error_code?: number | null; error?: string | null }> };
      const failed = (body.offsets ?? []).filter((o) => o.error_code);
      if (failed.length) throw new Error(`REST proxy at ${redact(baseUrl)}: ${failed.length} record(s) of ${topic} rejected: ${failed[0]!.error}`);
      continue;
    }
    const text = (await res.text().catch(() => '')).slice(0, 300);
    const message = `REST proxy at ${redact(baseUrl)}: POST /topics/${topic} answered ${res.status}: ${text}`;
    if (res.status === 401 || res.status === 403) throw ApplicationFailure.nonRetryable(message, NonRetryable.auth);
    if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) throw ApplicationFailure.nonRetryable(message, NonRetryable.badInput);
    throw new Error(message);
  }
}
