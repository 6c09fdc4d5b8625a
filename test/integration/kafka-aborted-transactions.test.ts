/**
 * Aborted transactions stay invisible to read_committed readers, whatever order they were
 * aborted in.
 *
 * kafkajs 2.2.4's filterAbortedMessages assumed the broker lists a fetch's aborted
 * transactions sorted by first offset and took at most one list entry per record; the broker
 * lists them in the order they were aborted (its transaction index). So when producer A begins
 * a transaction, B begins one after it, B aborts and then A aborts, kafkajs delivered A's
 * aborted records. patches/kafkajs+2.2.4.patch (applied by patch-package on every install)
 * does what the Java client does (the filter alone: test/unit/kafka-aborted-transactions.test.ts).
 * This file proves:
 *  - broker: two kafkajs transactional producers on one partition, aborting in the reverse
 *    order of their starts over several rounds, with committed transactions between and one
 *    producer's open transaction spanning the other's abort: kafkajs read_committed delivers
 *    exactly the records the Java client (an independent reader) delivers, by (partition,
 *    offset), and those are exactly the committed records produced - no aborted value;
 *  - landing: landingWorkflow lands such a topic as exactly the Java client's records.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Kafka } from 'kafkajs';
import { ensureTopics } from '../../adapters/kafka';
import type { LandingInput, LandingResult } from '../../common/landing';
import { runWorkflow, stackTestContext, uniqueName } from '../helpers/env';
import { javaConsume, type JavaRecord } from '../helpers/java-consumer';
import { readLanded } from '../helpers/landing';

// ---------------------------------------------------------------------------------------------
// Broker: kafkajs against the Java client on a real partition.

interface Produced {
  /** Values of the committed records, in the order they were sent (= offset order). */
  committed: string[];
  aborted: string[];
}

/**
 * Two transactional producers on the one partition of `topic`, `rounds` times:
 *  A begins and sends, B begins and sends, A sends again, B aborts, A aborts (reverse order of
 *  their starts); then B and A each commit a transaction; then A begins a transaction that stays
 *  open while B begins, sends and aborts, and A commits it.
 */
async function produceReverseAborts(kafka: Kafka, topic: string, rounds: number): Promise<Produced> {
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, [{ topic, numPartitions: 1 }]);
  await admin.disconnect();
  const producer = async (name: string) => {
    const p = kafka.producer({ transactionalId: uniqueName(`abort-order-${name}`), idempotent: true, maxInFlightRequests: 1 });
    await p.connect();
    return p;
  };
  const a = await producer('a');
  const b = await producer('b');
  const out: Produced = { committed: [], aborted: [] };
  let n = 0;
  const values = (who: string, round: number, fate: 'committed' | 'aborted', count: number) => {
    const vs = Array.from({ length: count }, () => JSON.stringify({ ind: n++, who, round, fate }));
    out[fate].push(...vs);
    return vs.map((value) => ({ key: who, value }));
  };
  try {
    for (let round = 0; round < rounds; round++) {
      const ta = await a.transaction();
      await ta.send({ topic, messages: values('A', round, 'aborted', 2) });
      const tb = await b.transaction();
      await tb.send({ topic, messages: values('B', round, 'aborted', 2) });
      await ta.send({ topic, messages: values('A', round, 'aborted', 1) });
      await tb.abort();
      await ta.abort();

      for (const [p, who] of [[b, 'B'], [a, 'A']] as const) {
        const t = await p.transaction();
        await t.send({ topic, messages: values(who, round, 'committed', 2) });
        await t.commit();
      }

      const spanning = await a.transaction();
      await spanning.send({ topic, messages: values('A', round, 'committed', 1) });
      const inner = await b.transaction();
      await inner.send({ topic, messages: values('B', round, 'aborted', 2) });
      await inner.abort();
      await spanning.send({ topic, messages: values('A', round, 'committed', 1) });
      await spanning.commit();
    }
  } finally {
    await a.disconnect();
    await b.disconnect();
  }
  return out;
}

interface Rec {
  partition: number;
  offset: number;
  value: string;
}
const fromJava = (records: JavaRecord[]): Rec[] => records.map((r) => ({ partition: r.partition, offset: r.offset, value: r.value?.toString() ?? '<null>' }));

/** Everything kafkajs read_committed delivers from the log start up to the current end offsets. */
async function kafkajsReadCommitted(kafka: Kafka, topic: string, timeoutMs = 30_000): Promise<Rec[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
  await admin.disconnect();
  const reached = new Map([...ends.keys()].map((p) => [p, 0]));
  const out: Rec[] = [];
  const consumer = kafka.consumer({ groupId: uniqueName('abort-order-reader'), readUncommitted: false, maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    // Also fires for batches that held only markers or aborted records.
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      reached.set(e.payload.partition, Math.max(reached.get(e.payload.partition) ?? 0, Number(e.payload.lastOffset) + 1));
    });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) out.push({ partition: batch.partition, offset: Number(m.offset), value: m.value?.toString() ?? '<null>' });
      },
    });
    const deadline = Date.now() + timeoutMs;
    while ([...ends].some(([p, end]) => reached.get(p)! < end)) {
      if (Date.now() > deadline) throw new Error(`kafkajs did not reach the end offsets in ${timeoutMs} ms: ${JSON.stringify([...reached])} of ${JSON.stringify([...ends])}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await consumer.disconnect();
  }
  return out.sort((x, y) => x.partition - y.partition || x.offset - y.offset);
}

describe('read_committed with transactions aborted out of order (broker)', () => {
  const ctx = stackTestContext();
  const { config } = ctx;

  it('kafkajs delivers exactly what the Java client delivers: the committed records, no aborted one', async () => {
    const topic = uniqueName('abort-order');
    const produced = await produceReverseAborts(ctx.kafka, topic, 3);
    const java = fromJava(await javaConsume(config.kafka.brokers, [topic]));
    // The checker itself: exactly the committed records, in the order they were sent.
    assert.deepEqual(java.map((r) => r.value), produced.committed, 'Java read_committed: the committed records');
    const kjs = await kafkajsReadCommitted(ctx.kafka, topic);
    const aborted = new Set(produced.aborted);
    const leaked = kjs.filter((r) => aborted.has(r.value));
    assert.equal(leaked.length, 0, `kafkajs read_committed delivered ${leaked.length} aborted records: ${leaked.map((r) => `${r.offset}:${r.value}`).join(' ')}`);
    assert.deepEqual(kjs, java, 'kafkajs and Java read_committed: same (partition, offset, value)');
  });

  it('landingWorkflow lands such a topic as exactly the Java client records', { timeout: 180_000 }, async () => {
    const prefix = uniqueName('land-abort-order');
    const topic = `${prefix}.pin`;
    const produced = await produceReverseAborts(ctx.kafka, topic, 2);
    const java = fromJava(await javaConsume(config.kafka.brokers, [topic]));
    assert.deepEqual(java.map((r) => r.value), produced.committed, 'Java read_committed: the committed records');

    const flushSize = 4;
    const { result } = await runWorkflow<LandingResult>(ctx.env, config, 'landingWorkflow', [{ prefix, mode: 'untilNow', flushSize } satisfies LandingInput]);
    const objects = (await readLanded(ctx.s3, config.s3.bucket, 'topics', [topic])).sort((x, y) => x.partition - y.partition || x.start - y.start);
    const aborted = new Set(produced.aborted);
    const leaked = objects.flatMap((o) => o.lines).filter((l) => aborted.has(l));
    assert.equal(leaked.length, 0, `landed ${leaked.length} aborted records: ${leaked.join(' ')}`);

    // Each object's key names its first record's offset; its lines are the partition's next
    // read_committed records in offset order, the last one at the object's last offset.
    const landed: Rec[] = [];
    for (const o of objects) {
      const offsets = java.filter((r) => r.partition === o.partition && r.offset >= o.start).slice(0, o.lines.length).map((r) => r.offset);
      assert.equal(offsets.length, o.lines.length, `${o.key}: ${o.lines.length} lines, only ${offsets.length} records from offset ${o.start} on`);
      assert.equal(offsets[0], o.start, `${o.key}: starts at a record`);
      assert.equal(offsets.at(-1), o.last, `${o.key}: its last line is the record at its last offset`);
      o.lines.forEach((line, i) => landed.push({ partition: o.partition, offset: offsets[i]!, value: line }));
    }
    assert.deepEqual(landed, java, 'landed records by (partition, offset) and value = the Java client records');
    assert.equal(result.records, java.length);
    assert.equal(result.deadLetters, 0);
    assert.equal(objects.length, Math.ceil(java.length / flushSize));
  });
});
