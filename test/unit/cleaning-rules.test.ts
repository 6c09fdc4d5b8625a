/**
 * The cleaning rules and analytics definitions of pipeline-spec.md sections 4-5, on the
 * embedded warehouse (DuckDB), over hand-written landed records whose outcomes were worked
 * out by hand from the spec. The same records go through real Spark in spark-equality.test.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parquetToJson, runDuckdbCleaning, type DuckdbRunResult } from '../../adapters/duckdb/cleaning';
import { expandMacros } from '../../sql/render';
import { COORDINATE_CASES, FOLLOWER_CASES, TEXT_CASES, TIMESTAMP_CASES, USER_CASES, writeCases } from '../helpers/cleaning-cases';

type Row = Record<string, unknown>;

describe('cleaning rules and analytics (DuckDB, hand-checked cases)', () => {
  let dir: string;
  let run: DuckdbRunResult;
  const out: Record<string, Row[]> = {};
  const byInd = (table: string) => new Map(out[table]!.map((r) => [r.ind as number, r]));

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-rules-'));
    writeCases(dir, 'cases');
    run = await runDuckdbCleaning({
      dbPath: path.join(dir, 'w.duckdb'),
      schema: 'cases',
      sources: { pin: path.join(dir, 'topics/cases.pin'), geo: path.join(dir, 'topics/cases.geo'), user: path.join(dir, 'topics/cases.user') },
      exportDir: path.join(dir, 'export'),
    });
    for (const [name, file] of Object.entries(run.parquet)) {
      await parquetToJson([file], path.join(dir, 'json', `${name}.json`), name.endsWith('_clean') ? 'ind' : undefined);
      out[name] = JSON.parse(fs.readFileSync(path.join(dir, 'json', `${name}.json`), 'utf8'));
    }
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('counts: records read, duplicates replaced, records left out by reason', () => {
    const pin = run.counts.pin_clean;
    assert.deepEqual(pin.leftOut, { not_a_json_object: 4, no_usable_key: 5 });
    assert.equal(pin.duplicates, 3, 'keys 1, 2 and 3 were each landed twice');
    assert.equal(pin.read, pin.rows + pin.duplicates + 4 + 5);
    assert.equal(out.pin_clean!.length, pin.rows);
    assert.deepEqual(run.counts.geo_clean.leftOut, {});
    assert.equal(run.counts.user_clean.rows, USER_CASES.length + 11);
  });

  test('columns in the spec order, downloaded dropped, rows sorted by key', () => {
    assert.deepEqual(Object.keys(out.pin_clean![0]!), ['ind', 'unique_id', 'title', 'description', 'follower_count', 'poster_name', 'tag_list', 'is_image_or_video', 'image_src', 'save_location', 'category']);
    assert.deepEqual(Object.keys(out.geo_clean![0]!), ['ind', 'country', 'coordinates', 'timestamp']);
    assert.deepEqual(Object.keys(out.user_clean![0]!), ['ind', 'user_name', 'age', 'date_joined']);
    const inds = out.pin_clean!.map((r) => r.ind as number);
    assert.deepEqual(inds, [...inds].sort((a, b) => a - b));
  });

  test('latest record per key: later line, later array element, later object; numeric-string keys', () => {
    const pins = byInd('pin_clean');
    assert.equal(pins.get(1)!.category, 'new');
    assert.equal(pins.get(2)!.category, 'second');
    assert.equal(pins.get(3)!.category, 'in-later-object');
    assert.equal(pins.get(4)!.category, 'string-key');
    assert.equal(pins.get(5)!.category, 'float-key');
    const sparse = pins.get(6)!;
    assert.equal(sparse.category, 'sparse');
    assert.equal(sparse.title, null);
    assert.equal(sparse.follower_count, null);
  });

  test('follower_count: suffixes, decimals, rounding half away from zero, junk -> NULL', () => {
    const pins = byInd('pin_clean');
    FOLLOWER_CASES.forEach(([raw, expected], i) => assert.equal(pins.get(100 + i)!.follower_count, expected, `follower_count ${JSON.stringify(raw)}`));
  });

  test('text rule and placeholders', () => {
    const pins = byInd('pin_clean');
    TEXT_CASES.forEach(([field, raw, expected], i) => assert.equal(pins.get(200 + i)![field], expected, `${field} ${JSON.stringify(raw)}`));
  });

  test('timestamps: the two forms, fractions, impossible dates and other text -> NULL', () => {
    const geos = byInd('geo_clean');
    TIMESTAMP_CASES.forEach(([raw, expected], i) => assert.equal(geos.get(300 + i)!.timestamp, expected, `timestamp ${JSON.stringify(raw)}`));
    assert.equal(geos.get(1)!.country, null, 'blank country');
    assert.equal(geos.get(2)!.country, 'Côte d’Ivoire');
  });

  test('coordinates: [latitude, longitude] as doubles, NULL when either is missing', () => {
    const geos = byInd('geo_clean');
    COORDINATE_CASES.forEach(([lat, lon, expected], i) => assert.deepEqual(geos.get(400 + i)!.coordinates, expected, `coordinates ${lat}, ${lon}`));
  });

  test('user_name from first and last name, age as integer', () => {
    const users = byInd('user_clean');
    USER_CASES.forEach(([first, last, age, name, expectedAge], i) => {
      const u = users.get(500 + i)!;
      assert.equal(u.user_name, name, `user_name ${first} ${last}`);
      assert.equal(u.age, expectedAge, `age ${JSON.stringify(age)}`);
      assert.equal(u.date_joined, '2016-05-01T10:00:00');
    });
  });

  test('popular categories: ties kept, NULL categories and out-of-range years ignored', () => {
    assert.deepEqual(out.popular_category_by_country, [
      { country: 'Bigland', category: 'finance', category_count: 2 },
      { country: 'Tieland', category: 'art', category_count: 2 },
      { country: 'Tieland', category: 'beauty', category_count: 2 },
      { country: 'Ünïcode', category: 'art', category_count: 2 },
    ]);
    assert.deepEqual(out.popular_category_by_year, [
      { post_year: 2018, category: 'art', category_count: 2 },
      { post_year: 2019, category: 'beauty', category_count: 1 },
      { post_year: 2020, category: 'finance', category_count: 2 },
      { post_year: 2021, category: 'art', category_count: 2 },
      { post_year: 2022, category: 'beauty', category_count: 1 },
    ]);
    assert.deepEqual(out.popular_category_by_age_group, [
      { age_group: '18-24', category: 'art', category_count: 2 },
      { age_group: '25-35', category: 'beauty', category_count: 2 },
      { age_group: '36-50', category: 'art', category_count: 2 },
      { age_group: '+50', category: 'art', category_count: 1 },
      { age_group: '+50', category: 'finance', category_count: 1 },
    ]);
  });

  test('top users: NULL posters and follower counts ignored, one row per distinct combination', () => {
    assert.deepEqual(out.top_user_by_country, [
      { country: 'Bigland', poster_name: 'Mega', follower_count: 2000000 },
      { country: 'Bigland', poster_name: 'Mega2', follower_count: 2000000 },
      { country: 'Tieland', poster_name: 'P2', follower_count: 7000 },
      { country: 'Tieland', poster_name: 'P3', follower_count: 7000 },
      { country: 'Ünïcode', poster_name: 'P6', follower_count: 2 },
    ]);
    assert.deepEqual(out.top_country_by_followers, [
      { country: 'Bigland', poster_name: 'Mega', follower_count: 2000000 },
      { country: 'Bigland', poster_name: 'Mega2', follower_count: 2000000 },
    ]);
  });

  test('medians: exact and interpolated, per post, age groups in spec order, years bounded', () => {
    assert.deepEqual(out.median_followers_by_age_group, [
      { age_group: '18-24', median_follower_count: 6000 },
      { age_group: '25-35', median_follower_count: 7000 },
      { age_group: '36-50', median_follower_count: 2 },
      { age_group: '+50', median_follower_count: 2500000 },
    ]);
    assert.deepEqual(out.median_followers_by_join_year, [
      { post_year: 2015, median_follower_count: 6000 },
      { post_year: 2016, median_follower_count: 7000 },
      { post_year: 2017, median_follower_count: 2000000 },
      { post_year: 2019, median_follower_count: 1.5 },
      { post_year: 2020, median_follower_count: 7000 },
    ]);
    assert.deepEqual(out.median_followers_by_age_group_and_join_year, [
      { age_group: '18-24', post_year: 2015, median_follower_count: 6000 },
      { age_group: '25-35', post_year: 2016, median_follower_count: 7000 },
      { age_group: '25-35', post_year: 2020, median_follower_count: 7000 },
      { age_group: '36-50', post_year: 2019, median_follower_count: 1.5 },
      { age_group: '+50', post_year: 2017, median_follower_count: 2500000 },
    ]);
  });

  test('users joined per year: distinct non-NULL names from user_clean alone, 2015-2020', () => {
    assert.deepEqual(out.users_joined_by_year, [
      { post_year: 2015, number_users_joined: 1 },
      { post_year: 2016, number_users_joined: 5 },
      { post_year: 2017, number_users_joined: 1 },
      { post_year: 2019, number_users_joined: 1 },
      { post_year: 2020, number_users_joined: 1 },
    ]);
  });

  test('a rerun replaces the tables (same rows, not appended)', async () => {
    const again = await runDuckdbCleaning({
      dbPath: path.join(dir, 'w.duckdb'),
      schema: 'cases',
      sources: { pin: path.join(dir, 'topics/cases.pin'), geo: path.join(dir, 'topics/cases.geo'), user: path.join(dir, 'topics/cases.user') },
      exportDir: path.join(dir, 'export2'),
    });
    assert.deepEqual(again.rows, run.rows);
  });

  test('nothing landed: empty tables and outputs, not an error', async () => {
    const empty = await runDuckdbCleaning({ dbPath: ':memory:', schema: 'empty', sources: { pin: null, geo: null, user: null }, exportDir: path.join(dir, 'export-empty') });
    assert.deepEqual(Object.values(empty.rows), Array(12).fill(0));
    assert.equal(empty.counts.pin_clean.read, 0);
  });

  test('macro expansion fails loudly on unknown macros', () => {
    assert.throws(() => expandMacros('SELECT @nosuch(x)', 'duckdb'), /unknown SQL macro @nosuch/);
    assert.throws(() => expandMacros('SELECT @text(x', 'spark'), /unbalanced/);
  });
});
