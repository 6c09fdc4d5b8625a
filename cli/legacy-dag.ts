/**
 * The command-line form of the daily pipeline's legacy stage, shared by `npm run pipeline` and
 * `npm run schedule`: `--legacy-dag ENV/DAG` (an MWAA environment and an Airflow DAG id) and
 * `--legacy-dag-conf JSON` (the DAG run's conf, a JSON object). Mistakes are UsageErrors
 * (exit 2) naming the option.
 */
import { parseLegacyDag, type LegacyDagInput } from '../common/daily';
import { UsageError, type OptionDecl } from './args';

/** The two options, for a command's declaration (cli/args.ts). */
export const LEGACY_DAG_OPTIONS = {
  'legacy-dag': { value: 'ENV/DAG', help: 'run this MWAA DAG (environment/DAG id) for the date between landing and cleaning' },
  'legacy-dag-conf': { value: 'JSON', help: "the DAG run's conf, a JSON object (with --legacy-dag)" },
} satisfies Record<string, OptionDecl>;

/** The options -> the input's legacyDag (undefined when not given); UsageError naming the option otherwise. */
export function legacyDagOption(values: { 'legacy-dag'?: string; 'legacy-dag-conf'?: string }): LegacyDagInput | undefined {
  const text = values['legacy-dag'];
  const confText = values['legacy-dag-conf'];
  if (text === undefined) {
    if (confText !== undefined) throw new UsageError('--legacy-dag-conf needs --legacy-dag ENV/DAG');
    return undefined;
  }
  let legacy: LegacyDagInput;
  try {
    legacy = parseLegacyDag(text);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (confText === undefined) return legacy;
  let conf: unknown;
  try {
    conf = JSON.parse(confText);
  } catch (err) {
    throw new UsageError(`--legacy-dag-conf is not JSON: ${(err as Error).message}`);
  }
  if (conf === null || typeof conf !== 'object' || Array.isArray(conf)) throw new UsageError('--legacy-dag-conf must be a JSON object, e.g. \'{"key": "value"}\'');
  return { ...legacy, conf: conf as Record<string, unknown> };
}
