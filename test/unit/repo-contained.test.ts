/**
 * A plain clone runs: no tracked file other than documentation refers to a path above the
 * repository root (a folder beside the clone, or an absolute path of this machine). Every
 * string path built from PROJECT_ROOT or __dirname with '..' segments is resolved from its
 * file and must stay inside the repository; literal '../shared/' style references and
 * absolute /work/ paths are refused outright.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import { PROJECT_ROOT } from '../../config';
import { SAMPLE_DIR } from '../helpers/env';

const DOCS = /\.(md|txt)$/i;
const SELF = path.relative(PROJECT_ROOT, __filename);

function trackedFiles(): string[] {
  return execFileSync('git', ['ls-files'], { cwd: PROJECT_ROOT, encoding: 'utf8' })
    .split('\n')
    // This file's own negative examples are the only references it may hold.
    .filter((f) => f && f !== SELF && !DOCS.test(f) && !f.endsWith('package-lock.json') && !f.endsWith('.csv') && fs.existsSync(path.join(PROJECT_ROOT, f)));
}

/** Where one file's text refers outside the repository. */
function outsideReferences(file: string, text: string): string[] {
  const problems: string[] = [];
  const dir = path.dirname(path.join(PROJECT_ROOT, file));
  const inside = (p: string) => p === PROJECT_ROOT || p.startsWith(PROJECT_ROOT + path.sep);
  text.split('\n').forEach((line, i) => {
    const where = `${file}:${i + 1}`;
    if (/(^|[^.\w])\.\.\/(\.\.\/)*shared\//.test(line)) problems.push(`${where}: refers to ../shared/ (outside the repository)`);
    if (/['"`]\/work\//.test(line)) problems.push(`${where}: absolute path of this machine`);
    for (const m of line.matchAll(/path\.(?:join|resolve)\(\s*(PROJECT_ROOT|__dirname)\s*,([^)]*)\)/g)) {
      const parts = [...m[2]!.matchAll(/'([^']*)'|"([^"]*)"/g)].map((x) => x[1] ?? x[2]!);
      const base = m[1] === 'PROJECT_ROOT' ? PROJECT_ROOT : dir;
      const target = path.resolve(base, ...parts);
      if (!inside(target)) problems.push(`${where}: ${m[0]} resolves to ${target}, outside the repository`);
    }
  });
  return problems;
}

describe('the repository is self-contained', () => {
  it('no tracked file other than docs refers to a path above the repository root', () => {
    const problems = trackedFiles().flatMap((f) => outsideReferences(f, fs.readFileSync(path.join(PROJECT_ROOT, f), 'utf8')));
    assert.deepEqual(problems, []);
  });

  it('the check itself catches the forms it looks for', () => {
    assert.equal(outsideReferences('scripts/x.ts', "const d = '../shared/data/pinterest-sample';").length, 1);
    assert.equal(outsideReferences('scripts/x.ts', "const d = path.resolve(PROJECT_ROOT, '..', 'shared');").length, 1);
    assert.equal(outsideReferences('test/helpers/x.ts', "const d = path.join(__dirname, '..', '..', '..', 'data');").length, 1);
    assert.equal(outsideReferences('scripts/x.ts', "const d = '/work/shared/x';").length, 1);
    assert.deepEqual(outsideReferences('test/helpers/x.ts', "const d = path.join(__dirname, '..', '..', 'data');"), []);
  });

  it('the real sample ships in the repository: 2,019 rows per table', () => {
    assert.ok(SAMPLE_DIR.startsWith(PROJECT_ROOT + path.sep));
    for (const f of ['pinterest_data.csv', 'geolocation_data.csv', 'user_data.csv']) {
      const rows = parse(fs.readFileSync(path.join(SAMPLE_DIR, f)), { columns: true }) as Array<Record<string, string>>;
      assert.equal(rows.length, 2019, f);
      assert.equal(new Set(rows.map((r) => r.index ?? r.ind)).size, 2019, `${f}: distinct keys`);
    }
  });
});
