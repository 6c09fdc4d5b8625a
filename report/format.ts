/**
 * Text helpers of the report, all pure: HTML/SVG escaping, reading loosely typed row values,
 * number formats, and a rough text-width estimate that the charts use to fit and cut labels
 * (the page is drawn on the server, so there is no font to measure with).
 */

/** One row of an analytics output, as read from its JSON file. */
export type Row = Record<string, unknown>;

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML and SVG, in element content and in quoted attributes alike. */
export function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** A finite number, or a string that reads as one; null for anything else. */
export const num = (v: unknown): number | null => {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return null;
};

/** A value as text; null and undefined read "NULL". */
export const text = (v: unknown): string => (v === null || v === undefined ? 'NULL' : String(v));

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
export const fmtCount = (v: unknown): string => (num(v) === null ? '—' : fmtFull(num(v)!));

/** A number column as full digits, or "NULL" where the value is missing. */
export const fmtOrNull = (v: unknown): string => (num(v) === null ? 'NULL' : fmtFull(num(v)!));

const isYearColumn = (col: string) => col.endsWith('_year');

/** A table cell's HTML: years without digit grouping, other numbers grouped, NULL greyed. */
export function fmtCell(col: string, v: unknown): string {
  if (v === null || v === undefined) return '<span class="null">NULL</span>';
  const n = typeof v === 'number' ? v : null;
  if (n !== null) return esc(isYearColumn(col) ? String(n) : fmtFull(n));
  if (typeof v === 'object') return esc(JSON.stringify(v));
  return esc(v);
}

/** Rough rendered width of `s` at font size `fs` in a sans-serif face (CJK glyphs are square). */
export function textWidth(s: string, fs = 12): number {
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

/** `s` cut to fit `maxPx` at font size `fs`, with an ellipsis where it was cut. */
export function truncate(s: string, maxPx: number, fs = 12): string {
  if (textWidth(s, fs) <= maxPx) return s;
  let out = '';
  for (const ch of s) {
    if (textWidth(`${out}${ch}…`, fs) > maxPx) break;
    out += ch;
  }
  return `${out}…`;
}

/** Rounds a coordinate to one decimal, which keeps the SVG short. */
export const r1 = (n: number) => Math.round(n * 10) / 10;
