/**
 * What makes a record landable (pipeline-spec.md section 3): a value that is valid UTF-8 and
 * a JSON object or a JSON array of objects. Shared by the Kafka landing and the Kinesis
 * stream path; Node-only (it checks bytes), so workflows never import it.
 */
import { isUtf8 } from 'node:buffer';

/**
 * A landable value is a JSON object or a JSON array of objects. Returns the NDJSON line (the
 * raw bytes when they are already one line) or why it is dead-lettered.
 */
export function landableLine(value: Buffer | null): { line: Buffer } | { reason: string } {
  if (value === null) return { reason: 'null value (tombstone)' };
  // Decoding would replace bad bytes with U+FFFD and land the raw bytes anyway; readers of
  // the bucket (DuckDB, Spark) refuse a whole object that is not valid UTF-8.
  if (!isUtf8(value)) return { reason: 'not valid UTF-8' };
  const text = value.toString('utf8');
  if (text.trim() === '') return { reason: 'empty value' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return { reason: `not JSON: ${(err as Error).message}` };
  }
  const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
  const oneLine = () => (/[\r\n]/.test(text) ? Buffer.from(JSON.stringify(parsed)) : value);
  if (isObject(parsed)) return { line: oneLine() };
  if (Array.isArray(parsed) && parsed.length > 0 && parsed.every(isObject)) return { line: oneLine() };
  return { reason: Array.isArray(parsed) ? 'JSON array that is empty or holds a non-object' : `JSON ${parsed === null ? 'null' : typeof parsed}, not an object or array of objects` };
}

