/**
 * Emulation under faults: MySQL down at start and mid-run, the Kafka broker restarted
 * mid-run, and the worker SIGKILLed twice. After each, every planned post is on the topics
 * exactly once (read_committed, by post number).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Kafka } from 'kafkajs';
import { createKafka } from '../../adapters/kafka';
import type { Config } from '../../config';
import type { EmulationInput, EmulationProgress } from '../../common/emulation';
import { stackDown, stackUp } from '../../stack';
import { createWorker } from '../../workers/worker';
import { progressQuery } from '../../workflows/emulation';
import { assertExactlyOnce, consumeTopics, spawnWorker, testDatabase, TOPICS } from '../helpers/data';
import { ensureStack, quietRuntime, testConfig, uniqueName, workflowTestEnv } from '../helpers/env';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('emulation under faults', () => {
  let env: TestWorkflowEnvironment;
  let kafka: Kafka;
  let db: { config: Config; url: string };
  const stack = testConfig();

  before(async () => {
    quietRuntime();
    await ensureStack();
    env = await workflowTestEnv(stack);
    kafka = createKafka(stack);
    db = await testDatabase({ seedRows: 25_000 });
  });
  after(async () => {
    await stackUp(stack); // whatever a test stopped is running again
    await env?.teardown();
  });

  async function waitForProgress(handle: { query: (q: typeof progressQuery) => Promise<EmulationProgress> }, atLeast: number, timeoutMs = 120_000): Promise<EmulationProgress> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = await handle.query(progressQuery).catch(() => undefined);
      if (p && p.planned >= atLeast) return p;
      if (Date.now() > deadline) throw new Error(`no progress to ${atLeast} posts in ${timeoutMs} ms (at ${p?.planned})`);
      await sleep(200);
    }
  }

  async function startInProcess(input: EmulationInput) {
    const taskQueue = uniqueName('emu-fault');
    const w = await createWorker(db.config, { connection: env.nativeConnection, taskQueue });
    const handle = await env.client.workflow.start('emulationWorkflow', { taskQueue, workflowId: uniqueName('emulation-fault'), args: [input] });
    return { w, handle };
  }

  it('MySQL down at start: the run waits with backoff, then sends everything once', async () => {
    const prefix = uniqueName('emu-mysql-start');
    await stackDown(stack, ['mysql']);
    const { w, handle } = await startInProcess({ prefix, sink: 'kafka', rate: 'max', selection: { mode: 'random', seed: 5 }, stop: { posts: 3000 }, batchSize: 500 });
    try {
      const result = (await w.worker.runUntil(async () => {
        await sleep(6_000);
        const desc = await handle.describe();
        assert.equal(desc.status.name, 'RUNNING');
        assert.ok((desc.raw.pendingActivities?.[0]?.attempt ?? 0) >= 2, 'describeSource is being retried');
        await stackUp(stack, ['mysql']);
        return handle.result();
      })) as EmulationProgress;
      assert.equal(result.planned, 3000);
      const records = await consumeTopics(kafka, TOPICS.map((t) => `${prefix}.${t}`), 3 * result.sent);
      assertExactlyOnce(records, prefix, seqsOf(records, prefix));
      assert.equal(seqsOf(records, prefix).length, result.sent);
    } finally {
      await stackUp(stack, ['mysql']);
      await w.close();
    }
  });

  it('MySQL down mid-run: retries, resumes where it was, nothing twice', async () => {
    const prefix = uniqueName('emu-mysql-mid');
    const { w, handle } = await startInProcess({ prefix, sink: 'kafka', rate: 2000, selection: { mode: 'all' }, stop: { posts: 12_000 }, batchSize: 500 });
    try {
      const result = (await w.worker.runUntil(async () => {
        await waitForProgress(handle, 3000);
        await stackDown(stack, ['mysql']);
        const during = await handle.query(progressQuery);
        await sleep(5_000);
        assert.ok((await handle.query(progressQuery)).planned - during.planned <= 500, 'at most the in-flight batch finished while MySQL was down');
        await stackUp(stack, ['mysql']);
        return handle.result();
      })) as EmulationProgress;
      assert.equal(result.sent, 12_000);
      assert.ok(result.failed >= 1, 'failed attempts were counted');
      const records = await consumeTopics(kafka, TOPICS.map((t) => `${prefix}.${t}`), 3 * 12_000);
      assertExactlyOnce(records, prefix, range(12_000));
    } finally {
      await stackUp(stack, ['mysql']);
      await w.close();
    }
  });

  it('MySQL down in the middle of lane runs (rows read ahead of the sends): the run resumes after its committed batches, nothing twice', async () => {
    const prefix = uniqueName('emu-mysql-lanes');
    const posts = 120_000;
    const { w, handle } = await startInProcess({ prefix, sink: 'kafka', rate: 'max', selection: { mode: 'random', seed: 23 }, stop: { posts }, batchSize: 500, concurrency: 2 });
    try {
      const result = (await w.worker.runUntil(async () => {
        await waitForProgress(handle, 8_000);
        await stackDown(stack, ['mysql']);
        await sleep(4_000);
        const desc = await handle.describe();
        const pending = desc.raw.pendingActivities ?? [];
        assert.ok(pending.some((p) => p.activityType?.name === 'emitLaneRun' && (p.attempt ?? 0) >= 2), `a lane run is being retried: ${JSON.stringify(pending.map((p) => [p.activityType?.name, p.attempt, p.lastFailure?.message]))}`);
        assert.ok(pending.some((p) => /MySQL at 127\.0\.0\.1:3306/.test(p.lastFailure?.message ?? '')), 'the failure names MySQL and its address');
        await stackUp(stack, ['mysql']);
        return handle.result();
      })) as EmulationProgress;
      assert.equal(result.planned, posts);
      assert.equal(result.sent, posts, 'seeded keys cover the draw range: every planned post sent');
      assert.ok(result.failed >= 1, 'failed attempts were counted');
      const records = await consumeTopics(kafka, TOPICS.map((t) => `${prefix}.${t}`), 3 * posts, { timeoutMs: 120_000 });
      assertExactlyOnce(records, prefix, range(posts));
    } finally {
      await stackUp(stack, ['mysql']);
      await w.close();
    }
  });

  it('Kafka broker restarted mid-run: retries, continues, no loss and no duplicates', async () => {
    const prefix = uniqueName('emu-kafka');
    const { w, handle } = await startInProcess({ prefix, sink: 'kafka', rate: 2000, selection: { mode: 'random', seed: 9 }, stop: { posts: 12_000 }, batchSize: 500 });
    try {
      const result = (await w.worker.runUntil(async () => {
        await waitForProgress(handle, 3000);
        await stackDown(stack, ['kafka']);
        await sleep(3_000);
        await stackUp(stack, ['kafka']);
        return handle.result();
      })) as EmulationProgress;
      assert.equal(result.planned, 12_000);
      assert.ok(result.failed >= 1, 'failed attempts were counted');
      const records = await consumeTopics(kafka, TOPICS.map((t) => `${prefix}.${t}`), 3 * 12_000, { timeoutMs: 120_000 });
      assertExactlyOnce(records, prefix, range(12_000));
    } finally {
      await stackUp(stack, ['kafka']);
      await w.close();
    }
  });

  it('a batch bigger than the broker\'s message.max.bytes is split into several sends in one transaction', async () => {
    const prefix = uniqueName('emu-big');
    const { w, handle } = await startInProcess({ prefix, sink: 'kafka', rate: 'max', selection: { mode: 'random', seed: 11 }, stop: { posts: 8_000 }, batchSize: 8_000, concurrency: 1 });
    try {
      const result = (await w.worker.runUntil(handle.result())) as EmulationProgress;
      assert.equal(result.batches, 1);
      assert.equal(result.sent, 8_000);
      assert.equal(result.failed, 0, 'no MESSAGE_TOO_LARGE retries');
      const records = await consumeTopics(kafka, TOPICS.map((t) => `${prefix}.${t}`), 3 * 8_000);
      assertExactlyOnce(records, prefix, range(8_000));
    } finally {
      await w.close();
    }
  });

  it('worker SIGKILLed twice during a 20,000-post run: every planned post exactly once', async () => {
    const prefix = uniqueName('emu-kill');
    const taskQueue = uniqueName('emu-kill');
    const workerEnv = { MYSQL_URL: db.url, TEMPORAL_TASK_QUEUE: taskQueue, PIPELINE_PREFIX: prefix };
    let worker = spawnWorker(workerEnv);
    await worker.ready;
    const handle = await env.client.workflow.start('emulationWorkflow', {
      taskQueue,
      workflowId: uniqueName('emulation-kill'),
      args: [{ prefix, sink: 'kafka', rate: 1500, selection: { mode: 'random', seed: 42 }, stop: { posts: 20_000 }, batchSize: 500 } satisfies EmulationInput],
    });
    try {
      for (const at of [4_000, 11_000]) {
        await waitForProgress(handle, at);
        worker.child.kill('SIGKILL');
        await new Promise((r) => worker.child.once('exit', r));
        worker = spawnWorker(workerEnv);
        await worker.ready;
      }
      const result = (await handle.result()) as EmulationProgress;
      assert.equal(result.planned, 20_000);
      const records = await consumeTopics(kafka, TOPICS.map((t) => `${prefix}.${t}`), 3 * result.sent, { timeoutMs: 120_000 });
      const sentSeqs = seqsOf(records, prefix);
      assert.equal(sentSeqs.length, result.sent, 'the topics hold exactly the posts the run reports sent');
      assertExactlyOnce(records, prefix, sentSeqs);
      // Every planned post whose key exists was sent: seeded keys are 0..24999 and cover the draw range.
      assert.equal(result.skipped, 0);
      assert.deepEqual(sentSeqs, range(20_000));
    } finally {
      worker.child.kill('SIGKILL');
    }
  });
});

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Distinct post numbers on the pin topic, sorted. */
function seqsOf(records: { topic: string; headers: Record<string, string> }[], prefix: string): number[] {
  return [...new Set(records.filter((r) => r.topic === `${prefix}.pin`).map((r) => Number(r.headers['pinflow-post'])))].sort((a, b) => a - b);
}
