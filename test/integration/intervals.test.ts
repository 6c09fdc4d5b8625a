/**
 * Data intervals (common/interval.ts) through dailyPipelineWorkflow on the stack's Temporal dev
 * server, with a worker of the test's own, Kafka and S3:
 *
 * - records with explicit Kafka timestamps on three past dates D1 < D2 < D3 (a date with no
 *   records between D2 and D3; 2 partitions per topic; keys repeated on later dates), then the
 *   pipeline for D3, D1, D2 and D1 again: the manifests of D1, D2 and D3 are stored by D3's run
 *   with the offsets the records themselves give (read back with the Java client: an
 *   independent reader); every landed object lies within one interval; every record is landed
 *   exactly once; the reruns reuse the manifests and land nothing;
 * - records produced afterwards with D1's timestamps: D1's rerun keeps its manifest and lands
 *   nothing; they belong to the date after D3 (its own run lands them);
 * - today's interval is partial and not stored; a future date is refused;
 * - `npm run land` (no date) closes objects at the date boundaries too, tomorrow's included
 *   (a record stamped after midnight by a fast producer clock);
 * - `npm run schedule -- backfill` up to today: one run per date, today's marked partial;
 * - a date before the retained log (records deleted below it) is refused with a data gap and
 *   nothing is stored; the dates Kafka can tell are resolved.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment, type TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Kafka } from 'kafkajs';
import { createKafka, ensureTopics, kafkaAdapter } from '../../adapters/kafka';
import { createS3Client, getText, listKeys, s3Adapter } from '../../adapters/s3';
import { intervalActivities } from '../../activities/intervals';
import type { DailyPipelineInput, DailyPipelineResult } from '../../common/daily';
import { NonRetryable } from '../../common/errors';
import { dailyWorkflowId } from '../../common/ids';
import { addDays, intervalManifestDir, intervalManifestKey, type IntervalManifest } from '../../common/interval';
import type { LandingResult } from '../../common/landing';
import { backgroundWorker, ensureStack, quietRuntime, runScript, runScriptAsync, runWorkflow, testConfig, uniqueName, workflowTestEnv } from '../helpers/env';
import { assertLandedExactlyOnce, readLanded, type LandedObject } from '../helpers/landing';
import { javaConsume, type JavaRecord } from '../helpers/java-consumer';

const today = new Date().toISOString().slice(0, 10);
const day = (offset: number) => addDays(today, offset);
const at = (date: string, hhmmss: string) => Date.parse(`${date}T${hhmmss}Z`);

interface Dated {
  topic: string;
  partition: number;
  /** The record's date as the test meant it (in its value, so a reader of the topic can tell). */
  date: string;
  timestamp: number;
  key: number;
}

const valueOf = (r: Dated, seq: number) =>
  r.topic.endsWith('.pin')
    ? { index: r.key, unique_id: `${r.date}#${seq}`, title: `pin ${r.key}`, description: `made ${r.date}`, poster_name: 'p', follower_count: '12k', tag_list: 'a,b', is_image_or_video: 'image', image_src: 'http://x/y.png', downloaded: 1, save_location: 'Local save in /data/art', category: 'art' }
    : { ind: r.key, timestamp: `${r.date} 10:00:${String(seq % 60).padStart(2, '0')}`, latitude: 10.5, longitude: -20.25, country: 'Chile' };

/** The date a record was produced for, read from its value. */
const dateInValue = (value: Buffer) => {
  const v = JSON.parse(value.toString('utf8')) as { unique_id?: string; timestamp?: string };
  return (v.unique_id ?? v.timestamp)!.slice(0, 10);
};

/** Produces records with explicit Kafka timestamps (idempotent, not transactional: no commit markers stamped "now"). */
async function produceDated(kafka: Kafka, records: Dated[]): Promise<void> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    let seq = 0;
    for (const r of records) {
      await producer.send({ topic: r.topic, acks: -1, messages: [{ key: String(r.key), value: JSON.stringify(valueOf(r, seq++)), partition: r.partition, timestamp: String(r.timestamp) }] });
    }
  } finally {
    await producer.disconnect();
  }
}

/** For each topic and partition, `n` records per date, keys from `firstKey` (so later dates can repeat keys). */
function recordsOf(topics: string[], date: string, n: number, firstKey: number): Dated[] {
  const out: Dated[] = [];
  for (let i = 0; i < n; i++) {
    for (const topic of topics) for (const partition of [0, 1]) out.push({ topic, partition, date, timestamp: at(date, '10:00:00') + i * 60_000, key: firstKey + i });
  }
  return out;
}

/**
 * What the records say an interval is: per partition, start = the first offset of a record of
 * this date or later, end = the first offset of a record of a later date (the end of the log
 * when there is none).
 */
function expectedRanges(records: JavaRecord[], date: string, endOfLog: Map<string, number>): Map<string, { start: number; end: number }> {
  const out = new Map<string, { start: number; end: number }>();
  for (const [tp, high] of endOfLog) {
    const recs = records.filter((r) => `${r.topic}/${r.partition}` === tp).sort((a, b) => a.offset - b.offset);
    const first = (pred: (d: string) => boolean) => recs.find((r) => pred(dateInValue(r.value!)))?.offset ?? high;
    out.set(tp, { start: first((d) => d >= date), end: first((d) => d > date) });
  }
  return out;
}

async function storedManifest(s3: S3Client, bucket: string, prefix: string, date: string): Promise<{ text: string; manifest: IntervalManifest } | null> {
  const keys = await listKeys(s3, bucket, intervalManifestKey(prefix, date));
  if (!keys.includes(intervalManifestKey(prefix, date))) return null;
  const text = await getText(s3, bucket, intervalManifestKey(prefix, date));
  return { text, manifest: JSON.parse(text) as IntervalManifest };
}

/** The interval holding `offset` in a partition, among `manifests`. */
function intervalOf(manifests: IntervalManifest[], o: { topic: string; partition: number }, offset: number) {
  for (const m of manifests) {
    const r = m.ranges.find((x) => x.topic === o.topic && x.partition === o.partition && offset >= x.start && offset < x.end);
    if (r) return { date: m.date, ...r };
  }
  return undefined;
}

function assertAligned(objects: LandedObject[], manifests: IntervalManifest[]) {
  for (const o of objects) {
    const home = intervalOf(manifests, o, o.start);
    assert.ok(home, `${o.key}: its first offset ${o.start} lies in no interval of ${manifests.map((m) => m.date).join(', ')}`);
    assert.ok(o.last < home.end, `${o.key}: records ${o.start}..${o.last} straddle the end ${home.end} of ${home.date}'s interval`);
  }
}

describe('data intervals', () => {
  const taskQueue = uniqueName('tq-intervals');
  const prefix = uniqueName('intervals');
  const vars = { PIPELINE_PREFIX: prefix, TEMPORAL_TASK_QUEUE: taskQueue };
  const config = testConfig(vars);
  // A worker of the file's own runs the pipelines (stopped before the environment is torn down).
  const ctx = {} as { env: TestWorkflowEnvironment; kafka: Kafka; s3: S3Client };
  const topics = [`${prefix}.pin`, `${prefix}.geo`];
  const bucket = config.s3.bucket;
  let worker: { stop: () => Promise<void> } | undefined;
  let produced = 0;
  const [d1, d2, d3] = [day(-9), day(-8), day(-6)];
  const d4 = addDays(d3, 1);

  before(async () => {
    quietRuntime();
    await ensureStack(config);
    ctx.env = await workflowTestEnv(config);
    ctx.kafka = createKafka(config);
    ctx.s3 = createS3Client(config);
    worker = await backgroundWorker(ctx.env, config);
    const admin = ctx.kafka.admin();
    await admin.connect();
    await ensureTopics(admin, topics.map((topic) => ({ topic, numPartitions: 2 })));
    await admin.disconnect();
  });
  after(async () => {
    runScript('schedule', ['delete'], vars);
    await worker?.stop();
    ctx.s3?.destroy();
    await ctx.env?.teardown();
  });

  const pipeline = (client: Client, date: string) => {
    const input: DailyPipelineInput = { prefix, date, outputRoot: `${prefix}/` };
    return client.workflow.execute('dailyPipelineWorkflow', { taskQueue, workflowId: dailyWorkflowId(prefix, date), args: [input] }) as Promise<DailyPipelineResult>;
  };
  const endsOfLog = async () => {
    const admin = ctx.kafka.admin();
    await admin.connect();
    try {
      const out = new Map<string, number>();
      for (const topic of topics) for (const o of await admin.fetchTopicOffsets(topic)) out.set(`${topic}/${o.partition}`, Number(o.high));
      return out;
    } finally {
      await admin.disconnect();
    }
  };
  const manifestOf = async (date: string) => {
    const m = await storedManifest(ctx.s3, bucket, prefix, date);
    assert.ok(m, `the manifest of ${date} is stored`);
    return m;
  };
  const assertRanges = (m: IntervalManifest, expected: Map<string, { start: number; end: number }>) => {
    assert.deepEqual(
      new Map(m.ranges.map((r) => [`${r.topic}/${r.partition}`, { start: r.start, end: r.end }])),
      expected,
      `${m.date}: the manifest's offsets are the records' (Java client)`,
    );
  };

  it('D3, then D1 and D2: stored manifests with the records offsets, aligned objects, each record landed once', async () => {
    // D1: keys 0-3, D2: keys 2-5 (2, 3 again), D3: keys 4-7 (4, 5 again).
    const records = [...recordsOf(topics, d1, 4, 0), ...recordsOf(topics, d2, 4, 2), ...recordsOf(topics, d3, 4, 4)];
    await produceDated(ctx.kafka, records);
    produced += records.length;

    const third = await pipeline(ctx.env.client, d3);
    const java = await javaConsume(config.kafka.brokers, topics);
    assert.equal(java.length, produced);
    const ends = await endsOfLog();
    const [m1, m2, m3] = await Promise.all([d1, d2, d3].map(manifestOf));
    assertRanges(m1!.manifest, expectedRanges(java, d1, ends));
    assertRanges(m2!.manifest, expectedRanges(java, d2, ends));
    assertRanges(m3!.manifest, expectedRanges(java, d3, ends));
    assert.ok(m1!.manifest.ranges.every((r) => r.end - r.start === 4) && m3!.manifest.ranges.every((r) => r.end - r.start === 4), 'four records per partition and date');
    assert.equal(await storedManifest(ctx.s3, bucket, prefix, addDays(d3, -1)), null, 'the date without records between D2 and D3 is not stored');
    for (const m of [m1!, m2!, m3!]) assert.equal(m.manifest.partial, false);
    assert.deepEqual(third.interval, { records: 16, partial: false, manifestKey: intervalManifestKey(prefix, d3) });
    assert.equal(third.landing.records, produced, 'D3 lands everything up to its end, D1 and D2 included');

    const { objects } = await assertLandedExactlyOnce(config.kafka.brokers, ctx.s3, bucket, topics, produced);
    assertAligned(objects, [m1!.manifest, m2!.manifest, m3!.manifest]);
    assert.equal(objects.length, 3 * 4, 'one object per date and partition (the default flush size holds a date)');

    const first = await pipeline(ctx.env.client, d1);
    assert.deepEqual(first.interval, { records: 16, partial: false, manifestKey: intervalManifestKey(prefix, d1) });
    assert.equal(first.landing.records, 0, "D1's objects were landed by D3's run: reused, not rewritten");
    const second = await runScriptAsync('pipeline', ['--date', d2, '--wait', '--output-root', `${prefix}/`], vars);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /done daily-pipeline-\S+: landed 0 records in 0 objects/);
    assert.match(second.stdout, new RegExp(`interval ${d2}: 16 offsets \\(manifest s3://${bucket}/manifests/${prefix}/date=${d2}\\.json\\)`));
    for (const [date, m] of [[d1, m1!], [d2, m2!], [d3, m3!]] as const) assert.equal((await manifestOf(date)).text, m.text, `${date}: its manifest is written once`);
    assert.deepEqual((await readLanded(ctx.s3, bucket, 'topics', topics)).map((o) => o.key), objects.map((o) => o.key), 'no object written since');
  });

  it("records produced later with D1's timestamps do not change D1: they belong to the date after D3", async () => {
    const before1 = await manifestOf(d1);
    const late = recordsOf(topics, d1, 2, 100).map((r) => ({ ...r, timestamp: r.timestamp + 3_600_000 }));
    await produceDated(ctx.kafka, late);
    produced += late.length;

    const rerun = await pipeline(ctx.env.client, d1);
    assert.equal((await manifestOf(d1)).text, before1.text, "D1's manifest is reused, not resolved again");
    assert.equal(rerun.interval?.records, 16);
    assert.equal(rerun.landing.records, 0, 'nothing of D1 is left to land');

    const next = await pipeline(ctx.env.client, d4);
    const m4 = (await manifestOf(d4)).manifest;
    const m3 = (await manifestOf(d3)).manifest;
    const ends = await endsOfLog();
    for (const r of m4.ranges) {
      assert.equal(r.start, m3.ranges.find((x) => x.topic === r.topic && x.partition === r.partition)!.end, `${r.topic}/${r.partition}: ${d4} starts where ${d3} ends`);
      assert.equal(r.end, ends.get(`${r.topic}/${r.partition}`), `${r.topic}/${r.partition}: ${d4} ends at the end of the log (no record of a later date)`);
    }
    assert.deepEqual(next.interval, { records: late.length, partial: false, manifestKey: intervalManifestKey(prefix, d4) });
    assert.equal(next.landing.records, late.length, 'the late records are landed by the run of the date after D3');
    const manifests = await Promise.all([d1, d2, d3, d4].map(async (d) => (await manifestOf(d)).manifest));
    const { objects } = await assertLandedExactlyOnce(config.kafka.brokers, ctx.s3, bucket, topics, produced);
    assertAligned(objects, manifests);
  });

  it('today is partial and not stored; a future date is refused', async () => {
    const now = recordsOf(topics, today, 1, 200).map((r) => ({ ...r, timestamp: Date.now() }));
    await produceDated(ctx.kafka, now);
    produced += now.length;
    const piped = await runScriptAsync('pipeline', ['--wait', '--output-root', `${prefix}/`], vars);
    assert.equal(piped.code, 0, piped.stderr);
    assert.match(piped.stdout, new RegExp(`interval ${today}: ${now.length} offsets \\(partial: ${today} is not over, the run covered the records up to the moment it resolved the interval; not stored\\)`));
    const result = (await ctx.env.client.workflow.getHandle(dailyWorkflowId(prefix, today)).result()) as DailyPipelineResult;
    assert.deepEqual(result.interval, { records: now.length, partial: true, manifestKey: null });
    assert.equal(result.landing.records, now.length);
    assert.equal(await storedManifest(ctx.s3, bucket, prefix, today), null, "today's manifest is not stored");
    await assertLandedExactlyOnce(config.kafka.brokers, ctx.s3, bucket, topics, produced);

    const future = day(1);
    await assert.rejects(pipeline(ctx.env.client, future), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure, String(err));
      assert.equal(err.cause.type, NonRetryable.badInput);
      assert.match(err.cause.message, new RegExp(`date ${future} is in the future \\(today is ${today} UTC\\)`));
      return true;
    });
    const s3 = s3Adapter(config);
    const kafka = kafkaAdapter(config);
    try {
      const refused = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') }).run(intervalActivities(kafka, s3).resolveInterval, { prefix, date: future });
      await assert.rejects(refused, (err: unknown) => err instanceof ApplicationFailure && err.type === NonRetryable.badInput && /is in the future/.test(err.message));
    } finally {
      await Promise.all([kafka.close(), s3.close()]);
    }
    assert.deepEqual(
      (await listKeys(ctx.s3, bucket, intervalManifestDir(prefix))).sort(),
      [d1, d2, d3, d4].map((d) => intervalManifestKey(prefix, d)),
      'stored: the closed dates that had records, nothing for today or the future',
    );
  });

  it('npm run schedule -- backfill up to today: one run per date in order, today marked partial', async () => {
    const created = runScript('schedule', ['create', '--output-root', `${prefix}/`], vars);
    assert.equal(created.code, 0, created.stderr);
    const started = new Date(Date.now() - 1_000);
    const res = runScript('schedule', ['backfill', '--from', day(-1), '--to', today], vars);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, new RegExp(`${today} is not over: its run covers its interval up to the moment it starts \\(partial in its result`));
    const results = new Map<string, { result: DailyPipelineResult; start: Date; close: Date }>();
    const deadline = Date.now() + 240_000;
    while (results.size < 2 && Date.now() < deadline) {
      for (const date of [day(-1), today]) {
        if (results.has(date)) continue;
        const q = `WorkflowId = '${dailyWorkflowId(prefix, date)}' AND ExecutionStatus = 'Completed' AND StartTime > '${started.toISOString()}'`;
        for await (const w of ctx.env.client.workflow.list({ query: q })) {
          results.set(date, { result: (await ctx.env.client.workflow.getHandle(w.workflowId, w.runId).result()) as DailyPipelineResult, start: w.startTime, close: w.closeTime! });
        }
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(results.size, 2, `two backfilled runs: ${[...results.keys()].join(', ')}`);
    const yesterday = results.get(day(-1))!;
    const ofToday = results.get(today)!;
    assert.ok(yesterday.close <= ofToday.start, 'in date order, one after the other');
    assert.deepEqual(yesterday.result.interval, { records: 0, partial: false, manifestKey: intervalManifestKey(prefix, day(-1)) });
    assert.equal(ofToday.result.interval?.partial, true);
    assert.equal(ofToday.result.interval?.manifestKey, null);
    const future = runScript('schedule', ['backfill', '--from', today, '--to', day(1)], vars);
    assert.equal(future.code, 2);
    assert.match(future.stderr, new RegExp(`--to: date ${day(1)} is in the future`));
  });

  it('a date before the retained log is refused with a data gap, run or activity, and nothing is stored; dates Kafka can tell resolve', async () => {
    const gone = uniqueName('intervals-gone');
    const topic = `${gone}.pin`;
    const admin = ctx.kafka.admin();
    await admin.connect();
    try {
      await ensureTopics(admin, [{ topic, numPartitions: 1 }]);
      // Offsets 0-2 of day -20, 3-5 of day -10, 6-8 of day -4; then 0-2 deleted: the log starts at 3.
      const one = (date: string, first: number) => recordsOf([topic], date, 3, first).filter((r) => r.partition === 0);
      await produceDated(ctx.kafka, [...one(day(-20), 0), ...one(day(-10), 3), ...one(day(-4), 6)]);
      await admin.fetchTopicMetadata({ topics: [topic] }); // kafkajs needs it loaded to delete records
      await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '3' }] });
      const [offsets] = await admin.fetchTopicOffsets(topic);
      assert.deepEqual([offsets!.low, offsets!.high], ['3', '9'], 'the log starts at 3');
    } finally {
      await admin.disconnect();
    }

    const isGap = (date: string) => (err: unknown) => {
      let e: unknown = err;
      while (e && !(e instanceof ApplicationFailure) && (e as Error).cause) e = (e as Error).cause;
      assert.ok(e instanceof ApplicationFailure, String(err));
      assert.equal(e.type, NonRetryable.dataGap);
      assert.match(e.message, new RegExp(`cannot resolve the interval of ${date} from Kafka: ${topic} partition 0 starts at offset 3 \\(the records before it are gone`));
      assert.match(e.message, /npm run clean/);
      return true;
    };
    const input = (date: string): DailyPipelineInput => ({ prefix: gone, date, outputRoot: `${gone}/` });
    await assert.rejects(ctx.env.client.workflow.execute('dailyPipelineWorkflow', { taskQueue, workflowId: dailyWorkflowId(gone, day(-20)), args: [input(day(-20))] }), isGap(day(-20)));
    const s3 = s3Adapter(config);
    const kafka = kafkaAdapter(config);
    try {
      const resolve = (date: string) => new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') }).run(intervalActivities(kafka, s3).resolveInterval, { prefix: gone, date }) as Promise<{ manifest: IntervalManifest; stored: string[] }>;
      await assert.rejects(resolve(day(-10)), isGap(day(-10)));
      assert.deepEqual(await listKeys(ctx.s3, bucket, intervalManifestDir(gone)), [], 'nothing stored by the refused dates');
      const after = await resolve(day(-9));
      assert.deepEqual(after.manifest.ranges.map((r) => [r.start, r.end]), [[6, 6]], 'day -9: no record, starts and ends at the first record of day -4');
      assert.deepEqual(after.stored, [day(-9)], 'day -10, whose start is gone, is not stored with it');
      const last = await resolve(day(-4));
      assert.deepEqual(last.manifest.ranges.map((r) => [r.start, r.end]), [[6, 9]]);
    } finally {
      await Promise.all([kafka.close(), s3.close()]);
    }
    assert.deepEqual(await listKeys(ctx.s3, bucket, intervalManifestDir(gone)), [day(-9), day(-4)].map((d) => intervalManifestKey(gone, d)));
  });

  it("npm run land closes an object at tomorrow's boundary: records stamped after midnight by a fast clock", async () => {
    const skew = uniqueName('intervals-skew');
    const topic = `${skew}.pin`;
    const admin = ctx.kafka.admin();
    await admin.connect();
    await ensureTopics(admin, [{ topic, numPartitions: 1 }]);
    await admin.disconnect();
    const now = Date.now();
    const rec = (timestamp: number, key: number): Dated => ({ topic, partition: 0, date: today, timestamp, key });
    // Offsets 0-1 of today, 2 stamped tomorrow 00:00:05, 3-4 of today again (appended after it: tomorrow's interval).
    await produceDated(ctx.kafka, [rec(Math.min(at(today, '00:00:01'), now), 0), rec(Math.min(at(today, '00:00:02'), now), 1), rec(at(day(1), '00:00:05'), 2), rec(now, 3), rec(now, 4)]);
    const { result } = await runWorkflow<LandingResult>(ctx.env, config, 'landingWorkflow', [{ prefix: skew, mode: 'untilNow' }]);
    assert.equal(result.records, 5);
    const { objects } = await assertLandedExactlyOnce(config.kafka.brokers, ctx.s3, bucket, [topic], 5);
    assert.deepEqual(objects.map((o) => [o.start, o.last]), [[0, 1], [2, 4]], "one object up to tomorrow's first record, one from it");
  });

  it('npm run land (no date) closes objects at the date boundaries too', async () => {
    const other = uniqueName('intervals-land');
    const otherTopic = `${other}.pin`;
    const admin = ctx.kafka.admin();
    await admin.connect();
    await ensureTopics(admin, [{ topic: otherTopic, numPartitions: 2 }]);
    await admin.disconnect();
    const records = [...recordsOf([otherTopic], day(-3), 3, 0), ...recordsOf([otherTopic], day(-2), 3, 0), ...recordsOf([otherTopic], today, 3, 0).map((r) => ({ ...r, timestamp: Math.min(r.timestamp, Date.now()) }))];
    await produceDated(ctx.kafka, records);
    const { result } = await runWorkflow<LandingResult>(ctx.env, config, 'landingWorkflow', [{ prefix: other, mode: 'untilNow' }]);
    assert.equal(result.records, records.length);
    const { objects } = await assertLandedExactlyOnce(config.kafka.brokers, ctx.s3, bucket, [otherTopic], records.length);
    for (const p of [0, 1]) assert.deepEqual(objects.filter((o) => o.partition === p).map((o) => [o.start, o.last]), [[0, 2], [3, 5], [6, 8]], `partition ${p}: one object per date`);
    assert.deepEqual(await listKeys(ctx.s3, bucket, intervalManifestDir(other)), [], 'landing stores no interval manifest');
  });
});
