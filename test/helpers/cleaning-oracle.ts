/**
 * An independent computation, in plain JavaScript, of the cleaned tables and the nine
 * analytics outputs (pipeline-spec.md sections 4-5) from landed record values, for tests to
 * compare the warehouse's results with. It covers the value forms the emulator produces
 * (strings, numbers, ISO timestamps, `<n>k`/`<n>M` follower counts, the placeholders); the
 * edge cases of every rule are cleaning-cases.ts's. Rows come out as `parquetToJson` writes
 * them: timestamps `YYYY-MM-DDTHH:MM:SS`, coordinates `[lat, lon]`, NULL as null.
 */
import { AGE_GROUPS } from '../../common/analytics';

type Row = Record<string, unknown>;
export type Tables = { pin_clean: Row[]; geo_clean: Row[]; user_clean: Row[] };

const text = (v: unknown): string | null => (v === null || v === undefined ? null : /^\s*$/.test(String(v)) ? null : String(v));
const unless = (v: string | null, placeholders: string[]) => (v !== null && placeholders.includes(v) ? null : v);

/** A usable key: an integer number, or a numeric string such as `"42"`. */
export function keyOf(v: unknown): number | null {
  const m = /^\s*(-?\d+)(\.0+)?\s*$/.exec(typeof v === 'number' || typeof v === 'string' ? String(v) : '');
  return m ? Number(m[1]) : null;
}

function followers(v: unknown): number | null {
  const m = /^\s*(\d+)(?:\.(\d+))?([kKmM]?)\s*$/.exec(v === null || v === undefined ? '' : String(v));
  if (!m) return null;
  const scale = /[kK]/.test(m[3]!) ? 1e3 : /[mM]/.test(m[3]!) ? 1e6 : 1;
  return Math.round(Number(`${m[1]}.${m[2] ?? '0'}`) * scale);
}

const timestamp = (v: unknown): string | null => {
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})$/.exec(String(v ?? ''));
  return m ? `${m[1]}T${m[2]}` : null;
};
const num = (v: unknown): number | null => (v === null || v === undefined || v === '' || Number.isNaN(Number(v)) ? null : Number(v));

/** The latest value per usable key, values given in landing order (offset order within each key's partition). */
export function latestPerKey(values: Row[], keyField: string): Map<number, Row> {
  const out = new Map<number, Row>();
  for (const v of values) {
    const k = keyOf(v[keyField]);
    if (k !== null) out.set(k, v);
  }
  return out;
}

export function cleanTables(values: { pin: Row[]; geo: Row[]; user: Row[] }): Tables {
  const byInd = (rows: Row[]) => rows.sort((a, b) => (a.ind as number) - (b.ind as number));
  const pin = [...latestPerKey(values.pin, 'index')].map(([ind, p]) => {
    const save = text(p.save_location);
    return {
      ind,
      unique_id: text(p.unique_id),
      title: unless(text(p.title), ['No Title Data Available']),
      description: unless(text(p.description), ['No description available Story format', 'No description available', 'Untitled']),
      follower_count: followers(p.follower_count),
      poster_name: unless(text(p.poster_name), ['User Info Error']),
      tag_list: unless(text(p.tag_list), ['N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e']),
      is_image_or_video: text(p.is_image_or_video),
      image_src: unless(text(p.image_src), ['Image src error.']),
      save_location: save !== null && save.startsWith('Local save in ') ? text(save.slice(14)) : save,
      category: text(p.category),
    };
  });
  const geo = [...latestPerKey(values.geo, 'ind')].map(([ind, g]) => {
    const lat = num(g.latitude);
    const lon = num(g.longitude);
    return { ind, country: text(g.country), coordinates: lat === null || lon === null ? null : [lat, lon], timestamp: timestamp(g.timestamp) };
  });
  const user = [...latestPerKey(values.user, 'ind')].map(([ind, u]) => {
    const first = text(u.first_name);
    const last = text(u.last_name);
    return { ind, user_name: first === null && last === null ? null : [first, last].filter((x) => x !== null).join(' '), age: keyOf(u.age), date_joined: timestamp(u.date_joined) };
  });
  return { pin_clean: byInd(pin), geo_clean: byInd(geo), user_clean: byInd(user) };
}

function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const mid = (v.length - 1) / 2;
  return v[Math.floor(mid)]! + (v[Math.ceil(mid)]! - v[Math.floor(mid)]!) * (mid - Math.floor(mid));
}

const ageGroup = (age: number | null) => (age === null ? null : age >= 18 && age <= 24 ? '18-24' : age >= 25 && age <= 35 ? '25-35' : age >= 36 && age <= 50 ? '36-50' : age > 50 ? '+50' : null);
const groupRank = (g: unknown) => AGE_GROUPS.indexOf(g as (typeof AGE_GROUPS)[number]);
const cmp = (a: unknown, b: unknown) => (a === b ? 0 : (a as string | number) < (b as string | number) ? -1 : 1);

/** Groups rows by a key and keeps, per group, the entries whose value is the group's maximum. */
function topPerGroup<T>(items: T[], group: (t: T) => unknown, value: (t: T) => number): T[] {
  const best = new Map<unknown, number>();
  for (const i of items) best.set(group(i), Math.max(best.get(group(i)) ?? -Infinity, value(i)));
  return items.filter((i) => value(i) === best.get(group(i)));
}

/** The nine outputs over cleaned tables, sorted as the spec says. */
export function analytics(t: Tables): Record<string, Row[]> {
  const geo = new Map(t.geo_clean.map((g) => [g.ind, g]));
  const user = new Map(t.user_clean.map((u) => [u.ind, u]));
  const joined = t.pin_clean
    .filter((p) => geo.has(p.ind) && user.has(p.ind))
    .map((p) => {
      const g = geo.get(p.ind)!;
      const u = user.get(p.ind)!;
      return {
        category: p.category as string | null,
        poster_name: p.poster_name as string | null,
        follower_count: p.follower_count as number | null,
        country: g.country as string | null,
        post_year: g.timestamp ? Number(String(g.timestamp).slice(0, 4)) : null,
        join_year: u.date_joined ? Number(String(u.date_joined).slice(0, 4)) : null,
        age_group: ageGroup(u.age as number | null),
      };
    });
  type J = (typeof joined)[number];
  const popular = (name: string, keep: (j: J) => boolean, group: (j: J) => unknown, order: (a: unknown, b: unknown) => number) => {
    const counts = new Map<string, { g: unknown; category: string; n: number }>();
    for (const j of joined.filter((x) => keep(x) && x.category !== null)) {
      const k = JSON.stringify([group(j), j.category]);
      const c = counts.get(k) ?? { g: group(j), category: j.category!, n: 0 };
      c.n++;
      counts.set(k, c);
    }
    return topPerGroup([...counts.values()], (c) => c.g, (c) => c.n)
      .sort((a, b) => order(a.g, b.g) || cmp(a.category, b.category))
      .map((c) => ({ [name]: c.g, category: c.category, category_count: c.n }));
  };
  const medians = (keep: (j: J) => boolean, keys: (j: J) => unknown[], names: string[], order: (a: unknown[], b: unknown[]) => number) => {
    const groups = new Map<string, { keys: unknown[]; values: number[] }>();
    for (const j of joined.filter((x) => keep(x) && x.follower_count !== null)) {
      const k = JSON.stringify(keys(j));
      const g = groups.get(k) ?? { keys: keys(j), values: [] };
      g.values.push(j.follower_count!);
      groups.set(k, g);
    }
    return [...groups.values()].sort((a, b) => order(a.keys, b.keys)).map((g) => ({ ...Object.fromEntries(names.map((n, i) => [n, g.keys[i]])), median_follower_count: median(g.values) }));
  };
  const joinYear = (j: J) => j.join_year !== null && j.join_year >= 2015 && j.join_year <= 2020;
  const posters = new Map<string, { country: string; poster_name: string; follower_count: number }>();
  for (const j of joined) {
    if (j.country === null || j.poster_name === null || j.follower_count === null) continue;
    posters.set(JSON.stringify([j.country, j.poster_name, j.follower_count]), { country: j.country, poster_name: j.poster_name, follower_count: j.follower_count });
  }
  const byCountryPoster = (a: { country: string; poster_name: string }, b: { country: string; poster_name: string }) => cmp(a.country, b.country) || cmp(a.poster_name, b.poster_name);
  const topUser = topPerGroup([...posters.values()], (p) => p.country, (p) => p.follower_count).sort(byCountryPoster);
  const names = new Map<number, Set<string>>();
  for (const u of t.user_clean) {
    const y = u.date_joined ? Number(String(u.date_joined).slice(0, 4)) : null;
    if (y !== null && y >= 2015 && y <= 2020 && u.user_name !== null) names.set(y, (names.get(y) ?? new Set()).add(u.user_name as string));
  }
  return {
    popular_category_by_country: popular('country', (j) => j.country !== null, (j) => j.country, cmp),
    popular_category_by_year: popular('post_year', (j) => j.post_year !== null && j.post_year >= 2018 && j.post_year <= 2022, (j) => j.post_year, cmp),
    top_user_by_country: topUser,
    top_country_by_followers: topPerGroup(topUser, () => 0, (p) => p.follower_count).sort(byCountryPoster),
    popular_category_by_age_group: popular('age_group', (j) => j.age_group !== null, (j) => j.age_group, (a, b) => groupRank(a) - groupRank(b)),
    median_followers_by_age_group: medians((j) => j.age_group !== null, (j) => [j.age_group], ['age_group'], (a, b) => groupRank(a[0]) - groupRank(b[0])),
    users_joined_by_year: [...names].sort(([a], [b]) => a - b).map(([y, s]) => ({ post_year: y, number_users_joined: s.size })),
    median_followers_by_join_year: medians(joinYear, (j) => [j.join_year], ['post_year'], (a, b) => cmp(a[0], b[0])),
    median_followers_by_age_group_and_join_year: medians(
      (j) => j.age_group !== null && joinYear(j),
      (j) => [j.age_group, j.join_year],
      ['age_group', 'post_year'],
      (a, b) => groupRank(a[0]) - groupRank(b[0]) || cmp(a[1], b[1]),
    ),
  };
}
