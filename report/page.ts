/**
 * The report page: `renderReport(summary, outputs)` turns summary.json and the nine analytics
 * outputs into one self-contained HTML page (inline CSS and inline SVG; no script, no external
 * URL, no font fetched) with the cleaned-table cards, an index of the outputs, and one figure
 * (chart plus table) per output in its section. Pure: same inputs, same page.
 *
 * Every piece of data goes through `esc` before it reaches the page, and the page carries a
 * Content-Security-Policy that forbids scripts and every fetch, so a hostile poster name can
 * neither run nor phone home even if a future edit forgot to escape it.
 */
import { ANALYTICS_OUTPUTS, CLEANED_TABLES, type AnalyticsOutputName } from '../common/analytics';
import { ACCENT } from './charts';
import type { ReportOutputs, ReportSummary } from './data';
import { esc, fmtCell, fmtCount, fmtFull, num, type Row } from './format';
import { chartWidth, REPORT_SECTIONS, viewOf } from './views';

const isNumericColumn = (col: string, rows: Row[]): boolean => rows.some((r) => typeof r[col] === 'number');

function dataTable(columnsOf: readonly string[], rows: Row[]): string {
  const cls = (c: string) => (isNumericColumn(c, rows) ? 'num' : '');
  const head = columnsOf.map((c) => `<th class="${cls(c)}">${esc(c)}</th>`).join('');
  const body = rows.map((r) => `<tr>${columnsOf.map((c) => `<td class="${cls(c)}">${fmtCell(c, r[c])}</td>`).join('')}</tr>`).join('');
  return `<div class="table-box${rows.length > 10 ? ' tall' : ''}"><table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>`;
}

/** One output's figure: caption, then its chart and table, or a note that it is empty or missing. */
function outputFigure(name: AnalyticsOutputName, rows: Row[] | undefined, summary: ReportSummary, sectionColumns: 2 | 3): string {
  const view = viewOf(name);
  const columnsOf = ANALYTICS_OUTPUTS.find((o) => o.name === name)!.columns;
  const meta = summary.analytics?.[name];
  const count = rows?.length ?? 0;
  const mismatch = rows && meta && meta.rows !== rows.length ? `<p class="warn">summary.json says ${esc(meta.rows)} rows, the output file has ${esc(rows.length)}.</p>` : '';
  let body: string;
  if (!rows) body = `<p class="no-rows missing">Output file missing: ${esc(name)}.json was not written.</p>`;
  else if (rows.length === 0) body = `<p class="no-rows">No rows: this output is empty.</p>`;
  else body = `<div class="chart-box">${view.render(rows, chartWidth(view, sectionColumns))}</div>${dataTable(columnsOf, rows)}`;
  return `<figure id="${esc(name)}" data-output="${esc(name)}" data-rows="${count}"${view.span ? ' class="span"' : ''}>
<figcaption><div class="cap-top"><span class="name">${esc(name)}</span><span class="count">${rows ? `${fmtFull(count)} row${count === 1 ? '' : 's'}` : 'missing'}</span></div><h3>${esc(view.title)}</h3><p>${esc(view.description)}</p>${meta?.location ? `<p class="location">${esc(meta.location)}</p>` : ''}</figcaption>
${mismatch}${body}
</figure>`;
}

/** One card per cleaned table: rows kept, records read, duplicates, left-out records by reason. */
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

/** The table of the nine outputs: a link to each figure, its row count and its location. */
function outputIndex(summary: ReportSummary, outputs: ReportOutputs): string {
  const rows = ANALYTICS_OUTPUTS.map(({ name }) => {
    const n = outputs[name]?.length;
    const loc = summary.analytics?.[name]?.location;
    return `<tr><td><a href="#${esc(name)}">${esc(name)}</a></td><td class="num">${n === undefined ? '<span class="null">missing</span>' : n === 0 ? '<span class="null">0 (empty)</span>' : esc(fmtFull(n))}</td><td class="loc">${loc ? esc(loc) : ''}</td></tr>`;
  }).join('');
  return `<table class="index"><thead><tr><th>output</th><th class="num">rows</th><th>location</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** Renders the whole page. Pure: same inputs, same page. */
export function renderReport(summary: ReportSummary, outputs: ReportOutputs): string {
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
<footer><p>Written by pinflow's report module (report/) from summary.json and the nine output files beside this page. Definitions: pipeline-spec.md section 5.</p></footer>
</main>
</body>
</html>
`;
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
