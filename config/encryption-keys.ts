/**
 * Parsing of the payload encryption key settings (TEMPORAL_ENCRYPTION_KEY, _KEY_ID, _KEYS_OLD,
 * _KEY_FILE) for config/index.ts. Problems are returned as text that never quotes a key.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';

export const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** A 256-bit key from standard base64 (`openssl rand -base64 32`), or undefined if it is not one. */
export function decodeEncryptionKey(b64: string): Buffer | undefined {
  const v = b64.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(v) || v.length % 4 !== 0) return undefined;
  const key = Buffer.from(v, 'base64');
  return key.length === 32 ? key : undefined;
}

/** The id of a key given without one: derived from the key (a hash prefix, which reveals nothing of it). */
export function derivedKeyId(key: Buffer): string {
  return `k-${createHash('sha256').update('pinflow-key-id').update(key).digest('hex').slice(0, 12)}`;
}

/** `id:base64,id:base64` -> entries, or the reason it is not that (never quoting a key). */
export function parseOldKeys(v: string): Array<[string, Buffer]> | string {
  const out: Array<[string, Buffer]> = [];
  for (const [i, item] of v.split(',').map((x) => x.trim()).filter(Boolean).entries()) {
    const at = item.indexOf(':');
    const id = at > 0 ? item.slice(0, at) : '';
    if (!KEY_ID.test(id)) return `entry ${i + 1} must be id:base64key with an id of letters, digits, ".", "_" or "-"`;
    const key = decodeEncryptionKey(item.slice(at + 1));
    if (!key) return `entry ${i + 1} (id "${id}") must hold a base64 key of exactly 32 bytes`;
    out.push([id, key]);
  }
  return out.length ? out : 'must list at least one id:base64key';
}

/** The key file `{"current": "<id>", "keys": {"<id>": "<base64>"}}`, or the reason it is not one. */
export function parseKeyFile(file: string): { current: string; keys: Array<[string, Buffer]> } | string {
  let doc: unknown;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    return err instanceof SyntaxError ? 'must be a JSON file {"current": "<id>", "keys": {"<id>": "<base64 32 bytes>"}}' : 'must be a readable file';
  }
  const d = doc as { current?: unknown; keys?: unknown };
  if (typeof d?.current !== 'string' || !KEY_ID.test(d.current)) return 'must have "current": the id of the key that encrypts';
  if (typeof d.keys !== 'object' || d.keys === null || Array.isArray(d.keys)) return 'must have "keys": {"<id>": "<base64 32 bytes>"}';
  const keys: Array<[string, Buffer]> = [];
  for (const [id, b64] of Object.entries(d.keys as Record<string, unknown>)) {
    if (!KEY_ID.test(id)) return `key id "${id.slice(0, 64)}" must be letters, digits, ".", "_" or "-"`;
    const key = typeof b64 === 'string' ? decodeEncryptionKey(b64) : undefined;
    if (!key) return `key "${id}" must be base64 of exactly 32 bytes`;
    keys.push([id, key]);
  }
  if (!keys.some(([id]) => id === d.current)) return `"current" names key "${d.current}", which is not in "keys"`;
  return { current: d.current, keys };
}
