/**
 * Payload encryption: an AES-256-GCM PayloadCodec used by every client and worker when
 * `TEMPORAL_ENCRYPTION_KEY` or `TEMPORAL_ENCRYPTION_KEY_FILE` is set, and by the codec
 * server (`npm run codec-server`) the Web UI and the CLI decode through.
 *
 * Format of an encrypted payload:
 *   metadata  encoding = "binary/encrypted", encryption-key-id = <id of the key>
 *   data      IV (12 random bytes, new for every payload) || ciphertext || GCM tag (16 bytes)
 * The plaintext is the original Payload (its metadata and data) serialised as the
 * `temporal.api.common.v1.Payload` protobuf, as Temporal's encryption samples do. The key id
 * is also the GCM additional data, so a payload relabelled with another id fails to decrypt.
 *
 * Failures: with a key, failure messages and stack traces are moved into a payload
 * (`encodedAttributes`, workers/failure-converter.ts) and encrypted with the rest; the
 * history then shows "Encoded failure" until decoded (client, codec server, Web UI).
 *
 * Rotation: the current key encrypts every new payload; every key in the keyring (current
 * and old) decrypts the payloads that name it. Payloads that are not encrypted (written
 * before encryption was turned on) pass through decode unchanged.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { Config } from '../config';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const IV_BYTES = 12;
const TAG_BYTES = 16;

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString('utf8') : '');

/** A payload the codec cannot decrypt: unknown key id, wrong key, or altered bytes. */
export class PayloadDecryptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PayloadDecryptionError';
  }
}

export interface Keyring {
  /** The id of the key that encrypts. */
  currentKeyId: string;
  /** Every key that may decrypt, by id (the current one included); 32 bytes each. */
  keys: ReadonlyMap<string, Uint8Array>;
}

/** The keyring of a Config (undefined: encryption is off). */
export function keyringOf(config: Pick<Config, 'encryption'>): Keyring | undefined {
  const enc = config.encryption;
  if (!enc) return undefined;
  return { currentKeyId: enc.keyId, keys: new Map(Object.entries(enc.keys).map(([id, b64]) => [id, Buffer.from(b64, 'base64')])) };
}

export function isEncrypted(p: Payload): boolean {
  return text(p.metadata?.encoding) === ENCRYPTED_ENCODING;
}

export class AesGcmCodec implements PayloadCodec {
  // Private fields: never enumerated, so logging the worker's options (the SDK does at DEBUG)
  // or JSON.stringify of this object cannot print a key.
  readonly #keys: ReadonlyMap<string, Uint8Array>;
  readonly #current: { id: string; key: Uint8Array };

  constructor(keyring: Keyring) {
    const key = keyring.keys.get(keyring.currentKeyId);
    if (!key) throw new Error(`encryption key "${keyring.currentKeyId}" is not in the keyring`);
    for (const [id, k] of keyring.keys) if (k.length !== 32) throw new Error(`encryption key "${id}" is ${k.length} bytes, not 32`);
    this.#keys = new Map(keyring.keys);
    this.#current = { id: keyring.currentKeyId, key };
  }

  /** The id new payloads are encrypted with. */
  get currentKeyId(): string {
    return this.#current.id;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.encrypt(p));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => (isEncrypted(p) ? this.decrypt(p) : p));
  }

  encrypt(payload: Payload): Payload {
    const plain = temporal.api.common.v1.Payload.encode({ metadata: payload.metadata, data: payload.data }).finish();
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#current.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(utf8(this.#current.id));
    const body = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    return {
      metadata: { encoding: utf8(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: utf8(this.#current.id) },
      data: new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
    };
  }

  decrypt(payload: Payload): Payload {
    const id = text(payload.metadata?.[KEY_ID_METADATA]);
    if (!id) throw new PayloadDecryptionError(`encrypted payload without an "${KEY_ID_METADATA}" metadata entry`);
    const key = this.#keys.get(id);
    if (!key) {
      throw new PayloadDecryptionError(
        `payload encrypted with key "${id}", which this process does not have (known: ${[...this.#keys.keys()].join(', ')}); add it to TEMPORAL_ENCRYPTION_KEYS_OLD or the key file`,
      );
    }
    const data = payload.data ?? new Uint8Array();
    if (data.length < IV_BYTES + TAG_BYTES) throw new PayloadDecryptionError(`encrypted payload (key "${id}") is too short to be one: ${data.length} bytes`);
    let plain: Buffer;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
      decipher.setAAD(utf8(id));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new PayloadDecryptionError(`encrypted payload (key "${id}") failed authentication: it was altered, or encrypted with a different key of that id`);
    }
    const inner = temporal.api.common.v1.Payload.decode(plain);
    return { metadata: inner.metadata ?? {}, data: inner.data ?? new Uint8Array() };
  }
}

/** The codec of a Config, or undefined when encryption is off. */
export function payloadCodecOf(config: Pick<Config, 'encryption'>): AesGcmCodec | undefined {
  const keyring = keyringOf(config);
  return keyring ? new AesGcmCodec(keyring) : undefined;
}

/**
 * The failure converter module used with encryption (workers/failure-converter.ts): failure
 * messages and stack traces go into an encoded-attributes payload, which the codec encrypts.
 */
export const ENCODED_FAILURE_CONVERTER_PATH = require.resolve('./failure-converter');

/**
 * The data converter clients and workers use: the default one; with a key, the codec plus the
 * failure converter that encodes failure messages and stack traces (so they are encrypted too).
 * Workers also need the workflow bundle built with that converter (workers/worker.ts).
 */
export function dataConverterOf(config: Pick<Config, 'encryption'>): DataConverter | undefined {
  const codec = payloadCodecOf(config);
  return codec ? { payloadCodecs: [codec], failureConverterPath: ENCODED_FAILURE_CONVERTER_PATH } : undefined;
}
