import path from 'node:path';
import { PROJECT_ROOT } from '../common/config';

/** The real rows of the original tables, shipped beside the project (see its README). */
export const SAMPLE_DIR_DEFAULT = path.resolve(PROJECT_ROOT, '..', 'shared', 'data', 'pinterest-sample');
