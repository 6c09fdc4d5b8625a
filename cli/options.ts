/**
 * The options several commands share, declared once with their help text: a command takes
 * the ones it has with `...sharedOptions('prefix', 'out')` in its declaration (cli/args.ts).
 * The meaning is the same in every command that takes one.
 */
import type { OptionDecl } from './args';

const SHARED = {
  wait: { help: 'wait for the run to finish, showing its progress, then print the result' },
  prefix: { value: 'P', help: 'the pipeline prefix (default PIPELINE_PREFIX)' },
  'output-root': { value: 'KEYS/', help: 'key prefix of the outputs in the bucket (default: the bucket root)' },
  out: { value: 'DIR', help: 'write DIR/<name>.json for the 12 tables, DIR/summary.json and DIR/report.html (implies --wait)' },
  deadline: { value: 'D', help: 'alert (late) when a run is not done D after the end of its date (D+1 00:00 UTC), e.g. 6h, 90m, 1h30m; the run goes on' },
} satisfies Record<string, OptionDecl>;

export type SharedOption = keyof typeof SHARED;

export function sharedOptions<K extends SharedOption>(...names: K[]): Pick<typeof SHARED, K> {
  return Object.fromEntries(names.map((n) => [n, SHARED[n]])) as Pick<typeof SHARED, K>;
}
