/**
 * kafkajs 2.2.4 is in maintenance: prove it produces and consumes against the broker version
 * the stack pins (Apache Kafka 3.9.1, a version AWS MSK offers), including the features the
 * pipeline relies on: keyed murmur2 partitioning, idempotent and transactional producers,
 * read_committed consumers, and consumer-group offset commits.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Admin, Kafka } from 'kafkajs';
import { createKafka, javaCompatiblePartitioner } from '../../adapters/kafka';
import { ensureStack, testConfig, uniqueName } from '../helpers/env';

async function consumeAll(kafka: Kafka, topic: string, expected: number, opts: { readUncommitted?: boolean } = {}) {
  const consumer = kafka.consumer({ groupId: uniqueName('kjs-test'), readUncommitted: opts.readUncommitted ?? false });
  await consumer.connect();
  const got: Array<{ partition: number; offset: string; key: string; value: string }> = [];
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let done = () => {};
    const finished = new Promise<void>((r) => (done = r));
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        got.push({ partition, offset: message.offset, key: message.key!.toString(), value: message.value!.toString() });
        if (got.length >= expected) done();
      },
    });
    await Promise.race([finished, new Promise((r) => setTimeout(r, 15_000))]);
    // Give a late (unexpected) record a moment to show up.
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    await consumer.disconnect();
  }
  return got;
}

const KAFKA_LIBS = path.join(__dirname, '..', '..', '.cache', 'kafka', 'libs');

describe('kafkajs against the pinned Apache Kafka', () => {
  const config = testConfig();
  let kafka: Kafka;
  let admin: Admin;

  before(async () => {
    await ensureStack();
    kafka = createKafka(config);
    admin = kafka.admin();
    await admin.connect();
  });
  after(async () => admin?.disconnect());

  it('the stack runs the Kafka version pinned in stack/kafka/pom.xml', async () => {
    const pom = fs.readFileSync(path.join(__dirname, '..', '..', 'stack', 'kafka', 'pom.xml'), 'utf8');
    const version = /<kafka\.version>([^<]+)</.exec(pom)![1]!;
    const log = fs.readFileSync(path.join(__dirname, '..', '..', '.data', 'logs', 'kafka.log'), 'utf8');
    assert.ok(log.includes(`Kafka version: ${version}`), `broker log reports Kafka ${version}`);
    const cluster = await admin.describeCluster();
    assert.equal(cluster.brokers.length, 1);
  });

  it('produces keyed messages idempotently and consumes every one back on the murmur2 partition', async () => {
    const topic = uniqueName('kjs.keyed');
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: javaCompatiblePartitioner });
    await producer.connect();
    const messages = Array.from({ length: 300 }, (_, i) => ({ key: String(i % 100), value: JSON.stringify({ i }) }));
    await producer.send({ topic, acks: -1, messages });
    await producer.disconnect();
    const got = await consumeAll(kafka, topic, 300);
    assert.equal(got.length, 300);
    assert.deepEqual(new Set(got.map((m) => JSON.parse(m.value).i)), new Set(messages.map((_, i) => i)));
    // One key always lands on one partition (what the landing and cleaning rely on).
    const partitionOfKey = new Map<string, number>();
    for (const m of got) {
      const p = partitionOfKey.get(m.key);
      if (p !== undefined) assert.equal(m.partition, p, `key ${m.key} on one partition`);
      partitionOfKey.set(m.key, m.partition);
    }
    assert.equal(new Set(partitionOfKey.values()).size, 3, 'keys spread over the 3 partitions');
    // Same partition as the Java client (what MSK Connect and Spark producers would pick).
    const keys = [...partitionOfKey.keys()];
    const java = execFileSync('java', ['-cp', `${KAFKA_LIBS}/*`, path.join(__dirname, '..', 'fixtures', 'JavaPartitioner.java'), '3', ...keys], { encoding: 'utf8' });
    const javaPartition = new Map(java.trim().split('\n').map((l) => [l.split(' ')[0]!, Number(l.split(' ')[1])] as const));
    for (const key of keys) assert.equal(partitionOfKey.get(key), javaPartition.get(key), `key ${key}: kafkajs vs Java partitioner`);
  });

  it('transactions: committed batches are visible to read_committed consumers, aborted ones are not', async () => {
    const topic = uniqueName('kjs.txn');
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    const producer = kafka.producer({ transactionalId: uniqueName('kjs-txn'), idempotent: true, maxInFlightRequests: 1, createPartitioner: javaCompatiblePartitioner });
    await producer.connect();
    const committed = await producer.transaction();
    await committed.send({ topic, messages: [{ key: 'a', value: 'committed-1' }, { key: 'a', value: 'committed-2' }] });
    await committed.commit();
    const aborted = await producer.transaction();
    await aborted.send({ topic, messages: [{ key: 'a', value: 'aborted' }] });
    await aborted.abort();
    await producer.disconnect();

    const readCommitted = await consumeAll(kafka, topic, 2);
    assert.deepEqual(readCommitted.map((m) => m.value), ['committed-1', 'committed-2']);
    const readUncommitted = await consumeAll(kafka, topic, 3, { readUncommitted: true });
    assert.deepEqual(readUncommitted.map((m) => m.value), ['committed-1', 'committed-2', 'aborted']);
  });

  it('commits consumer-group offsets that a new consumer of the group resumes from', async () => {
    const topic = uniqueName('kjs.group');
    const groupId = uniqueName('kjs-group');
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    const producer = kafka.producer({ createPartitioner: javaCompatiblePartitioner });
    await producer.connect();
    await producer.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ key: 'k', value: String(i) })) });
    await producer.disconnect();
    await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '7' }] });
    const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
    assert.equal(offsets[0]!.partitions[0]!.offset, '7');
    const consumer = kafka.consumer({ groupId });
    await consumer.connect();
    const values: string[] = [];
    await consumer.subscribe({ topic });
    await consumer.run({ eachMessage: async ({ message }) => void values.push(message.value!.toString()) });
    const deadline = Date.now() + 15_000;
    while (values.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await consumer.disconnect();
    assert.deepEqual(values, ['7', '8', '9']);
  });
});
