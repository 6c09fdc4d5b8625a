/**
 * What the report shows for each analytics output: its title, description and chart (with
 * the chart's legend or summary strip), and the page's sections that group the nine outputs
 * by what they are broken down by (country, year, age group). Pure: rows in, HTML out.
 */
import { ANALYTICS_OUTPUTS, type AnalyticsOutputName } from '../common/analytics';
import { ACCENT, ageGroupOrder, categoryColour, columns, hbars, heatmap, yearLine, yearRange, type ColumnSpec } from './charts';
import { esc, fmtCompact, fmtFull, fmtOrNull, num, text, textWidth, type Row } from './format';

export interface OutputView {
  title: string;
  description: string;
  chartKind: string;
  /** The figure spans the whole row of its section. */
  span?: boolean;
  /** The chart's HTML (SVG and any legend) at a drawing width in px. */
  render: (rows: Row[], width: number) => string;
}

/** A list of the categories present, each with its colour swatch (and a count when given). */
function legend(categories: unknown[], counts?: Map<string, number>): string {
  const seen = [...new Set(categories.map(text))].sort();
  return `<ul class="legend">${seen
    .map((c) => `<li><span class="swatch" style="background:${categoryColour(c)}"></span>${esc(c)}${counts ? ` <b>${counts.get(c) ?? 0}</b>` : ''}</li>`)
    .join('')}</ul>`;
}

/** A strip with one segment per category, as wide as the number of countries it tops. */
function countriesPerCategory(rows: Row[], width: number): string {
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(text(r.category), (counts.get(text(r.category)) ?? 0) + 1);
  const total = rows.length;
  const sorted = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const strip = sorted
    .map(([c, n]) => `<span style="flex:${n};background:${categoryColour(c)}" title="${esc(`${c}: top in ${n} of ${total}`)}">${(n / total) * width >= textWidth(c, 11) + 10 ? esc(c) : ''}</span>`)
    .join('');
  return `<div class="strip-title">Number of countries where each category is the top one (a tie counts for each tied category)</div><div class="strip">${strip}</div>${legend([...counts.keys()], counts)}`;
}

/** Long charts (one bar per country) sit in a scrolling box, 16 px narrower for its scrollbar. */
const scrollBox = (width: number, chart: (width: number) => string) => `<div class="scroll-box">${chart(width - 16)}</div>`;

/** Bars of the poster per country with their follower counts. */
const posterBars = (rows: Row[], width: number, title: string, colour: string) =>
  hbars(
    rows,
    {
      title,
      label: (r) => text(r.country),
      value: (r) => num(r.follower_count),
      colour: () => colour,
      after: (r) => `${text(r.poster_name)} · ${num(r.follower_count) === null ? 'NULL' : fmtCompact(num(r.follower_count)!)}`,
      tooltip: (r) => `${text(r.country)}: ${text(r.poster_name)}, ${fmtOrNull(r.follower_count)} followers`,
    },
    width,
  );

/** Columns of the top category per group (year or age group), ties side by side, with a legend. */
function topCategoryColumns(rows: Row[], width: number, by: { col: string; groups: string[]; title: string; xTitle: string }): string {
  const chart = columns(
    rows,
    {
      title: by.title,
      groups: by.groups,
      group: (r) => text(r[by.col]),
      value: (r) => num(r.category_count),
      colour: (r) => categoryColour(r.category),
      barText: (r) => text(r.category),
      valueText: fmtFull,
      tooltip: (r) => `${text(r[by.col])}: ${text(r.category)} (${text(r.category_count)} posts)`,
      xTitle: by.xTitle,
    },
    width,
  );
  return chart + legend(rows.map((r) => r.category));
}

/** Columns of one value per group (year or age group), all in one colour. */
function valueColumns(rows: Row[], width: number, c: { col: string; groups: string[]; valueCol: string; colour: string; valueText: ColumnSpec['valueText']; tooltip: ColumnSpec['tooltip']; title: string; xTitle: string }): string {
  return columns(
    rows,
    { title: c.title, groups: c.groups, group: (r) => text(r[c.col]), value: (r) => num(r[c.valueCol]), colour: () => c.colour, valueText: c.valueText, tooltip: c.tooltip, xTitle: c.xTitle },
    width,
  );
}

const VIEWS: Record<AnalyticsOutputName, OutputView> = {
  popular_category_by_country: {
    title: 'Most popular category per country',
    description: 'Per country the category with the most posts; tied categories are all shown.',
    chartKind: 'horizontal bars, one per row, grouped by country and coloured by category (scrolling box), above them a strip of countries per top category',
    render: (rows, width) =>
      countriesPerCategory(rows, width) +
      scrollBox(width, (w) =>
        hbars(
          rows,
          {
            title: 'Most popular category per country',
            label: (r) => text(r.country),
            value: (r) => num(r.category_count),
            colour: (r) => categoryColour(r.category),
            after: (r) => `${text(r.category)} · ${text(r.category_count)}`,
            tooltip: (r) => `${text(r.country)}: ${text(r.category)} (${text(r.category_count)} posts)`,
          },
          w,
        ),
      ),
  },
  top_user_by_country: {
    title: 'Top poster per country',
    description: 'Per country the poster(s) with the most followers.',
    chartKind: 'horizontal bars of follower counts, one per row, grouped by country (scrolling box)',
    render: (rows, width) => scrollBox(width, (w) => posterBars(rows, w, 'Top poster per country', ACCENT)),
  },
  top_country_by_followers: {
    title: 'Country with the most-followed poster',
    description: 'The row(s) of the top poster per country with the highest follower count overall.',
    chartKind: 'horizontal bars of follower counts',
    span: true,
    render: (rows, width) => posterBars(rows, width, 'Country with the most-followed poster', '#e60023'),
  },
  popular_category_by_year: {
    title: 'Most popular category per year',
    description: 'Per post year (2018-2022) the category with the most posts.',
    chartKind: 'columns per post year, tied categories side by side, coloured and labelled by category',
    render: (rows, width) =>
      topCategoryColumns(rows, width, { col: 'post_year', groups: yearRange(rows, 'post_year'), title: 'Most popular category per year', xTitle: 'post year' }),
  },
  users_joined_by_year: {
    title: 'Users joined per year',
    description: 'Distinct user names by year joined (2015-2020), from user_clean alone; the column post_year holds the join year.',
    chartKind: 'columns per join year',
    render: (rows, width) =>
      valueColumns(rows, width, {
        col: 'post_year',
        groups: yearRange(rows, 'post_year'),
        valueCol: 'number_users_joined',
        colour: '#59a14f',
        valueText: fmtFull,
        tooltip: (r) => `${text(r.post_year)}: ${text(r.number_users_joined)} users joined`,
        title: 'Users joined per year',
        xTitle: 'join year',
      }),
  },
  median_followers_by_join_year: {
    title: 'Median followers per join year',
    description: 'Median follower count of the posts of users who joined in each year (2015-2020).',
    chartKind: 'line with a point per join year (a missing year breaks the line)',
    render: (rows, width) => yearLine(rows, { yearCol: 'post_year', valueCol: 'median_follower_count', title: 'Median follower count per join year', xTitle: 'join year' }, width),
  },
  popular_category_by_age_group: {
    title: 'Most popular category per age group',
    description: 'Per age group the category with the most posts.',
    chartKind: 'columns per age group, tied categories side by side, coloured and labelled by category',
    render: (rows, width) =>
      topCategoryColumns(rows, width, { col: 'age_group', groups: ageGroupOrder(rows), title: 'Most popular category per age group', xTitle: 'age group' }),
  },
  median_followers_by_age_group: {
    title: 'Median followers per age group',
    description: 'Median follower count of the posts in each age group.',
    chartKind: 'columns per age group',
    render: (rows, width) =>
      valueColumns(rows, width, {
        col: 'age_group',
        groups: ageGroupOrder(rows),
        valueCol: 'median_follower_count',
        colour: ACCENT,
        valueText: fmtCompact,
        tooltip: (r) => `${text(r.age_group)}: median ${fmtOrNull(r.median_follower_count)} followers`,
        title: 'Median follower count per age group',
        xTitle: 'age group',
      }),
  },
  median_followers_by_age_group_and_join_year: {
    title: 'Median followers per age group and join year',
    description: 'Median follower count for each age group and year joined (2015-2020).',
    chartKind: 'heatmap, age group x join year, value in each cell (a missing pair is a dashed empty cell)',
    render: (rows, width) => heatmap(rows, 'Median follower count per age group and join year', width),
  },
};

/** The view of one output. */
export const viewOf = (name: AnalyticsOutputName): OutputView => VIEWS[name];

/**
 * The page's sections: outputs broken down by country, by year, by age group. Widths are
 * the charts' drawing widths in px for the page's 1,260 px content column (2 or 3 figures a row).
 */
export const REPORT_SECTIONS = [
  { id: 'by-country', title: 'By country', columns: 2, outputs: ['popular_category_by_country', 'top_user_by_country', 'top_country_by_followers'] },
  { id: 'by-year', title: 'By year', columns: 3, outputs: ['popular_category_by_year', 'users_joined_by_year', 'median_followers_by_join_year'] },
  { id: 'by-age-group', title: 'By age group', columns: 3, outputs: ['popular_category_by_age_group', 'median_followers_by_age_group', 'median_followers_by_age_group_and_join_year'] },
] as const satisfies readonly { id: string; title: string; columns: 2 | 3; outputs: readonly AnalyticsOutputName[] }[];

const CHART_WIDTH = { 1: 1168, 2: 560, 3: 360 } as const;

/** A figure's chart width: the whole content column when it spans, else its share of the row. */
export const chartWidth = (view: OutputView, sectionColumns: 2 | 3): number => CHART_WIDTH[view.span ? 1 : sectionColumns];

{
  const placed = REPORT_SECTIONS.flatMap((s) => s.outputs as readonly string[]).sort();
  const all = ANALYTICS_OUTPUTS.map((o) => o.name as string).sort();
  if (placed.join() !== all.join()) throw new Error(`report sections must place each analytics output once: ${placed.join()} vs ${all.join()}`);
}

/** The chart type used for each output, for documentation and tests. */
export const CHART_KINDS: Record<AnalyticsOutputName, string> = Object.fromEntries(
  ANALYTICS_OUTPUTS.map((o) => [o.name, VIEWS[o.name].chartKind]),
) as Record<AnalyticsOutputName, string>;
