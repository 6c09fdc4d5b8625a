/**
 * The report's charts, drawn on the server as inline SVG: horizontal bars, columns, a year
 * line and a heatmap. Each returns one `<svg class="chart">` holding one `.mark` per row (a
 * rect or circle with the row's value in `data-value` and its full text in a `<title>`
 * tooltip), so a reader and a test can match marks to rows. Pure: same rows, same SVG; every
 * piece of data goes through `esc`. Styling is by class; the page's CSS (page.ts) draws it.
 */
import { AGE_GROUPS } from '../common/analytics';
import { esc, fmtCompact, fmtOrNull, num, r1, text, textWidth, truncate, type Row } from './format';

// ---------------------------------------------------------------------------------------
// Colours: one fixed colour per known category, so a category looks the same in every chart.

const CATEGORY_COLOURS: Record<string, string> = {
  art: '#4e79a7',
  beauty: '#f28e2b',
  christmas: '#e15759',
  'diy-and-crafts': '#76b7b2',
  education: '#59a14f',
  'event-planning': '#edc948',
  finance: '#b07aa1',
  'home-decor': '#ff9da7',
  'mens-fashion': '#9c755f',
  quotes: '#79706e',
  tattoos: '#499894',
  travel: '#86bcb6',
  vehicles: '#d37295',
};
const EXTRA_COLOURS = ['#a0cbe8', '#ffbe7d', '#8cd17d', '#b6992d', '#f1ce63', '#d4a6c8', '#fabfd2', '#d7b5a6', '#bab0ac'];

/** The colour of single-series charts (and of the year line). */
export const ACCENT = '#3b6ea8';

/** A known category's fixed colour; an unknown one gets a stable colour from its name. */
export function categoryColour(category: unknown): string {
  const c = text(category);
  const known = CATEGORY_COLOURS[c];
  if (known) return known;
  let h = 0;
  for (const ch of c) h = (h * 31 + ch.codePointAt(0)!) >>> 0;
  return EXTRA_COLOURS[h % EXTRA_COLOURS.length]!;
}

/** Sequential blue scale: t in [0,1] -> colour, light to dark. */
function blues(t: number): string {
  const a = [232, 241, 250];
  const b = [16, 62, 120];
  const c = a.map((x, i) => Math.round(x + (b[i]! - x) * Math.min(1, Math.max(0, t))));
  return `rgb(${c.join(',')})`;
}

// ---------------------------------------------------------------------------------------
// Scales and category orders

function niceStep(rough: number): number {
  if (rough <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(rough));
  const f = rough / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
}

/** Ticks from 0 past `max`; counts (integers) never get fractional ticks. */
function niceTicks(max: number, count = 4, integer = false): number[] {
  const raw = niceStep((max > 0 ? max : 1) / count);
  const step = integer ? Math.max(1, Math.round(raw)) : raw;
  const top = Math.max(step, Math.ceil((max > 0 ? max : 1) / step) * step);
  const ticks: number[] = [];
  for (let t = 0; t <= top + step / 2; t += step) ticks.push(t);
  return ticks;
}

const allIntegers = (values: (number | null)[]) => values.every((v) => v === null || Number.isInteger(v));

/** The age groups in spec order, then any unknown group in the rows in first-seen order. */
export function ageGroupOrder(rows: Row[]): string[] {
  const extra = [...new Set(rows.map((r) => text(r.age_group)))].filter((g) => !(AGE_GROUPS as readonly string[]).includes(g));
  return [...AGE_GROUPS, ...extra];
}

/** All years from the smallest to the largest present, so a missing year shows as a gap. */
export function yearRange(rows: Row[], col: string): string[] {
  const years = rows.map((r) => num(r[col])).filter((y): y is number => y !== null && Number.isInteger(y));
  if (years.length === 0) return [...new Set(rows.map((r) => text(r[col])))];
  const lo = Math.min(...years);
  const hi = Math.max(...years);
  if (hi - lo > 60) return [...new Set(years.map(String))].sort();
  return Array.from({ length: hi - lo + 1 }, (_, i) => String(lo + i));
}

// ---------------------------------------------------------------------------------------
// SVG pieces

const svgOpen = (w: number, h: number, label: string) =>
  `<svg class="chart" role="img" aria-label="${esc(label)}" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" xmlns="http://www.w3.org/2000/svg">`;

const mark = (shape: 'rect' | 'circle', attrs: string, value: number | null, tooltip: string) =>
  `<${shape} class="mark" data-value="${value ?? ''}" ${attrs}><title>${esc(tooltip)}</title></${shape}>`;

/** A plot with a value axis going up from a baseline: columns and the year line. */
interface ValuePlot {
  width: number;
  height: number;
  m: { l: number; r: number; t: number; b: number };
  plotW: number;
  plotH: number;
  ticks: number[];
  /** Value -> y; negative values sit on the baseline. */
  y: (v: number) => number;
}

function valuePlot(width: number, height: number, m: ValuePlot['m'], values: (number | null)[], integer: boolean): ValuePlot {
  const plotW = width - m.l - m.r;
  const plotH = height - m.t - m.b;
  const ticks = niceTicks(Math.max(0, ...values.map((v) => v ?? 0)), 5, integer);
  const domain = ticks[ticks.length - 1]!;
  return { width, height, m, plotW, plotH, ticks, y: (v) => m.t + plotH - (Math.max(0, v) / domain) * plotH };
}

/** Horizontal grid lines with their value labels on the left. */
function valueGrid({ m, width, ticks, y }: ValuePlot): string {
  return ticks
    .map(
      (t) =>
        `<line class="grid" x1="${m.l}" x2="${width - m.r}" y1="${r1(y(t))}" y2="${r1(y(t))}"/>` +
        `<text class="tick" x="${m.l - 6}" y="${r1(y(t)) + 4}" text-anchor="end">${esc(fmtCompact(t))}</text>`,
    )
    .join('');
}

/** A category label under the plot, centred on `x`. */
const xLabel = (p: ValuePlot, x: number, label: string) =>
  `<text class="label" x="${r1(x)}" y="${p.height - p.m.b + 18}" text-anchor="middle">${esc(label)}</text>`;

/** The baseline and the axis title under it; closes the SVG. */
function xAxisAndClose({ m, width, height, plotW, plotH }: ValuePlot, title: string): string {
  return (
    `<line class="axis" x1="${m.l}" x2="${width - m.r}" y1="${m.t + plotH}" y2="${m.t + plotH}"/>` +
    `<text class="axis-title" x="${m.l + plotW / 2}" y="${height - 4}" text-anchor="middle">${esc(title)}</text></svg>`
  );
}

// ---------------------------------------------------------------------------------------
// Charts

export interface HBarSpec {
  label: (r: Row) => string;
  value: (r: Row) => number | null;
  colour: (r: Row) => string;
  after: (r: Row) => string;
  tooltip: (r: Row) => string;
  title: string;
}

/**
 * Horizontal bars, one per row, in row order. Consecutive rows with the same label (ties)
 * share one label and sit in one band, separated from the next label by a rule.
 */
export function hbars(rows: Row[], spec: HBarSpec, width = 560): string {
  const rowH = 20;
  const top = 22;
  const labels = rows.map(spec.label);
  const labelW = Math.min(170, Math.max(60, Math.max(...labels.map((l) => textWidth(l))) + 14));
  // Room after the longest bar for a typical value text; a longer one is cut (full text in its tooltip and the table).
  const afterWidths = rows.map((r) => textWidth(spec.after(r), 11)).sort((a, b) => a - b);
  const afterW = Math.min(width * 0.3, Math.max(40, afterWidths[Math.floor(afterWidths.length * 0.9)]! + 12));
  const barMax = width - labelW - afterW - 8;
  const values = rows.map(spec.value);
  const max = Math.max(0, ...values.map((v) => v ?? 0));
  const ticks = niceTicks(max, width > 700 ? 8 : 4, allIntegers(values));
  const domain = ticks[ticks.length - 1]!;
  const x = (v: number) => labelW + (Math.max(0, v) / domain) * barMax;
  const h = top + rows.length * rowH + 6;
  const parts: string[] = [svgOpen(width, h, spec.title)];
  for (const t of ticks) {
    parts.push(`<line class="grid" x1="${r1(x(t))}" x2="${r1(x(t))}" y1="${top - 4}" y2="${h - 4}"/>`);
    parts.push(`<text class="tick" x="${r1(x(t))}" y="${top - 8}" text-anchor="middle">${esc(fmtCompact(t))}</text>`);
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    const first = i === 0 || labels[i] !== labels[i - 1];
    if (first && i > 0) parts.push(`<line class="sep" x1="0" x2="${width}" y1="${y}" y2="${y}"/>`);
    if (first) parts.push(`<text class="label" x="${labelW - 8}" y="${y + rowH / 2 + 4}" text-anchor="end">${esc(truncate(labels[i]!, labelW - 12))}<title>${esc(labels[i])}</title></text>`);
    const v = values[i] ?? null;
    const w = Math.max(v !== null && v > 0 ? 2 : 0, x(v ?? 0) - labelW);
    parts.push(mark('rect', `x="${labelW}" y="${y + 3}" width="${r1(w)}" height="${rowH - 6}" rx="2" fill="${spec.colour(r)}"`, v, spec.tooltip(r)));
    parts.push(`<text class="value" x="${r1(labelW + w + 5)}" y="${y + rowH / 2 + 4}">${esc(truncate(spec.after(r), width - labelW - w - 10, 11))}</text>`);
  });
  parts.push(`<line class="axis" x1="${labelW}" x2="${labelW}" y1="${top - 4}" y2="${h - 4}"/>`);
  parts.push('</svg>');
  return parts.join('');
}

export interface ColumnSpec {
  groups: string[];
  group: (r: Row) => string;
  value: (r: Row) => number | null;
  colour: (r: Row) => string;
  /** Text written along the bar (e.g. the category); omitted when undefined. */
  barText?: (r: Row) => string;
  valueText: (n: number) => string;
  tooltip: (r: Row) => string;
  title: string;
  xTitle: string;
}

/** Vertical columns on a category axis; rows sharing a group (ties) stand side by side. */
export function columns(rows: Row[], spec: ColumnSpec, width = 560): string {
  const values = rows.map(spec.value);
  const p = valuePlot(width, 300, { l: 52, r: 12, t: 22, b: 42 }, values, allIntegers(values));
  const { m, plotH, y } = p;
  const base = m.t + plotH;
  const band = p.plotW / Math.max(1, spec.groups.length);
  const parts: string[] = [svgOpen(width, p.height, spec.title), valueGrid(p)];
  spec.groups.forEach((g, gi) => {
    const members = rows.map((r, i) => ({ r, i })).filter(({ r }) => spec.group(r) === g);
    const x0 = m.l + gi * band;
    parts.push(xLabel(p, x0 + band / 2, truncate(g, band - 4)));
    if (members.length === 0) {
      parts.push(`<text class="none" x="${r1(x0 + band / 2)}" y="${base - 8}" text-anchor="middle">no row</text>`);
      return;
    }
    const inner = band * 0.78;
    const bw = Math.min(64, inner / members.length);
    const start = x0 + (band - bw * members.length) / 2;
    members.forEach(({ r, i }, k) => {
      const v = values[i] ?? null;
      const bx = start + k * bw + 1.5;
      const bh = Math.max(v !== null && v > 0 ? 2 : 0, base - y(v ?? 0));
      parts.push(mark('rect', `x="${r1(bx)}" y="${r1(base - bh)}" width="${r1(bw - 3)}" height="${r1(bh)}" rx="2" fill="${spec.colour(r)}"`, v, spec.tooltip(r)));
      if (v !== null) parts.push(`<text class="value" x="${r1(bx + (bw - 3) / 2)}" y="${r1(base - bh - 5)}" text-anchor="middle">${esc(spec.valueText(v))}</text>`);
      if (spec.barText) {
        const label = spec.barText(r);
        const cx = bx + (bw - 3) / 2 + 4;
        const fits = textWidth(label, 11) + 10 <= bh && bw >= 16;
        if (fits) parts.push(`<text class="bar-text" transform="translate(${r1(cx)} ${r1(base - 6)}) rotate(-90)">${esc(label)}</text>`);
        else parts.push(`<text class="bar-text outside" transform="translate(${r1(cx)} ${r1(base - bh - 22)}) rotate(-90)">${esc(truncate(label, Math.max(30, base - bh - 26), 11))}</text>`);
      }
    });
  });
  parts.push(xAxisAndClose(p, spec.xTitle));
  return parts.join('');
}

/** A line over consecutive years with one circle per row; a missing year breaks the line. */
export function yearLine(rows: Row[], opts: { yearCol: string; valueCol: string; title: string; xTitle: string }, width = 560): string {
  const years = yearRange(rows, opts.yearCol);
  const p = valuePlot(width, 280, { l: 52, r: 24, t: 24, b: 42 }, rows.map((r) => num(r[opts.valueCol])), false);
  const { m, y } = p;
  const step = p.plotW / Math.max(1, years.length);
  const x = (yi: number) => m.l + step * (yi + 0.5);
  const parts: string[] = [svgOpen(width, p.height, opts.title), valueGrid(p)];
  years.forEach((yr, yi) => parts.push(xLabel(p, x(yi), yr)));
  const points = rows.map((r) => ({ r, yi: years.indexOf(text(r[opts.yearCol])), v: num(r[opts.valueCol]) }));
  const plotted = points.filter((pt) => pt.yi >= 0 && pt.v !== null).sort((a, b) => a.yi - b.yi);
  let d = '';
  plotted.forEach((pt, k) => {
    const joined = k > 0 && plotted[k - 1]!.yi === pt.yi - 1;
    d += `${joined ? 'L' : 'M'}${r1(x(pt.yi))} ${r1(y(pt.v!))}`;
  });
  parts.push(`<path class="area" d="${d}"/>`);
  points.forEach((pt) => {
    const cx = pt.yi >= 0 ? x(pt.yi) : m.l;
    const cy = y(pt.v ?? 0);
    parts.push(mark('circle', `cx="${r1(cx)}" cy="${r1(cy)}" r="5" fill="${ACCENT}"`, pt.v, `${text(pt.r[opts.yearCol])}: ${fmtOrNull(pt.v)}`));
    if (pt.v === null) return;
    // Put the label on the side the line leaves free: upper right of a falling line, upper left of a rising one.
    const next = plotted.find((q) => q.yi === pt.yi + 1)?.v ?? null;
    const prev = plotted.find((q) => q.yi === pt.yi - 1)?.v ?? null;
    const falling = next !== null ? next < pt.v : prev !== null ? prev > pt.v : null;
    const side = falling === null || next === pt.v ? 'middle' : falling ? 'start' : 'end';
    const dx = side === 'start' ? 7 : side === 'end' ? -7 : 0;
    parts.push(`<text class="value" x="${r1(cx + dx)}" y="${r1(cy - 9)}" text-anchor="${side}">${esc(fmtCompact(pt.v))}</text>`);
  });
  parts.push(xAxisAndClose(p, opts.xTitle));
  return parts.join('');
}

/** Age group (rows) x join year (columns) heatmap with the value in each cell. */
export function heatmap(rows: Row[], title: string, width = 560): string {
  const groups = ageGroupOrder(rows);
  const years = yearRange(rows, 'post_year');
  const m = { l: 64, r: 8, t: 26, b: 44 };
  const cellW = (width - m.l - m.r) / Math.max(1, years.length);
  const cellH = 46;
  const height = m.t + groups.length * cellH + m.b;
  const vals = rows.map((r) => num(r.median_follower_count)).filter((v): v is number => v !== null);
  const lo = vals.length ? Math.min(...vals) : 0;
  const hi = vals.length ? Math.max(...vals) : 1;
  // Follower medians span orders of magnitude: past a 20x spread the colour follows log(value),
  // so one outlier does not wash every other cell out.
  const logScale = lo > 0 && hi / lo > 20;
  const t = (v: number) => (hi <= lo ? 0.5 : logScale ? Math.log(Math.max(v, lo) / lo) / Math.log(hi / lo) : (v - lo) / (hi - lo));
  const parts: string[] = [svgOpen(width, height, title)];
  parts.push(`<defs><linearGradient id="heat-scale" x1="0" x2="1" y1="0" y2="0"><stop offset="0" stop-color="${blues(0.08)}"/><stop offset="1" stop-color="${blues(1)}"/></linearGradient></defs>`);
  years.forEach((yr, yi) => parts.push(`<text class="label" x="${r1(m.l + cellW * (yi + 0.5))}" y="${m.t - 9}" text-anchor="middle">${esc(yr)}</text>`));
  groups.forEach((g, gi) => {
    const cy = m.t + gi * cellH;
    parts.push(`<text class="label" x="${m.l - 8}" y="${cy + cellH / 2 + 4}" text-anchor="end">${esc(g)}</text>`);
    years.forEach((_, yi) => parts.push(`<rect class="empty-cell" x="${r1(m.l + yi * cellW + 1.5)}" y="${cy + 1.5}" width="${r1(cellW - 3)}" height="${cellH - 3}" rx="3"/>`));
  });
  rows.forEach((r) => {
    const gi = groups.indexOf(text(r.age_group));
    const yi = years.indexOf(text(r.post_year));
    if (gi < 0 || yi < 0) return;
    const v = num(r.median_follower_count);
    const cx = m.l + yi * cellW;
    const cy = m.t + gi * cellH;
    const fill = v === null ? '#ddd' : blues(0.08 + 0.92 * t(v));
    parts.push(mark('rect', `x="${r1(cx + 1.5)}" y="${cy + 1.5}" width="${r1(cellW - 3)}" height="${cellH - 3}" rx="3" fill="${fill}"`, v, `${text(r.age_group)}, ${text(r.post_year)}: ${fmtOrNull(v)}`));
    const dark = v !== null && t(v) > 0.5;
    parts.push(`<text class="cell-text${dark ? ' on-dark' : ''}" x="${r1(cx + cellW / 2)}" y="${cy + cellH / 2 + 4}" text-anchor="middle">${esc(v === null ? 'NULL' : fmtCompact(v))}</text>`);
  });
  // Colour legend along the bottom: "median followers  lo [gradient] hi".
  const ly = height - 26;
  const loText = fmtCompact(lo);
  const hiText = fmtCompact(hi);
  const scaleName = logScale ? 'median followers (log colour scale)' : 'median followers';
  const lx = m.l + textWidth(scaleName, 10.5) + textWidth(loText, 10.5) + 16;
  const lw = Math.max(40, width - m.r - textWidth(hiText, 10.5) - 6 - lx);
  parts.push(`<text class="tick" x="${m.l}" y="${ly + 10}">${esc(scaleName)}</text>`);
  parts.push(`<text class="tick" x="${r1(lx - 5)}" y="${ly + 10}" text-anchor="end">${esc(loText)}</text>`);
  parts.push(`<rect x="${r1(lx)}" y="${ly}" width="${r1(lw)}" height="12" rx="2" fill="url(#heat-scale)"/>`);
  parts.push(`<text class="tick" x="${r1(lx + lw + 5)}" y="${ly + 10}">${esc(hiText)}</text>`);
  parts.push('</svg>');
  return parts.join('');
}
