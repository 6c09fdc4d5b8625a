/**
 * Data intervals (common/interval.ts) against Kafka's timestamp index and the manifests in S3.
 *
 * The boundary of a date in a partition is where the date begins (its 00:00 UTC): the offset a
 * stored manifest next to it gives (the date before ends there, or the date itself starts
 * there), else Kafka's earliest offset whose timestamp is at or after that instant (the high
 * watermark when there is none), kept between the boundaries of the stored manifests around it.
 *
 * - `resolveInterval` (activity): the manifest of a date: the stored one, or one resolved now
 *   (written once when closed; a partial one ends at the high watermarks and is not stored).
 *   When a partition's next offset to land is before the date's start (earlier dates not landed
 *   yet), the earlier dates holding records not landed yet are resolved and stored too, so the
 *   boundaries landing cuts at are the ones their own runs will find.
 * - `landingCuts` (the landing plan): the boundaries inside each planned range. Landing closes
 *   an object at each, so every landed object lies within one interval, whichever lander wrote it.
 *
 * Finding the dates between a next offset and a date: gallop back (1, 2, 4, ... days) to a date
 * whose boundaries are at or before the next offsets, then bisect between the dates looked up,
 * skipping every stretch whose two ends agree (boundaries only grow with the date, so no date
 * inside differs). A backlog of k dates with records costs about k * log2(days) lookups.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { dateProblems } from '../common/daily';
import { guarded, NonRetryable } from '../common/errors';
import {
  addDays,
  cutsWithin,
  intervalBounds,
  intervalManifestDir,
  intervalManifestKey,
  manifestDateOf,
  manifestProblems,
  utcDate,
  type IntervalManifest,
  type IntervalRange,
} from '../common/interval';
import { DEFAULT_TOPICS_DIR } from '../common/landing';
import { SOURCE_TABLES, topicName } from '../common/source-tables';
import type { kafkaAdapter } from '../adapters/kafka';
import { getText, listKeys, type s3Adapter } from '../adapters/s3';
import { putObjectOnce } from '../adapters/s3-put-once';
import { resumePoint } from './landed-objects';

type Kafka = ReturnType<typeof kafkaAdapter>;
type S3 = ReturnType<typeof s3Adapter>;

/** Kafka timestamps are not before the epoch: the walk back stops there. */
const EARLIEST_DATE = '1970-01-01';

export interface ResolveIntervalInput {
  prefix: string;
  /** The logical date, YYYY-MM-DD (UTC); not in the future. */
  date: string;
  /** Where the landed objects are (default `topics`): earlier dates are resolved when they are behind. */
  topicsDir?: string;
}

export interface ResolveIntervalResult {
  manifest: IntervalManifest;
  /** The dates whose manifests this call wrote (earlier dates first, then the date itself when closed). */
  stored: string[];
}

interface Part {
  topic: string;
  partition: number;
}

const daysBetween = (a: string, b: string) => Math.round((intervalBounds(b).startMs - intervalBounds(a).startMs) / 86_400_000);
const sameOffsets = (a: number[], b: number[]) => a.every((x, i) => x === b[i]);

/** The stored manifest of a date, checked. */
async function readManifest(s3: S3, prefix: string, date: string): Promise<IntervalManifest> {
  const key = intervalManifestKey(prefix, date);
  const text = await guarded('S3', s3.address, () => getText(s3.client(), s3.bucket, key));
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    raw = (err as Error).message;
  }
  const problems = manifestProblems(raw, prefix, date);
  if (problems.length) {
    throw ApplicationFailure.nonRetryable(`s3://${s3.bucket}/${key} is not an interval manifest of ${prefix} ${date}: ${problems.join('; ')}. Move it away to resolve the date again`, NonRetryable.config);
  }
  return raw as IntervalManifest;
}

/** Boundaries of one prefix's dates, with the stored manifests and Kafka's lookups cached for one activity. */
function boundaryReader(kafka: Kafka, s3: S3, prefix: string) {
  let listed: Promise<string[]> | undefined;
  const manifests = new Map<string, Promise<IntervalManifest | null>>();
  const lookups = new Map<string, Promise<Map<number, number>>>();

  /** The dates with a stored manifest, ascending. */
  const storedDates = () =>
    (listed ??= guarded('S3', s3.address, async () =>
      (await listKeys(s3.client(), s3.bucket, intervalManifestDir(prefix)))
        .map((k) => manifestDateOf(prefix, k))
        .filter((d): d is string => d !== null)
        .sort(),
    ));

  async function stored(date: string): Promise<IntervalManifest | null> {
    if (!(await storedDates()).includes(date)) return null;
    let m = manifests.get(date);
    if (!m) manifests.set(date, (m = readManifest(s3, prefix, date)));
    return m;
  }

  /** Kafka's earliest offset per partition whose timestamp is at or after the date's 00:00 UTC (high watermark when none). */
  function lookup(topic: string, date: string): Promise<Map<number, number>> {
    const k = `${topic}\n${date}`;
    let found = lookups.get(k);
    if (!found) {
      found = kafka.guard(async () => {
        const offsets = await (await kafka.admin()).fetchTopicOffsetsByTimestamp(topic, intervalBounds(date).startMs);
        return new Map(offsets.map((o) => [o.partition, Number(o.offset)]));
      });
      lookups.set(k, found);
    }
    return found;
  }

  const rangeOf = (m: IntervalManifest | null, p: Part) => m?.ranges.find((r) => r.topic === p.topic && r.partition === p.partition);

  /** The boundary of `date` in one partition (see the module comment). */
  async function at(p: Part, date: string): Promise<number> {
    const before = rangeOf(await stored(addDays(date, -1)), p);
    if (before) return before.end;
    const own = rangeOf(await stored(date), p);
    if (own) return own.start;
    let offset = (await lookup(p.topic, date)).get(p.partition);
    if (offset === undefined) throw new Error(`Kafka returned no offset for ${p.topic} partition ${p.partition} at ${date}T00:00:00Z`);
    const dates = await storedDates();
    for (const d of dates.filter((x) => x < date).reverse()) {
      const r = rangeOf(await stored(d), p);
      if (r) {
        offset = Math.max(offset, r.end);
        break;
      }
    }
    for (const d of dates.filter((x) => x > date)) {
      const r = rangeOf(await stored(d), p);
      if (r) {
        offset = Math.min(offset, r.start);
        break;
      }
    }
    return offset;
  }

  return {
    stored,
    /** The boundaries of `date` in each of `parts`, in order. */
    boundaries: (parts: Part[], date: string) => Promise.all(parts.map((p) => at(p, date))),
    /** Notes a manifest this activity wrote (later boundaries take it into account). */
    remember(m: IntervalManifest) {
      manifests.set(m.date, Promise.resolve(m));
      listed = storedDates().then((ds) => [...new Set([...ds, m.date])].sort());
    },
  };
}

type Reader = ReturnType<typeof boundaryReader>;

/**
 * The boundaries of every date from the first whose boundaries are all at or before `floor`
 * (one offset per part) up to `last`: a map from date to offsets holding each date where some
 * boundary changes and the date before it. A date not in the map has the boundaries of the
 * latest date before it that is.
 */
async function walkBack(reader: Reader, parts: Part[], floor: number[], last: string): Promise<Map<string, number[]>> {
  const known = new Map<string, number[]>();
  const ctx = Context.current();
  const at = async (date: string) => {
    let b = known.get(date);
    if (!b) {
      b = await reader.boundaries(parts, date);
      known.set(date, b);
      ctx.heartbeat();
    }
    return b;
  };
  const reached = (b: number[]) => b.every((x, i) => x <= floor[i]!);
  if (reached(await at(last))) return known;
  for (let step = 1; ; step *= 2) {
    const date = daysBetween(EARLIEST_DATE, last) > step ? addDays(last, -step) : EARLIEST_DATE;
    if (reached(await at(date)) || date === EARLIEST_DATE) break;
  }
  const bisect = async (lo: string, hi: string): Promise<void> => {
    const days = daysBetween(lo, hi);
    if (days <= 1 || sameOffsets(known.get(lo)!, known.get(hi)!)) return;
    const mid = addDays(lo, Math.floor(days / 2));
    await at(mid);
    await bisect(lo, mid);
    await bisect(mid, hi);
  };
  const galloped = [...known.keys()].sort();
  for (let i = 1; i < galloped.length; i++) await bisect(galloped[i - 1]!, galloped[i]!);
  return known;
}

/** The topics a prefix's daily pipeline lands (`<prefix>.pin|geo|user` that exist) with their partitions' offsets. */
async function dailyTopics(kafka: Kafka, prefix: string) {
  const admin = await kafka.guard(() => kafka.admin());
  const all = await kafka.guard(() => admin.listTopics());
  const out: Array<Part & { low: number; high: number }> = [];
  for (const topic of SOURCE_TABLES.map((t) => topicName(prefix, t.topic)).filter((t) => all.includes(t))) {
    const offsets = await kafka.guard(() => admin.fetchTopicOffsets(topic));
    for (const o of offsets.sort((a, b) => a.partition - b.partition)) out.push({ topic, partition: o.partition, low: Number(o.low), high: Number(o.high) });
  }
  return out;
}

/** Writes a closed manifest once; when another run wrote the date first, its manifest is the one. */
async function store(s3: S3, reader: Reader, m: IntervalManifest): Promise<IntervalManifest> {
  try {
    await guarded('S3', s3.address, () => putObjectOnce(s3.client(), s3.bucket, intervalManifestKey(m.prefix, m.date), JSON.stringify(m, null, 2) + '\n', {}, { contentType: 'application/json' }));
    reader.remember(m);
    return m;
  } catch (err) {
    if (!(err instanceof ApplicationFailure && err.type === NonRetryable.conflict)) throw err;
    const theirs = await readManifest(s3, m.prefix, m.date);
    reader.remember(theirs);
    return theirs;
  }
}

export function intervalActivities(kafka: Kafka, s3: S3) {
  return {
    /** The data interval of a date (see the module comment); refuses a date in the future. */
    async resolveInterval(input: ResolveIntervalInput): Promise<ResolveIntervalResult> {
      const now = Date.now();
      const problems = dateProblems(input.date, now);
      if (problems.length) throw ApplicationFailure.nonRetryable(`cannot resolve the interval of ${input.date}: ${problems.join('; ')}`, NonRetryable.badInput);
      const { endMs } = intervalBounds(input.date);
      const partial = now < endMs;
      const reader = boundaryReader(kafka, s3, input.prefix);
      const topics = await dailyTopics(kafka, input.prefix);
      const parts: Part[] = topics.map(({ topic, partition }) => ({ topic, partition }));
      const written: string[] = [];
      const manifestOf = (date: string, start: number[], end: number[], isPartial: boolean): IntervalManifest => ({
        version: 1,
        prefix: input.prefix,
        date,
        startsAt: new Date(intervalBounds(date).startMs).toISOString(),
        endsAt: new Date(intervalBounds(date).endMs).toISOString(),
        partial: isPartial,
        resolvedAt: new Date(now).toISOString(),
        ranges: parts.map((p, i): IntervalRange => ({ ...p, start: start[i]!, end: Math.max(start[i]!, end[i]!) })),
      });

      // Earlier dates holding records not landed yet: resolved and stored first.
      const topicsDir = input.topicsDir ?? DEFAULT_TOPICS_DIR;
      const next: number[] = [];
      for (const t of topics) {
        const resumed = await guarded('S3', s3.address, () => resumePoint(s3, topicsDir, t.topic, t.partition));
        next.push(Math.max(resumed?.next ?? t.low, t.low));
      }
      const known = await walkBack(reader, parts, next, input.date);
      const dates = [...known.keys()].sort();
      for (const d of dates) {
        const after = known.get(addDays(d, 1));
        if (d >= input.date || !after || sameOffsets(known.get(d)!, after) || !after.some((b, i) => b > next[i]!)) continue;
        if (await reader.stored(d)) continue;
        await store(s3, reader, manifestOf(d, known.get(d)!, after, false));
        written.push(d);
        Context.current().heartbeat();
      }

      let manifest = await reader.stored(input.date);
      if (!manifest) {
        const start = await reader.boundaries(parts, input.date);
        const end = partial ? topics.map((t) => t.high) : await reader.boundaries(parts, addDays(input.date, 1));
        manifest = manifestOf(input.date, start, end, partial);
        if (!partial) {
          const kept = await store(s3, reader, manifest);
          if (kept === manifest) written.push(input.date);
          manifest = kept;
        }
      }
      return { manifest, stored: written };
    },
  };
}

/**
 * Where landing closes objects: for each planned range (by `topic/partition`), the boundaries
 * of the dates up to today strictly inside [from, to). Ranges of topics the prefix's manifests
 * do not cover (topics.regex) get Kafka's boundaries.
 */
export async function landingCuts(kafka: Kafka, s3: S3, prefix: string, ranges: Array<Part & { from: number; to: number }>, nowMs: number): Promise<Map<string, number[]>> {
  const reader = boundaryReader(kafka, s3, prefix);
  const out = new Map<string, number[]>();
  const byTopic = new Map<string, Array<Part & { from: number; to: number }>>();
  for (const r of ranges.filter((x) => x.to > x.from)) byTopic.set(r.topic, [...(byTopic.get(r.topic) ?? []), r]);
  for (const rs of byTopic.values()) {
    const known = await walkBack(reader, rs, rs.map((r) => r.from), utcDate(nowMs));
    rs.forEach((r, i) => {
      const cuts = cutsWithin([...known.values()].map((b) => b[i]!), r.from, r.to);
      if (cuts.length) out.set(`${r.topic}/${r.partition}`, cuts);
    });
  }
  return out;
}
