/**
 * The project's root folder: relative file settings and the `.env` file are resolved against it.
 * In a compiled build (dist/<hash>/, workers/build.ts) it is the folder the build was made
 * from, named in the build's BUILD_INFO file.
 */
import fs from 'node:fs';
import path from 'node:path';

/** The file at the top of a compiled build naming the project root (relative to the build). */
export const BUILD_INFO = 'pinflow-build.json';

const here = path.resolve(__dirname, '..');
const buildInfo = path.join(here, BUILD_INFO);

export const PROJECT_ROOT = fs.existsSync(buildInfo) ? path.resolve(here, (JSON.parse(fs.readFileSync(buildInfo, 'utf8')) as { root: string }).root) : here;
