/**
 * The emulation's rest-proxy sink adapter against scripted local servers, without a broker: an
 * unreachable proxy, records refused in a 200 and a proxy that stays unavailable are retryable
 * failures naming the proxy; Retry-After is waited out in the activity up to a limit, beyond it
 * it becomes the delay of Temporal's retry. test/integration/rest-proxy.test.ts emulates
 * through a checking proxy in front of the stack's broker.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MAX_RETRY_AFTER_MS, postRecords, REST_PROXY_UNAVAILABLE, retryAfterMs } from '../../adapters/rest-proxy';

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('emulation through a Kafka REST proxy', () => {
  it('the adapter: an unreachable proxy, refused records and a proxy that stays unavailable are retryable failures naming the proxy', async () => {
    // A port nothing listens on any more: connection refused.
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const down = await postRecords({ url: `http://127.0.0.1:${closedPort}/kafka/` }, 't', [{ key: '1', value: {} }]).then(
      () => assert.fail('should fail'),
      (e: Error) => e,
    );
    assert.ok(!(down instanceof ApplicationFailure), 'retryable');
    assert.equal(down.message, `REST proxy at http://127.0.0.1:${closedPort}/kafka: fetch failed: ECONNREFUSED`);

    // A scripted server: record-level errors in a 200, then 503s with a long Retry-After.
    const answers: Array<[number, Record<string, string>, string]> = [
      [200, {}, JSON.stringify({ offsets: [{ partition: 0, offset: 1, error_code: null }, { error_code: 40403, error: 'Schema not found' }] })],
      ...Array.from({ length: 3 }, (): [number, Record<string, string>, string] => [503, { 'Retry-After': '2' }, 'busy']),
      [503, { 'Retry-After': '120' }, 'very busy'],
    ];
    const seen: number[] = [];
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        seen.push(Date.now());
        const [status, headers, body] = answers.shift() ?? [500, {}, 'script exhausted'];
        res.writeHead(status, headers).end(body);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const waits: number[] = [];
    try {
      const rejected = await postRecords({ url }, 'pinflow.pin', [{ key: '1', value: {} }, { key: '2', value: {} }]).catch((e: Error) => e);
      assert.ok(rejected instanceof Error && !(rejected instanceof ApplicationFailure));
      assert.equal(rejected.message, `REST proxy at ${url}: 1 record(s) of pinflow.pin rejected: Schema not found`);

      const busy = (await postRecords({ url }, 'pinflow.pin', [{ key: '1', value: {} }], { onWait: (w) => waits.push(w.waitMs) }).catch((e: unknown) => e)) as ApplicationFailure;
      assert.ok(busy instanceof ApplicationFailure);
      assert.equal(busy.type, REST_PROXY_UNAVAILABLE);
      assert.equal(busy.nonRetryable, false);
      assert.match(busy.message, new RegExp(`^REST proxy at ${escape(url)}: POST /topics/pinflow\\.pin answered 503 Service Unavailable: busy \\(3 requests\\); asked to retry after 2 s$`));
      assert.equal(busy.nextRetryDelay, 2000, "Temporal's retry waits the proxy's Retry-After");
      assert.deepEqual(waits, [2000, 2000], 'Retry-After waited out twice in the activity');
      assert.ok(seen[3]! - seen[1]! >= 3900, 'the waits happened');

      // Retry-After over the in-activity limit: no wait here, Temporal's retry delay instead.
      waits.length = 0;
      const long = (await postRecords({ url }, 'pinflow.pin', [{ key: '1', value: {} }], { onWait: (w) => waits.push(w.waitMs) }).catch((e: unknown) => e)) as ApplicationFailure;
      assert.deepEqual(waits, []);
      assert.equal(long.nextRetryDelay, 120_000);
      assert.match(long.message, /answered 503 Service Unavailable: very busy \(1 request\); asked to retry after 120 s$/);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('Retry-After: delta-seconds or an HTTP date, capped; garbage is ignored', () => {
    const now = Date.parse('2026-11-24T10:00:00Z');
    assert.equal(retryAfterMs('3', now), 3000);
    assert.equal(retryAfterMs('0', now), 0);
    assert.equal(retryAfterMs('Tue, 24 Nov 2026 10:00:30 GMT', now), 30_000);
    assert.equal(retryAfterMs('Tue, 24 Nov 2026 09:00:00 GMT', now), 0, 'a date in the past: now');
    assert.equal(retryAfterMs('86400', now), MAX_RETRY_AFTER_MS);
    assert.equal(retryAfterMs('soon', now), undefined);
    assert.equal(retryAfterMs(null, now), undefined);
  });
});
