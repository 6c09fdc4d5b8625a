/**
 * The analytics report: rendered from realistic fixture outputs, opened in headless Chromium
 * (Debian's, installed by test/tools/chromium.ts on first use) with every network request
 * blocked, and checked for what a reader sees: nine charts with one mark per row and a real
 * size, the empty output's note, escaped hostile names, no console error, nothing fetched.
 * Leaves .data/test-artifacts/report.png (full page) and report/report.html to look at.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import type { Browser } from 'playwright-core';
import { AGE_GROUPS, ANALYTICS_OUTPUTS, CLEANED_TABLES } from '../../common/analytics';
import { PROJECT_ROOT } from '../../config';
import { Rng } from '../../common/prng';
import { ensureChromium, launchChromium } from '../tools/chromium';
import { SAMPLE_DIR_DEFAULT } from '../../cli/paths';
import { CHART_KINDS, esc, renderReport, REPORT_SECTIONS, writeReport, type ReportSummary } from '../../report';

const ARTIFACTS = path.join(PROJECT_ROOT, '.data', 'test-artifacts');
const DIR = path.join(ARTIFACTS, 'report');
const SCREENSHOT = path.join(ARTIFACTS, 'report.png');

const CATEGORIES = ['art', 'beauty', 'christmas', 'diy-and-crafts', 'education', 'event-planning', 'finance', 'home-decor', 'mens-fashion', 'quotes', 'tattoos', 'travel', 'vehicles'];
const HOSTILE_POSTER = `<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">Bob & "Alice"`;
const HOSTILE_CATEGORY = `quotes<i class="pwned">!</i>`;
const EMPTY_OUTPUT = 'users_joined_by_year';
const PIN_CLEAN_SENTINEL = 'PIN-CLEAN-MUST-NOT-BE-EMBEDDED';

type Row = Record<string, string | number>;

/** Countries of the real sample (237 names), plus two that test non-ASCII text. */
function sampleCountries(): string[] {
  const csv = fs.readFileSync(path.join(SAMPLE_DIR_DEFAULT, 'geolocation_data.csv'), 'utf8');
  const rows = parse(csv, { columns: true }) as { country: string }[];
  const names = new Set(rows.map((r) => r.country).filter(Boolean));
  names.add("Côte d'Ivoire");
  names.add('日本');
  return [...names].sort((a, b) => a.localeCompare(b, 'en'));
}

/** Outputs shaped as spec section 5 says, with ties, unicode, a hostile name and one empty output. */
function fixtureOutputs(): Record<string, Row[]> {
  const rng = new Rng(20240611);
  const pick = <T>(xs: readonly T[]): T => rng.pick(xs);
  const countries = sampleCountries();

  const byCountry: Row[] = [];
  countries.forEach((country, i) => {
    const count = rng.int(1, 9);
    const first = pick(CATEGORIES);
    byCountry.push({ country, category: first, category_count: count });
    if (i % 9 === 4) {
      // a tie: a second category with the same count
      const second = CATEGORIES[(CATEGORIES.indexOf(first) + 3) % CATEGORIES.length]!;
      byCountry.push({ country, category: second, category_count: count });
    }
  });
  byCountry.sort((a, b) => String(a.country).localeCompare(String(b.country), 'en') || String(a.category).localeCompare(String(b.category)));
  // a hostile category name in one country
  byCountry[3] = { ...byCountry[3]!, category: HOSTILE_CATEGORY };

  const topUser: Row[] = countries.map((country) => ({
    country,
    poster_name: country === '日本' ? HOSTILE_POSTER : `${pick(['Tasty', 'Bored Panda', 'Home Decor Ideas', 'Ink Master', 'DIY Joy', 'Travel + Leisure'])} ${country.slice(0, 3)}`,
    follower_count: pick([12000, 48000, 124000, 350000, 910000, 1500000, 2000000, 3000000]),
  }));
  topUser.push({ country: "Côte d'Ivoire", poster_name: 'Zoë Ångström', follower_count: topUser.find((r) => r.country === "Côte d'Ivoire")!.follower_count! });
  topUser.sort((a, b) => String(a.country).localeCompare(String(b.country), 'en') || String(a.poster_name).localeCompare(String(b.poster_name)));
  for (const r of topUser) if (r.country === '日本' || r.country === 'Albania') r.follower_count = 8_000_000;

  return {
    popular_category_by_country: byCountry,
    popular_category_by_year: [
      { post_year: 2018, category: 'art', category_count: 86 },
      { post_year: 2019, category: 'art', category_count: 91 },
      { post_year: 2020, category: 'christmas', category_count: 103 },
      { post_year: 2020, category: 'travel', category_count: 103 },
      { post_year: 2021, category: 'education', category_count: 112 },
      { post_year: 2022, category: HOSTILE_CATEGORY, category_count: 47 },
    ],
    top_user_by_country: topUser,
    top_country_by_followers: [
      { country: 'Albania', poster_name: 'Tasty Alb', follower_count: 8_000_000 },
      { country: '日本', poster_name: HOSTILE_POSTER, follower_count: 8_000_000 },
    ],
    popular_category_by_age_group: [
      { age_group: '18-24', category: 'mens-fashion', category_count: 182 },
      { age_group: '25-35', category: 'art', category_count: 133 },
      { age_group: '36-50', category: 'finance', category_count: 88 },
      { age_group: '36-50', category: 'vehicles', category_count: 88 },
      { age_group: '+50', category: 'vehicles', category_count: 41 },
    ],
    median_followers_by_age_group: [
      { age_group: '18-24', median_follower_count: 96_500 },
      { age_group: '25-35', median_follower_count: 42_000 },
      { age_group: '36-50', median_follower_count: 6_500.5 },
      { age_group: '+50', median_follower_count: 1_000 },
    ],
    [EMPTY_OUTPUT]: [],
    median_followers_by_join_year: [
      { post_year: 2015, median_follower_count: 44_000 },
      { post_year: 2016, median_follower_count: 24_500 },
      { post_year: 2017, median_follower_count: 8_000 },
      { post_year: 2018, median_follower_count: 2_250 },
      { post_year: 2019, median_follower_count: 1_600 },
      { post_year: 2020, median_follower_count: 950 },
    ],
    median_followers_by_age_group_and_join_year: AGE_GROUPS.flatMap((age_group, gi) =>
      [2015, 2016, 2017, 2018, 2019, 2020]
        .filter((y) => !(age_group === '+50' && y === 2015)) // a missing combination shows as a gap
        .map((post_year) => ({ age_group, post_year, median_follower_count: Math.round(120_000 / (gi + 1) / (post_year - 2013)) + 0.5 * (post_year % 2) })),
    ),
  };
}

function fixtureSummary(outputs: Record<string, Row[]>): ReportSummary {
  return {
    prefix: 'pinflow-<b>test</b>',
    input: 's3://user-pinflow-bucket/topics/',
    warehouse: 'duckdb',
    generatedAt: '2024-06-11T08:30:00.000Z',
    tables: {
      pin_clean: { rows: 2019, read: 2107, duplicates: 85, leftOut: { 'no usable key': 2, 'not a JSON object': 1 } },
      geo_clean: { rows: 2019, read: 2104, duplicates: 84, leftOut: { 'no usable key': 1 } },
      user_clean: { rows: 2019, read: 2103, duplicates: 84, leftOut: {} },
    },
    analytics: Object.fromEntries(
      ANALYTICS_OUTPUTS.map(({ name }) => [name, { rows: outputs[name]!.length, location: `s3://user-pinflow-bucket/analytics/pinflow-test/${name}/part-0.json` }]),
    ),
  };
}

function writeFixture(dir: string): Record<string, Row[]> {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const outputs = fixtureOutputs();
  for (const [name, rows] of Object.entries(outputs)) fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(rows));
  // Cleaned tables are beside the outputs; the report must not read them into the page.
  for (const { name, columns } of CLEANED_TABLES) {
    fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify([Object.fromEntries(columns.map((c) => [c, `${PIN_CLEAN_SENTINEL}-${c}`]))]));
  }
  fs.writeFileSync(path.join(dir, 'summary.json'), JSON.stringify(fixtureSummary(outputs), null, 2));
  return outputs;
}

/** What a page-side check returns for each figure. */
interface FigureFacts {
  name: string;
  caption: string;
  svgs: number;
  svgBox: { w: number; h: number };
  marks: { w: number; h: number; value: string }[];
  tableRows: number;
  noRows: string | null;
}

// Runs in the page (plain JS: this project type-checks without the DOM library).
const FIGURE_FACTS = `[...document.querySelectorAll('figure[data-output]')].map((f) => {
  const svg = f.querySelector('svg.chart');
  const box = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
  return {
    name: f.getAttribute('data-output'),
    caption: f.querySelector('figcaption')?.textContent ?? '',
    svgs: f.querySelectorAll('svg.chart').length,
    svgBox: { w: box.width, h: box.height },
    marks: [...f.querySelectorAll('svg.chart .mark')].map((m) => {
      const b = m.getBBox();
      return { w: b.width, h: b.height, value: m.getAttribute('data-value') };
    }),
    tableRows: f.querySelectorAll('table tbody tr').length,
    noRows: f.querySelector('.no-rows')?.textContent ?? null,
  };
})`;

describe('analytics report', () => {
  let browser: Browser | undefined;
  let outputs: Record<string, Row[]>;
  let reportPath: string;

  before(async () => {
    outputs = writeFixture(DIR);
    reportPath = await writeReport(DIR);
  });
  after(async () => browser?.close());

  it('ensureChromium is idempotent: with the packages installed it only asks dpkg', async () => {
    const first = await ensureChromium();
    const started = Date.now();
    const again = await ensureChromium(() => assert.fail('must not install again'));
    assert.equal(again, first);
    assert.equal(first, '/usr/bin/chromium');
    assert.ok(Date.now() - started < 5_000, `second ensureChromium took ${Date.now() - started} ms`);
  });

  it('writes DIR/report.html: self-contained, escaped, without the cleaned tables', () => {
    assert.equal(reportPath, path.join(DIR, 'report.html'));
    const html = fs.readFileSync(reportPath, 'utf8');
    assert.equal(html, renderReport(JSON.parse(fs.readFileSync(path.join(DIR, 'summary.json'), 'utf8')) as ReportSummary, outputs), 'renderReport is what writeReport writes');
    assert.ok(!html.includes(PIN_CLEAN_SENTINEL), 'the cleaned tables are not embedded');
    const forbidden = html.match(/<script|<img|<iframe|<link|<object|<embed|@import|url\((?!#)/i);
    assert.equal(forbidden?.[0], undefined, 'no script, image, frame, stylesheet link, embed or external url()');
    // The only URL in the page is the SVG namespace (an identifier, never fetched); links are in-page anchors.
    const urls = html.match(/\b(?:https?|ftp|wss?):\/\/[^\s"'<>)]*/gi) ?? [];
    assert.deepEqual([...new Set(urls)], ['http://www.w3.org/2000/svg']);
    for (const m of html.matchAll(/\s(?:href|src)="([^"]*)"/g)) assert.match(m[1]!, /^#/, `in-page link only: ${m[1]}`);
    assert.ok(html.includes(esc(HOSTILE_POSTER)) && html.includes(esc(HOSTILE_CATEGORY)), 'hostile names are escaped');
    assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none';/);
    assert.equal((html.match(/<figure /g) ?? []).length, 9);
    assert.deepEqual(Object.keys(CHART_KINDS), ANALYTICS_OUTPUTS.map((o) => o.name));
  });

  it('a missing output file is shown as missing, not as an empty chart', () => {
    const { [ANALYTICS_OUTPUTS[1].name]: _dropped, ...rest } = outputs;
    const html = renderReport(fixtureSummary(outputs), rest);
    assert.match(html, /Output file missing: popular_category_by_year\.json/);
    // A bare summary and no outputs still render: nine figures, each saying its file is missing.
    const bare = renderReport({} as ReportSummary, {});
    assert.equal((bare.match(/<figure /g) ?? []).length, 9);
    assert.equal((bare.match(/Output file missing/g) ?? []).length, 9);
    assert.equal((bare.match(/not in summary\.json/g) ?? []).length, 3);
  });

  it('rows with NULLs, numbers as strings, unknown groups and gaps still get one mark each', () => {
    const odd: Record<string, Row[]> = {
      popular_category_by_country: [{ country: 'X', category: 'new-category', category_count: '5' }],
      top_user_by_country: [{ country: 'A', poster_name: 'p', follower_count: 'n/a' }],
      top_country_by_followers: [{ country: 'A', poster_name: 'p', follower_count: -3 }],
      popular_category_by_year: [{ post_year: 2010, category: 'art', category_count: 3 }, { post_year: 2014, category: 'art', category_count: 0 }],
      users_joined_by_year: [{ post_year: 1900, number_users_joined: 1 }, { post_year: 2020, number_users_joined: 2.5 }],
      median_followers_by_join_year: [{ post_year: 2015, median_follower_count: 5 }, { post_year: 2017, median_follower_count: '7' }, { post_year: 'x', median_follower_count: 1 }],
      popular_category_by_age_group: [{ age_group: '99+', category: 'art', category_count: 1e10 }],
      median_followers_by_age_group: [{ age_group: '18-24', median_follower_count: '' }],
      median_followers_by_age_group_and_join_year: [{ age_group: '18-24', post_year: 2015, median_follower_count: 3 }, { age_group: '+50', post_year: 2016, median_follower_count: 4000 }],
    };
    const html = renderReport(fixtureSummary(odd), odd);
    const figures = new Map([...html.matchAll(/<figure id="([^"]+)"[\s\S]*?<\/figure>/g)].map((m) => [m[1]!, m[0]]));
    for (const [name, rows] of Object.entries(odd)) {
      const marks = [...figures.get(name)!.matchAll(/class="mark" data-value="([^"]*)"/g)].map((m) => m[1]);
      assert.equal(marks.length, rows.length, `${name}: one mark per row`);
    }
    const values = (name: string) => [...figures.get(name)!.matchAll(/class="mark" data-value="([^"]*)"/g)].map((m) => m[1]);
    assert.deepEqual(values('popular_category_by_country'), ['5'], 'a number written as a string is read as a number');
    assert.deepEqual(values('top_user_by_country'), [''], 'a value that is not a number has no value');
    assert.deepEqual(values('median_followers_by_join_year'), ['5', '7', '1']);
    // Years between the first and last stand on the axis, so a missing year shows as a gap.
    assert.match(figures.get('popular_category_by_year')!, />2012<\/text><text class="none"[^>]*>no row</);
    assert.match(figures.get('median_followers_by_join_year')!, /<path class="area" d="M[\d.]+ [\d.]+M[\d.]+ [\d.]+"\/>/, 'the line breaks at the missing 2016');
    assert.match(figures.get('median_followers_by_age_group_and_join_year')!, /log colour scale/, 'a spread past 20x colours by log(value)');
    assert.match(figures.get('popular_category_by_age_group')!, />99\+<\/text>/, 'an unknown age group gets its own column');
  });

  it('writeReport names the file when summary.json is missing or an output is not a JSON array', async () => {
    const dir = path.join(ARTIFACTS, 'report-bad');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const summaryFile = path.join(dir, 'summary.json');
    await assert.rejects(writeReport(dir), (e: Error) => e.message.startsWith(`${summaryFile}: not found`));
    fs.writeFileSync(summaryFile, '{"prefix": ');
    await assert.rejects(writeReport(dir), (e: Error) => e.message.startsWith(`${summaryFile}: not valid JSON`));
    fs.writeFileSync(summaryFile, '[]');
    await assert.rejects(writeReport(dir), { message: `${summaryFile}: expected a JSON object` });
    fs.writeFileSync(summaryFile, '{}');
    const outputFile = path.join(dir, 'popular_category_by_year.json');
    fs.writeFileSync(outputFile, '{"rows": []}');
    await assert.rejects(writeReport(dir), { message: `${outputFile}: expected a JSON array of rows` });
    assert.ok(!fs.existsSync(path.join(dir, 'report.html')), 'no page is written from bad input');
    fs.writeFileSync(outputFile, '[]');
    const written = fs.readFileSync(await writeReport(dir), 'utf8');
    assert.equal((written.match(/Output file missing/g) ?? []).length, 8, 'the other eight outputs show as missing');
    assert.match(written, /data-output="popular_category_by_year" data-rows="0"/);
  });

  it('renders in headless Chromium: nine charts with one mark per row, nothing fetched, no script run', async () => {
    const started = Date.now();
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
    const attempted: string[] = [];
    const blocked: string[] = [];
    await context.route('**', (route) => {
      const url = route.request().url();
      if (url.startsWith('file://')) return route.continue();
      blocked.push(url);
      return route.abort('blockedbyclient');
    });
    const page = await context.newPage();
    page.on('request', (req) => {
      if (!req.url().startsWith('file://') && !req.url().startsWith('data:')) attempted.push(req.url());
    });
    const consoleErrors: string[] = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.type() === 'warning') consoleErrors.push(`${msg.type()}: ${msg.text()}`);
    });
    page.on('pageerror', (err) => consoleErrors.push(`pageerror: ${err.message}`));

    await page.goto(`file://${reportPath}`, { waitUntil: 'load' });
    // The screenshot first, so it is there to look at when an assertion below fails.
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    assert.ok(fs.statSync(SCREENSHOT).size > 10_000, 'a real screenshot');

    const figures = (await page.evaluate(FIGURE_FACTS)) as FigureFacts[];
    assert.deepEqual(figures.map((f) => f.name), REPORT_SECTIONS.flatMap((s) => s.outputs), 'nine figures, by section');
    assert.deepEqual(figures.map((f) => f.name).sort(), ANALYTICS_OUTPUTS.map((o) => o.name).sort(), 'each output once');
    for (const f of figures) {
      const rows = outputs[f.name]!;
      assert.ok(f.caption.includes(f.name), `${f.name}: the caption names the output`);
      if (rows.length === 0) {
        assert.equal(f.svgs, 0, `${f.name}: no chart for an empty output`);
        assert.match(f.noRows ?? '', /no rows/i, `${f.name}: shows the "no rows" note`);
        assert.equal(f.tableRows, 0);
        continue;
      }
      assert.equal(f.noRows, null, `${f.name}: no "no rows" note`);
      assert.equal(f.svgs, 1, `${f.name}: one chart`);
      assert.ok(f.svgBox.w > 200 && f.svgBox.h > 50, `${f.name}: the chart has a real size (${f.svgBox.w}x${f.svgBox.h})`);
      assert.equal(f.marks.length, rows.length, `${f.name}: one mark per row`);
      for (const [i, m] of f.marks.entries()) {
        assert.ok(m.w > 0 && m.h > 0, `${f.name}: mark ${i} has a rendered size (${m.w}x${m.h})`);
        assert.ok(Number(m.value) > 0, `${f.name}: mark ${i} carries its value`);
      }
      assert.equal(f.tableRows, rows.length, `${f.name}: the table lists every row`);
    }
    // The figures' values are the rows' values, in row order (the by-country bars keep the file's order).
    const byCountry = figures.find((f) => f.name === 'popular_category_by_country')!;
    assert.deepEqual(byCountry.marks.map((m) => Number(m.value)), outputs.popular_category_by_country!.map((r) => r.category_count));
    // A visible mark, not only a DOM one: the first bar of the first chart is on screen with a size.
    const firstBar = await page.locator('figure[data-output="popular_category_by_country"] svg.chart .mark').first().boundingBox();
    assert.ok(firstBar && firstBar.width > 0 && firstBar.height > 0, 'first bar has an on-screen box');

    // Hostile names are text: no script ran, no element was injected, the text reads as given.
    assert.equal(await page.evaluate('typeof window.__pwned'), 'undefined');
    assert.equal(await page.locator('script, img, iframe, .pwned').count(), 0);
    const topCountryText = await page.locator('figure[data-output="top_country_by_followers"] table').innerText();
    assert.ok(topCountryText.includes(HOSTILE_POSTER), 'the hostile poster name shows as text');
    assert.ok((await page.locator('figure[data-output="popular_category_by_year"] table').innerText()).includes(HOSTILE_CATEGORY));
    assert.ok((await page.locator('figure[data-output="top_user_by_country"]').innerText()).includes("Côte d'Ivoire"));
    assert.ok((await page.locator('figure[data-output="top_user_by_country"] table').innerText()).includes('Zoë Ångström'));
    assert.equal(await page.title(), 'pinflow report · pinflow-<b>test</b>');

    // The summary header: rows per table, left-out reasons, duplicates.
    const header = await page.locator('section.cards').innerText();
    for (const t of ['pin_clean', 'geo_clean', 'user_clean']) assert.ok(header.includes(t));
    assert.match(header, /no usable key\s+2/);
    assert.match(header, /not a JSON object\s+1/);
    assert.match(header, /duplicates dropped\s+85/);
    assert.match(header, /2,019\s+rows/);

    assert.deepEqual(blocked, [], 'no request left file://');
    assert.deepEqual(attempted, [], 'no request was attempted beyond the file itself');
    assert.deepEqual(consoleErrors, [], 'no console errors or warnings');
    await context.close();
    process.stderr.write(`report rendered and checked in ${Date.now() - started} ms; screenshot ${path.relative(PROJECT_ROOT, SCREENSHOT)}\n`);
  });
});
