/**
 * The interval resolver (activities/intervals.ts: `resolveInterval` and `landingCuts`) against
 * in-memory Kafka and S3 (test/helpers/fake-kafka-s3.ts): dates Kafka can no longer tell
 * (before the retained log) refused and never stored, the dates it can tell resolved; the
 * activity heartbeating while it lists the bucket; landing cut at tomorrow's boundary too.
 * The same against a real broker and bucket, through the workflow:
 * test/integration/intervals.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { intervalActivities, landingCuts, type ResolveIntervalResult } from '../../activities/intervals';
import { NonRetryable } from '../../common/errors';
import { addDays, intervalManifestDir, intervalManifestKey, utcDate, type IntervalManifest } from '../../common/interval';
import { objectKey } from '../../common/landing';
import { FakeKafka, FakeS3 } from '../helpers/fake-kafka-s3';

const today = utcDate(Date.now());
const day = (n: number) => addDays(today, n);
const at = (date: string, hhmmss: string) => Date.parse(`${date}T${hhmmss}Z`);
/** `n` timestamps on `date` from 10:00, a minute apart. */
const stamps = (date: string, n: number) => Array.from({ length: n }, (_, i) => at(date, '10:00:00') + i * 60_000);

function world(trace: string[] = []) {
  const kafka = new FakeKafka(trace);
  const s3 = new FakeS3(trace);
  const env = () => {
    const e = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
    e.on('heartbeat', () => trace.push('heartbeat'));
    return e;
  };
  const resolve = (prefix: string, date: string) => env().run(intervalActivities(kafka.adapter(), s3.adapter()).resolveInterval, { prefix, date }) as Promise<ResolveIntervalResult>;
  const manifest = (prefix: string, date: string) => JSON.parse(s3.objects.get(intervalManifestKey(prefix, date))!.body) as IntervalManifest;
  const storedDates = (prefix: string) => s3.keys(intervalManifestDir(prefix)).map((k) => k.slice(intervalManifestDir(prefix).length, -'.json'.length));
  return { kafka, s3, env, resolve, manifest, storedDates };
}

const ranges = (m: IntervalManifest) => m.ranges.map((r) => `${r.topic}/${r.partition}: ${r.start}-${r.end}`);

/** A stored manifest as resolveInterval writes it. */
const storedManifest = (prefix: string, date: string, rs: IntervalManifest['ranges']): IntervalManifest => ({
  version: 1,
  prefix,
  date,
  startsAt: `${date}T00:00:00.000Z`,
  endsAt: `${addDays(date, 1)}T00:00:00.000Z`,
  partial: false,
  resolvedAt: `${addDays(date, 1)}T00:00:01.000Z`,
  ranges: rs,
});

describe('interval resolver: dates before the retained log', () => {
  it('a date whose start may lie before the log start is refused (dataGap) naming the date, the partition and the log start; nothing is stored', async () => {
    const w = world();
    // Partition 0 lost offsets 0-4 (retention); its first retained record is of day -5.
    // Partition 1 never lost a record.
    w.kafka.topics.set('p.pin', [
      { logStart: 5, timestamps: [...stamps(day(-40), 5), ...stamps(day(-5), 5)] },
      { logStart: 0, timestamps: stamps(day(-5), 3) },
    ]);
    for (const date of [day(-30), day(-5)]) {
      await assert.rejects(w.resolve('p', date), (err: unknown) => {
        assert.ok(err instanceof ApplicationFailure, String(err));
        assert.equal(err.type, NonRetryable.dataGap);
        assert.equal(err.nonRetryable, true);
        assert.match(err.message, new RegExp(`interval of ${date}\\b`));
        assert.match(err.message, /p\.pin partition 0 /);
        assert.match(err.message, /partition 0 starts at offset 5\b/);
        assert.doesNotMatch(err.message, /partition 1\b/, 'the partition that lost nothing is not blamed');
        assert.match(err.message, /npm run clean/, 'the workaround is named');
        return true;
      });
    }
    assert.deepEqual(w.s3.keys('manifests/'), [], 'no manifest stored');
  });

  it('the end of a date can be unknown too: the start of D+1 before the log start', async () => {
    const w = world();
    w.kafka.topics.set('p.pin', [{ logStart: 5, timestamps: [...stamps(day(-40), 5), ...stamps(day(-5), 5)] }]);
    // D = day -7 starts where the stored day -8 ends (offset 2), but where D+1 starts, somewhere in 2-5, is gone.
    w.s3.put(intervalManifestKey('p', day(-8)), JSON.stringify(storedManifest('p', day(-8), [{ topic: 'p.pin', partition: 0, start: 0, end: 2 }])));
    await assert.rejects(w.resolve('p', day(-7)), (err: unknown) => err instanceof ApplicationFailure && err.type === NonRetryable.dataGap && err.message.includes(day(-7)) && /partition 0 starts at offset 5\b/.test(err.message));
    assert.deepEqual(w.storedDates('p'), [day(-8)]);
  });

  it('dates Kafka can tell are resolved: from offset 0 of a log that lost nothing, after the last record, pinned by a stored manifest', async () => {
    const w = world();
    w.kafka.topics.set('zero.pin', [{ logStart: 0, timestamps: stamps(day(-5), 3) }]);
    assert.deepEqual(ranges((await w.resolve('zero', day(-30))).manifest), ['zero.pin/0: 0-0']);
    assert.deepEqual(ranges((await w.resolve('zero', day(-5))).manifest), ['zero.pin/0: 0-3']);
    assert.deepEqual(w.storedDates('zero'), [day(-30), day(-5)]);

    w.kafka.topics.set('late.pin', [{ logStart: 5, timestamps: [...stamps(day(-40), 5), ...stamps(day(-5), 5)] }]);
    const after = await w.resolve('late', day(-2));
    assert.deepEqual(ranges(after.manifest), ['late.pin/0: 10-10'], 'after the last record: the end of the log');
    assert.deepEqual(after.stored, [day(-2)]);

    // A stored earlier date ending at the log start pins the boundary: day -5 starts there.
    w.kafka.topics.set('pinned.pin', [{ logStart: 5, timestamps: [...stamps(day(-40), 5), ...stamps(day(-5), 5)] }]);
    w.s3.put(intervalManifestKey('pinned', day(-8)), JSON.stringify(storedManifest('pinned', day(-8), [{ topic: 'pinned.pin', partition: 0, start: 0, end: 5 }])));
    const pinned = await w.resolve('pinned', day(-5));
    assert.deepEqual(ranges(pinned.manifest), ['pinned.pin/0: 5-10']);
    assert.deepEqual(w.storedDates('pinned'), [day(-8), day(-5)]);
  });

  it("a later date's run stores the earlier dates not landed yet, except one whose start Kafka cannot tell", async () => {
    const w = world();
    // Offsets 0-4 gone; 5-7 of day -5, 8-9 of day -3; nothing landed.
    w.kafka.topics.set('back.pin', [{ logStart: 5, timestamps: [...stamps(day(-40), 5), ...stamps(day(-5), 3), ...stamps(day(-3), 2)] }]);
    const res = await w.resolve('back', day(-2));
    assert.deepEqual(res.stored, [day(-3), day(-2)]);
    assert.deepEqual(w.storedDates('back'), [day(-3), day(-2)]);
    assert.deepEqual(ranges(w.manifest('back', day(-3))), ['back.pin/0: 8-10']);
    assert.deepEqual(ranges(res.manifest), ['back.pin/0: 10-10']);
    await assert.rejects(w.resolve('back', day(-5)), (err: unknown) => err instanceof ApplicationFailure && err.type === NonRetryable.dataGap);
  });
});

describe('interval resolver: heartbeats', () => {
  it('heartbeats after each S3 listing page and each partition, so a large bucket does not time the activity out', async () => {
    const trace: string[] = [];
    const w = world(trace);
    w.s3.pageSize = 2;
    w.kafka.topics.set('big.pin', [
      { logStart: 0, timestamps: stamps(day(-3), 10) },
      { logStart: 0, timestamps: stamps(day(-3), 10) },
    ]);
    for (const partition of [0, 1]) {
      for (let start = 0; start < 10; start += 2) w.s3.put(objectKey('topics', 'big.pin', partition, start), '{}\n{}\n', { 'pinflow-next-offset': String(start + 2) });
    }
    for (const d of [-9, -8, -7, -6, -5]) w.s3.put(intervalManifestKey('big', day(d)), JSON.stringify(storedManifest('big', day(d), [0, 1].map((partition) => ({ topic: 'big.pin', partition, start: 0, end: 0 })))));
    const res = await w.resolve('big', day(-3));
    assert.deepEqual(ranges(res.manifest), ['big.pin/0: 0-10', 'big.pin/1: 0-10']);
    const lists = trace.filter((t) => t.startsWith('list '));
    assert.ok(lists.filter((t) => t.startsWith('list topics/')).length >= 6 && lists.filter((t) => t.startsWith('list manifests/')).length >= 3, `paged listings: ${lists.join(', ')}`);
    let since = 0;
    for (const [i, t] of trace.entries()) {
      if (t === 'heartbeat') since = 0;
      else if (t.startsWith('list ')) assert.ok(++since <= 1, `two listing pages without a heartbeat between them, at #${i}: ${trace.slice(0, i + 1).join(' | ')}`);
    }
  });
});

describe('landing cuts', () => {
  it("cut at tomorrow's boundary too: records stamped after midnight (a fast producer clock) start a new object", async () => {
    const w = world();
    const now = Date.now();
    const tomorrow = day(1);
    // Offsets: 0 yesterday, 1-2 today, 3 stamped tomorrow 00:00:05, 4-5 today again.
    w.kafka.topics.set('skew.pin', [{ logStart: 0, timestamps: [at(day(-1), '23:00:00'), at(today, '00:00:01'), at(today, '00:00:02'), at(tomorrow, '00:00:05'), now, now] }]);
    w.kafka.topics.set('plain.pin', [{ logStart: 0, timestamps: [at(day(-1), '23:00:00'), at(today, '00:00:01'), now] }]);
    const cuts = (await w.env().run(() =>
      landingCuts(w.kafka.adapter(), w.s3.adapter(), 'skew', [
        { topic: 'skew.pin', partition: 0, from: 0, to: 6 },
        { topic: 'plain.pin', partition: 0, from: 0, to: 3 },
      ], now),
    )) as Map<string, number[]>;
    assert.deepEqual(cuts.get('skew.pin/0'), [1, 3], "today's and tomorrow's boundaries");
    assert.deepEqual(cuts.get('plain.pin/0'), [1], 'no record stamped tomorrow: its lookup gives the end of the log, never a cut');
  });
});
