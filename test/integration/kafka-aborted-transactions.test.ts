/**
 * Aborted transactions stay invisible to read_committed readers, whatever order they were
 * aborted in.
 *
 * kafkajs 2.2.4's filterAbortedMessages assumed the broker lists a fetch's aborted
 * transactions sorted by first offset and took at most one list entry per record; the broker
 * lists them in the order they were aborted (its transaction index). So when producer A begins
 * a transaction, B begins one after it, B aborts and then A aborts, kafkajs delivered A's
 * aborted records. patches/kafkajs+2.2.4.patch (applied by patch-package on every install)
 * does what the Java client does. This file proves:
 *  - unit: the filter alone, fed messages and aborted lists in broker order (and fetches that
 *    start inside transactions), keeps exactly the records of committed transactions, the
 *    non-transactional ones and the markers, against a model of the log;
 *  - broker: two kafkajs transactional producers on one partition, aborting in the reverse
 *    order of their starts over several rounds, with committed transactions between and one
 *    producer's open transaction spanning the other's abort: kafkajs read_committed delivers
 *    exactly the records the Java client (an independent reader) delivers, by (partition,
 *    offset), and those are exactly the committed records produced - no aborted value;
 *  - landing: landingWorkflow lands such a topic as exactly the Java client's records.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Kafka } from 'kafkajs';
import { assertKafkajsPatched, createKafka, ensureTopics } from '../../adapters/kafka';
import { createS3Client } from '../../adapters/s3';
import type { LandingInput, LandingResult } from '../../common/landing';
import { ensureStack, quietRuntime, runWorkflow, testConfig, uniqueName, workflowTestEnv } from '../helpers/env';
import { javaConsume, type JavaRecord } from '../helpers/java-consumer';
import { readLanded } from '../helpers/landing';

// ---------------------------------------------------------------------------------------------
// Unit: kafkajs's filter alone (the module batch.js calls for every fetched partition).

interface FilterMessage {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  isControlRecord: boolean;
  batchContext: { producerId: string; inTransaction: boolean };
}
type AbortedTransaction = { producerId: string; firstOffset: string };
const filterAbortedMessages = createRequire(__filename)('kafkajs/src/consumer/filterAbortedMessages') as (args: {
  messages: FilterMessage[];
  abortedTransactions?: AbortedTransaction[];
}) => FilterMessage[];

const ABORT = Buffer.from([0, 0, 0, 0]); // control record key: version 0, type 0 (ABORT)
const COMMIT = Buffer.from([0, 0, 0, 1]); // type 1 (COMMIT)

interface LogEntry extends FilterMessage {
  /** What a read_committed reader must deliver (data records only). */
  visible: boolean;
}

const data = (offset: number, producerId: string, inTransaction: boolean, value: string, visible: boolean): LogEntry => ({
  offset: String(offset),
  key: Buffer.from('k'),
  value: Buffer.from(value),
  isControlRecord: false,
  batchContext: { producerId, inTransaction },
  visible,
});
const marker = (offset: number, producerId: string, type: 'abort' | 'commit'): LogEntry => ({
  offset: String(offset),
  key: type === 'abort' ? ABORT : COMMIT,
  value: Buffer.from([0, 0, 0, 0, 0, 0]),
  isControlRecord: true,
  batchContext: { producerId, inTransaction: true },
  visible: false,
});

/** The data values the filter let through (batch.js drops the control records after it). */
const delivered = (messages: FilterMessage[], aborted: AbortedTransaction[]) =>
  filterAbortedMessages({ messages, abortedTransactions: aborted })
    .filter((m) => !m.isControlRecord)
    .map((m) => m.value!.toString());

/** A deterministic PRNG (mulberry32), so a failing seed can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A random partition log of interleaved transactions of three producers (plus an idempotent
 * non-transactional one), and the aborted-transaction index the broker keeps for it: one entry
 * per aborted transaction, in the order of the abort markers.
 */
function randomLog(seed: number): { log: LogEntry[]; index: Array<AbortedTransaction & { lastOffset: number }> } {
  const rnd = prng(seed);
  const producers = ['4000', '4001', '4002'];
  const open = new Map<string, { firstOffset: number; fate: 'commit' | 'abort' }>();
  const log: LogEntry[] = [];
  const index: Array<AbortedTransaction & { lastOffset: number }> = [];
  const steps = 10 + Math.floor(rnd() * 40);
  for (let step = 0; step < steps || open.size > 0; step++) {
    const closing = step >= steps;
    if (!closing && rnd() < 0.1) {
      log.push(data(log.length, '9000', false, `plain-${log.length}`, true));
      continue;
    }
    const pid = closing ? [...open.keys()][0]! : producers[Math.floor(rnd() * producers.length)]!;
    const txn = open.get(pid);
    if (!txn) {
      const fate = rnd() < 0.5 ? 'abort' : 'commit';
      open.set(pid, { firstOffset: log.length, fate });
      for (let n = 1 + Math.floor(rnd() * 3); n > 0; n--) log.push(data(log.length, pid, true, `${fate}-${pid}-${log.length}`, fate === 'commit'));
    } else if (!closing && rnd() < 0.5) {
      for (let n = 1 + Math.floor(rnd() * 3); n > 0; n--) log.push(data(log.length, pid, true, `${txn.fate}-${pid}-${log.length}`, txn.fate === 'commit'));
    } else {
      if (txn.fate === 'abort') index.push({ producerId: pid, firstOffset: String(txn.firstOffset), lastOffset: log.length });
      log.push(marker(log.length, pid, txn.fate));
      open.delete(pid);
    }
  }
  return { log, index };
}

describe('kafkajs filterAbortedMessages (patched)', () => {
  it('the start-up check accepts the installed (patched) kafkajs; every Kafka client is made through it', () => {
    assert.doesNotThrow(() => assertKafkajsPatched());
  });

  it('a data record whose key looks like an abort marker does not end an aborted transaction', () => {
    const zeroKey = (offset: number): LogEntry => ({ ...data(offset, '100', true, `A-aborted-${offset}`, false), key: Buffer.from(ABORT) });
    const log = [data(0, '100', true, 'A-aborted-0', false), zeroKey(1), data(2, '100', true, 'A-aborted-2', false), marker(3, '100', 'abort'), data(4, '300', false, 'plain-4', true)];
    assert.deepEqual(delivered(log, [{ producerId: '100', firstOffset: '0' }]), ['plain-4']);
  });

  it('drops the records of transactions aborted in the reverse order of their starts', () => {
    // A begins (0-1), B begins (2-3), A sends again (4), B aborts (5), A aborts (6), then committed.
    const log = [
      data(0, '100', true, 'A-aborted-0', false),
      data(1, '100', true, 'A-aborted-1', false),
      data(2, '200', true, 'B-aborted-2', false),
      data(3, '200', true, 'B-aborted-3', false),
      data(4, '100', true, 'A-aborted-4', false),
      marker(5, '200', 'abort'),
      marker(6, '100', 'abort'),
      data(7, '200', true, 'B-committed-7', true),
      marker(8, '200', 'commit'),
      data(9, '100', true, 'A-committed-9', true),
      marker(10, '100', 'commit'),
    ];
    // The broker's order: B's abort was written first.
    const aborted = [
      { producerId: '200', firstOffset: '2' },
      { producerId: '100', firstOffset: '0' },
    ];
    assert.deepEqual(delivered(log, aborted), ['B-committed-7', 'A-committed-9']);
    assert.deepEqual(aborted.map((t) => t.producerId), ['200', '100'], 'the caller list is left as it was');
  });

  it('a fetch that starts inside two aborted transactions drops both producers records from its first record on', () => {
    // A's transaction started at 0, B's at 1; this fetch starts at 5 with a record of B.
    const fetched = [
      data(5, '200', true, 'B-aborted-5', false),
      data(6, '100', true, 'A-aborted-6', false),
      marker(7, '200', 'abort'),
      marker(8, '100', 'abort'),
      data(9, '300', true, 'C-committed-9', true),
      marker(10, '300', 'commit'),
    ];
    const aborted = [
      { producerId: '100', firstOffset: '0' },
      { producerId: '200', firstOffset: '1' },
    ];
    assert.deepEqual(delivered(fetched, aborted), ['C-committed-9']);
  });

  it('a producer whose transaction was aborted has its next (committed) transaction delivered, and its non-transactional records', () => {
    const log = [
      data(0, '100', true, 'A-aborted-0', false),
      marker(1, '100', 'abort'),
      data(2, '100', false, 'A-plain-2', true),
      data(3, '100', true, 'A-committed-3', true),
      marker(4, '100', 'commit'),
    ];
    assert.deepEqual(delivered(log, [{ producerId: '100', firstOffset: '0' }]), ['A-plain-2', 'A-committed-3']);
    assert.deepEqual(delivered(log.slice(2), []), ['A-plain-2', 'A-committed-3'], 'no aborted list: every data record');
  });

  it('matches a model of the log for random interleavings and fetch ranges, the aborted list in broker order', () => {
    let checked = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const { log, index } = randomLog(seed);
      const rnd = prng(seed * 7919);
      // From the log start, and fetches over random ranges (often starting inside transactions).
      const ranges: Array<[number, number]> = [[0, log.length]];
      for (let i = 0; i < 4; i++) {
        const from = Math.floor(rnd() * log.length);
        ranges.push([from, from + 1 + Math.floor(rnd() * (log.length - from))]);
      }
      for (const [from, to] of ranges) {
        const fetched = log.slice(from, to);
        // The broker returns the aborted transactions overlapping the fetched range, in index order.
        const aborted = index.filter((t) => t.lastOffset >= from && Number(t.firstOffset) < to).map(({ producerId, firstOffset }) => ({ producerId, firstOffset }));
        const expected = fetched.filter((m) => m.visible).map((m) => m.value!.toString());
        assert.deepEqual(delivered(fetched, aborted), expected, `seed ${seed}, fetch [${from}, ${to}), aborted ${JSON.stringify(aborted)}`);
        checked++;
      }
    }
    assert.equal(checked, 1500);
  });
});

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
  const config = testConfig();
  let kafka: Kafka;
  let s3: S3Client;
  let env: TestWorkflowEnvironment;

  before(async () => {
    quietRuntime();
    await ensureStack();
    kafka = createKafka(config);
    s3 = createS3Client(config);
    env = await workflowTestEnv(config);
  });
  after(async () => env?.teardown());

  it('kafkajs delivers exactly what the Java client delivers: the committed records, no aborted one', async () => {
    const topic = uniqueName('abort-order');
    const produced = await produceReverseAborts(kafka, topic, 3);
    const java = fromJava(await javaConsume(config.kafka.brokers, [topic]));
    // The checker itself: exactly the committed records, in the order they were sent.
    assert.deepEqual(java.map((r) => r.value), produced.committed, 'Java read_committed: the committed records');
    const kjs = await kafkajsReadCommitted(kafka, topic);
    const aborted = new Set(produced.aborted);
    const leaked = kjs.filter((r) => aborted.has(r.value));
    assert.equal(leaked.length, 0, `kafkajs read_committed delivered ${leaked.length} aborted records: ${leaked.map((r) => `${r.offset}:${r.value}`).join(' ')}`);
    assert.deepEqual(kjs, java, 'kafkajs and Java read_committed: same (partition, offset, value)');
  });

  it('landingWorkflow lands such a topic as exactly the Java client records', { timeout: 180_000 }, async () => {
    const prefix = uniqueName('land-abort-order');
    const topic = `${prefix}.pin`;
    const produced = await produceReverseAborts(kafka, topic, 2);
    const java = fromJava(await javaConsume(config.kafka.brokers, [topic]));
    assert.deepEqual(java.map((r) => r.value), produced.committed, 'Java read_committed: the committed records');

    const flushSize = 4;
    const { result } = await runWorkflow<LandingResult>(env, config, 'landingWorkflow', [{ prefix, mode: 'untilNow', flushSize } satisfies LandingInput]);
    const objects = (await readLanded(s3, config.s3.bucket, 'topics', [topic])).sort((x, y) => x.partition - y.partition || x.start - y.start);
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
