/**
 * The daily pipeline's alerts without a server: the deadline's syntax and instant, the
 * --deadline options of `npm run pipeline` and `npm run schedule`, ALERT_WEBHOOK_URL as a secret
 * setting (hidden in config errors, every part of it redacted), the webhook adapter's answers
 * against a scripted local endpoint (2xx, 408/429/5xx retryable, other 4xx and 3xx not, network
 * errors and timeouts retryable; no message names more than the origin) and the `sendAlert`
 * activity's body. test/integration/alerts.test.ts runs the alerts through dailyPipelineWorkflow.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { alertActivities } from '../../activities/alerts';
import { postWebhook, WEBHOOK_UNAVAILABLE, webhookAddress } from '../../adapters/webhook';
import { deadlineInstant, deadlineProblems, MAX_DEADLINE_MS, parseDeadline, type AlertBody } from '../../common/alerts';
import { NonRetryable } from '../../common/errors';
import { redactText } from '../../common/redact';
import { ConfigError, loadConfig } from '../../config';
import { secretUrlParts } from '../../config/secrets';
import { parsePipelineArgs } from '../../scripts/pipeline';
import { parseScheduleArgs } from '../../scripts/schedule';
import { testConfig } from '../helpers/env';
import { startWebhookEndpoint, type WebhookEndpoint } from '../helpers/webhook-endpoint';

const isUsageError = (message: RegExp) => (err: Error) => err.constructor.name === 'UsageError' && message.test(err.message);

describe('alerts: the deadline', () => {
  it('parses whole units, largest first, up to 30 days; anything else names the field, the value and the rule', () => {
    for (const [text, ms] of [
      ['6h', 6 * 3_600_000],
      ['90m', 90 * 60_000],
      ['1h30m', 90 * 60_000],
      ['2d', 2 * 86_400_000],
      ['1d12h', 36 * 3_600_000],
      ['45s', 45_000],
      ['0m', 0],
      [' 6h ', 6 * 3_600_000],
      ['30d', MAX_DEADLINE_MS],
    ] as const) {
      assert.equal(parseDeadline(text), ms, text);
    }
    for (const text of ['', '6', 'h', '6 h', '1.5h', '30m1h', '-1h', '6hours', '6H', 'PT6H', '1h 30m']) {
      assert.throws(() => parseDeadline(text, '--deadline'), new RegExp(`^TypeError: --deadline ${JSON.stringify(text).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not a duration such as 6h, 90m, 1h30m or 2d`), text);
    }
    assert.throws(() => parseDeadline('31d'), /^TypeError: deadline "31d" is more than 30 days after the interval end$/);
    assert.throws(() => parseDeadline('721h'), /more than 30 days/);
  });

  it('problems name the field; the instant is the interval end (D+1 00:00 UTC) plus the deadline', () => {
    assert.deepEqual(deadlineProblems(undefined), []);
    assert.deepEqual(deadlineProblems('6h'), []);
    assert.match(deadlineProblems(6)[0]!, /^deadline must be a string, a duration such as 6h/);
    assert.match(deadlineProblems('6x', 'input.deadline')[0]!, /^input\.deadline "6x" is not a duration/);
    assert.equal(deadlineInstant('2024-01-31', '6h'), Date.parse('2024-02-01T06:00:00Z'));
    assert.equal(deadlineInstant('2024-02-28', '1h30m'), Date.parse('2024-02-29T01:30:00Z'), 'leap day');
    assert.equal(deadlineInstant('2023-12-31', '0m'), Date.parse('2024-01-01T00:00:00Z'));
  });

  it('npm run pipeline -- --deadline D into the input; npm run schedule -- create|update --deadline D, update --no-deadline', () => {
    const config = testConfig();
    assert.equal(parsePipelineArgs(['--date', '2024-05-01', '--deadline', '6h'], config).input.deadline, '6h');
    assert.ok(!('deadline' in parsePipelineArgs(['--date', '2024-05-01'], config).input), 'no deadline unless given');
    assert.throws(() => parsePipelineArgs(['--date', '2024-05-01', '--deadline', '6 hours'], config), isUsageError(/^--deadline "6 hours" is not a duration such as 6h, 90m/));
    assert.throws(() => parsePipelineArgs(['--deadline', '40d'], config), isUsageError(/^--deadline "40d" is more than 30 days/));

    assert.equal(parseScheduleArgs(['create', '--deadline', '90m'], config).deadline, '90m');
    assert.equal(parseScheduleArgs(['create'], config).deadline, undefined);
    assert.equal(parseScheduleArgs(['update', '--deadline', '2h'], config).deadline, '2h');
    assert.equal(parseScheduleArgs(['update', '--no-deadline'], config).deadline, null);
    assert.equal(parseScheduleArgs(['update'], config).deadline, undefined, 'update without either keeps it');
    assert.throws(() => parseScheduleArgs(['create', '--deadline', 'soon'], config), isUsageError(/^--deadline "soon" is not a duration/));
    assert.throws(() => parseScheduleArgs(['trigger', '--deadline', '6h'], config), isUsageError(/^--deadline and --no-deadline apply to create and update, not trigger$/));
    assert.throws(() => parseScheduleArgs(['create', '--no-deadline'], config), isUsageError(/^--no-deadline \(update only\)/));
    assert.throws(() => parseScheduleArgs(['update', '--deadline', '6h', '--no-deadline'], config), isUsageError(/^--no-deadline \(update only\) removes the deadline; it cannot be combined with --deadline$/));
  });
});

describe('alerts: ALERT_WEBHOOK_URL', () => {
  const token = `T0KEN${Date.now().toString(36)}x9`;
  const sig = `sig-${Date.now().toString(36)}-value`;
  const url = `https://hooks.example.com/services/T0A1B2C3/${token}?sig=${sig}`;

  it('is optional, an http(s) URL, and a secret: hidden in config errors', () => {
    assert.equal(loadConfig({}).alerts.webhookUrl, undefined);
    assert.equal(loadConfig({ ALERT_WEBHOOK_URL: url }).alerts.webhookUrl, url);
    const bad = `ftp://hooks.example.com/${token}`;
    assert.throws(
      () => loadConfig({ ALERT_WEBHOOK_URL: bad }),
      (e: Error) => e instanceof ConfigError && /- ALERT_WEBHOOK_URL must be an http\(s\) URL \(value hidden: secret\)/.test(e.message) && !e.message.includes(token),
    );
  });

  it('its secret parts are the whole URL, its path and query, the query values and token-like path segments; loadConfig remembers them', () => {
    assert.deepEqual(secretUrlParts(url), [url, `/services/T0A1B2C3/${token}?sig=${sig}`, `sig=${sig}`, sig, 'T0A1B2C3', token]);
    assert.deepEqual(secretUrlParts('http://127.0.0.1:9/hooks'), ['http://127.0.0.1:9/hooks'], '"hooks" alone is no token');
    assert.deepEqual(secretUrlParts(''), []);
    loadConfig({ ALERT_WEBHOOK_URL: url });
    const text = redactText(`posting to ${url}; the endpoint said: unknown token ${token} (sig ${encodeURIComponent(sig)}), path /services/T0A1B2C3/${token}`);
    for (const s of [token, sig, 'T0A1B2C3', url]) assert.ok(!text.includes(s), `${s} redacted: ${text}`);
    assert.match(text, /^posting to \[redacted\]; the endpoint said: unknown token \[redacted\] \(sig \[redacted\]\), path \/services\/\[redacted\]\/\[redacted\]$/);
  });
});

describe('alerts: the webhook adapter and sendAlert', () => {
  let endpoint: WebhookEndpoint;
  const secretPath = `/hooks/T9ALERT9/${'k'.repeat(6)}${Date.now().toString(36)}Z`;
  let url: string;

  before(async () => {
    endpoint = await startWebhookEndpoint();
    url = `${endpoint.origin}${secretPath}?token=unit-secret-${Date.now().toString(36)}`;
    loadConfig({ ALERT_WEBHOOK_URL: url }); // remembers its parts for redaction, as the worker does
  });
  after(() => endpoint.close());

  /** The failure postWebhook throws for the next call answered `answer`. */
  async function failureFor(answer: Parameters<WebhookEndpoint['script']>[1], opts: { timeoutMs?: number } = {}): Promise<Error> {
    endpoint.script('*', answer);
    return postWebhook(url, { hello: 'world' }, opts).then(
      () => assert.fail('should fail'),
      (e: Error) => e,
    );
  }
  const noSecret = (e: Error) => {
    const all = `${e.message}\n${e.stack}\n${(e.cause as Error | undefined)?.message ?? ''}`;
    assert.ok(!all.includes(secretPath) && !all.includes(new URL(url).search), `no part of the URL but its origin: ${all}`);
  };

  it('2xx: delivered, one JSON POST to the whole URL with the given headers', async () => {
    const before = endpoint.calls.length;
    assert.deepEqual(await postWebhook(url, { hello: 'world' }, { headers: { 'Idempotency-Key': 'k1' } }), { status: 200 });
    endpoint.script('*', { status: 204 });
    assert.deepEqual(await postWebhook(url, { n: 2 }), { status: 204 });
    const [first, second] = endpoint.calls.slice(before);
    assert.equal(first!.method, 'POST');
    assert.equal(first!.url, url.slice(endpoint.origin.length));
    assert.equal(first!.headers['content-type'], 'application/json');
    assert.equal(first!.headers['idempotency-key'], 'k1');
    assert.deepEqual(first!.body, { hello: 'world' });
    assert.deepEqual(second!.body, { n: 2 });
    assert.equal(webhookAddress(url), endpoint.origin);
  });

  it('408, 429 and 5xx are retryable (Retry-After as the next delay); other 4xx and 3xx are not; the answer is redacted', async () => {
    for (const status of [500, 503, 408, 429]) {
      const e = await failureFor({ status, body: 'busy' });
      assert.ok(e instanceof ApplicationFailure, String(status));
      assert.equal(e.type, WEBHOOK_UNAVAILABLE);
      assert.equal(e.nonRetryable, false, `${status} is retried`);
      assert.match(e.message, new RegExp(`^Alert webhook at ${endpoint.origin.replace(/\./g, '\\.')}: POST answered ${status} .*: busy$`));
      noSecret(e);
    }
    const throttled = await failureFor({ status: 429, headers: { 'Retry-After': '7' } });
    assert.equal((throttled as ApplicationFailure).nextRetryDelay, 7_000);

    const cases: Array<[number, string, RegExp]> = [
      [404, NonRetryable.badInput, /POST answered 404 Not Found: no hook at \[redacted\]$/],
      [400, NonRetryable.badInput, /POST answered 400 Bad Request/],
      [410, NonRetryable.badInput, /POST answered 410 Gone/],
      [401, NonRetryable.auth, /POST answered 401 Unauthorized.*; the endpoint refused the request: check ALERT_WEBHOOK_URL \(its token\)$/],
      [403, NonRetryable.auth, /POST answered 403 Forbidden/],
      [302, NonRetryable.config, /POST answered 302 Found.*; redirects are not followed: set ALERT_WEBHOOK_URL to the final address$/],
    ];
    for (const [status, type, message] of cases) {
      const before = endpoint.calls.length;
      // The endpoint echoes the URL it was called with (as some do in their errors).
      const e = await failureFor({ status, body: `no hook at ${url}`, headers: status === 302 ? { Location: `${endpoint.origin}/elsewhere` } : {} });
      assert.ok(e instanceof ApplicationFailure && e.nonRetryable, `${status} is not retried`);
      assert.equal(e.type, type, String(status));
      assert.match(e.message, message);
      noSecret(e);
      assert.equal(endpoint.calls.length, before + 1, `${status}: one request, no redirect followed`);
    }
  });

  it('network errors and timeouts are retryable failures naming only the origin', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const down = await postWebhook(`http://127.0.0.1:${port}${secretPath}`, {}).then(
      () => assert.fail('should fail'),
      (e: Error) => e,
    );
    assert.ok(!(down instanceof ApplicationFailure && down.nonRetryable), 'retryable');
    assert.equal(down.message, `Alert webhook at http://127.0.0.1:${port}: fetch failed: ECONNREFUSED`);

    const t0 = Date.now();
    const slow = await failureFor('hang', { timeoutMs: 300 });
    assert.ok(Date.now() - t0 < 5_000, 'the timeout ends the request');
    assert.ok(!(slow instanceof ApplicationFailure && slow.nonRetryable), 'retryable');
    assert.equal(slow.message, `Alert webhook at ${endpoint.origin}: no answer within 0.3 s`);
    noSecret(slow);
  });

  it('sendAlert: the body carries the run (from the activity context), the deadline and the UI link; no URL configured: nothing sent', async () => {
    const config = testConfig({ ALERT_WEBHOOK_URL: url });
    const info = { workflowExecution: { workflowId: 'daily-pipeline-p-2024-05-01', runId: 'run-1' } };
    const mock = () => new MockActivityEnvironment(info as never, { logger: new DefaultLogger('ERROR') });
    const before = endpoint.calls.length;
    const input = { kind: 'late' as const, prefix: 'unit-alert', date: '2024-05-01', deadline: '2024-05-02T06:00:00.000Z', message: 'late!' };
    assert.deepEqual(await mock().run(alertActivities(config).sendAlert, input), { delivered: true, status: 200 });
    const call = endpoint.calls.at(-1)!;
    assert.equal(endpoint.calls.length, before + 1);
    const expected: AlertBody = {
      kind: 'late',
      prefix: 'unit-alert',
      date: '2024-05-01',
      workflowId: 'daily-pipeline-p-2024-05-01',
      runId: 'run-1',
      deadline: '2024-05-02T06:00:00.000Z',
      uiUrl: `${config.temporal.uiUrl}/namespaces/${config.temporal.namespace}/workflows/daily-pipeline-p-2024-05-01/run-1/history`,
      message: 'late!',
    };
    assert.deepEqual(call.body, expected);
    assert.equal(call.headers['idempotency-key'], 'daily-pipeline-p-2024-05-01/run-1/late');

    const { deadline: _d, ...failed } = { ...input, kind: 'failed' as const };
    await mock().run(alertActivities(config).sendAlert, failed);
    assert.equal(endpoint.calls.at(-1)!.body?.deadline, null, 'a run without a deadline: null');

    const unset = testConfig({ ALERT_WEBHOOK_URL: '' });
    const n = endpoint.calls.length;
    assert.deepEqual(await mock().run(alertActivities(unset).sendAlert, input), { delivered: false });
    assert.equal(endpoint.calls.length, n, 'no call without ALERT_WEBHOOK_URL');
  });
});
