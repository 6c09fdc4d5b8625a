/**
 * npm run report -- DIR: (re)writes DIR/report.html from DIR/summary.json and the analytics
 * outputs beside it (what `npm run pipeline -- --out DIR` writes), and prints its path.
 */
import path from 'node:path';
import { writeReport } from '../report';

const dir = process.argv[2];
if (!dir || dir.startsWith('-')) {
  console.error('usage: npm run report -- DIR   (DIR holds summary.json and the analytics outputs)');
  process.exit(2);
}
writeReport(path.resolve(dir)).then(
  (p) => console.log(p),
  (e: unknown) => {
    console.error(`report failed: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
