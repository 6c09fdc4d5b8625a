import path from 'node:path';
import { PROJECT_ROOT } from '../config';

/** The real rows of the original tables, kept in the repository (data/pinterest-sample/README.md). */
export const SAMPLE_DIR_DEFAULT = path.join(PROJECT_ROOT, 'data', 'pinterest-sample');
