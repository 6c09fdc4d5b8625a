/**
 * `npm run db:load` and `npm run db:seed` against the stack's MariaDB: the real sample loaded,
 * bad files refused naming file, line and column; seeded data deterministic and shaped like the
 * real data. db:seed's argument checks alone: test/unit/db.test.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { syntheticPost } from '../../scripts/db-seed';
import { query, testDatabase } from '../helpers/data';
import { ensureStack, runScript, SAMPLE_DIR } from '../helpers/env';

function sampleCopy(edit?: (file: string, text: string) => string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-csv-'));
  for (const f of ['pinterest_data.csv', 'geolocation_data.csv', 'user_data.csv']) {
    const text = fs.readFileSync(path.join(SAMPLE_DIR, f), 'utf8');
    fs.writeFileSync(path.join(dir, f), edit ? edit(f, text) : text);
  }
  return dir;
}

async function counts(url: string) {
  const cfg = (await import('../helpers/env')).testConfig({ MYSQL_URL: url });
  const rows = await query<{ t: string; n: number }>(
    cfg,
    "SELECT 'pin' t, COUNT(*) n FROM pinterest_data UNION ALL SELECT 'geo', COUNT(*) FROM geolocation_data UNION ALL SELECT 'user', COUNT(*) FROM user_data",
  );
  return Object.fromEntries(rows.map((r) => [r.t, Number(r.n)]));
}

describe('db:load', () => {
  before(() => ensureStack());

  it('loads the real sample (2,019 rows per table), NULL for empty fields, columns in any order', async () => {
    const { url, config } = await testDatabase({ empty: true });
    // Reorder the geolocation columns: the loader maps by header name.
    const dir = sampleCopy((f, text) => {
      if (f !== 'geolocation_data.csv') return text;
      return text
        .trimEnd()
        .split('\n')
        .map((line) => {
          const [ind, ts, lat, lon, ...country] = line.split(',');
          return [country.join(','), lon, lat, ts, ind].join(',');
        })
        .join('\n');
    });
    const res = runScript('db:load', ['--dir', dir], { MYSQL_URL: url });
    assert.equal(res.code, 0, res.stderr);
    for (const t of ['pinterest_data', 'geolocation_data', 'user_data']) assert.match(res.stdout, new RegExp(`${t}: 2019 rows loaded`));
    assert.deepEqual(await counts(url), { pin: 2019, geo: 2019, user: 2019 });
    const [row] = await query<{ timestamp: string; latitude: number; country: string }>(config, 'SELECT `timestamp`, latitude, country FROM geolocation_data WHERE ind = 4');
    assert.deepEqual(row, { timestamp: '2022-07-07 00:18:41', latitude: -88.8298, country: 'Albania' });
    const [empty] = await query<{ n: number }>(config, "SELECT COUNT(*) n FROM pinterest_data WHERE title IS NULL OR title = ''");
    assert.equal(Number(empty!.n), 1, 'the one empty title became NULL');
    const [nul] = await query<{ n: number }>(config, 'SELECT COUNT(*) n FROM pinterest_data WHERE title IS NULL');
    assert.equal(Number(nul!.n), 1);
  });

  it('refuses non-empty tables without --replace, and replaces them with it', async () => {
    const { url } = await testDatabase({ sample: true });
    const refused = runScript('db:load', ['--dir', SAMPLE_DIR], { MYSQL_URL: url });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /refusing to load into non-empty table\(s\) pinterest_data \(2019 rows\).*pass --replace/);
    const dir = sampleCopy((f, text) => text.trimEnd().split('\n').slice(0, 11).join('\n') + '\n');
    const replaced = runScript('db:load', ['--dir', dir, '--replace'], { MYSQL_URL: url });
    assert.equal(replaced.code, 0, replaced.stderr);
    assert.deepEqual(await counts(url), { pin: 10, geo: 10, user: 10 });
  });

  const malformed: Array<[string, (f: string, t: string) => string, RegExp]> = [
    ['an unknown column', (f, t) => (f === 'user_data.csv' ? t.replace('ind,first_name', 'ind,nickname') : t), /user_data\.csv: line 1: unknown column "nickname"/],
    ['a bad number', (f, t) => (f === 'user_data.csv' ? t.replace(',Acosta,20,', ',Acosta,twenty,') : t), /user_data\.csv: line 2: column age: bad number "twenty"/],
    ['a bad double', (f, t) => (f === 'geolocation_data.csv' ? t.replace('-88.8298', '-88,8298').replace('4,2022-07-07 00:18:41,-88,8298', '4,2022-07-07 00:18:41,"-88,8298"') : t), /geolocation_data\.csv: line 2: column latitude: bad number "-88,8298"/],
    ['a bad datetime', (f, t) => (f === 'geolocation_data.csv' ? t.replace('2022-07-07 00:18:41', '2022-02-30 00:18:41') : t), /geolocation_data\.csv: line 2: column timestamp: bad datetime "2022-02-30 00:18:41" \(no such date or time\)/],
    ['a duplicate key', (f, t) => (f === 'user_data.csv' ? t.replace('\n12,Holly', '\n4,Holly') : t), /user_data\.csv: line 3: column ind: key 4 already on line 2/],
  ];
  for (const [what, edit, message] of malformed) {
    it(`rejects a file with ${what}, naming file, line and column, and loads nothing`, async () => {
      const { url } = await testDatabase({ empty: true });
      const res = runScript('db:load', ['--dir', sampleCopy(edit)], { MYSQL_URL: url });
      assert.equal(res.code, 1, res.stdout);
      assert.match(res.stderr, message);
      const c = await counts(url).catch(() => ({ pin: 0, geo: 0, user: 0 }));
      assert.deepEqual(c, { pin: 0, geo: 0, user: 0 });
    });
  }

  it('accepts ISO-8601 datetimes', async () => {
    const { url, config } = await testDatabase({ empty: true });
    const dir = sampleCopy((f, t) => (f === 'user_data.csv' ? t.replace('2015-10-21 21:26:45', '2015-10-21T21:26:45Z') : t));
    const res = runScript('db:load', ['--dir', dir], { MYSQL_URL: url });
    assert.equal(res.code, 0, res.stderr);
    const [row] = await query<{ d: string }>(config, 'SELECT date_joined d FROM user_data WHERE ind = 4');
    assert.equal(row!.d, '2015-10-21 21:26:45');
  });
});

describe('db:seed', () => {
  before(() => ensureStack());

  it('is deterministic per (seed, key) and has the real data\'s shape', async () => {
    assert.deepEqual(syntheticPost(100, 42), syntheticPost(100, 42));
    assert.notDeepEqual(syntheticPost(100, 42), syntheticPost(101, 42));
    const { url, config } = await testDatabase({ empty: true });
    const res = runScript('db:seed', ['--rows', '20000', '--seed', '100'], { MYSQL_URL: url });
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(await counts(url), { pin: 20000, geo: 20000, user: 20000 });
    const share = async (where: string) => Number((await query<{ n: number }>(config, `SELECT COUNT(*) n FROM pinterest_data WHERE ${where}`))[0]!.n) / 20000;
    const near = (v: number, target: number, tol: number, what: string) => assert.ok(Math.abs(v - target) <= tol, `${what}: ${v} vs ${target}`);
    near(await share("follower_count REGEXP '^[0-9]+k$'"), 1492 / 2019, 0.02, 'k suffix');
    near(await share("follower_count REGEXP '^[0-9]+$'"), 360 / 2019, 0.02, 'plain digits');
    near(await share("follower_count REGEXP '^[0-9]+M$'"), 152 / 2019, 0.02, 'M suffix');
    near(await share("follower_count = 'User Info Error'"), 15 / 2019, 0.005, 'User Info Error');
    near(await share("description = 'No description available Story format'"), 140 / 2019, 0.01, 'story descriptions');
    near(await share("image_src = 'Image src error.'"), 49 / 2019, 0.01, 'image src errors');
    const cats = await query<{ c: string }>(config, 'SELECT DISTINCT category c FROM pinterest_data');
    assert.equal(cats.length, 13);
    const [g] = await query<{ lo: string; hi: string }>(config, 'SELECT MIN(`timestamp`) lo, MAX(`timestamp`) hi FROM geolocation_data');
    assert.ok(g!.lo >= '2017-10' && g!.hi < '2022-11', `${g!.lo} .. ${g!.hi}`);
    const [u] = await query<{ lo: string; hi: string; a: number; b: number }>(config, 'SELECT MIN(date_joined) lo, MAX(date_joined) hi, MIN(age) a, MAX(age) b FROM user_data');
    assert.ok(u!.lo >= '2015-10' && u!.hi < '2017-11' && u!.a === 20 && u!.b === 60, JSON.stringify(u));
    const again = runScript('db:seed', ['--rows', '10'], { MYSQL_URL: url });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /refusing to seed non-empty table\(s\).*--replace/);
  });
});
