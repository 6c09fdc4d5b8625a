import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Kafka } from 'kafkajs';
import { createKafka } from '../activities/kafka';
import type { Config } from '../common/config';
import type { EmulationInput, EmulationProgress } from '../common/emulation';
import { consumeTopics, mysqlRows, rootMessage, testDatabase, TOPICS } from './helpers/data';
import { ensureStack, quietRuntime, runWorkflow, testConfig, uniqueName, workflowTestEnv } from './helpers/env';
import { startRestProxy, type RestProxy } from './helpers/rest-proxy';

describe('emulation through a Kafka REST proxy', () => {
  let env: TestWorkflowEnvironment;
  let kafka: Kafka;
  let proxy: RestProxy;
  let db: Config;

  before(async () => {
    quietRuntime();
    await ensureStack();
    const c = testConfig();
    env = await workflowTestEnv(c);
    kafka = createKafka(c);
    proxy = await startRestProxy(kafka);
    db = (await testDatabase({ sample: true }, { REST_PROXY_URL: proxy.url })).config;
  });
  after(async () => {
    await proxy?.close();
    await env?.teardown();
  });

  const run = async (input: EmulationInput) => (await runWorkflow<EmulationProgress>(env, db, 'emulationWorkflow', [input])).result;

  it('posts the Confluent v2 JSON form in batches; the broker ends up with every row', async () => {
    const prefix = uniqueName('emu-rest');
    const before = proxy.requests.length;
    const result = await run({ prefix, sink: 'rest-proxy', rate: 'max', selection: { mode: 'all' }, batchSize: 1000 });
    assert.equal(result.sent, 2019);
    assert.deepEqual(proxy.rejected, []);
    const mine = proxy.requests.slice(before);
    assert.ok(mine.every((r) => r.records <= 500), 'at most 500 records per request');
    for (const t of TOPICS) assert.equal(mine.filter((r) => r.topic === `${prefix}.${t}`).reduce((n, r) => n + r.records, 0), 2019);
    const records = await consumeTopics(kafka, TOPICS.map((t) => `${prefix}.${t}`), 3 * 2019);
    const rows = await mysqlRows(db);
    for (const r of records) assert.deepEqual(JSON.parse(r.value), rows[r.topic.split('.').pop() as 'pin'].get(r.key));
    assert.equal(records.length, 3 * 2019);
  });

  it('retries a proxy 503 and fails non-retryably on a 422, naming the proxy', async () => {
    const prefix = uniqueName('emu-rest-err');
    proxy.failNext(2, 503);
    const ok = await run({ prefix, sink: 'rest-proxy', rate: 'max', selection: { mode: 'random', seed: 3 }, stop: { posts: 50 } });
    assert.ok(ok.failed >= 1, 'the 503 was retried');
    proxy.failNext(1, 422);
    await assert.rejects(run({ prefix, sink: 'rest-proxy', rate: 'max', selection: { mode: 'random', seed: 3 }, stop: { posts: 500 } }), (err: unknown) => {
      assert.match(rootMessage(err), new RegExp(`REST proxy at ${proxy.url.replace(/\./g, '\\.')}: POST /topics/${prefix}\\.pin answered 422`));
      return true;
    });
  });
});
