/**
 * The compiled worker: `workers/main.ts` and everything it imports, compiled by tsc
 * (tsconfig.build.json) into `dist/<hash>/`, where <hash> is a hash of the sources it is built
 * from (BUILD_SOURCES). A worker run from plain JavaScript carries neither tsx's loader nor
 * esbuild, so it starts faster and holds less memory. Content-addressed, so a build is never
 * stale: `compiledWorker()` builds when no build matches today's sources and returns the one
 * that does; builds made at the same time by two processes do not mix (each compiles into a
 * folder of its own, the first rename wins).
 *
 * The build names the project root in `pinflow-build.json` (config/project-root.ts reads it),
 * so a compiled worker resolves `.env`, `.cache/` and the workflow sources like `npm run worker`
 * does and runs the same workflow bundle (the same build id). Non-TypeScript files of the
 * built folders (the SQL files) are copied beside the JavaScript.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BUILD_INFO, PROJECT_ROOT } from '../config/project-root';

/** Folders the worker's code comes from (a build that emits anything outside them fails), and the files that configure it. */
export const BUILD_SOURCES = { dirs: ['activities', 'adapters', 'cli', 'common', 'config', 'mwaa', 'sql', 'workers', 'workflows'], files: ['tsconfig.json', 'tsconfig.build.json', 'package.json'] };
/** Where builds go (ignored by git). */
export const DIST_DIR = path.join(PROJECT_ROOT, 'dist');
/**
 * Node's flags for a worker process: a young generation of 4 MiB semi-spaces (V8's default
 * grows to 16 MiB), which keeps the landing's peak memory down at no measurable cost in speed.
 */
export const WORKER_NODE_FLAGS = ['--max-semi-space-size=4'];
/** Builds kept besides the newest (a worker started from an older one may still be running). */
const KEEP_BUILDS = 3;

/** A hash of every file the build reads from the project. */
export function sourceHash(root = PROJECT_ROOT): string {
  const h = createHash('sha256');
  const walk = (rel: string) => {
    for (const f of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = path.join(rel, f);
      if (fs.statSync(path.join(root, r)).isDirectory()) walk(r);
      else h.update(r).update('\0').update(fs.readFileSync(path.join(root, r)));
    }
  };
  for (const d of BUILD_SOURCES.dirs) walk(d);
  for (const f of BUILD_SOURCES.files) h.update(f).update('\0').update(fs.readFileSync(path.join(root, f)));
  return h.digest('hex').slice(0, 16);
}

/** Copies the non-TypeScript files of the built folders (SQL) into the build. */
function copyAssets(out: string): void {
  const walk = (rel: string) => {
    for (const f of fs.readdirSync(path.join(PROJECT_ROOT, rel))) {
      const r = path.join(rel, f);
      const src = path.join(PROJECT_ROOT, r);
      if (fs.statSync(src).isDirectory()) walk(r);
      else if (!f.endsWith('.ts')) {
        fs.mkdirSync(path.dirname(path.join(out, r)), { recursive: true });
        fs.copyFileSync(src, path.join(out, r));
      }
    }
  };
  walk('sql');
}

/** Removes all but the newest KEEP_BUILDS + 1 builds, and unfinished builds older than an hour. */
function prune(): void {
  const entries = fs.readdirSync(DIST_DIR).map((name) => ({ name, mtime: fs.statSync(path.join(DIST_DIR, name)).mtimeMs }));
  const builds = entries.filter((e) => /^[0-9a-f]{16}$/.test(e.name)).sort((a, b) => b.mtime - a.mtime);
  const stale = [...builds.slice(KEEP_BUILDS + 1), ...entries.filter((e) => e.name.startsWith('.tmp-') && e.mtime < Date.now() - 3_600_000)];
  for (const e of stale) fs.rmSync(path.join(DIST_DIR, e.name), { recursive: true, force: true });
}

/**
 * The folder of the build of today's sources, built first when there is none (tsc: some
 * seconds). Throws with tsc's output when the sources do not compile.
 */
export function compiledWorkerDir(log: (line: string) => void = () => {}): string {
  const hash = sourceHash();
  const dir = path.join(DIST_DIR, hash);
  if (fs.existsSync(path.join(dir, BUILD_INFO))) return dir;
  fs.mkdirSync(DIST_DIR, { recursive: true });
  const tmp = path.join(DIST_DIR, `.tmp-${process.pid}-${randomUUID().slice(0, 8)}`);
  log(`compiling the worker into ${path.relative(PROJECT_ROOT, dir)}/ ...`);
  try {
    const tsc = require.resolve('typescript/bin/tsc');
    try {
      execFileSync(process.execPath, [tsc, '-p', path.join(PROJECT_ROOT, 'tsconfig.build.json'), '--outDir', tmp], { cwd: PROJECT_ROOT, encoding: 'utf8', stdio: 'pipe' });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      throw new Error(`the worker does not compile (tsc -p tsconfig.build.json):\n${`${e.stdout ?? ''}${e.stderr ?? ''}`.trim()}`, { cause: err });
    }
    const outside = fs.readdirSync(tmp).filter((f) => !BUILD_SOURCES.dirs.includes(f));
    if (outside.length) throw new Error(`the worker imports code outside ${BUILD_SOURCES.dirs.join(', ')} (${outside.join(', ')}): add the folder to BUILD_SOURCES in workers/build.ts`);
    copyAssets(tmp);
    // Written last: a build folder without it is unfinished.
    fs.writeFileSync(path.join(tmp, BUILD_INFO), `${JSON.stringify({ root: path.relative(dir, PROJECT_ROOT), sources: hash, builtAt: new Date().toISOString() })}\n`);
    try {
      fs.renameSync(tmp, dir);
    } catch (err) {
      // Another process finished the same build first: use it.
      if (!fs.existsSync(path.join(dir, BUILD_INFO))) throw err;
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  prune();
  return dir;
}

/** The compiled worker's entry point (`node ...WORKER_NODE_FLAGS <it>` runs `npm run worker`). */
export function compiledWorker(log?: (line: string) => void): string {
  return path.join(compiledWorkerDir(log), 'workers', 'main.js');
}
