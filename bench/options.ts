/**
 * The benchmarks' numeric options, read from their parsed command line (cli/args.ts): a
 * missing option takes its default; a value that is not a whole number in the option's
 * range is a UsageError naming the option, its value and the range (the command exits 2).
 */
import { UsageError } from '../cli/args';

/** `--name N`: a whole number from `min` to `max` (default `dflt`). */
export function wholeOption(values: Record<string, string | boolean | undefined>, name: string, dflt: number, min: number, max: number): number {
  const raw = values[name];
  if (raw === undefined) return dflt;
  const n = typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`--${name} ${String(raw)} must be a whole number from ${min} to ${max}`);
  return n;
}

/** `--name 1,2,3`: whole numbers from `min` to `max`, comma-separated (default `dflt`). */
export function wholeListOption(values: Record<string, string | boolean | undefined>, name: string, dflt: number[], min: number, max: number): number[] {
  const raw = values[name];
  if (raw === undefined) return dflt;
  const parts = typeof raw === 'string' ? raw.split(',') : [];
  const list = parts.map((p) => (/^\s*\d+\s*$/.test(p) ? Number(p) : NaN));
  if (list.length === 0 || list.some((n) => !Number.isSafeInteger(n) || n < min || n > max)) {
    throw new UsageError(`--${name} ${String(raw)} must be whole numbers from ${min} to ${max}, separated by commas`);
  }
  return list;
}
