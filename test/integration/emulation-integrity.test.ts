/**
 * Emulation integrity beyond crashes: a Kafka transaction slower than the batch's heartbeat
 * timeout is not taken for a dead worker (no retry fencing a healthy attempt, forever), and
 * two emulations started in the same instant each deliver all their posts exactly once (their
 * transactional ids and progress markers are their own); an id used before is refused.
 * Checked by reading the topics back (read_committed) by the records' run and post headers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Kafka, Producer, Transaction } from 'kafkajs';
import { createKafka } from '../../adapters/kafka';
import type { Config } from '../../config';
import type { EmulationInput, EmulationProgress } from '../../common/emulation';
import { runEmulate } from '../../scripts/emulate';
import { UsageError } from '../../cli/command';
import { createWorker } from '../../workers/worker';
import { assertExactlyOnce, consumeTopics, testDatabase, TOPICS } from '../helpers/data';
import { backgroundWorker, ensureStack, quietRuntime, testConfig, uniqueName, workflowTestEnv } from '../helpers/env';

/** Every transactional send of this client waits `delayMs` first: a broker slower than the heartbeat timeout. */
function slowTransactions(delayMs: number): (config: Config) => Kafka {
  return (config) => {
    const kafka = createKafka(config);
    const producer = kafka.producer.bind(kafka);
    kafka.producer = (cfg) => {
      const p: Producer = producer(cfg);
      const transaction = p.transaction.bind(p);
      p.transaction = async (): Promise<Transaction> => {
        const txn = await transaction();
        const sendBatch = txn.sendBatch.bind(txn);
        txn.sendBatch = async (batch) => {
          await new Promise((r) => setTimeout(r, delayMs));
          return sendBatch(batch);
        };
        return txn;
      };
      return p;
    };
    return kafka;
  };
}

describe('emulation integrity', () => {
  let env: TestWorkflowEnvironment;
  let kafka: Kafka;

  before(async () => {
    quietRuntime();
    await ensureStack();
    env = await workflowTestEnv(testConfig());
    kafka = createKafka(testConfig());
  });
  after(async () => env?.teardown());

  it('a send slower than the heartbeat timeout (12 s > 10 s) completes on its first attempt, every post once', async () => {
    const { config } = await testDatabase({ seedRows: 60 });
    const prefix = uniqueName('emu-slow');
    const taskQueue = uniqueName('tq-slow');
    const w = await createWorker(config, { connection: env.nativeConnection, taskQueue, deps: { createKafka: slowTransactions(12_000) } });
    const input: EmulationInput = { prefix, sink: 'kafka', rate: 'max', selection: { mode: 'all' }, batchSize: 60 };
    const handle = await env.client.workflow.start('emulationWorkflow', { taskQueue, workflowId: uniqueName('emu-slow'), args: [input] });
    const result = await w.worker.runUntil(async () => {
      const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('emulation did not finish within 60 s: each attempt was fenced by its retry')), 60_000));
      return Promise.race([handle.result() as Promise<EmulationProgress>, timeout]);
    });
    await w.close();
    assert.equal(result.sent, 60);
    assert.equal(result.failed, 0, 'no attempt was retried');
    const records = await consumeTopics(kafka, TOPICS.map((t) => `${prefix}.${t}`), 180);
    assertExactlyOnce(records, prefix, Array.from({ length: 60 }, (_, i) => i));
  });

  it('two emulations started in the same instant both deliver all their posts; an id used before is refused', async () => {
    const { config: dbConfig } = await testDatabase({ sample: true });
    const prefix = uniqueName('emu-twice');
    const config = testConfig({ MYSQL_URL: dbConfig.mysql.url, PIPELINE_PREFIX: prefix, TEMPORAL_TASK_QUEUE: uniqueName('tq-twice') });
    const worker = await backgroundWorker(env, config);
    try {
      const input: EmulationInput = { prefix, sink: 'kafka', rate: 'max', selection: { mode: 'all' } };
      const quiet = () => {};
      const [a, b] = await Promise.all([runEmulate(config, { input, wait: true }, quiet), runEmulate(config, { input, wait: true }, quiet)]);
      assert.notEqual(a.workflowId, b.workflowId);
      assert.equal(a.result!.sent, 2019);
      assert.equal(b.result!.sent, 2019);
      const records = await consumeTopics(kafka, TOPICS.map((t) => `${prefix}.${t}`), 2 * 3 * 2019);
      assert.equal(records.length, 2 * 3 * 2019);
      const all = Array.from({ length: 2019 }, (_, i) => i);
      for (const id of [a.workflowId, b.workflowId]) assertExactlyOnce(records.filter((r) => r.headers['pinflow-run'] === id), prefix, all);

      // Reusing a finished emulation's id is refused before anything is sent.
      await assert.rejects(runEmulate(config, { input, wait: true, id: a.workflowId }, quiet), (err: unknown) => {
        assert.ok(err instanceof UsageError);
        assert.match(err.message, new RegExp(`an emulation with this id already exists \\(${a.workflowId}, running or finished\\); emulation ids are used once`));
        return true;
      });
      const again = await consumeTopics(kafka, TOPICS.map((t) => `${prefix}.${t}`), 2 * 3 * 2019, { idleMs: 1_000 });
      assert.equal(again.length, 2 * 3 * 2019, 'nothing more was sent');

      // The API allows reusing a closed id: the new execution has progress markers of its own,
      // so it sends every post again instead of reporting the first execution's as its own.
      const reused = await env.client.workflow.start('emulationWorkflow', { taskQueue: config.temporal.taskQueue, workflowId: a.workflowId, args: [input] });
      const r = (await reused.result()) as EmulationProgress;
      assert.equal(r.sent, 2019);
      const third = await consumeTopics(kafka, TOPICS.map((t) => `${prefix}.${t}`), 3 * 3 * 2019);
      assert.equal(third.length, 3 * 3 * 2019, 'the reused id sent its 2,019 posts');
    } finally {
      await worker.stop();
    }
  });
});
