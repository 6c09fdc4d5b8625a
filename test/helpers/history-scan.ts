/**
 * Searching Temporal histories (and describe answers) for values that must not be there.
 *
 * `needleForms(value)` is every form a value can take on the wire: raw, URL-encoded, and
 * base64 at each of the three alignments it can have inside a longer base64 string (standard
 * and URL-safe alphabets), so a secret inside an encoded blob (a Basic header, a payload
 * re-encoded as base64) is found too. `occurrences(root, needles)` walks every string of a
 * decoded proto object, decoding byte arrays (payload data, metadata) as UTF-8, and reports
 * where each needle was found and whether it was inside bytes (a payload) or a plain field.
 */

/** The forms a value can take in a history. */
export function needleForms(value: string): string[] {
  const forms = new Set<string>([value, encodeURIComponent(value)]);
  const bytes = Buffer.from(value, 'utf8');
  for (let shift = 0; shift < 3; shift++) {
    const b64 = Buffer.concat([Buffer.alloc(shift, 0x20), bytes]).toString('base64');
    // Drop the groups a neighbour byte can change: the first (when shifted) and the last.
    const core = b64.slice(shift === 0 ? 0 : 4, -4);
    if (core.length >= 8) {
      forms.add(core);
      forms.add(core.replace(/\+/g, '-').replace(/\//g, '_'));
    }
  }
  forms.add(bytes.toString('base64'));
  return [...forms].filter((f) => f.length >= 8);
}

export interface Occurrence {
  label: string;
  where: string;
  /** Found in a byte array (payload data or metadata), not a plain string field. */
  inBytes: boolean;
}

function* strings(value: unknown, where: string, seen: Set<unknown>): Generator<{ text: string; where: string; inBytes: boolean }> {
  if (typeof value === 'string') yield { text: value, where, inBytes: false };
  else if (value instanceof Uint8Array) yield { text: Buffer.from(value).toString('utf8'), where, inBytes: true };
  else if (value && typeof value === 'object') {
    if (seen.has(value)) return;
    seen.add(value);
    if (Array.isArray(value)) for (const [i, v] of value.entries()) yield* strings(v, `${where}[${i}]`, seen);
    else for (const [k, v] of Object.entries(value)) yield* strings(v, `${where}.${k}`, seen);
  }
}

/** Every occurrence of any form of each labelled value in `root`. */
export function occurrences(root: unknown, values: Record<string, string>, where = ''): Occurrence[] {
  const needles = Object.entries(values).map(([label, v]) => ({ label, forms: needleForms(v) }));
  const found: Occurrence[] = [];
  for (const s of strings(root, where, new Set())) {
    for (const n of needles) if (n.forms.some((f) => s.text.includes(f))) found.push({ label: n.label, where: s.where, inBytes: s.inBytes });
  }
  return found;
}
