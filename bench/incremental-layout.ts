/**
 * The landed history of bench/incremental.ts, as landing lays it out (pure: no files here).
 *
 * Dates 0 .. dates-1 (the history, from 2024-01-01) hold posts 0 .. posts-1, in key order,
 * split as evenly as whole numbers allow; date `dates` (the timed date, the day after the
 * history) holds the new posts `posts .. posts+newPosts-1`, then `updated` existing keys spread
 * evenly over the history (`floor(i * posts / updated)`, each once) in a new version. Each post
 * is one record in each of the three topics, key k in partition k % partitions, so every topic
 * has the same offsets. Offsets run on per partition across the dates; landing rotates objects
 * at interval ends, so a date's records of a partition are objects of `flush` records, its last
 * one shorter, each lying within that date's interval. A date's manifest names, per topic and
 * partition, the offsets [start, end) of its records.
 */
import { addDays, type IntervalManifest } from '../common/interval';
import { SOURCE_TABLES } from '../common/source-tables';

export interface LayoutOptions {
  /** Posts of the history (its keys). */
  posts: number;
  /** Dates of the history. */
  dates: number;
  /** New posts (new keys) of the timed date. */
  newPosts: number;
  /** Existing keys the timed date updates. */
  updated: number;
  partitions: number;
  /** Records per object at most. */
  flush: number;
  /** The pipeline prefix: topics are `<prefix>.pin|geo|user`. */
  prefix: string;
}

/** One record of a post: its key and version (0 as first landed, 1 updated). */
export interface LayoutRecord {
  key: number;
  version: number;
}

/** One landed object of each topic (the same offsets in the three). */
export interface LayoutObject {
  /** The date's index: 0 .. dates-1 history, `dates` the timed date. */
  date: number;
  partition: number;
  firstOffset: number;
  records: LayoutRecord[];
}

export interface Layout {
  /** YYYY-MM-DD of each date index (dates + 1 of them). */
  dates: string[];
  objects: LayoutObject[];
  /** One per date, in date order. */
  manifests: IntervalManifest[];
}

export const FIRST_DATE = '2024-01-01';

/** Problems with the options (empty: fine). */
export function layoutProblems(o: LayoutOptions): string[] {
  const out: string[] = [];
  if (o.posts < o.dates) out.push(`--posts ${o.posts} must be at least --dates ${o.dates} (every date of the history holds posts)`);
  if (o.updated > o.posts) out.push(`--updated ${o.updated} must be at most --posts ${o.posts} (it updates existing keys, each once)`);
  return out;
}

/** The records of date index `d`, in landing order. */
export function dateRecords(o: LayoutOptions, d: number): LayoutRecord[] {
  const range = (from: number, to: number, version: number) => Array.from({ length: to - from }, (_, i) => ({ key: from + i, version }));
  if (d < o.dates) return range(Math.floor((d * o.posts) / o.dates), Math.floor(((d + 1) * o.posts) / o.dates), 0);
  if (d > o.dates) throw new RangeError(`date index ${d}: the layout has ${o.dates + 1} dates`);
  const updates = Array.from({ length: o.updated }, (_, i) => ({ key: Math.floor((i * o.posts) / o.updated), version: 1 }));
  return [...range(o.posts, o.posts + o.newPosts, 0), ...updates];
}

/** Every date's objects and manifest (see the top of this file). */
export function incrementalLayout(o: LayoutOptions): Layout {
  const problems = layoutProblems(o);
  if (problems.length) throw new RangeError(problems.join('; '));
  const dates = Array.from({ length: o.dates + 1 }, (_, d) => addDays(FIRST_DATE, d));
  const next = Array<number>(o.partitions).fill(0);
  const objects: LayoutObject[] = [];
  const manifests: IntervalManifest[] = dates.map((date, d) => {
    const byPartition = Array.from({ length: o.partitions }, () => [] as LayoutRecord[]);
    for (const r of dateRecords(o, d)) byPartition[r.key % o.partitions]!.push(r);
    const ranges = byPartition.map((records, partition) => {
      const start = next[partition]!;
      for (let i = 0; i < records.length; i += o.flush) objects.push({ date: d, partition, firstOffset: start + i, records: records.slice(i, i + o.flush) });
      next[partition] = start + records.length;
      return { partition, start, end: next[partition]! };
    });
    const startsAt = `${date}T00:00:00.000Z`;
    return {
      version: 1,
      prefix: o.prefix,
      date,
      startsAt,
      endsAt: `${addDays(date, 1)}T00:00:00.000Z`,
      partial: false,
      resolvedAt: startsAt,
      ranges: SOURCE_TABLES.flatMap((t) => ranges.map((r) => ({ topic: `${o.prefix}.${t.topic}`, ...r }))),
    };
  });
  return { dates, objects, manifests };
}
