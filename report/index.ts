/**
 * The analytics report: one self-contained HTML page (inline CSS and server-drawn inline SVG,
 * no script, no external URL) with the cleaning summary and one chart plus table per
 * analytics output. `writeReport(DIR)` reads what the cleaning command wrote to DIR and
 * writes DIR/report.html; `renderReport` is the pure part.
 *
 *   npm run report -- DIR      # (re)writes DIR/report.html and prints its path
 *
 * The module: data.ts reads the folder, page.ts lays out the page, views.ts says what each
 * output shows, charts.ts draws the SVG charts, format.ts escapes and formats text.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readReportInputs } from './data';
import { renderReport } from './page';

export type { CleanedTableSummary, ReportOutputs, ReportSummary } from './data';
export { esc, fmtCompact, fmtFull } from './format';
export { renderReport } from './page';
export { CHART_KINDS, REPORT_SECTIONS } from './views';

/**
 * Reads DIR/summary.json and DIR/<output>.json for the nine analytics outputs (never the
 * cleaned tables, which can be large), writes DIR/report.html (atomically: a temporary file
 * renamed into place) and returns its path. A missing output file shows as missing in the
 * page; a missing summary.json is an error.
 */
export async function writeReport(dir: string): Promise<string> {
  const { summary, outputs } = readReportInputs(dir);
  const out = path.join(dir, 'report.html');
  const tmp = `${out}.${process.pid}.tmp`;
  await fs.promises.writeFile(tmp, renderReport(summary, outputs));
  await fs.promises.rename(tmp, out);
  return out;
}
