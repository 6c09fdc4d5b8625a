/**
 * The emulation's rest-proxy sink against a local checking proxy (test/helpers/rest-proxy.ts)
 * that forwards to the real broker: the Confluent v2 form, retries of 429 (Retry-After
 * honoured, in the activity and through Temporal's retry) and 5xx, non-retryable 401 / 403
 * naming the proxy and the settings to check, basic auth and an API Gateway style key, and no
 * credential anywhere in the failure or the run's history, even when the proxy echoes them.
 * The adapter alone against scripted servers: test/unit/rest-proxy.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import type { Config } from '../../config';
import type { EmulationInput, EmulationProgress } from '../../common/emulation';
import { consumeTopics, mysqlRows, rootMessage, testDatabase, TOPICS } from '../helpers/data';
import { runWorkflow, stackTestContext, testConfig, uniqueName } from '../helpers/env';
import { occurrences } from '../helpers/history-scan';
import { startRestProxy, type RestProxy } from '../helpers/rest-proxy';

/** The innermost failure of a workflow failure (activity failure -> application failure). */
function rootFailure(err: unknown): Error & { type?: string; nonRetryable?: boolean } {
  let e = err as { cause?: unknown };
  while (e.cause) e = e.cause as typeof e;
  return e as Error & { type?: string; nonRetryable?: boolean };
}

/** Every message and stack in an error chain, as one text. */
function chainText(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as { message?: string; stack?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) parts.push(String(e.message), String(e.stack));
  return parts.join('\n');
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('emulation through a Kafka REST proxy', () => {
  const ctx = stackTestContext();
  let proxy: RestProxy;
  let sampleDb: string;
  let db: Config;
  const proxies: RestProxy[] = [];

  before(async () => {
    proxy = await startRestProxy(ctx.kafka);
    proxies.push(proxy);
    const t = await testDatabase({ sample: true }, { REST_PROXY_URL: proxy.url });
    db = t.config;
    sampleDb = t.url;
  });
  after(async () => {
    for (const p of proxies) await p.close();
  });

  /** The sample database with these REST proxy settings. */
  const configWith = (vars: Record<string, string>) => testConfig({ MYSQL_URL: sampleDb, ...vars });
  const run = async (input: EmulationInput, config = db, during?: (h: WorkflowHandle) => Promise<void>) =>
    (await runWorkflow<EmulationProgress>(ctx.env, config, 'emulationWorkflow', [input], during)).result;
  const few = (prefix: string, posts = 20): EmulationInput => ({ prefix, sink: 'rest-proxy', rate: 'max', selection: { mode: 'random', seed: 3 }, stop: { posts } });
  const posted = (p: RestProxy, prefix: string, topic: string) => p.requests.filter((r) => r.topic === `${prefix}.${topic}`).reduce((n, r) => n + r.records, 0);

  it('posts the Confluent v2 JSON form in batches; the broker ends up with every row', async () => {
    const prefix = uniqueName('emu-rest');
    const before = proxy.requests.length;
    const result = await run({ prefix, sink: 'rest-proxy', rate: 'max', selection: { mode: 'all' }, batchSize: 1000 });
    assert.equal(result.sent, 2019);
    assert.deepEqual(proxy.rejected, []);
    const mine = proxy.requests.slice(before);
    assert.ok(mine.every((r) => r.records <= 500), 'at most 500 records per request');
    for (const t of TOPICS) assert.equal(mine.filter((r) => r.topic === `${prefix}.${t}`).reduce((n, r) => n + r.records, 0), 2019);
    const records = await consumeTopics(ctx.kafka, TOPICS.map((t) => `${prefix}.${t}`), 3 * 2019);
    const rows = await mysqlRows(db);
    for (const r of records) assert.deepEqual(JSON.parse(r.value), rows[r.topic.split('.').pop() as 'pin'].get(r.key));
    assert.equal(records.length, 3 * 2019);
  });

  it('5xx: retried in the activity with backoff, then through Temporal when it lasts; a 422 fails non-retryably, naming the proxy', async () => {
    const prefix = uniqueName('emu-rest-5xx');
    proxy.failNext(2, 503);
    const from = proxy.log.length;
    const ok = await run(few(prefix));
    assert.equal(proxy.pendingFailures(), 0, 'both 503s were served');
    assert.equal(ok.failed, 0, 'two 503s are ridden out inside the activity');
    const log = proxy.log.slice(from);
    assert.deepEqual(log.slice(0, 3).map((l) => l.status), [503, 503, 200]);
    assert.ok(log[1]!.at - log[0]!.at >= 450, `backoff before the 1st retry (${log[1]!.at - log[0]!.at} ms)`);
    assert.ok(log[2]!.at - log[1]!.at >= 950, `longer backoff before the 2nd (${log[2]!.at - log[1]!.at} ms)`);
    for (const t of TOPICS) assert.equal(posted(proxy, prefix, t), ok.sent, `${t}: every post once`);

    // Longer than the activity's own attempts: the attempt fails (retryable) and Temporal retries it.
    const prefix2 = uniqueName('emu-rest-5xx');
    proxy.failNext(4, 500);
    const again = await run(few(prefix2));
    assert.equal(proxy.pendingFailures(), 0);
    assert.ok(again.failed >= 1, 'the activity attempt failed and was retried');
    for (const t of TOPICS) assert.equal(posted(proxy, prefix2, t), again.sent);

    proxy.failNext(1, 422);
    await assert.rejects(run({ prefix, sink: 'rest-proxy', rate: 'max', selection: { mode: 'random', seed: 3 }, stop: { posts: 500 } }), (err: unknown) => {
      assert.match(rootMessage(err), new RegExp(`REST proxy at ${escape(proxy.url)}: POST /topics/${escape(prefix)}\\.pin answered 422`));
      assert.equal(rootFailure(err).type, 'PinflowBadInput');
      return true;
    });
  });

  it('429: Retry-After is waited out in the activity; a longer one becomes the delay of Temporal\'s retry', async () => {
    const prefix = uniqueName('emu-rest-429');
    proxy.failNext(2, 429, { retryAfter: '1' });
    const from = proxy.log.length;
    const ok = await run(few(prefix));
    assert.equal(ok.failed, 0);
    const log = proxy.log.slice(from);
    assert.deepEqual(log.slice(0, 3).map((l) => l.status), [429, 429, 200]);
    for (const i of [1, 2]) assert.ok(log[i]!.at - log[i - 1]!.at >= 950, `waited Retry-After: 1 (${log[i]!.at - log[i - 1]!.at} ms)`);
    for (const t of TOPICS) assert.equal(posted(proxy, prefix, t), ok.sent);

    // Retry-After: 7 is over the in-activity limit (5 s): the attempt fails at once with
    // nextRetryDelay 7 s, far beyond the retry policy's own 500 ms first interval.
    const prefix2 = uniqueName('emu-rest-429');
    proxy.failNext(1, 429, { retryAfter: '7' });
    const from2 = proxy.log.length;
    const later = await run(few(prefix2));
    assert.equal(later.failed, 1);
    const log2 = proxy.log.slice(from2);
    assert.deepEqual(log2.slice(0, 2).map((l) => l.status), [429, 200]);
    const gap = log2[1]!.at - log2[0]!.at;
    assert.ok(gap >= 6_900 && gap < 20_000, `Temporal retried after the proxy's Retry-After (${gap} ms)`);
    for (const t of TOPICS) assert.equal(posted(proxy, prefix2, t), later.sent);
  });

  describe('credentials', () => {
    const password = `Rp-Basic-Secret-${Date.now().toString(36)}`;
    const apiKey = `rp-api-key-${Date.now().toString(36)}-0123456789`;
    let basicProxy: RestProxy;
    let keyProxy: RestProxy;

    before(async () => {
      basicProxy = await startRestProxy(ctx.kafka, { basic: { username: 'pinflow-svc', password }, echoCredentials: true });
      keyProxy = await startRestProxy(ctx.kafka, { apiKey: { header: 'x-api-key', value: apiKey }, echoCredentials: true });
      proxies.push(basicProxy, keyProxy);
    });

    /** Runs an emulation expected to fail; returns the root failure and the run's history. */
    async function failingRun(config: Config, prefix: string) {
      let handle: WorkflowHandle | undefined;
      let error: unknown;
      await run(few(prefix), config, async (h) => void (handle = h)).then(
        () => assert.fail('the run should fail'),
        (e: unknown) => (error = e),
      );
      const history = await handle!.fetchHistory();
      return { error, root: rootFailure(error), history };
    }

    it('basic auth: the right pair gets through; a wrong one fails at once (401), naming the proxy and the settings, with no secret in the failure or the history', async () => {
      const prefix = uniqueName('emu-rest-basic');
      const good = await run(few(prefix), configWith({ REST_PROXY_URL: basicProxy.url, REST_PROXY_USERNAME: 'pinflow-svc', REST_PROXY_PASSWORD: password }));
      assert.ok(good.sent > 0);
      for (const t of TOPICS) assert.equal(posted(basicProxy, prefix, t), good.sent);

      const wrong = `${password}-but-wrong`;
      const started = Date.now();
      const bad = await failingRun(configWith({ REST_PROXY_URL: basicProxy.url, REST_PROXY_USERNAME: 'pinflow-svc', REST_PROXY_PASSWORD: wrong }), uniqueName('emu-rest-401'));
      assert.ok(Date.now() - started < 20_000, 'not retried');
      assert.equal(bad.root.type, 'PinflowAuthError');
      assert.equal(bad.root.nonRetryable, true);
      assert.match(bad.root.message, new RegExp(`^REST proxy at ${escape(basicProxy.url)}: POST /topics/\\S+ answered 401`));
      assert.match(bad.root.message, /check REST_PROXY_USERNAME \/ REST_PROXY_PASSWORD/);
      // The proxy echoed the Authorization header it got: redacted before it became a failure.
      assert.match(bad.root.message, /received: Basic \[redacted\]/);
      const secrets = { wrong, password, header: Buffer.from(`pinflow-svc:${wrong}`).toString('base64') };
      assert.deepEqual(occurrences(chainText(bad.error), secrets), [], 'no secret in the error chain');
      assert.deepEqual(occurrences(bad.history, secrets), [], 'no secret in the history');
      assert.ok(occurrences(bad.history, { address: basicProxy.url }).length > 0, 'the scan reads the failure (it names the proxy)');
    });

    it('an API key header (REST_PROXY_HEADERS): the right key gets through; a wrong or missing one is a 403, naming what to check, without the key', async () => {
      const prefix = uniqueName('emu-rest-key');
      const good = await run(few(prefix), configWith({ REST_PROXY_URL: keyProxy.url, REST_PROXY_HEADERS: JSON.stringify({ 'x-api-key': apiKey }) }));
      assert.ok(good.sent > 0);
      for (const t of TOPICS) assert.equal(posted(keyProxy, prefix, t), good.sent);

      const wrong = `${apiKey}-revoked`;
      const bad = await failingRun(configWith({ REST_PROXY_URL: keyProxy.url, REST_PROXY_HEADERS: JSON.stringify({ 'x-api-key': wrong }) }), uniqueName('emu-rest-403'));
      assert.equal(bad.root.type, 'PinflowAuthError');
      assert.match(bad.root.message, new RegExp(`^REST proxy at ${escape(keyProxy.url)}: POST /topics/\\S+ answered 403`));
      assert.match(bad.root.message, /check REST_PROXY_HEADERS \(x-api-key\)/);
      assert.match(bad.root.message, /received: \[redacted\]/);
      assert.deepEqual(occurrences(chainText(bad.error), { wrong, apiKey }), []);
      assert.deepEqual(occurrences(bad.history, { wrong, apiKey }), []);

      const none = await failingRun(configWith({ REST_PROXY_URL: keyProxy.url }), uniqueName('emu-rest-403'));
      assert.equal(none.root.type, 'PinflowAuthError');
      assert.match(none.root.message, /answered 403.*no credentials are configured: set REST_PROXY_USERNAME and REST_PROXY_PASSWORD \(basic auth\) or REST_PROXY_HEADERS/);
    });
  });
});
