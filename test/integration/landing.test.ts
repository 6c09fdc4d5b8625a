import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import { ensureTopics, javaCompatiblePartitioner } from '../../adapters/kafka';
import { getText, listKeys } from '../../adapters/s3';
import type { Config } from '../../config';
import type { LandingInput, LandingResult } from '../../common/landing';
import { createWorker } from '../../workers/worker';
import { landingStatusQuery } from '../../workflows/landing';
import { rootMessage, testDatabase, TOPICS } from '../helpers/data';
import { runScript, runWorkflow, stackTestContext, testConfig, uniqueName } from '../helpers/env';
import { assertLandedExactlyOnce, produceRecords, readLanded, readManifest } from '../helpers/landing';
import { recordHistories } from '../helpers/histories';

describe('landing', () => {
  const ctx = stackTestContext();
  const { config } = ctx;

  const land = async (input: LandingInput, cfg: Config = config) => (await runWorkflow<LandingResult>(ctx.env, cfg, 'landingWorkflow', [input])).result;

  it('emulate --all then land --until-now --wait: exactly 2,019 records per topic in the sink layout', async () => {
    const { url } = await testDatabase({ sample: true });
    const prefix = uniqueName('land-sample');
    const vars = { MYSQL_URL: url, PIPELINE_PREFIX: prefix, TEMPORAL_TASK_QUEUE: uniqueName('land-cli') };
    assert.equal(runScript('emulate', ['--all', '--wait'], vars).code, 0);
    const res = runScript('land', ['--until-now', '--wait'], vars);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /done: 6057 records in \d+ objects, 0 dead letters/);
    const topics = TOPICS.map((t) => `${prefix}.${t}`);
    const { objects } = await assertLandedExactlyOnce(config.kafka.brokers, ctx.s3, config.s3.bucket, topics, 3 * 2019);
    for (const t of topics) {
      const lines = objects.filter((o) => o.topic === t).flatMap((o) => o.lines);
      assert.equal(lines.length, 2019, `${t}: 2,019 landed records`);
      assert.equal(new Set(lines.map((l) => JSON.stringify(JSON.parse(l)[t.endsWith('.pin') ? 'index' : 'ind']))).size, 2019);
    }
    for (const o of objects) assert.match(o.key, new RegExp(`^topics/${o.topic.replace('.', '\\.')}/partition=${o.partition}/${o.topic.replace('.', '\\.')}\\+${o.partition}\\+\\d{10}\\.json$`));
    // A second run finds nothing new and writes nothing.
    const again = runScript('land', ['--until-now', '--wait'], vars);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /done: 0 records in 0 objects/);
  });

  it('rotates objects at flushSize and maxObjectBytes, names them by first offset, reports them', async () => {
    const prefix = uniqueName('land-rot');
    const topic = `${prefix}.pin`;
    await produceRecords(ctx.kafka, [topic], 2500, { partitions: 1, txnSize: 700 });
    const result = await land({ prefix, mode: 'untilNow', flushSize: 1000 });
    assert.equal(result.records, 2500);
    assert.equal(result.objects, 3);
    const { objects } = await assertLandedExactlyOnce(config.kafka.brokers, ctx.s3, config.s3.bucket, [topic], 2500);
    assert.deepEqual(objects.map((o) => o.lines.length), [1000, 1000, 500]);
    const manifest = await readManifest(ctx.s3, config.s3.bucket, result.manifestKey);
    assert.deepEqual(manifest.objects.sort(), objects.map((o) => o.key).sort());
    const prefix2 = uniqueName('land-bytes');
    await produceRecords(ctx.kafka, [`${prefix2}.geo`], 300, { partitions: 1, valueBytes: 1000 });
    const bytes = await land({ prefix: prefix2, mode: 'untilNow', maxObjectBytes: 100 * 1024 });
    const sized = await readLanded(ctx.s3, config.s3.bucket, 'topics', [`${prefix2}.geo`]);
    assert.equal(bytes.records, 300);
    assert.ok(sized.length >= 3, `${sized.length} objects`);
    assert.ok(sized.every((o) => o.lines.join('\n').length <= 100 * 1024 + 1100), 'each object about maxObjectBytes at most');
  });

  it('lands a partition larger than one fetch (10 MB in one partition)', async () => {
    const prefix = uniqueName('land-big');
    const topic = `${prefix}.pin`;
    await produceRecords(ctx.kafka, [topic], 10_000, { partitions: 1, txnSize: 500, valueBytes: 1_000 });
    const result = await land({ prefix, mode: 'untilNow', flushSize: 3_000 });
    assert.equal(result.records, 10_000);
    const { objects } = await assertLandedExactlyOnce(config.kafka.brokers, ctx.s3, config.s3.bucket, [topic], 10_000);
    assert.deepEqual(objects.map((o) => o.lines.length), [3_000, 3_000, 3_000, 1_000]);
  });

  it('dead-letters values that are not a JSON object or array of objects, with raw bytes and reason', async () => {
    const prefix = uniqueName('land-dlq');
    const topic = `${prefix}.user`;
    const admin = ctx.kafka.admin();
    await admin.connect();
    await ensureTopics(admin, [{ topic, numPartitions: 1 }]);
    await admin.disconnect();
    const producer = ctx.kafka.producer({ createPartitioner: javaCompatiblePartitioner });
    await producer.connect();
    const values: Array<string | null> = ['{"ind":1}', '[{"ind":2}]', 'not json', '', null, '42', '[]', '[1,2]', '{\n  "ind": 3\n}', '"text"', '{"ind":4,"emoji":"😀"}'];
    await producer.send({ topic, messages: values.map((v, i) => ({ key: String(i), value: v })) });
    await producer.disconnect();
    const result = await land({ prefix, mode: 'untilNow' });
    assert.equal(result.records, 4);
    assert.equal(result.deadLetters, 7);
    const [obj] = await readLanded(ctx.s3, config.s3.bucket, 'topics', [topic]);
    assert.deepEqual(obj!.lines, ['{"ind":1}', '[{"ind":2}]', '{"ind":3}', '{"ind":4,"emoji":"😀"}']);
    const { deadLetterObjects } = await readManifest(ctx.s3, config.s3.bucket, result.manifestKey);
    assert.equal(result.deadLetterObjects, 1);
    assert.equal(deadLetterObjects.length, 1);
    const dead = (await getText(ctx.s3, config.s3.bucket, deadLetterObjects[0]!)).trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(dead.map((d) => d.offset), ['2', '3', '4', '5', '6', '7', '9']);
    assert.deepEqual(dead.map((d) => (d.value === null ? null : Buffer.from(d.value, 'base64').toString())), ['not json', '', null, '42', '[]', '[1,2]', '"text"']);
    assert.match(dead[0].reason, /^not JSON/);
    assert.equal(dead[1].reason, 'empty value');
    assert.equal(dead[2].reason, 'null value (tombstone)');
    assert.ok(dead.every((d) => d.topic === topic && d.partition === 0));
    assert.equal(deadLetterObjects[0], `dead-letter/${topic}/partition=0/${topic}+0+0000000000.json`);
  });

  it('an empty topic completes with zero', async () => {
    const prefix = uniqueName('land-empty');
    const admin = ctx.kafka.admin();
    await admin.connect();
    await ensureTopics(admin, [{ topic: `${prefix}.pin`, numPartitions: 3 }]);
    await admin.disconnect();
    const result = await land({ prefix, mode: 'untilNow' });
    assert.equal(result.records, 0);
    assert.equal(result.objects, 0);
    assert.equal(result.manifestKey, null);
    assert.equal(result.partitions.length, 3);
    assert.deepEqual(await listKeys(ctx.s3, config.s3.bucket, `topics/${prefix}.pin/`), []);
  });

  it('a missing bucket fails at once, non-retryable, naming the bucket', async () => {
    const prefix = uniqueName('land-nobucket');
    await produceRecords(ctx.kafka, [`${prefix}.pin`], 10, { partitions: 1 });
    const missing = uniqueName('no-such-bucket');
    const started = Date.now();
    await assert.rejects(land({ prefix, mode: 'untilNow' }, testConfig({ S3_BUCKET: missing })), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.match(rootMessage(err), new RegExp(`S3 at http://127\\.0\\.0\\.1:7070/${missing}: `));
      return true;
    });
    assert.ok(Date.now() - started < 30_000, 'not retried for minutes');
  });

  it('reads an existing Confluent-sink bucket: resumes after its objects and never overwrites them', async () => {
    const prefix = uniqueName('land-compat');
    const topic = `${prefix}.geo`;
    await produceRecords(ctx.kafka, [topic], 50, { partitions: 1, txnSize: 50 });
    // The old MSK Connect sink (flush.size=1): one object per record, values as one-element arrays.
    const records = (await import('../helpers/data')).consumeTopics(ctx.kafka, [topic], 50);
    const first20 = (await records).filter((r) => Number(r.offset) < 20);
    for (const r of first20) {
      const key = `topics/${topic}/partition=0/${topic}+0+${r.offset.padStart(10, '0')}.json`;
      await ctx.s3.send(new PutObjectCommand({ Bucket: config.s3.bucket, Key: key, Body: `[${r.value}]\n` }));
    }
    const result = await land({ prefix, mode: 'untilNow' });
    assert.equal(result.records, 30, 'lands only what the old sink had not');
    const objects = await readLanded(ctx.s3, config.s3.bucket, 'topics', [topic]);
    assert.equal(objects.length, 21);
    for (const o of objects.slice(0, 20)) assert.match(o.lines[0]!, /^\[\{/, 'old objects untouched');
    assert.equal(objects[20]!.start, 20);
    assert.equal(objects.flatMap((o) => o.lines).length, 50);
  });

  it('refuses to overwrite an object that exists with different content', async () => {
    const prefix = uniqueName('land-conflict');
    const topic = `${prefix}.pin`;
    await produceRecords(ctx.kafka, [topic], 30, { partitions: 1, txnSize: 30 });
    // Someone else's object where ours would go, but it claims to end before our range does.
    const key = `topics/${topic}/partition=0/${topic}+0+0000000000.json`;
    await ctx.s3.send(new PutObjectCommand({ Bucket: config.s3.bucket, Key: key, Body: '{"other":1}\n', Metadata: { 'pinflow-next-offset': '0' } }));
    await assert.rejects(land({ prefix, mode: 'untilNow' }), (err: unknown) => {
      assert.match(rootMessage(err), new RegExp(`s3://${config.s3.bucket}/${key.replace(/[+.]/g, '\\$&')} already exists with different content`));
      return true;
    });
    assert.equal(await getText(ctx.s3, config.s3.bucket, key), '{"other":1}\n');
  });

  it('refuses a second lander for the same prefix, naming the running one', async () => {
    const prefix = uniqueName('land-twice');
    const taskQueue = uniqueName('land-twice-nobody');
    // A follower that is "running" (no worker needed: it only has to exist).
    const running = await ctx.env.client.workflow.start('landingWorkflow', { taskQueue, workflowId: `landing-${prefix}`, args: [{ prefix, mode: 'follow' } satisfies LandingInput] });
    try {
      const res = runScript('land', ['--until-now'], { PIPELINE_PREFIX: prefix, TEMPORAL_TASK_QUEUE: taskQueue });
      assert.equal(res.code, 2, res.stdout + res.stderr);
      assert.match(res.stderr, new RegExp(`a landing workflow for prefix ${prefix} is already running \\(landing-${prefix}\\)`));
      const bad = runScript('land', ['--follow', '--until-now'], { PIPELINE_PREFIX: prefix });
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--follow or --until-now, not both/);
    } finally {
      await running.terminate('test done');
    }
  });

  it('follow mode lands new records as they arrive, reports status, and stops cleanly on cancel', async () => {
    const prefix = uniqueName('land-follow');
    const topic = `${prefix}.pin`;
    await produceRecords(ctx.kafka, [topic], 100, { partitions: 2 });
    const taskQueue = uniqueName('land-follow');
    const w = await createWorker(config, { connection: ctx.env.nativeConnection, taskQueue });
    const handle = await ctx.env.client.workflow.start('landingWorkflow', {
      taskQueue,
      workflowId: uniqueName('landing-follow'),
      args: [{ prefix, mode: 'follow', pollIntervalMs: 500, roundsPerRun: 2 } satisfies LandingInput],
    });
    await w.worker.runUntil(async () => {
      const waitFor = async (n: number) => {
        const deadline = Date.now() + 60_000;
        for (;;) {
          const s = await handle.query(landingStatusQuery);
          if (s.records >= n) return s;
          if (Date.now() > deadline) throw new Error(`only ${s.records} of ${n} landed`);
          await new Promise((r) => setTimeout(r, 300));
        }
      };
      await waitFor(100);
      await produceRecords(ctx.kafka, [topic], 150, { partitions: 2 });
      const s = await waitFor(250);
      assert.equal(s.partitions.length, 2);
      assert.ok(s.partitions.every((p) => p.lag === 0 || p.landedOffset <= p.endOffset));
      assert.ok(s.rounds >= 2);
      // Two rounds a run: the lander continues as new, carrying its status.
      for (let i = 0; (await handle.describe()).runId === handle.firstExecutionRunId; i++) {
        assert.ok(i < 100, 'continued as new after its rounds');
        await new Promise((r) => setTimeout(r, 300));
      }
      assert.ok((await handle.query(landingStatusQuery)).records >= 250, 'the status carried across continue-as-new');
      await handle.cancel();
      await assert.rejects(handle.result(), /cancelled/i);
    });
    await w.close();
    assert.equal((await handle.describe()).status.name, 'CANCELLED');
    await recordHistories(ctx.env.client, handle.workflowId, handle.firstExecutionRunId, 'landing-follow');
    await assertLandedExactlyOnce(config.kafka.brokers, ctx.s3, config.s3.bucket, [topic], 250);
  });
});
