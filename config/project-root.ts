/** The project's root folder: relative file settings and the `.env` file are resolved against it. */
import path from 'node:path';

export const PROJECT_ROOT = path.resolve(__dirname, '..');
