/**
 * Data intervals (common/interval.ts) against Kafka's timestamp index and the manifests in S3.
 *
 * The boundary of a date in a partition is where the date begins (its 00:00 UTC): the offset a
 * stored manifest next to it gives (the date before ends there, or the date itself starts
 * there), else Kafka's earliest offset whose timestamp is at or after that instant (the high
 * watermark when there is none), kept between the boundaries of the stored manifests around it.
 *
 * Kafka cannot tell a boundary its lookup puts on the first retained offset of a log whose
 * earlier records are gone (log start above 0, retention or deleted records): the boundary may
 * lie among the records gone, so it is only known to be at or before that offset. Such a
 * boundary is `unknown` unless a stored manifest of an earlier date ends at it. A date after the
 * last record (the lookup finds none: the high watermark) is known, also in a log emptied by
 * retention, where Kafka cannot tell it from a date before the records gone.
 *
 * - `resolveInterval` (activity): the manifest of a date: the stored one, or one resolved now
 *   (written once when closed; a partial one ends at the high watermarks and is not stored). A
 *   date not stored with an unknown boundary is refused (NonRetryable.dataGap) before anything
 *   is stored. When a partition's next offset to land is before the date's start (earlier
 *   dates not landed yet), the earlier dates holding records not landed yet are resolved and
 *   stored too (except those with an unknown boundary: their own runs refuse them), so the
 *   boundaries landing cuts at are the ones their own runs will find. Heartbeats after each S3
 *   listing page, each partition and each date looked up.
 * - `landingCuts` (the landing plan): the boundaries inside each planned range, up to
 *   tomorrow's (records stamped after midnight by a producer's fast clock). Landing closes an
 *   object at each, so every landed object lies within one interval, whichever lander wrote it.
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

type Kafka = Pick<ReturnType<typeof kafkaAdapter>, 'admin' | 'guard'>;
type S3 = Pick<ReturnType<typeof s3Adapter>, 'client' | 'bucket' | 'address'>;

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

/** A date's boundary in a partition; `logStart` when it is unknown (see the module comment): it is at or before `offset`. */
interface Boundary {
  offset: number;
  logStart?: number;
}

const daysBetween = (a: string, b: string) => Math.round((intervalBounds(b).startMs - intervalBounds(a).startMs) / 86_400_000);
const sameOffsets = (a: Boundary[], b: Boundary[]) => a.every((x, i) => x.offset === b[i]!.offset);
const heartbeat = () => Context.current().heartbeat();

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
  const lookups = new Map<string, Promise<Map<number, Boundary>>>();

  /** The dates with a stored manifest, ascending. */
  const storedDates = () =>
    (listed ??= guarded('S3', s3.address, async () =>
      (await listKeys(s3.client(), s3.bucket, intervalManifestDir(prefix), undefined, heartbeat))
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

  /**
   * Kafka's earliest offset per partition whose timestamp is at or after the date's 00:00 UTC
   * (high watermark when none), with the log start when the offset is it (the boundary unknown).
   */
  function lookup(topic: string, date: string): Promise<Map<number, Boundary>> {
    const k = `${topic}\n${date}`;
    let found = lookups.get(k);
    if (!found) {
      found = kafka.guard(async () => {
        const admin = await kafka.admin();
        const offsets = await admin.fetchTopicOffsetsByTimestamp(topic, intervalBounds(date).startMs);
        // Read after the lookup: the log start only grows, so an offset at or below it was the log start when looked up.
        const ends = new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, { low: Number(o.low), high: Number(o.high) }]));
        return new Map(
          offsets.map((o): [number, Boundary] => {
            const offset = Number(o.offset);
            const end = ends.get(o.partition);
            return [o.partition, end && end.low > 0 && offset <= end.low && offset < end.high ? { offset, logStart: end.low } : { offset }];
          }),
        );
      });
      lookups.set(k, found);
    }
    return found;
  }

  const rangeOf = (m: IntervalManifest | null, p: Part) => m?.ranges.find((r) => r.topic === p.topic && r.partition === p.partition);

  /** The boundary of `date` in one partition (see the module comment). */
  async function at(p: Part, date: string): Promise<Boundary> {
    const before = rangeOf(await stored(addDays(date, -1)), p);
    if (before) return { offset: before.end };
    const own = rangeOf(await stored(date), p);
    if (own) return { offset: own.start };
    const found = (await lookup(p.topic, date)).get(p.partition);
    if (found === undefined) throw new Error(`Kafka returned no offset for ${p.topic} partition ${p.partition} at ${date}T00:00:00Z`);
    let offset = found.offset;
    /** Where the latest stored date before ends: the boundary is not before it. */
    let floor: number | undefined;
    const dates = await storedDates();
    for (const d of dates.filter((x) => x < date).reverse()) {
      const r = rangeOf(await stored(d), p);
      if (r) {
        floor = r.end;
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
    return found.logStart !== undefined && (floor === undefined || offset > floor) ? { offset, logStart: found.logStart } : { offset };
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
 * (one offset per part) up to `last`: a map from date to boundaries holding each date where some
 * boundary changes and the date before it. A date not in the map has the boundaries of the
 * latest date before it that is.
 */
async function walkBack(reader: Reader, parts: Part[], floor: number[], last: string): Promise<Map<string, Boundary[]>> {
  const known = new Map<string, Boundary[]>();
  const at = async (date: string) => {
    let b = known.get(date);
    if (!b) {
      b = await reader.boundaries(parts, date);
      known.set(date, b);
      heartbeat();
    }
    return b;
  };
  // An unknown boundary is at or before its offset: at or before `floor` too.
  const reached = (b: Boundary[]) => b.every((x, i) => x.offset <= floor[i]!);
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

/**
 * Refuses a date with an unknown boundary (`start`: the date's, `end`: the next date's): the
 * failure names the date, each partition with its log start, and what to do instead.
 */
function refuseUnknown(s3: S3, prefix: string, date: string, parts: Part[], start: Boundary[], end: Boundary[] | undefined): void {
  const where = parts.flatMap((p, i) => {
    const which = [start[i]!.logStart !== undefined && 'start', end?.[i]!.logStart !== undefined && 'end'].filter(Boolean).join(' and ');
    const logStart = start[i]!.logStart ?? end?.[i]!.logStart;
    return which ? [`${p.topic} partition ${p.partition} starts at offset ${logStart} (the records before it are gone: retention or deleted records) and ${date}'s ${which} may lie among them`] : [];
  });
  if (!where.length) return;
  throw ApplicationFailure.nonRetryable(
    `cannot resolve the interval of ${date} from Kafka: ${where.join('; ')}. Nothing is stored. ` +
      `A date whose manifest is stored runs from it: copy s3://${s3.bucket}/${intervalManifestKey(prefix, date)} from a bucket where ${date} ran; ` +
      'otherwise recompute everything landed with npm run clean',
    NonRetryable.dataGap,
  );
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
      heartbeat();
      const parts: Part[] = topics.map(({ topic, partition }) => ({ topic, partition }));
      const written: string[] = [];
      /** The date's boundaries; refused when one is unknown. `end` undefined: partial, ends at the high watermarks. */
      const boundsOf = async (date: string) => {
        const start = await reader.boundaries(parts, date);
        const end = partial ? undefined : await reader.boundaries(parts, addDays(date, 1));
        refuseUnknown(s3, input.prefix, date, parts, start, end);
        return { start: start.map((b) => b.offset), end: end ? end.map((b) => b.offset) : topics.map((t) => t.high) };
      };
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
        const resumed = await guarded('S3', s3.address, () => resumePoint(s3, topicsDir, t.topic, t.partition, heartbeat));
        next.push(Math.max(resumed?.next ?? t.low, t.low));
        heartbeat();
      }
      // Refused before any earlier date is stored.
      if (!(await reader.stored(input.date))) await boundsOf(input.date);
      const known = await walkBack(reader, parts, next, input.date);
      const dates = [...known.keys()].sort();
      for (const d of dates) {
        const start = known.get(d)!;
        const after = known.get(addDays(d, 1));
        if (d >= input.date || !after || sameOffsets(start, after) || !after.some((b, i) => b.offset > next[i]!)) continue;
        if ([...start, ...after].some((b) => b.logStart !== undefined)) continue;
        if (await reader.stored(d)) continue;
        await store(s3, reader, manifestOf(d, start.map((b) => b.offset), after.map((b) => b.offset), false));
        written.push(d);
        heartbeat();
      }

      let manifest = await reader.stored(input.date);
      if (!manifest) {
        const { start, end } = await boundsOf(input.date);
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
 * of the dates up to tomorrow strictly inside [from, to) (tomorrow's: records stamped after
 * midnight by a fast producer clock; a lookup finding none gives the high watermark, never a
 * cut). Ranges of topics the prefix's manifests do not cover (topics.regex) get Kafka's
 * boundaries.
 */
export async function landingCuts(kafka: Kafka, s3: S3, prefix: string, ranges: Array<Part & { from: number; to: number }>, nowMs: number): Promise<Map<string, number[]>> {
  const reader = boundaryReader(kafka, s3, prefix);
  const out = new Map<string, number[]>();
  const byTopic = new Map<string, Array<Part & { from: number; to: number }>>();
  for (const r of ranges.filter((x) => x.to > x.from)) byTopic.set(r.topic, [...(byTopic.get(r.topic) ?? []), r]);
  for (const rs of byTopic.values()) {
    const known = await walkBack(reader, rs, rs.map((r) => r.from), addDays(utcDate(nowMs), 1));
    rs.forEach((r, i) => {
      const cuts = cutsWithin([...known.values()].map((b) => b[i]!.offset), r.from, r.to);
      if (cuts.length) out.set(`${r.topic}/${r.partition}`, cuts);
    });
  }
  return out;
}
