/**
 * Three dates of landed records with keys updated on later dates, laid out as landing lays
 * them out (objects rotated at interval ends, two partitions, key k in partition k % 2), with
 * the interval manifests of the three dates. Built from the real sample's rows; for the
 * interval cleaning tests (unit: the plan on DuckDB; integration: the workflow over S3).
 *
 * D1: sample rows 0-699. D2: rows 500-1399 (500-699 updated) and rows 1300-1349 again,
 * updated again (duplicates within the date). D3: rows 1200-2018 (1200-1399 updated), rows
 * 0-99 updated (keys of D1), a line `[v3, v4]` of one key, one key as a numeric string, and in
 * pin three records left out (not JSON, not an object, no usable key).
 */
import type { IntervalManifest } from '../../common/interval';
import { SOURCE_TABLES } from '../../common/source-tables';
import type { Messages, Topic } from './landed-fixture';

export const DATES = ['2024-03-01', '2024-03-02', '2024-03-03'] as const;

export interface LandedLine {
  partition: number;
  line: string;
}

export interface FixtureObject {
  /** `<prefix>.<topic>` */
  topic: string;
  partition: number;
  firstOffset: number;
  lines: string[];
}

export interface IntervalFixture {
  /** Per date (in DATES order), per topic, the lines in landing order. */
  lines: Array<Record<Topic, LandedLine[]>>;
  objects: FixtureObject[];
  manifests: IntervalManifest[];
  /** Per date, how many objects are its own. */
  objectsPerDate: number[];
}

const keyOfMsg = (topic: Topic, m: Record<string, unknown>) => Number(topic === 'pin' ? m.index : m.ind);

function updated(topic: Topic, m: Record<string, unknown>, version: number, categories: string[], countries: string[]): Record<string, unknown> {
  const k = keyOfMsg(topic, m);
  if (topic === 'pin') return { ...m, category: categories[(k + version) % categories.length], follower_count: `${version}${(k % 90) + 10}k`, poster_name: `${String(m.poster_name)} v${version}` };
  if (topic === 'geo') return { ...m, country: countries[(k * 7 + version) % countries.length], timestamp: `${2018 + ((k + version) % 5)}${String(m.timestamp).slice(4)}` };
  return { ...m, age: 20 + ((k + version * 7) % 45), last_name: `${String(m.last_name)}-v${version}` };
}

export function intervalFixture(prefix: string, msgs: Messages, flushSize = 150): IntervalFixture {
  const categories = [...new Set(msgs.pin.map((p) => String(p.category)))].sort();
  const countries = [...new Set(msgs.geo.map((g) => String(g.country)))].sort().slice(0, 12);
  const lines: IntervalFixture['lines'] = [];
  for (let d = 0; d < DATES.length; d++) {
    const perTopic = {} as Record<Topic, LandedLine[]>;
    for (const t of SOURCE_TABLES) {
      const rows = msgs[t.topic];
      const up = (m: Record<string, unknown>, v: number) => updated(t.topic, m, v, categories, countries);
      const out: LandedLine[] = [];
      const push = (m: unknown) => out.push({ partition: keyOfMsg(t.topic, (Array.isArray(m) ? m[0] : m) as Record<string, unknown>) % 2, line: JSON.stringify(m) });
      if (d === 0) rows.slice(0, 700).forEach((m) => push(m));
      if (d === 1) {
        rows.slice(500, 1400).forEach((m, i) => push(i < 200 ? up(m, 2) : m));
        rows.slice(1300, 1350).forEach((m) => push(up(m, 5)));
      }
      if (d === 2) {
        rows.slice(1200, 2019).forEach((m, i) => push(i < 200 ? up(m, 3) : m));
        rows.slice(0, 100).forEach((m) => push(up(m, 3)));
        const last = rows[2018]!;
        push([up(last, 3), up(last, 4)]);
        const k42 = rows[1]!;
        push({ ...up(k42, 6), [t.key]: String(keyOfMsg(t.topic, k42)) });
        if (t.topic === 'pin') {
          out.push({ partition: 0, line: 'not json at all' });
          out.push({ partition: 0, line: '"just a string"' });
          out.push({ partition: 1, line: JSON.stringify({ ...rows[3]!, index: 'x' }) });
        }
      }
      perTopic[t.topic] = out;
    }
    lines.push(perTopic);
  }

  const objects: FixtureObject[] = [];
  const manifests: IntervalManifest[] = [];
  const objectsPerDate: number[] = [];
  const next = new Map<string, number>();
  lines.forEach((perTopic, d) => {
    const ranges: IntervalManifest['ranges'] = [];
    let own = 0;
    for (const t of SOURCE_TABLES) {
      const topic = `${prefix}.${t.topic}`;
      for (const partition of [0, 1]) {
        const mine = perTopic[t.topic].filter((l) => l.partition === partition).map((l) => l.line);
        const start = next.get(`${topic}/${partition}`) ?? 0;
        for (let i = 0; i < mine.length; i += flushSize) {
          objects.push({ topic, partition, firstOffset: start + i, lines: mine.slice(i, i + flushSize) });
          own++;
        }
        next.set(`${topic}/${partition}`, start + mine.length);
        ranges.push({ topic, partition, start, end: start + mine.length });
      }
    }
    const date = DATES[d]!;
    const startsAt = `${date}T00:00:00.000Z`;
    manifests.push({ version: 1, prefix, date, startsAt, endsAt: new Date(Date.parse(startsAt) + 86_400_000).toISOString(), partial: false, resolvedAt: startsAt, ranges });
    objectsPerDate.push(own);
  });
  return { lines, objects, manifests, objectsPerDate };
}

/** The record values of the given dates in landing order (array lines give their elements; lines that are not JSON objects are skipped). */
export function valuesUpTo(f: IntervalFixture, dateIndexes: number[]): Record<Topic, Array<Record<string, unknown>>> {
  const out = { pin: [], geo: [], user: [] } as Record<Topic, Array<Record<string, unknown>>>;
  for (const d of dateIndexes) {
    for (const t of SOURCE_TABLES) {
      for (const l of f.lines[d]![t.topic]) {
        let v: unknown;
        try {
          v = JSON.parse(l.line);
        } catch {
          continue;
        }
        for (const e of Array.isArray(v) ? v : [v]) if (e !== null && typeof e === 'object' && !Array.isArray(e)) out[t.topic].push(e as Record<string, unknown>);
      }
    }
  }
  return out;
}

/** The number of records of one date and topic: an array line counts its elements, any other line one. */
export function recordCount(f: IntervalFixture, d: number, topic: Topic): number {
  return f.lines[d]![topic].reduce((n, l) => n + (l.line.startsWith('[') ? (JSON.parse(l.line) as unknown[]).length : 1), 0);
}
