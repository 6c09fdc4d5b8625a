/**
 * Landing under faults: the worker SIGKILLed mid-run, the S3 server stopped for 30 s, the
 * Kafka broker restarted. After each, the bucket holds every record exactly once, compared
 * by (topic, partition, offset).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { listKeys } from '../../adapters/s3';
import type { LandingInput, LandingResult } from '../../common/landing';
import { stackDown, stackUp } from '../../stack';
import { createWorker } from '../../workers/worker';
import { spawnWorker } from '../helpers/data';
import { stackTestContext, uniqueName } from '../helpers/env';
import { assertLandedExactlyOnce, produceRecords } from '../helpers/landing';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const N = 20_000;

describe('landing under faults', () => {
  const ctx = stackTestContext();
  const { config } = ctx;
  after(() => stackUp(config)); // whatever a test stopped is running again

  async function objectsUnder(prefix: string): Promise<number> {
    return (await listKeys(ctx.s3, config.s3.bucket, `topics/${prefix}.`)).length;
  }

  async function waitForObjects(prefix: string, atLeast: number, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((await objectsUnder(prefix).catch(() => 0)) < atLeast) {
      if (Date.now() > deadline) throw new Error(`fewer than ${atLeast} objects after ${timeoutMs} ms`);
      await sleep(100);
    }
  }

  async function dataset(stem: string): Promise<{ prefix: string; topics: string[] }> {
    const prefix = uniqueName(stem);
    const topics = [`${prefix}.pin`, `${prefix}.geo`, `${prefix}.user`];
    await produceRecords(ctx.kafka, topics, N, { partitions: 3, txnSize: 997, valueBytes: 300 });
    return { prefix, topics };
  }

  it('worker SIGKILLed mid-run: the retry resumes from the last object, nothing lost or twice', async () => {
    const { prefix, topics } = await dataset('land-kill');
    const taskQueue = uniqueName('land-kill');
    const vars = { TEMPORAL_TASK_QUEUE: taskQueue, PIPELINE_PREFIX: prefix };
    let worker = spawnWorker(vars);
    await worker.ready;
    const handle = await ctx.env.client.workflow.start('landingWorkflow', {
      taskQueue,
      workflowId: uniqueName('landing-kill'),
      args: [{ prefix, mode: 'untilNow', flushSize: 250 } satisfies LandingInput],
    });
    try {
      await waitForObjects(prefix, 20);
      worker.child.kill('SIGKILL');
      await new Promise((r) => worker.child.once('exit', r));
      const before = await objectsUnder(prefix);
      assert.ok(before < 3 * N / 250, 'killed before the run finished');
      worker = spawnWorker(vars);
      await worker.ready;
      const result = (await handle.result()) as LandingResult;
      assert.equal(result.records, 3 * N);
      await assertLandedExactlyOnce(config.kafka.brokers, ctx.s3, config.s3.bucket, topics, 3 * N);
    } finally {
      worker.child.kill('SIGKILL');
    }
  });

  it('S3 server stopped for 30 s mid-run: retried, then completed exactly once', async () => {
    const { prefix, topics } = await dataset('land-s3');
    const taskQueue = uniqueName('land-s3');
    const w = await createWorker(config, { connection: ctx.env.nativeConnection, taskQueue });
    try {
      const handle = await ctx.env.client.workflow.start('landingWorkflow', { taskQueue, workflowId: uniqueName('landing-s3'), args: [{ prefix, mode: 'untilNow', flushSize: 250 } satisfies LandingInput] });
      const result = (await w.worker.runUntil(async () => {
        await waitForObjects(prefix, 10);
        await stackDown(config, ['s3']);
        await sleep(30_000);
        await stackUp(config, ['s3']);
        return handle.result();
      })) as LandingResult;
      assert.equal(result.records, 3 * N);
      await assertLandedExactlyOnce(config.kafka.brokers, ctx.s3, config.s3.bucket, topics, 3 * N);
    } finally {
      await stackUp(config, ['s3']);
      await w.close();
    }
  });

  it('Kafka broker restarted mid-run: retried, then completed exactly once', async () => {
    const { prefix, topics } = await dataset('land-kafka');
    const taskQueue = uniqueName('land-kafka');
    const w = await createWorker(config, { connection: ctx.env.nativeConnection, taskQueue });
    try {
      const handle = await ctx.env.client.workflow.start('landingWorkflow', { taskQueue, workflowId: uniqueName('landing-kafka'), args: [{ prefix, mode: 'untilNow', flushSize: 250 } satisfies LandingInput] });
      const result = (await w.worker.runUntil(async () => {
        await waitForObjects(prefix, 10);
        await stackDown(config, ['kafka']);
        await sleep(3_000);
        await stackUp(config, ['kafka']);
        return handle.result();
      })) as LandingResult;
      assert.equal(result.records, 3 * N);
      await assertLandedExactlyOnce(config.kafka.brokers, ctx.s3, config.s3.bucket, topics, 3 * N);
    } finally {
      await stackUp(config, ['kafka']);
      await w.close();
    }
  });
});
