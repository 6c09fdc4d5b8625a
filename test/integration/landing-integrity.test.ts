/**
 * Landing integrity under what real clusters hand it: values that are not valid UTF-8,
 * partitions whose records expired by retention or whose topic was deleted and recreated
 * since the bucket was last written, and runs so large that a list of their objects could not
 * travel through Temporal. Each case checks the bucket itself (keys, lines, metadata), the
 * workflow's result and status, and that nothing was lost or written twice.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { ensureTopics, javaCompatiblePartitioner } from '../../adapters/kafka';
import { getText, headMetadata } from '../../adapters/s3';
import { fetchTopicIds } from '../../adapters/kafka-topic-ids';
import type { CleaningResult } from '../../common/cleaning';
import type { LandingInput, LandingResult } from '../../common/landing';
import { NonRetryable } from '../../common/errors';
import { rootMessage } from '../helpers/data';
import { runWorkflow, stackTestContext, uniqueName } from '../helpers/env';
import { javaTopicId } from '../helpers/java-topic-id';
import { produceRecords, readLanded, readManifest } from '../helpers/landing';

describe('landing integrity', () => {
  const ctx = stackTestContext();
  const { config } = ctx;

  const land = async (input: LandingInput) => (await runWorkflow<LandingResult>(ctx.env, config, 'landingWorkflow', [input])).result;

  /** The run's failure: non-retryable, of type PinflowDataGap, its innermost message. */
  async function landFails(input: LandingInput): Promise<string> {
    let message = '';
    await assert.rejects(land(input), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      let e = err as { cause?: unknown; type?: string; nonRetryable?: boolean };
      while (e.cause) e = e.cause as typeof e;
      assert.equal(e.type, NonRetryable.dataGap);
      message = rootMessage(err);
      return true;
    });
    return message;
  }

  const values = (n: number, from = 0, tag = 'v') => Array.from({ length: n }, (_, i) => Buffer.from(JSON.stringify({ ind: from + i, tag })));

  /** Deletes `topic` and creates it again (the broker deletes asynchronously, so creation is retried). */
  async function recreateTopic(topic: string): Promise<void> {
    const admin = ctx.kafka.admin();
    await admin.connect();
    try {
      await admin.deleteTopics({ topics: [topic] });
      for (let i = 0; ; i++) {
        try {
          if (await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })) return;
        } catch (err) {
          if (i > 60) throw err;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    } finally {
      await admin.disconnect();
    }
  }

  /** Every object of the topic with its bytes, by key. */
  async function snapshot(topic: string): Promise<Map<string, string>> {
    return new Map((await readLanded(ctx.s3, config.s3.bucket, 'topics', [topic])).map((o) => [o.key, o.lines.join('\n')]));
  }

  async function produceRaw(topic: string, values: Buffer[], partitions = 1): Promise<void> {
    const admin = ctx.kafka.admin();
    await admin.connect();
    await ensureTopics(admin, [{ topic, numPartitions: partitions }]);
    await admin.disconnect();
    const producer = ctx.kafka.producer({ createPartitioner: javaCompatiblePartitioner });
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
    const [obj] = await readLanded(ctx.s3, config.s3.bucket, 'topics', [topic]);
    assert.deepEqual(obj!.lines, [row(1, 'Ann'), row(4, 'Zoë')]);
    const dead = (await getText(ctx.s3, config.s3.bucket, `dead-letter/${topic}/partition=0/${topic}+0+0000000000.json`))
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

    const cleaned = (await runWorkflow<CleaningResult>(ctx.env, config, 'batchCleaningWorkflow', [{ prefix, outputRoot: `${prefix}/` }])).result;
    assert.equal(cleaned.tables.user_clean.rows, 2);
    assert.equal(cleaned.tables.user_clean.read, 2);
  });

  it('records expired by retention before landing: the run fails naming the offsets; --accept-gaps lands on and reports the gap', async () => {
    const prefix = uniqueName('land-expired');
    const topic = `${prefix}.pin`;
    await produceRaw(topic, values(100));
    assert.equal((await land({ prefix, mode: 'untilNow' })).records, 100);
    await produceRaw(topic, values(100, 100));
    const admin = ctx.kafka.admin();
    await admin.connect();
    await admin.fetchTopicMetadata({ topics: [topic] }); // kafkajs needs it loaded to delete records
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '150' }] });
    const [offsets] = await admin.fetchTopicOffsets(topic);
    await admin.disconnect();
    assert.equal(offsets!.low, '150', 'the log now starts at 150');
    const before = await snapshot(topic);

    const message = await landFails({ prefix, mode: 'untilNow' });
    assert.match(message, new RegExp(`topic ${topic} partition 0: offsets 100 to 149 expired \\(retention\\)`));
    assert.match(message, /--accept-gaps/);
    assert.deepEqual(await snapshot(topic), before, 'nothing landed by the failed run');

    const accepted = await land({ prefix, mode: 'untilNow', acceptGaps: true });
    assert.equal(accepted.records, 50);
    assert.deepEqual(
      accepted.gaps.map((g) => [g.topic, g.partition, g.kind, g.from, g.to]),
      [[topic, 0, 'expired', 100, 150]],
    );
    const after = await readLanded(ctx.s3, config.s3.bucket, 'topics', [topic]);
    assert.deepEqual(
      after.map((o) => [o.start, o.lines.length]),
      [
        [0, 100],
        [150, 50],
      ],
    );
    assert.deepEqual(after[1]!.lines.map((l) => JSON.parse(l).ind), Array.from({ length: 50 }, (_, i) => 150 + i));
  });

  it('a transactional topic whose log expired up to its end after landing has no gap: the last object records the range end, past the commit markers', async () => {
    const prefix = uniqueName('land-txn-expired');
    const topic = `${prefix}.user`;
    await produceRecords(ctx.kafka, [topic], 100, { partitions: 1, txnSize: 50 });
    const admin = ctx.kafka.admin();
    await admin.connect();
    const [before] = await admin.fetchTopicOffsets(topic);
    assert.equal(before!.high, '102', '100 records and 2 commit markers');
    assert.equal((await land({ prefix, mode: 'untilNow', flushSize: 50 })).records, 100);
    const last = `topics/${topic}/partition=0/${topic}+0+0000000051.json`;
    assert.equal((await headMetadata(ctx.s3, config.s3.bucket, last))['pinflow-next-offset'], '102');
    await admin.fetchTopicMetadata({ topics: [topic] });
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '102' }] });
    await admin.disconnect();
    const again = await land({ prefix, mode: 'untilNow' });
    assert.equal(again.records, 0);
    assert.deepEqual(again.gaps, []);
  });

  it('a recreated topic is noticed by its topic id (also once it grew past the bucket) and by its end offset; nothing of the old topic is overwritten', async () => {
    const prefix = uniqueName('land-recreated');
    const topic = `${prefix}.geo`;
    await produceRaw(topic, values(100, 0, 'old'));
    assert.equal((await land({ prefix, mode: 'untilNow' })).records, 100);
    const oldId = (await fetchTopicIds(ctx.kafka, [topic]))[0]!.topicId;
    const firstKey = `topics/${topic}/partition=0/${topic}+0+0000000000.json`;
    assert.equal((await headMetadata(ctx.s3, config.s3.bucket, firstKey))['pinflow-topic-id'], oldId, 'objects carry the topic id');
    assert.equal(oldId, await javaTopicId(config.kafka.brokers, topic), 'the id kafkajs read is the one the Java admin client reports');
    const before = await snapshot(topic);

    // End offset below the bucket's next offset.
    await recreateTopic(topic);
    await produceRaw(topic, values(30, 0, 'new'));
    let message = await landFails({ prefix, mode: 'untilNow' });
    assert.match(message, new RegExp(`topic ${topic} partition 0 was recreated`));
    assert.match(message, /offsets 0 to 99 of the new topic are not landed/);

    // Grown past it: only the topic id tells.
    await produceRaw(topic, values(120, 30, 'new'));
    const newId = (await fetchTopicIds(ctx.kafka, [topic]))[0]!.topicId;
    assert.notEqual(newId, oldId);
    message = await landFails({ prefix, mode: 'untilNow' });
    assert.match(message, new RegExp(`its topic id is ${newId}, the bucket's objects were written from topic id ${oldId}`));
    assert.deepEqual(await snapshot(topic), before, 'nothing landed by the failed runs');

    const accepted = await land({ prefix, mode: 'untilNow', acceptGaps: true });
    assert.equal(accepted.records, 50, 'offsets 100-149 of the new topic');
    assert.deepEqual(
      accepted.gaps.map((g) => [g.kind, g.from, g.to]),
      [['recreated', 0, 100]],
    );
    const after = await snapshot(topic);
    assert.equal(after.get(firstKey), before.get(firstKey), "the old topic's object is untouched");
    const newKey = `topics/${topic}/partition=0/${topic}+0+0000000100.json`;
    assert.deepEqual(after.get(newKey)!.split('\n').map((l) => JSON.parse(l).tag), Array(50).fill('new'));
    assert.equal((await headMetadata(ctx.s3, config.s3.bucket, newKey))['pinflow-topic-id'], newId);
    // The next run lands on without a gap: the bucket's last object now names the new topic.
    await produceRaw(topic, values(10, 150, 'new'));
    const next = await land({ prefix, mode: 'untilNow' });
    assert.equal(next.records, 10);
    assert.deepEqual(next.gaps, []);
  });

  it('flushSize=1 over 50,000 records completes with every history event under 64 KB; the manifest lists every object', async () => {
    const prefix = uniqueName('land-manyobj');
    const topic = `${prefix}.user`;
    const n = Number(process.env.PINFLOW_MANY_OBJECTS ?? 50_000);
    await produceRecords(ctx.kafka, [topic], n, { partitions: 3, txnSize: 5_000, valueBytes: 80 });
    const started = Date.now();
    const { handle, result } = await runWorkflow<LandingResult>(ctx.env, config, 'landingWorkflow', [{ prefix, mode: 'untilNow', flushSize: 1 }]);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(result.records, n);
    assert.equal(result.objects, n);
    const { objects } = await readManifest(ctx.s3, config.s3.bucket, result.manifestKey);
    assert.equal(objects.length, n);
    assert.equal(new Set(objects).size, n);
    const history = await handle.fetchHistory();
    const sizes = (history.events ?? []).map((e) => temporal.api.history.v1.HistoryEvent.encode(e).finish().length);
    const largest = Math.max(...sizes);
    console.log(`# ${n} objects in ${seconds.toFixed(1)} s; ${sizes.length} history events, largest ${largest} bytes`);
    assert.ok(largest < 64 * 1024, `largest history event ${largest} bytes`);
  });
});
