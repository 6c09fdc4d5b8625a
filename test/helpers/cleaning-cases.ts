/**
 * Hand-written landed records that exercise every cleaning rule and analytics definition of
 * pipeline-spec.md sections 4-5 (edge values, ties, NULLs, boundaries, unicode), with the
 * outcomes worked out by hand from the spec. Shared by the DuckDB rules test and the
 * Spark-equality test.
 */
import { writeTopicObjects } from './landed-fixture';

const pin = (index: unknown, fields: Record<string, unknown> = {}) => ({
  index,
  unique_id: `uuid-${String(index)}`,
  title: 'A title',
  description: 'A description',
  poster_name: `poster ${String(index)}`,
  follower_count: '10',
  tag_list: 'a,b',
  is_image_or_video: 'image',
  image_src: 'https://example.org/x.jpg',
  downloaded: 1,
  save_location: 'Local save in /data/art',
  category: 'art',
  ...fields,
});
const geo = (ind: unknown, fields: Record<string, unknown> = {}) => ({ ind, timestamp: '2020-01-01T00:00:00', latitude: 1.5, longitude: -2.25, country: 'Aland', ...fields });
const user = (ind: unknown, fields: Record<string, unknown> = {}) => ({ ind, first_name: 'Ann', last_name: 'Lee', age: 30, date_joined: '2016-05-01T10:00:00', ...fields });
const line = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

/** follower_count raw value -> expected BIGINT (keys 100..) */
export const FOLLOWER_CASES: Array<[unknown, number | null]> = [
  ['124k', 124000],
  ['1.5k', 1500],
  ['2M', 2000000],
  ['950', 950],
  [' 950 ', 950],
  ['1.5m', 1500000],
  ['0.0005k', 1], // 0.5 rounds away from zero
  ['0.0004k', 0],
  ['1.2345k', 1235],
  ['1.2344k', 1234],
  ['2.5', 3],
  ['2.4999', 2],
  ['1.0000005M', 1000001],
  ['007', 7],
  ['12K', 12000],
  ['1,000', null],
  ['1.5 k', null],
  ['-5', null],
  ['k', null],
  ['1.k', null],
  ['.5k', null],
  ['User Info Error', null],
  ['', null],
  ['   ', null],
  [950, 950], // a JSON number
  [null, null],
  ['99999999999999999999', null], // out of BIGINT range
  ['4611686018427387904', 4611686018427387904], // 19 digits (2^62, exact in JSON): the DECIMAL path
  ['0000000000000000000042.5', 43], // many leading zeros
  ['9223372036854775.8075k', null], // scales past BIGINT max
];

/** Text-rule and placeholder cases on pin columns (keys 200..): [field, raw, expected] */
export const TEXT_CASES: Array<[string, unknown, unknown]> = [
  ['title', '   ', null],
  ['title', '\t\n', null],
  ['title', '\u00a0\u3000', null], // Unicode spaces
  ['title', '', null],
  ['title', ' keep  inner ', ' keep  inner '],
  ['title', 'No Title Data Available', null],
  ['title', 'No Title Data Available ', 'No Title Data Available '], // not exactly the placeholder
  ['description', 'No description available Story format', null],
  ['description', 'No description available', null],
  ['description', 'Untitled', null],
  ['description', 'untitled', 'untitled'],
  ['poster_name', 'User Info Error', null],
  ['poster_name', 'Zoë 😀 日本', 'Zoë 😀 日本'],
  ['tag_list', 'N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e', null],
  ['image_src', 'Image src error.', null],
  ['save_location', 'Local save in /data/diy-and-crafts', '/data/diy-and-crafts'],
  ['save_location', 'Local save in ', null],
  ['save_location', 'local save in /x', 'local save in /x'],
  ['save_location', '/already/clean', '/already/clean'],
  ['category', ' ', null],
  ['is_image_or_video', 'multi-video(story page format)', 'multi-video(story page format)'],
  ['unique_id', null, null],
];

/** geo timestamp raw -> expected ISO text in JSON output (keys 300..) */
export const TIMESTAMP_CASES: Array<[unknown, string | null]> = [
  ['2020-08-28T03:52:47', '2020-08-28T03:52:47'],
  ['2020-08-28 03:52:47', '2020-08-28T03:52:47'],
  ['2020-08-28T03:52:47.5', '2020-08-28T03:52:47.5'],
  ['2020-08-28 03:52:47.123456', '2020-08-28T03:52:47.123456'],
  ['2020-08-28T03:52:47.1234567', '2020-08-28T03:52:47.123456'],
  ['2020-02-29T12:00:00', '2020-02-29T12:00:00'],
  ['2021-02-29T12:00:00', null],
  ['2020-02-30 00:00:00', null],
  ['2020-08-28', null],
  ['2020-08-28T03:52:47Z', null],
  ['2020-08-28T24:00:00', null],
  ['2020-8-28T03:52:47', null],
  [' 2020-08-28T03:52:47', null],
  ['28/08/2020 03:52:47', null],
  ['', null],
  [null, null],
  [1598586767, null],
];

/** latitude/longitude raw -> expected coordinates (keys 400..) */
export const COORDINATE_CASES: Array<[unknown, unknown, number[] | null]> = [
  [12.5, -3.25, [12.5, -3.25]],
  ['12.5', '-3.25', [12.5, -3.25]],
  [null, 4, null],
  [4, null, null],
  ['north', 4, null],
  [0, 0, [0, 0]],
];

/** user cases (keys 500..): [first, last, age, expected user_name, expected age] */
export const USER_CASES: Array<[unknown, unknown, unknown, string | null, number | null]> = [
  ['Ann', 'Lee', 30, 'Ann Lee', 30],
  [null, 'Smith', '41', 'Smith', 41],
  ['Solo', null, 30.0, 'Solo', 30],
  ['  ', '', 25.5, null, null],
  [null, null, 'x', null, null],
  ['José', 'Núñez', ' 22 ', 'José Núñez', 22],
  ['Big', 'Age', 99999999999, 'Big Age', null],
];

/**
 * Writes the cases as landed objects of `<prefix>.pin|geo|user` under `root` and returns
 * the analytics fixture facts the tests assert.
 */
export function writeCases(root: string, prefix: string) {
  const pins: string[] = [];
  const geos: string[] = [];
  const users: string[] = [];

  // Keys 1-3: latest record wins (line order, array element order, later object).
  pins.push(line(pin(1, { category: 'old' })), line(pin(1, { category: 'new' })));
  pins.push(line([pin(2, { category: 'first' }), pin(2, { category: 'second' })]));
  pins.push(line(pin(3, { category: 'in-first-object' })));
  // Keys as numeric strings and integral numbers are keys.
  pins.push(line(pin('4', { category: 'string-key' })), line(pin(5, { category: 'float-key' })).replace('"index":5,', '"index":5.0,'));
  // Records with no usable key, and lines that are not JSON objects.
  pins.push(line(pin(null)), line(pin('abc')), line(pin(4.5)), line({ title: 'no key at all' }), line(pin('')));
  pins.push('not json at all', '42', '"a string"', '[]');
  // Unknown extra fields are ignored; missing columns become NULL.
  pins.push(line({ index: 6, category: 'sparse', extra: { nested: true } }));
  FOLLOWER_CASES.forEach(([raw], i) => pins.push(line(pin(100 + i, { follower_count: raw }))));
  TEXT_CASES.forEach(([field, raw], i) => pins.push(line(pin(200 + i, { [field]: raw }))));

  TIMESTAMP_CASES.forEach(([raw], i) => geos.push(line(geo(300 + i, { timestamp: raw }))));
  COORDINATE_CASES.forEach(([lat, lon], i) => geos.push(line(geo(400 + i, { latitude: lat, longitude: lon }))));
  geos.push(line(geo(1, { country: '   ' })), line(geo(2, { country: 'Côte d’Ivoire' })));
  USER_CASES.forEach(([first, last, age], i) => users.push(line(user(500 + i, { first_name: first, last_name: last, age }))));

  // Analytics fixture, keys 1000+: posts in all three tables.
  const post = (k: number, p: Record<string, unknown>, g: Record<string, unknown>, u: Record<string, unknown>) => {
    pins.push(line(pin(k, p)));
    geos.push(line(geo(k, g)));
    users.push(line(user(k, u)));
  };
  // Country "Tieland": art 2 posts, beauty 2 posts (a tie: both kept), travel 1; a NULL category.
  post(1000, { category: 'art', poster_name: 'P1', follower_count: '5k' }, { country: 'Tieland', timestamp: '2018-03-01T00:00:00' }, { age: 18, date_joined: '2015-01-01T00:00:00' });
  post(1001, { category: 'art', poster_name: 'P2', follower_count: '7k' }, { country: 'Tieland', timestamp: '2018-03-02T00:00:00' }, { age: 24, date_joined: '2015-06-01T00:00:00' });
  post(1002, { category: 'beauty', poster_name: 'P2', follower_count: '7k' }, { country: 'Tieland', timestamp: '2019-03-02T00:00:00' }, { age: 25, date_joined: '2016-06-01T00:00:00' });
  post(1003, { category: 'beauty', poster_name: 'P3', follower_count: '7k' }, { country: 'Tieland', timestamp: '2022-12-31T23:59:59' }, { age: 35, date_joined: '2020-12-31T23:59:59' });
  post(1004, { category: 'travel', poster_name: 'User Info Error', follower_count: '9k' }, { country: 'Tieland', timestamp: '2023-01-01T00:00:00' }, { age: 36, date_joined: '2021-01-01T00:00:00' });
  post(1005, { category: ' ', poster_name: 'P4', follower_count: 'User Info Error' }, { country: 'Tieland', timestamp: '2017-12-31T23:59:59' }, { age: 50, date_joined: '2014-12-31T23:59:59' });
  // Country "Bigland": one huge poster; ages 51 and 17 (no group); a NULL country post.
  post(1006, { category: 'finance', poster_name: 'Mega', follower_count: '2M' }, { country: 'Bigland', timestamp: '2020-05-05T05:05:05' }, { age: 51, date_joined: '2017-01-01T00:00:00' });
  post(1007, { category: 'finance', poster_name: 'Mega2', follower_count: '2M' }, { country: 'Bigland', timestamp: '2020-05-06T05:05:05' }, { age: 17, date_joined: '2017-02-01T00:00:00' });
  post(1008, { category: 'art', poster_name: 'Nowhere', follower_count: '3M' }, { country: '' }, { age: 60, date_joined: '2017-03-01T00:00:00' });
  // Same first/last name twice in one join year: one distinct user name.
  post(1009, { category: 'art', poster_name: 'P5', follower_count: '1' }, { country: 'Ünïcode', timestamp: '2021-01-01T00:00:00' }, { first_name: 'Same', last_name: 'Name', age: 40, date_joined: '2019-07-07T00:00:00' });
  post(1010, { category: 'art', poster_name: 'P6', follower_count: '2' }, { country: 'Ünïcode', timestamp: '2021-01-02T00:00:00' }, { first_name: 'Same', last_name: 'Name', age: 40, date_joined: '2019-08-08T00:00:00' });
  // A post missing from user: not in joined.
  pins.push(line(pin(1011, { category: 'vehicles' })));
  geos.push(line(geo(1011, { country: 'Tieland' })));

  // Objects: first object lines then a later object that overrides key 3 (higher offset).
  const write = (topic: string, lines: string[], later: string[]) => {
    writeTopicObjects(root, `${prefix}.${topic}`, lines, { flushSize: lines.length, partition: 0, firstOffset: 0 });
    if (later.length) writeTopicObjects(root, `${prefix}.${topic}`, later, { flushSize: later.length, partition: 0, firstOffset: 100_000 });
  };
  write('pin', pins, [line(pin(3, { category: 'in-later-object' }))]);
  write('geo', geos, []);
  write('user', users, []);
  return { pinLines: pins.length + 1, geoLines: geos.length, userLines: users.length };
}
