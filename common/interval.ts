/**
 * Data intervals: the run for logical date D (UTC) covers the records of each partition whose
 * offsets lie in [start, end), where start and end come from Kafka's timestamp index (the
 * earliest offset whose timestamp is at or after D 00:00 UTC, and the same for D+1 00:00 UTC;
 * the high watermark when there is none). The first run of D that finds its interval closed records it
 * in a manifest object, `manifests/<prefix>/date=D.json` (written once), and every later run of
 * D reuses it, so a rerun covers the same records whatever was produced since. An interval
 * still open when resolved (today) is `partial`: its end offsets are the high watermarks of
 * that moment, and it is not stored.
 *
 * Stored manifests are the authority on their boundaries: D starts where a stored D-1 ends and
 * ends where a stored D+1 starts, so stored intervals never overlap or leave a hole between
 * them. A record appended after the first record of D+1 belongs to a later interval, whatever
 * its timestamp (late data moves forward, never back into a closed date).
 *
 * Landing rotates objects at interval boundaries, so every landed object lies within one
 * interval: the objects of D are those whose first offset (in their name) is in [start, end).
 * Pure (workflows import it).
 */

/** One partition's part of an interval: offsets [start, end). */
export interface IntervalRange {
  topic: string;
  partition: number;
  start: number;
  end: number;
}

export interface IntervalManifest {
  version: 1;
  prefix: string;
  /** The logical date, YYYY-MM-DD (UTC). */
  date: string;
  /** D 00:00 UTC and D+1 00:00 UTC, ISO-8601. */
  startsAt: string;
  endsAt: string;
  /** True when D+1 00:00 UTC had not passed when the interval was resolved (not stored). */
  partial: boolean;
  /** When the offsets were read from Kafka, ISO-8601. */
  resolvedAt: string;
  ranges: IntervalRange[];
}

export const intervalManifestKey = (prefix: string, date: string): string => `manifests/${prefix}/date=${date}.json`;

/** D 00:00 UTC and D+1 00:00 UTC in epoch milliseconds. */
export function intervalBounds(date: string): { startMs: number; endMs: number } {
  const startMs = Date.parse(`${date}T00:00:00.000Z`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(startMs)) throw new TypeError(`not a date: ${JSON.stringify(date)}`);
  return { startMs, endMs: startMs + 86_400_000 };
}

/** The record count of an interval (sum of end - start; transaction markers included). */
export const intervalOffsets = (m: Pick<IntervalManifest, 'ranges'>): number => m.ranges.reduce((n, r) => n + Math.max(0, r.end - r.start), 0);

const DAY_MS = 86_400_000;

/** The UTC date of an instant (ms since epoch), YYYY-MM-DD. */
export const utcDate = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** The date `days` days after `date` (before it when negative). */
export const addDays = (date: string, days: number): string => utcDate(intervalBounds(date).startMs + days * DAY_MS);

/** Where the manifests of a prefix's dates are listed: every key below is `date=YYYY-MM-DD.json`. */
export const intervalManifestDir = (prefix: string): string => `manifests/${prefix}/date=`;

/** The date of a key under intervalManifestDir(prefix), or null for any other key. */
export function manifestDateOf(prefix: string, key: string): string | null {
  const dir = intervalManifestDir(prefix);
  if (!key.startsWith(dir)) return null;
  const m = /^(\d{4}-\d{2}-\d{2})\.json$/.exec(key.slice(dir.length));
  return m ? m[1]! : null;
}

/** A partition's end offset: landing for a date lands up to, not including, `end`. */
export interface IntervalEnd {
  topic: string;
  partition: number;
  end: number;
}

export const intervalEnds = (m: Pick<IntervalManifest, 'ranges'>): IntervalEnd[] => m.ranges.map(({ topic, partition, end }) => ({ topic, partition, end }));

/** What the daily pipeline reports about the interval it processed. */
export interface IntervalSummary {
  /** Offsets in the interval, sum over partitions of end - start (transaction markers included). */
  records: number;
  /** The interval was still open (today): the run covered the records up to the moment it resolved it. */
  partial: boolean;
  /** The stored manifest; null for a partial interval. */
  manifestKey: string | null;
}

export function intervalSummary(m: IntervalManifest): IntervalSummary {
  return { records: intervalOffsets(m), partial: m.partial, manifestKey: m.partial ? null : intervalManifestKey(m.prefix, m.date) };
}

const isOffset = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/** Problems with a manifest read back from `manifests/<prefix>/date=<date>.json` (empty: fine). */
export function manifestProblems(raw: unknown, prefix: string, date: string): string[] {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return ['not a JSON object'];
  const m = raw as Partial<Record<keyof IntervalManifest, unknown>>;
  const out: string[] = [];
  if (m.version !== 1) out.push(`version ${JSON.stringify(m.version)} is not 1`);
  if (m.prefix !== prefix) out.push(`prefix ${JSON.stringify(m.prefix)} is not ${JSON.stringify(prefix)}`);
  if (m.date !== date) out.push(`date ${JSON.stringify(m.date)} is not ${date}`);
  if (m.partial !== false) out.push('a stored manifest must have partial: false');
  if (!Array.isArray(m.ranges)) return [...out, 'ranges is not a list'];
  m.ranges.forEach((r: Partial<IntervalRange> | null, i) => {
    if (!r || typeof r.topic !== 'string' || !isOffset(r.partition) || !isOffset(r.start) || !isOffset(r.end) || r.end < r.start) out.push(`ranges[${i}] is not {topic, partition, start <= end}`);
  });
  return out;
}

/** The offsets of `boundaries` strictly between `from` and `to`, ascending, each once: where landing closes an object. */
export function cutsWithin(boundaries: Iterable<number>, from: number, to: number): number[] {
  return [...new Set([...boundaries].filter((b) => b > from && b < to))].sort((a, b) => a - b);
}
