/**
 * The analytics report: one self-contained HTML page (inline CSS and server-drawn inline SVG,
 * no script, no external URL) with the cleaning summary and one chart plus table per
 * analytics output. `writeReport(DIR)` reads what the cleaning command wrote to DIR and
 * writes DIR/report.html; `renderReport` is the pure part.
 *
 *   npx tsx report/index.ts DIR      # (re)writes DIR/report.html and prints its path
 *
 * Every piece of data goes through `esc` before it reaches the page, and the page carries a
 * Content-Security-Policy that forbids scripts and every fetch, so a hostile poster name can
 * neither run nor phone home even if a future edit forgot to escape it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { AGE_GROUPS, ANALYTICS_OUTPUTS, CLEANED_TABLES, type AnalyticsOutputName } from '../common/analytics';

export { ANALYTICS_OUTPUTS, CLEANED_TABLES };

export interface CleanedTableSummary {
  rows: number;
  read: number;
  duplicates: number;
  leftOut: Record<string, number>;
}

export interface ReportSummary {
  prefix: string;
  input: string;
  warehouse: 'duckdb' | 'databricks';
  generatedAt: string;
  tables: Partial<Record<string, CleanedTableSummary>>;
  analytics: Partial<Record<string, { rows: number; location: string }>>;
}

type Row = Record<string, unknown>;

// ---------------------------------------------------------------------------------------
// Escaping and formatting

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML and SVG, in element content and in quoted attributes alike. */
export function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

const num = (v: unknown): number | null => {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return null;
};

const text = (v: unknown): string => (v === null || v === undefined ? 'NULL' : String(v));

function group3(intPart: string): string {
  return intPart.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** 1234567 -> "1,234,567"; 5500.5 -> "5,500.5" (at most 2 decimals). */
export function fmtFull(n: number): string {
  const [i, d] = (Math.round(n * 100) / 100).toFixed(2).split('.') as [string, string];
  const neg = i.startsWith('-');
  const body = group3(neg ? i.slice(1) : i);
  const dec = d.replace(/0+$/, '');
  return `${neg ? '-' : ''}${body}${dec ? `.${dec}` : ''}`;
}

/** 950 -> "950", 1500 -> "1.5k", 6667.5 -> "6.7k", 124000 -> "124k", 2000000 -> "2M". */
export function fmtCompact(n: number): string {
  const a = Math.abs(n);
  const scaled = (x: number, suffix: string) => {
    const s = x < 10 ? x.toFixed(1) : x.toFixed(0);
    return `${n < 0 ? '-' : ''}${s.replace(/\.0$/, '')}${suffix}`;
  };
  if (a >= 1e9) return scaled(a / 1e9, 'B');
  if (a >= 1e6) return scaled(a / 1e6, 'M');
  if (a >= 1e3) return scaled(a / 1e3, 'k');
  return fmtFull(n);
}

/** A count from summary.json, or a dash when the field is missing. */
const fmtCount = (v: unknown): string => (num(v) === null ? '—' : fmtFull(num(v)!));

const isYearColumn = (col: string) => col.endsWith('_year');

function fmtCell(col: string, v: unknown): string {
  if (v === null || v === undefined) return '<span class="null">NULL</span>';
  const n = typeof v === 'number' ? v : null;
  if (n !== null) return esc(isYearColumn(col) ? String(n) : fmtFull(n));
  if (typeof v === 'object') return esc(JSON.stringify(v));
  return esc(v);
}

/** Rough rendered width of `s` at font size `fs` in a sans-serif face (CJK glyphs are square). */
function textWidth(s: string, fs = 12): number {
  let w = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0x2e80) w += fs;
    else if ('il.,:;|!\' '.includes(ch)) w += fs * 0.32;
    else if (/[A-Z]/.test(ch) || 'mw'.includes(ch)) w += fs * 0.72;
    else w += fs * 0.6;
  }
  return w;
}

function truncate(s: string, maxPx: number, fs = 12): string {
  if (textWidth(s, fs) <= maxPx) return s;
  let out = '';
  for (const ch of s) {
    if (textWidth(`${out}${ch}…`, fs) > maxPx) break;
    out += ch;
  }
  return `${out}…`;
}

const r1 = (n: number) => Math.round(n * 10) / 10;

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
const ACCENT = '#3b6ea8';

function categoryColour(category: unknown): string {
  const c = text(category);
  const known = CATEGORY_COLOURS[c];
  if (known) return known;
  let h = 0;
  for (const ch of c) h = (h * 31 + ch.codePointAt(0)!) >>> 0;
  return EXTRA_COLOURS[h % EXTRA_COLOURS.length]!;
}

function legend(categories: unknown[], counts?: Map<string, number>): string {
  const seen = [...new Set(categories.map(text))].sort();
  return `<ul class="legend">${seen
    .map((c) => `<li><span class="swatch" style="background:${categoryColour(c)}"></span>${esc(c)}${counts ? ` <b>${counts.get(c) ?? 0}</b>` : ''}</li>`)
    .join('')}</ul>`;
}

// ---------------------------------------------------------------------------------------
// Scales and axes

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

/** Sorts rows by age group in spec order (unknown groups after, in first-seen order); stable. */
function ageGroupOrder(rows: Row[]): string[] {
  const extra = [...new Set(rows.map((r) => text(r.age_group)))].filter((g) => !(AGE_GROUPS as readonly string[]).includes(g));
  return [...AGE_GROUPS, ...extra];
}

/** All years from the smallest to the largest present, so a missing year shows as a gap. */
function yearRange(rows: Row[], col: string): string[] {
  const years = rows.map((r) => num(r[col])).filter((y): y is number => y !== null && Number.isInteger(y));
  if (years.length === 0) return [...new Set(rows.map((r) => text(r[col])))];
  const lo = Math.min(...years);
  const hi = Math.max(...years);
  if (hi - lo > 60) return [...new Set(years.map(String))].sort();
  return Array.from({ length: hi - lo + 1 }, (_, i) => String(lo + i));
}

const svgOpen = (w: number, h: number, label: string) =>
  `<svg class="chart" role="img" aria-label="${esc(label)}" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" xmlns="http://www.w3.org/2000/svg">`;

const mark = (shape: 'rect' | 'circle', attrs: string, value: number | null, tooltip: string) =>
  `<${shape} class="mark" data-value="${value ?? ''}" ${attrs}><title>${esc(tooltip)}</title></${shape}>`;

// ---------------------------------------------------------------------------------------
// Charts. Each returns an <svg class="chart"> with one `.mark` per row.

interface HBarSpec {
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
function hbars(rows: Row[], spec: HBarSpec, width = 560): string {
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
  const ticks = niceTicks(max, width > 700 ? 8 : 4, values.every((v) => v === null || Number.isInteger(v)));
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

interface ColumnSpec {
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
function columns(rows: Row[], spec: ColumnSpec, width = 560): string {
  const height = 300;
  const m = { l: 52, r: 12, t: 22, b: 42 };
  const plotW = width - m.l - m.r;
  const plotH = height - m.t - m.b;
  const values = rows.map(spec.value);
  const ticks = niceTicks(Math.max(0, ...values.map((v) => v ?? 0)), 5, values.every((v) => v === null || Number.isInteger(v)));
  const domain = ticks[ticks.length - 1]!;
  const y = (v: number) => m.t + plotH - (Math.max(0, v) / domain) * plotH;
  const band = plotW / Math.max(1, spec.groups.length);
  const parts: string[] = [svgOpen(width, height, spec.title)];
  for (const t of ticks) {
    parts.push(`<line class="grid" x1="${m.l}" x2="${width - m.r}" y1="${r1(y(t))}" y2="${r1(y(t))}"/>`);
    parts.push(`<text class="tick" x="${m.l - 6}" y="${r1(y(t)) + 4}" text-anchor="end">${esc(fmtCompact(t))}</text>`);
  }
  spec.groups.forEach((g, gi) => {
    const members = rows.map((r, i) => ({ r, i })).filter(({ r }) => spec.group(r) === g);
    const x0 = m.l + gi * band;
    parts.push(`<text class="label" x="${r1(x0 + band / 2)}" y="${height - m.b + 18}" text-anchor="middle">${esc(truncate(g, band - 4))}</text>`);
    if (members.length === 0) {
      parts.push(`<text class="none" x="${r1(x0 + band / 2)}" y="${m.t + plotH - 8}" text-anchor="middle">no row</text>`);
      return;
    }
    const inner = band * 0.78;
    const bw = Math.min(64, inner / members.length);
    const start = x0 + (band - bw * members.length) / 2;
    members.forEach(({ r, i }, k) => {
      const v = values[i] ?? null;
      const bx = start + k * bw + 1.5;
      const by = y(v ?? 0);
      const bh = Math.max(v !== null && v > 0 ? 2 : 0, m.t + plotH - by);
      parts.push(mark('rect', `x="${r1(bx)}" y="${r1(m.t + plotH - bh)}" width="${r1(bw - 3)}" height="${r1(bh)}" rx="2" fill="${spec.colour(r)}"`, v, spec.tooltip(r)));
      if (v !== null) parts.push(`<text class="value" x="${r1(bx + (bw - 3) / 2)}" y="${r1(m.t + plotH - bh - 5)}" text-anchor="middle">${esc(spec.valueText(v))}</text>`);
      if (spec.barText) {
        const label = spec.barText(r);
        const cx = bx + (bw - 3) / 2 + 4;
        const fits = textWidth(label, 11) + 10 <= bh && bw >= 16;
        const ty = m.t + plotH - 6;
        if (fits) parts.push(`<text class="bar-text" transform="translate(${r1(cx)} ${r1(ty)}) rotate(-90)">${esc(label)}</text>`);
        else parts.push(`<text class="bar-text outside" transform="translate(${r1(cx)} ${r1(m.t + plotH - bh - 22)}) rotate(-90)">${esc(truncate(label, Math.max(30, m.t + plotH - bh - 26), 11))}</text>`);
      }
    });
  });
  parts.push(`<line class="axis" x1="${m.l}" x2="${width - m.r}" y1="${m.t + plotH}" y2="${m.t + plotH}"/>`);
  parts.push(`<text class="axis-title" x="${m.l + plotW / 2}" y="${height - 4}" text-anchor="middle">${esc(spec.xTitle)}</text>`);
  parts.push('</svg>');
  return parts.join('');
}

/** A line over consecutive years with one circle per row; a missing year breaks the line. */
function yearLine(rows: Row[], opts: { yearCol: string; valueCol: string; title: string; xTitle: string }, width = 560): string {
  const height = 280;
  const m = { l: 52, r: 24, t: 24, b: 42 };
  const plotW = width - m.l - m.r;
  const plotH = height - m.t - m.b;
  const years = yearRange(rows, opts.yearCol);
  const ticks = niceTicks(Math.max(0, ...rows.map((r) => num(r[opts.valueCol]) ?? 0)), 5);
  const domain = ticks[ticks.length - 1]!;
  const step = plotW / Math.max(1, years.length);
  const x = (yi: number) => m.l + step * (yi + 0.5);
  const y = (v: number) => m.t + plotH - (Math.max(0, v) / domain) * plotH;
  const parts: string[] = [svgOpen(width, height, opts.title)];
  for (const t of ticks) {
    parts.push(`<line class="grid" x1="${m.l}" x2="${width - m.r}" y1="${r1(y(t))}" y2="${r1(y(t))}"/>`);
    parts.push(`<text class="tick" x="${m.l - 6}" y="${r1(y(t)) + 4}" text-anchor="end">${esc(fmtCompact(t))}</text>`);
  }
  years.forEach((yr, yi) => parts.push(`<text class="label" x="${r1(x(yi))}" y="${height - m.b + 18}" text-anchor="middle">${esc(yr)}</text>`));
  const points = rows.map((r) => ({ r, yi: years.indexOf(text(r[opts.yearCol])), v: num(r[opts.valueCol]) }));
  const plotted = points.filter((p) => p.yi >= 0 && p.v !== null).sort((a, b) => a.yi - b.yi);
  let d = '';
  plotted.forEach((p, k) => {
    const joined = k > 0 && plotted[k - 1]!.yi === p.yi - 1;
    d += `${joined ? 'L' : 'M'}${r1(x(p.yi))} ${r1(y(p.v!))}`;
  });
  parts.push(`<path class="area" d="${plotted.length ? `${d}` : ''}"/>`);
  points.forEach((p) => {
    const cx = p.yi >= 0 ? x(p.yi) : m.l;
    const cy = y(p.v ?? 0);
    parts.push(mark('circle', `cx="${r1(cx)}" cy="${r1(cy)}" r="5" fill="${ACCENT}"`, p.v, `${text(p.r[opts.yearCol])}: ${p.v === null ? 'NULL' : fmtFull(p.v)}`));
    if (p.v === null) return;
    // Put the label on the side the line leaves free: upper right of a falling line, upper left of a rising one.
    const next = plotted.find((q) => q.yi === p.yi + 1)?.v ?? null;
    const prev = plotted.find((q) => q.yi === p.yi - 1)?.v ?? null;
    const falling = next !== null ? next < p.v : prev !== null ? prev > p.v : null;
    const side = falling === null || next === p.v ? 'middle' : falling ? 'start' : 'end';
    const dx = side === 'start' ? 7 : side === 'end' ? -7 : 0;
    parts.push(`<text class="value" x="${r1(cx + dx)}" y="${r1(cy - 9)}" text-anchor="${side}">${esc(fmtCompact(p.v))}</text>`);
  });
  parts.push(`<line class="axis" x1="${m.l}" x2="${width - m.r}" y1="${m.t + plotH}" y2="${m.t + plotH}"/>`);
  parts.push(`<text class="axis-title" x="${m.l + plotW / 2}" y="${height - 4}" text-anchor="middle">${esc(opts.xTitle)}</text>`);
  parts.push('</svg>');
  return parts.join('');
}

/** Sequential blue scale: t in [0,1] -> colour, light to dark. */
function blues(t: number): string {
  const a = [232, 241, 250];
  const b = [16, 62, 120];
  const c = a.map((x, i) => Math.round(x + (b[i]! - x) * Math.min(1, Math.max(0, t))));
  return `rgb(${c.join(',')})`;
}

/** Age group (rows) x join year (columns) heatmap with the value in each cell. */
function heatmap(rows: Row[], title: string, width = 560): string {
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
    parts.push(mark('rect', `x="${r1(cx + 1.5)}" y="${cy + 1.5}" width="${r1(cellW - 3)}" height="${cellH - 3}" rx="3" fill="${fill}"`, v, `${text(r.age_group)}, ${text(r.post_year)}: ${v === null ? 'NULL' : fmtFull(v)}`));
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

// ---------------------------------------------------------------------------------------
// One figure per output, grouped in sections by what the output is broken down by.

interface OutputView {
  title: string;
  description: string;
  chartKind: string;
  /** Long charts (one bar per country) sit in a scrolling box. */
  scroll?: boolean;
  /** The figure spans the whole row of its section. */
  span?: boolean;
  render: (rows: Row[], width: number) => string;
}

const posterText = (r: Row) => `${text(r.poster_name)} · ${num(r.follower_count) === null ? 'NULL' : fmtCompact(num(r.follower_count)!)}`;
const posterTip = (r: Row) => `${text(r.country)}: ${text(r.poster_name)}, ${num(r.follower_count) === null ? 'NULL' : fmtFull(num(r.follower_count)!)} followers`;

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

const VIEWS: Record<AnalyticsOutputName, OutputView> = {
  popular_category_by_country: {
    title: 'Most popular category per country',
    description: 'Per country the category with the most posts; tied categories are all shown.',
    chartKind: 'horizontal bars, one per row, grouped by country and coloured by category (scrolling box), above them a strip of countries per top category',
    scroll: true,
    render: (rows, width) =>
      countriesPerCategory(rows, width) +
      `<div class="scroll-box">${hbars(
        rows,
        {
          title: 'Most popular category per country',
          label: (r) => text(r.country),
          value: (r) => num(r.category_count),
          colour: (r) => categoryColour(r.category),
          after: (r) => `${text(r.category)} · ${text(r.category_count)}`,
          tooltip: (r) => `${text(r.country)}: ${text(r.category)} (${text(r.category_count)} posts)`,
        },
        width - 16,
      )}</div>`,
  },
  top_user_by_country: {
    title: 'Top poster per country',
    description: 'Per country the poster(s) with the most followers.',
    chartKind: 'horizontal bars of follower counts, one per row, grouped by country (scrolling box)',
    scroll: true,
    render: (rows, width) =>
      `<div class="scroll-box">${hbars(
        rows,
        {
          title: 'Top poster per country',
          label: (r) => text(r.country),
          value: (r) => num(r.follower_count),
          colour: () => ACCENT,
          after: posterText,
          tooltip: posterTip,
        },
        width - 16,
      )}</div>`,
  },
  top_country_by_followers: {
    title: 'Country with the most-followed poster',
    description: 'The row(s) of the top poster per country with the highest follower count overall.',
    chartKind: 'horizontal bars of follower counts',
    span: true,
    render: (rows, width) =>
      hbars(
        rows,
        {
          title: 'Country with the most-followed poster',
          label: (r) => text(r.country),
          value: (r) => num(r.follower_count),
          colour: () => '#e60023',
          after: posterText,
          tooltip: posterTip,
        },
        width,
      ),
  },
  popular_category_by_year: {
    title: 'Most popular category per year',
    description: 'Per post year (2018-2022) the category with the most posts.',
    chartKind: 'columns per post year, tied categories side by side, coloured and labelled by category',
    render: (rows, width) =>
      columns(
        rows,
        {
          title: 'Most popular category per year',
          groups: yearRange(rows, 'post_year'),
          group: (r) => text(r.post_year),
          value: (r) => num(r.category_count),
          colour: (r) => categoryColour(r.category),
          barText: (r) => text(r.category),
          valueText: fmtFull,
          tooltip: (r) => `${text(r.post_year)}: ${text(r.category)} (${text(r.category_count)} posts)`,
          xTitle: 'post year',
        },
        width,
      ) + legend(rows.map((r) => r.category)),
  },
  users_joined_by_year: {
    title: 'Users joined per year',
    description: 'Distinct user names by year joined (2015-2020), from user_clean alone; the column post_year holds the join year.',
    chartKind: 'columns per join year',
    render: (rows, width) =>
      columns(
        rows,
        {
          title: 'Users joined per year',
          groups: yearRange(rows, 'post_year'),
          group: (r) => text(r.post_year),
          value: (r) => num(r.number_users_joined),
          colour: () => '#59a14f',
          valueText: fmtFull,
          tooltip: (r) => `${text(r.post_year)}: ${text(r.number_users_joined)} users joined`,
          xTitle: 'join year',
        },
        width,
      ),
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
      columns(
        rows,
        {
          title: 'Most popular category per age group',
          groups: ageGroupOrder(rows),
          group: (r) => text(r.age_group),
          value: (r) => num(r.category_count),
          colour: (r) => categoryColour(r.category),
          barText: (r) => text(r.category),
          valueText: fmtFull,
          tooltip: (r) => `${text(r.age_group)}: ${text(r.category)} (${text(r.category_count)} posts)`,
          xTitle: 'age group',
        },
        width,
      ) + legend(rows.map((r) => r.category)),
  },
  median_followers_by_age_group: {
    title: 'Median followers per age group',
    description: 'Median follower count of the posts in each age group.',
    chartKind: 'columns per age group',
    render: (rows, width) =>
      columns(
        rows,
        {
          title: 'Median follower count per age group',
          groups: ageGroupOrder(rows),
          group: (r) => text(r.age_group),
          value: (r) => num(r.median_follower_count),
          colour: () => ACCENT,
          valueText: fmtCompact,
          tooltip: (r) => `${text(r.age_group)}: median ${num(r.median_follower_count) === null ? 'NULL' : fmtFull(num(r.median_follower_count)!)} followers`,
          xTitle: 'age group',
        },
        width,
      ),
  },
  median_followers_by_age_group_and_join_year: {
    title: 'Median followers per age group and join year',
    description: 'Median follower count for each age group and year joined (2015-2020).',
    chartKind: 'heatmap, age group x join year, value in each cell (a missing pair is a dashed empty cell)',
    render: (rows, width) => heatmap(rows, 'Median follower count per age group and join year', width),
  },
};

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

{
  const placed = REPORT_SECTIONS.flatMap((s) => s.outputs as readonly string[]).sort();
  const all = ANALYTICS_OUTPUTS.map((o) => o.name as string).sort();
  if (placed.join() !== all.join()) throw new Error(`report sections must place each analytics output once: ${placed.join()} vs ${all.join()}`);
}

/** The chart type used for each output, for documentation and tests. */
export const CHART_KINDS: Record<AnalyticsOutputName, string> = Object.fromEntries(
  ANALYTICS_OUTPUTS.map((o) => [o.name, VIEWS[o.name].chartKind]),
) as Record<AnalyticsOutputName, string>;

function dataTable(columnsOf: readonly string[], rows: Row[]): string {
  const head = columnsOf.map((c) => `<th class="${isNumericColumn(c, rows) ? 'num' : ''}">${esc(c)}</th>`).join('');
  const body = rows
    .map((r) => `<tr>${columnsOf.map((c) => `<td class="${isNumericColumn(c, rows) ? 'num' : ''}">${fmtCell(c, r[c])}</td>`).join('')}</tr>`)
    .join('');
  return `<div class="table-box${rows.length > 10 ? ' tall' : ''}"><table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>`;
}

function isNumericColumn(col: string, rows: Row[]): boolean {
  return rows.some((r) => typeof r[col] === 'number');
}

function outputFigure(name: AnalyticsOutputName, rows: Row[] | undefined, summary: ReportSummary, sectionColumns: 2 | 3): string {
  const view = VIEWS[name];
  const columnsOf = ANALYTICS_OUTPUTS.find((o) => o.name === name)!.columns;
  const width = CHART_WIDTH[view.span ? 1 : sectionColumns];
  const meta = summary.analytics?.[name];
  const count = rows?.length ?? 0;
  const mismatch = rows && meta && meta.rows !== rows.length ? `<p class="warn">summary.json says ${esc(meta.rows)} rows, the output file has ${esc(rows.length)}.</p>` : '';
  let body: string;
  if (!rows) body = `<p class="no-rows missing">Output file missing: ${esc(name)}.json was not written.</p>`;
  else if (rows.length === 0) body = `<p class="no-rows">No rows: this output is empty.</p>`;
  else body = `<div class="chart-box">${view.render(rows, width)}</div>${dataTable(columnsOf, rows)}`;
  return `<figure id="${esc(name)}" data-output="${esc(name)}" data-rows="${count}"${view.span ? ' class="span"' : ''}>
<figcaption><div class="cap-top"><span class="name">${esc(name)}</span><span class="count">${rows ? `${fmtFull(count)} row${count === 1 ? '' : 's'}` : 'missing'}</span></div><h3>${esc(view.title)}</h3><p>${esc(view.description)}</p>${meta?.location ? `<p class="location">${esc(meta.location)}</p>` : ''}</figcaption>
${mismatch}${body}
</figure>`;
}

function tableCards(summary: ReportSummary): string {
  return CLEANED_TABLES.map(({ name, columns: cols }) => {
    const t = summary.tables?.[name];
    if (!t) return `<div class="card"><h3>${esc(name)}</h3><p class="no-rows">not in summary.json</p></div>`;
    const reasons = Object.entries(t.leftOut ?? {}).filter(([, n]) => (num(n) ?? 0) > 0);
    const leftOutTotal = reasons.reduce((s, [, n]) => s + (num(n) ?? 0), 0);
    return `<div class="card" data-table="${esc(name)}">
<h3>${esc(name)}</h3>
<div class="big">${esc(fmtCount(t.rows))}<span> rows</span></div>
<dl>
<dt>records read</dt><dd>${esc(fmtCount(t.read))}</dd>
<dt>duplicates dropped</dt><dd>${esc(fmtCount(t.duplicates))}</dd>
<dt>left out</dt><dd>${esc(fmtFull(leftOutTotal))}</dd>
</dl>
${reasons.length ? `<ul class="reasons">${reasons.map(([k, n]) => `<li><span>${esc(k)}</span><b>${esc(fmtCount(n))}</b></li>`).join('')}</ul>` : '<p class="quiet">no record left out</p>'}
<p class="cols">${cols.map(esc).join(', ')}</p>
</div>`;
  }).join('');
}

function outputIndex(summary: ReportSummary, outputs: Record<string, object[]>): string {
  const rows = ANALYTICS_OUTPUTS.map(({ name }) => {
    const n = outputs[name]?.length;
    const loc = summary.analytics?.[name]?.location;
    return `<tr><td><a href="#${esc(name)}">${esc(name)}</a></td><td class="num">${n === undefined ? '<span class="null">missing</span>' : n === 0 ? '<span class="null">0 (empty)</span>' : esc(fmtFull(n))}</td><td class="loc">${loc ? esc(loc) : ''}</td></tr>`;
  }).join('');
  return `<table class="index"><thead><tr><th>output</th><th class="num">rows</th><th>location</th></tr></thead><tbody>${rows}</tbody></table>`;
}

const CSS = `
:root{--ink:#1d232b;--muted:#5f6b7a;--line:#e3e7ec;--bg:#f4f6f8;--card:#fff;--accent:#e60023}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI","DejaVu Sans",Roboto,"WenQuanYi Zen Hei",sans-serif}
header{background:#fff;border-bottom:1px solid var(--line)}
.wrap{max-width:1260px;margin:0 auto;padding:20px 24px}
h1{margin:0;font-size:22px;letter-spacing:-.01em}
h1 .dot{display:inline-block;width:12px;height:12px;border-radius:50%;background:var(--accent);margin-right:8px;vertical-align:1px}
h2{font-size:13px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);margin:22px 0 10px}
.meta{display:flex;flex-wrap:wrap;gap:6px 22px;margin:8px 0 0;color:var(--muted)}
.meta b{color:var(--ink);font-weight:600}
.meta code{font-size:12.5px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:14px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px}
.card h3{margin:0;font:600 13px ui-monospace,"DejaVu Sans Mono",monospace;color:var(--muted)}
.big{font-size:28px;font-weight:700;margin:2px 0 6px}
.big span{font-size:14px;font-weight:400;color:var(--muted)}
dl{display:grid;grid-template-columns:1fr auto;gap:2px 12px;margin:0}
dt{color:var(--muted)}dd{margin:0;text-align:right;font-variant-numeric:tabular-nums}
.reasons{list-style:none;margin:8px 0 0;padding:6px 8px;background:#fff6f6;border-radius:6px;font-size:12.5px}
.reasons li{display:flex;justify-content:space-between;gap:10px}
.quiet{color:var(--muted);font-size:12.5px;margin:8px 0 0}
.cols{color:#8a94a3;font:11px ui-monospace,"DejaVu Sans Mono",monospace;margin:8px 0 0}
table{border-collapse:collapse;width:100%;font-size:12.5px;font-variant-numeric:tabular-nums}
th,td{padding:3px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{position:sticky;top:0;background:#f8f9fb;font-weight:600;color:var(--muted)}
.num{text-align:right}
.null{color:#9aa3ae;font-style:italic}
.index{background:#fff;border:1px solid var(--line);border-radius:10px;overflow:hidden}
.index td.loc{color:var(--muted);font:12px ui-monospace,"DejaVu Sans Mono",monospace;word-break:break-all}
.index a{color:#1f5fa8;text-decoration:none;font-family:ui-monospace,"DejaVu Sans Mono",monospace}
main .grid{display:grid;gap:18px;align-items:start}
main .grid.cols-2{grid-template-columns:repeat(2,minmax(0,1fr))}
main .grid.cols-3{grid-template-columns:repeat(3,minmax(0,1fr))}
main .grid .span{grid-column:1/-1}
@media (max-width:1100px){main .grid.cols-2,main .grid.cols-3{grid-template-columns:minmax(0,1fr)}}
figure{margin:0;background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;min-width:0}
figcaption{margin-bottom:8px}
figcaption .name{font:600 12px ui-monospace,"DejaVu Sans Mono",monospace;color:#1f5fa8;background:#eef4fb;border-radius:4px;padding:1px 6px;overflow-wrap:anywhere}
figcaption .cap-top{display:flex;justify-content:space-between;align-items:baseline;gap:10px}
figcaption .count{color:var(--muted);font-size:12px;white-space:nowrap}
figcaption h3{margin:6px 0 0;font-size:16px}
figcaption p{margin:2px 0 0;color:var(--muted);font-size:12.5px}
figcaption .location{font:11px ui-monospace,"DejaVu Sans Mono",monospace;color:#8a94a3;word-break:break-all}
.chart-box{margin:6px 0 10px}
svg.chart{display:block;max-width:100%;height:auto;font-family:inherit}
svg .grid{stroke:#edf0f3;stroke-width:1}
svg .axis{stroke:#aab3bf;stroke-width:1}
svg .sep{stroke:#f0f2f5;stroke-width:1}
svg .tick{font-size:10.5px;fill:#7b8694}
svg .label{font-size:12px;fill:#2b333d}
svg .value{font-size:11px;fill:#3c4652;paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
svg .bar-text{font-size:11px;fill:#fff;font-weight:600}
svg .bar-text.outside{fill:#3c4652;font-weight:400}
svg .axis-title{font-size:11px;fill:#7b8694}
svg .none{font-size:11px;fill:#9aa3ae;font-style:italic}
svg .area{fill:none;stroke:${ACCENT};stroke-width:2.5;stroke-linejoin:round}
svg .empty-cell{fill:#f6f7f9;stroke:#e3e7ec;stroke-dasharray:3 3}
svg .cell-text{font-size:12.5px;font-weight:600;fill:#1d232b}
svg .cell-text.on-dark{fill:#fff}
svg .mark:hover{opacity:.8}
.scroll-box{max-height:460px;overflow:auto;border:1px solid var(--line);border-radius:8px;padding:4px 0}
.table-box{overflow:auto;border:1px solid var(--line);border-radius:8px}
.table-box.tall{max-height:240px}
.legend{list-style:none;margin:8px 0 0;padding:0;display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;color:#3c4652}
.legend li{display:flex;align-items:center;gap:5px}
.legend .swatch{width:11px;height:11px;border-radius:3px;display:inline-block}
.strip-title{font-size:12px;color:var(--muted);margin:4px 0 4px}
.strip{display:flex;height:22px;border-radius:6px;overflow:hidden;font-size:11px;color:#fff;font-weight:600}
.strip span{display:flex;align-items:center;justify-content:center;overflow:hidden;white-space:nowrap;min-width:2px;text-shadow:0 0 2px rgba(0,0,0,.45)}
.strip + .legend{margin-bottom:10px}
.no-rows{margin:10px 0 2px;padding:18px;text-align:center;color:var(--muted);background:#f8f9fb;border:1px dashed #cfd6de;border-radius:8px;font-style:italic}
.no-rows.missing{background:#fff6f6;border-color:#f0b8b8;color:#a32020}
.warn{margin:6px 0;padding:6px 10px;background:#fff8e6;border:1px solid #f3d58a;border-radius:6px;font-size:12.5px}
footer{color:var(--muted);font-size:12px}
`;

/** Renders the whole page. Pure: same inputs, same page. */
export function renderReport(summary: ReportSummary, outputs: Record<string, object[]>): string {
  const sections = REPORT_SECTIONS.map(
    (sec) =>
      `<h2 id="${sec.id}">${esc(sec.title)}</h2>\n<section class="grid cols-${sec.columns}">\n${sec.outputs
        .map((name) => outputFigure(name, outputs[name] as Row[] | undefined, summary, sec.columns))
        .join('\n')}\n</section>`,
  ).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pinflow report · ${esc(summary.prefix ?? '—')}</title>
<style>${CSS}</style>
</head>
<body>
<header><div class="wrap">
<h1><span class="dot"></span>pinflow analytics report</h1>
<div class="meta">
<span>prefix <b>${esc(summary.prefix ?? '—')}</b></span>
<span>warehouse <b>${esc(summary.warehouse ?? '—')}</b></span>
<span>input <code>${esc(summary.input ?? '—')}</code></span>
<span>generated <b>${esc(summary.generatedAt ?? '—')}</b></span>
</div>
</div></header>
<main class="wrap">
<h2>Cleaned tables</h2>
<section class="cards">${tableCards(summary)}</section>
<h2>Analytics outputs</h2>
${outputIndex(summary, outputs)}
${sections}
<footer><p>Written by report/index.ts from summary.json and the nine output files beside this page. Definitions: pipeline-spec.md section 5.</p></footer>
</main>
</body>
</html>
`;
}

function readJson(file: string): unknown {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

/**
 * Reads DIR/summary.json and DIR/<output>.json for the nine analytics outputs (never the
 * cleaned tables, which can be large), writes DIR/report.html and returns its path. A
 * missing output file shows as missing in the page; a missing summary.json is an error.
 */
export async function writeReport(dir: string): Promise<string> {
  const summary = readJson(path.join(dir, 'summary.json')) as ReportSummary;
  const outputs: Record<string, object[]> = {};
  for (const { name } of ANALYTICS_OUTPUTS) {
    const file = path.join(dir, `${name}.json`);
    if (!fs.existsSync(file)) continue;
    const rows = readJson(file);
    if (!Array.isArray(rows)) throw new Error(`${file}: expected a JSON array of rows`);
    outputs[name] = rows as object[];
  }
  const out = path.join(dir, 'report.html');
  const tmp = `${out}.${process.pid}.tmp`;
  await fs.promises.writeFile(tmp, renderReport(summary, outputs));
  await fs.promises.rename(tmp, out);
  return out;
}
