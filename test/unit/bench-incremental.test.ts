/**
 * The landed history of bench:incremental (bench/incremental-layout.ts), without files or a
 * server: which posts each date holds, the offsets and objects per partition (every object
 * within one interval, the objects of a date tiling its range), manifests that the stored-
 * manifest check accepts, and that the interval plan (pickBatch) over a ledger of the history
 * picks exactly the timed date's objects. Bad sizes are refused naming the options.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dateRecords, incrementalLayout, layoutProblems, type LayoutOptions, type LayoutRecord } from '../../bench/incremental-layout';
import { manifestProblems } from '../../common/interval';
import { objectKey } from '../../common/landing';
import { SOURCE_TABLES } from '../../common/source-tables';
import { pickBatch, type LedgerRow } from '../../sql/incremental';

const OPTS: LayoutOptions = { posts: 100, dates: 4, newPosts: 12, updated: 7, partitions: 3, flush: 4, prefix: 'bx' };

describe('bench:incremental layout', () => {
  it('the history holds every post once, spread over the dates; the timed date new posts, then updated keys spread over the history', () => {
    const history = Array.from({ length: OPTS.dates }, (_, d) => dateRecords(OPTS, d));
    assert.deepEqual(history.map((r) => r.length), [25, 25, 25, 25]);
    assert.deepEqual(history.flat(), Array.from({ length: 100 }, (_, key) => ({ key, version: 0 })));
    const day = dateRecords(OPTS, OPTS.dates);
    assert.deepEqual(day.slice(0, 12), Array.from({ length: 12 }, (_, i) => ({ key: 100 + i, version: 0 })));
    assert.deepEqual(day.slice(12), [0, 14, 28, 42, 57, 71, 85].map((key) => ({ key, version: 1 })));
    // Uneven sizes: whole numbers, every post once.
    const uneven = { ...OPTS, posts: 10, dates: 3, updated: 10 };
    assert.deepEqual([0, 1, 2].map((d) => dateRecords(uneven, d).map((r) => r.key)), [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]);
    assert.deepEqual(dateRecords(uneven, 3).filter((r) => r.version === 1).map((r) => r.key), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.throws(() => dateRecords(OPTS, OPTS.dates + 1), /date index 5: the layout has 5 dates/);
  });

  it('objects lie within one interval, tile it, and hold in offset order the records of their partition', () => {
    const layout = incrementalLayout(OPTS);
    assert.deepEqual(layout.dates, ['2024-01-01', '2024-01-02', '2024-01-03', '2024-01-04', '2024-01-05']);
    for (let p = 0; p < OPTS.partitions; p++) {
      // The partition's records in offset order, read back from the objects...
      const mine = layout.objects.filter((o) => o.partition === p).sort((a, b) => a.firstOffset - b.firstOffset);
      const read: LayoutRecord[] = [];
      for (const o of mine) {
        assert.equal(o.firstOffset, read.length, `partition ${p}: objects follow each other without gap`);
        assert.ok(o.records.length >= 1 && o.records.length <= OPTS.flush);
        read.push(...o.records);
      }
      // ...are the dates' records of that partition, in date order.
      const expected = layout.dates.flatMap((_, d) => dateRecords(OPTS, d).filter((r) => r.key % OPTS.partitions === p));
      assert.deepEqual(read, expected, `partition ${p}`);
    }
    layout.manifests.forEach((m, d) => {
      assert.deepEqual(manifestProblems(m, 'bx', layout.dates[d]!), []);
      assert.equal(m.endsAt, `${layout.dates[d + 1] ?? '2024-01-06'}T00:00:00.000Z`);
      assert.equal(m.ranges.length, SOURCE_TABLES.length * OPTS.partitions);
      for (const r of m.ranges) {
        const p = r.partition;
        const counted = dateRecords(OPTS, d).filter((x) => x.key % OPTS.partitions === p).length;
        assert.equal(r.end - r.start, counted, `${m.date} ${r.topic}/${p}`);
        assert.equal(r.start, d === 0 ? 0 : layout.manifests[d - 1]!.ranges.find((x) => x.topic === r.topic && x.partition === p)!.end, 'a date starts where the one before ends');
        const own = layout.objects.filter((o) => o.date === d && o.partition === p);
        assert.ok(own.every((o) => o.firstOffset >= r.start && o.firstOffset + o.records.length <= r.end), `${m.date}/${p}: objects within the interval`);
        assert.equal(own.reduce((n, o) => n + o.records.length, 0), r.end - r.start);
      }
    });
  });

  it('with the history in the ledger, the plan merges exactly the timed date\'s objects, all its own', () => {
    const layout = incrementalLayout(OPTS);
    const landed = Object.fromEntries(SOURCE_TABLES.map((t) => [t.topic, layout.objects.map((o) => ({ key: objectKey('topics', `bx.${t.topic}`, o.partition, o.firstOffset) }))])) as Parameters<typeof pickBatch>[1];
    const history = layout.objects.filter((o) => o.date < OPTS.dates);
    const ledger: LedgerRow[] = SOURCE_TABLES.flatMap((t) => history.map((o) => ({ topic: t.topic, part: o.partition, start_offset: o.firstOffset })));
    const picked = pickBatch(layout.manifests[OPTS.dates]!, landed, ledger);
    const day = layout.objects.filter((o) => o.date === OPTS.dates).map((o) => [o.partition, o.firstOffset]).sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
    assert.ok(day.length > 0);
    for (const t of SOURCE_TABLES) {
      assert.deepEqual(picked[t.topic].map((o) => [o.partition, o.startOffset]), day, t.topic);
      assert.ok(picked[t.topic].every((o) => o.own));
    }
    // Without a ledger, the timed date merges the whole history too (the state's catch-up).
    assert.equal(pickBatch(layout.manifests[OPTS.dates]!, landed, []).pin.length, layout.objects.length);
  });

  it('refuses sizes it cannot lay out, naming the options', () => {
    assert.deepEqual(layoutProblems(OPTS), []);
    assert.deepEqual(layoutProblems({ ...OPTS, posts: 3, dates: 4, updated: 5 }), [
      '--posts 3 must be at least --dates 4 (every date of the history holds posts)',
      '--updated 5 must be at most --posts 3 (it updates existing keys, each once)',
    ]);
    assert.throws(() => incrementalLayout({ ...OPTS, updated: 101 }), (e: Error) => e instanceof RangeError && /--updated 101 must be at most --posts 100/.test(e.message));
  });
});
