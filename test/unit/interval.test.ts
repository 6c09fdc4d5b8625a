/**
 * The data-interval contract's pure rules (common/interval.ts) and the landing input's
 * `endOffsets` check (common/landing.ts). The intervals themselves, against Kafka and S3:
 * test/integration/intervals.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  addDays,
  cutsWithin,
  intervalBounds,
  intervalEnds,
  intervalManifestDir,
  intervalManifestKey,
  intervalSummary,
  manifestDateOf,
  manifestProblems,
  utcDate,
  type IntervalManifest,
} from '../../common/interval';
import { validateLandingInput } from '../../common/landing';

const manifest = (over: Partial<IntervalManifest> = {}): IntervalManifest => ({
  version: 1,
  prefix: 'p1',
  date: '2024-02-28',
  startsAt: '2024-02-28T00:00:00.000Z',
  endsAt: '2024-02-29T00:00:00.000Z',
  partial: false,
  resolvedAt: '2024-03-01T00:00:01.000Z',
  ranges: [
    { topic: 'p1.pin', partition: 0, start: 10, end: 25 },
    { topic: 'p1.pin', partition: 1, start: 7, end: 7 },
  ],
  ...over,
});

describe('data intervals: the contract', () => {
  it('dates: bounds in UTC, days added across month and leap-year ends, bad dates refused', () => {
    assert.deepEqual(intervalBounds('2024-02-28'), { startMs: Date.UTC(2024, 1, 28), endMs: Date.UTC(2024, 1, 29) });
    assert.equal(addDays('2024-02-28', 1), '2024-02-29');
    assert.equal(addDays('2024-02-28', 2), '2024-03-01');
    assert.equal(addDays('2024-01-01', -1), '2023-12-31');
    assert.equal(utcDate(Date.UTC(2024, 0, 1, 23, 59, 59, 999)), '2024-01-01');
    assert.throws(() => intervalBounds('2024-2-28'), /not a date/);
    assert.throws(() => addDays('yesterday', 1), /not a date/);
  });

  it('manifest keys: one per prefix and date; other keys under manifests/ are not dates', () => {
    assert.equal(intervalManifestKey('p1', '2024-02-28'), 'manifests/p1/date=2024-02-28.json');
    assert.equal(manifestDateOf('p1', intervalManifestKey('p1', '2024-02-28')), '2024-02-28');
    assert.ok(intervalManifestKey('p1', '2024-02-28').startsWith(intervalManifestDir('p1')));
    assert.equal(manifestDateOf('p1', 'manifests/p1/landing/landing-p1/run.json'), null);
    assert.equal(manifestDateOf('p1', 'manifests/p10/date=2024-02-28.json'), null);
    assert.equal(manifestDateOf('p1', 'manifests/p1/date=2024-02-28.json.tmp'), null);
  });

  it('a stored manifest is checked against its key: prefix, date, closed, well-formed ranges', () => {
    assert.deepEqual(manifestProblems(manifest(), 'p1', '2024-02-28'), []);
    assert.deepEqual(manifestProblems('text', 'p1', '2024-02-28'), ['not a JSON object']);
    const problems = manifestProblems({ ...manifest({ partial: true, prefix: 'p2', date: '2024-02-27' }), version: 2 }, 'p1', '2024-02-28');
    assert.equal(problems.length, 4, problems.join('; '));
    assert.match(manifestProblems(manifest({ ranges: [{ topic: 'p1.pin', partition: 0, start: 5, end: 4 }] }), 'p1', '2024-02-28')[0]!, /ranges\[0\]/);
    assert.match(manifestProblems({ ...manifest(), ranges: 'none' }, 'p1', '2024-02-28')[0]!, /ranges is not a list/);
  });

  it('summary and end offsets: offsets counted over partitions; a partial interval has no manifest key', () => {
    assert.deepEqual(intervalSummary(manifest()), { records: 15, partial: false, manifestKey: 'manifests/p1/date=2024-02-28.json' });
    assert.deepEqual(intervalSummary(manifest({ partial: true })), { records: 15, partial: true, manifestKey: null });
    assert.deepEqual(intervalEnds(manifest()), [
      { topic: 'p1.pin', partition: 0, end: 25 },
      { topic: 'p1.pin', partition: 1, end: 7 },
    ]);
  });

  it('cuts: the boundaries strictly inside a range, ascending, each once', () => {
    assert.deepEqual(cutsWithin([30, 10, 20, 20, 0, 40], 10, 40), [20, 30]);
    assert.deepEqual(cutsWithin([5, 6], 5, 6), []);
    assert.deepEqual(cutsWithin([], 0, 100), []);
  });

  it('landing input: endOffsets with untilNow only, each {topic, partition, end} in whole numbers', () => {
    assert.deepEqual(validateLandingInput({ prefix: 'p1', mode: 'untilNow', endOffsets: [{ topic: 'p1.pin', partition: 0, end: 3 }] }), []);
    assert.deepEqual(validateLandingInput({ prefix: 'p1', mode: 'follow', endOffsets: [] }), ['endOffsets applies to mode "untilNow" only']);
    assert.deepEqual(validateLandingInput({ prefix: 'p1', mode: 'untilNow', endOffsets: [{ topic: 'p1.pin', partition: 0, end: -1 }] }), ['endOffsets[0] must be {topic, partition, end} with whole numbers >= 0']);
  });
});
