/**
 * Write-once objects: `putObjectOnce` writes a key at most once and decides "the same object
 * again" by SHA-256 (see `compareStored`), never by taking an ETag for an MD5 where it is not
 * one (SSE-KMS, multipart). Large bodies go by a multipart upload whose completion is
 * conditional (If-None-Match: *) where the server is known or probed to honour that
 * (`conditionalCompleteHonoured`), otherwise by one conditional PutObject. The client comes
 * from adapters/s3.ts (`createS3Client`), which adds the configured encryption to every write.
 *
 * A body is a string, a Buffer, or `ObjectBytes`: buffers sent in order and never joined, as a
 * `BodyBuilder` makes them (the lander copies each record into one as it reads it, hashing as
 * it goes). A body of several buffers is sent as a stream made anew for each attempt.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type HeadObjectCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { NonRetryable } from '../common/errors';

/** putObjectOnce writes bodies above this size by multipart upload, in parts of MULTIPART_PART_SIZE. */
export const MULTIPART_THRESHOLD = 16 * 1024 * 1024;
export const MULTIPART_PART_SIZE = 8 * 1024 * 1024;
/** Parts of one object in flight at once. */
const PART_CONCURRENCY = 4;
/** User metadata (x-amz-meta-pinflow-sha256): the hex SHA-256 of the object's bytes, written by putObjectOnce. */
export const SHA256_METADATA = 'pinflow-sha256';
/** Where the one-off capability probe writes (and deletes) its object. */
export const PROBE_PREFIX = '_pinflow-probe/';
/** Size of the buffers a BodyBuilder fills. */
export const BODY_CHUNK_SIZE = 1024 * 1024;
/** Buffers BodyBuilders keep for reuse, at most (released by objects once written). */
const POOL_CHUNKS = 48;
const pool: Buffer[] = [];
/** Attempts at sending a streamed body (the SDK does not resend a stream; putObjectOnce does). */
const STREAM_ATTEMPTS = 3;

/** An object's bytes: `parts` in order (never joined), `length` bytes in all, and their SHA-256 when known. */
export interface ObjectBytes {
  parts: readonly Buffer[];
  length: number;
  sha256?: Buffer;
}

/**
 * Builds an object's bytes in buffers of its own (BODY_CHUNK_SIZE each), hashing each buffer
 * once it is full: what is appended is copied, so the caller's buffers (e.g. slices of a Kafka
 * fetch response) can be released at once. `release()` on the finished bytes, once written,
 * hands the buffers to the next builders (no garbage left for the collector).
 */
export class BodyBuilder {
  private readonly chunks: Buffer[] = [];
  private readonly hash = createHash('sha256');
  private current: Buffer | undefined;
  private used = 0;
  /** Bytes appended so far. */
  length = 0;

  constructor(private readonly chunkSize = BODY_CHUNK_SIZE) {}

  append(bytes: Uint8Array): void {
    let from = 0;
    while (from < bytes.length) {
      if (!this.current) {
        this.current = (this.chunkSize === BODY_CHUNK_SIZE && pool.pop()) || Buffer.allocUnsafeSlow(this.chunkSize);
        this.used = 0;
      }
      const n = Math.min(bytes.length - from, this.chunkSize - this.used);
      this.current.set(n === bytes.length ? bytes : bytes.subarray(from, from + n), this.used);
      this.used += n;
      from += n;
      if (this.used === this.chunkSize) {
        this.hash.update(this.current);
        this.chunks.push(this.current);
        this.current = undefined;
      }
    }
    this.length += bytes.length;
  }

  /**
   * The bytes appended, hashed. The builder is not used again; `release()`: the bytes are not
   * used again either (called once they are written), their buffers go to the next builders.
   */
  finish(): ObjectBytes & { release(): void } {
    if (this.current && this.used > 0) {
      // A short last buffer is copied to its size, so the object holds no unused memory while it uploads.
      const tail = this.used < this.chunkSize / 2 ? Buffer.from(this.current.subarray(0, this.used)) : this.current.subarray(0, this.used);
      if (tail.buffer !== this.current.buffer && pool.length < POOL_CHUNKS && this.chunkSize === BODY_CHUNK_SIZE) pool.push(this.current);
      this.hash.update(tail);
      this.chunks.push(tail);
    }
    this.current = undefined;
    const chunks = this.chunks;
    const whole = this.chunkSize === BODY_CHUNK_SIZE;
    return {
      parts: chunks,
      length: this.length,
      sha256: this.hash.digest(),
      release() {
        for (const c of chunks.splice(0)) {
          if (whole && pool.length < POOL_CHUNKS && c.byteOffset === 0 && c.buffer.byteLength === BODY_CHUNK_SIZE) pool.push(Buffer.from(c.buffer, 0, BODY_CHUNK_SIZE));
        }
      },
    };
  }
}

const bytesOf = (body: string | Buffer | ObjectBytes): ObjectBytes => {
  if (typeof body === 'string') body = Buffer.from(body, 'utf8');
  return Buffer.isBuffer(body) ? { parts: [body], length: body.length } : body;
};

const digestOf = (parts: readonly Buffer[], algorithm: 'sha256' | 'md5'): Buffer => {
  const h = createHash(algorithm);
  for (const p of parts) h.update(p);
  return h.digest();
};

const sha256Of = (bytes: ObjectBytes): Buffer => bytes.sha256 ?? digestOf(bytes.parts, 'sha256');

/** The buffers holding bytes [start, end) of `parts` (views, not copies). */
function sliceParts(parts: readonly Buffer[], start: number, end: number): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const p of parts) {
    const from = Math.max(start, at);
    const to = Math.min(end, at + p.length);
    if (from < to) out.push(p.subarray(from - at, to - at));
    at += p.length;
    if (at >= end) break;
  }
  return out;
}

/** A failure worth sending a streamed body again: no answer (a reset, a timeout), a 5xx or throttling. */
const resendable = (err: unknown): boolean => {
  const status = statusOf(err);
  if (status === undefined) return !(err instanceof TypeError || err instanceof RangeError);
  return status >= 500 || status === 429;
};

/**
 * Sends a request with `parts` as its body: the buffer itself when there is one (the SDK
 * resends it on its own), otherwise a stream over the buffers, made anew for each of up to
 * STREAM_ATTEMPTS attempts. `stop`: asked before a resend; true ends the attempts with `undefined`.
 */
async function sendParts<T>(parts: readonly Buffer[], send: (body: Buffer | Readable) => Promise<T>, stop?: (err: unknown) => Promise<boolean>): Promise<T | undefined> {
  if (parts.length === 1) return send(parts[0]!);
  for (let attempt = 1; ; attempt++) {
    try {
      return await send(Readable.from(parts, { objectMode: false }));
    } catch (err) {
      if (attempt >= STREAM_ATTEMPTS || !resendable(err)) throw err;
      if (stop && (await stop(err))) return undefined;
      await sleep(100 * 2 ** attempt);
    }
  }
}

export interface PutOnceOptions {
  /** Bodies larger than this go by multipart upload (when the server supports conditional completes). */
  multipartThreshold?: number;
  /** Part size of a multipart upload (S3: at least 5 MiB, except the last part). */
  partSize?: number;
  contentType?: string;
}

const statusOf = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
const isPreconditionFailed = (err: unknown) => statusOf(err) === 412 || (err as Error).name === 'PreconditionFailed';

/**
 * Writes an object only if the key is free. An existing object with the same bytes (a retry
 * rewriting what an earlier attempt wrote) is fine; different bytes are never overwritten:
 * a non-retryable PinflowConflict naming the s3:// key.
 *
 * Small bodies: one PutObject with If-None-Match: * (and a SHA-256 checksum S3 verifies and
 * stores). Bodies above `multipartThreshold`: a multipart upload whose CompleteMultipartUpload
 * carries If-None-Match: *, so the object appears only if the key is still free; used only
 * where the server is known or probed (once per client and bucket) to honour that condition,
 * otherwise a single PutObject (up to 5 GiB). Either way the object's metadata carries
 * `pinflow-sha256`, which `compareStored` checks when the key is taken.
 */
export async function putObjectOnce(
  s3: S3Client,
  bucket: string,
  key: string,
  body: string | Buffer | ObjectBytes,
  metadata: Record<string, string>,
  opts: PutOnceOptions = {},
): Promise<'written' | 'identical'> {
  const bytes = bytesOf(body);
  const sha256 = sha256Of(bytes);
  bytes.sha256 = sha256;
  const meta = { ...metadata, [SHA256_METADATA]: sha256.toString('hex') };
  const contentType = opts.contentType ?? 'application/x-ndjson';
  const multipart = bytes.length > (opts.multipartThreshold ?? MULTIPART_THRESHOLD) && (await conditionalCompleteHonoured(s3, bucket));
  const written = multipart
    ? await putMultipartIfAbsent(s3, bucket, key, bytes, meta, contentType, opts.partSize ?? MULTIPART_PART_SIZE)
    : await putIfAbsent(s3, bucket, key, bytes, meta, contentType, sha256);
  if (written) return 'written';
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }));
  let decided = compareStored(head, bytes);
  if (decided.verdict === 'unknown') decided = await compareBytes(s3, bucket, key, sha256);
  if (decided.verdict === 'identical') return 'identical';
  throw ApplicationFailure.nonRetryable(
    `s3://${bucket}/${key} already exists with different content (${decided.basis}); refusing to overwrite it (was the topic recreated, or another lander writing the same prefix?)`,
    NonRetryable.conflict,
  );
}

async function putIfAbsent(s3: S3Client, bucket: string, key: string, bytes: ObjectBytes, meta: Record<string, string>, contentType: string, sha256: Buffer): Promise<boolean> {
  try {
    const sent = await sendParts(
      bytes.parts,
      (Body) =>
        s3.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body,
            ContentLength: bytes.length,
            Metadata: meta,
            IfNoneMatch: '*',
            ContentType: contentType,
            ChecksumAlgorithm: 'SHA256',
            ChecksumSHA256: sha256.toString('base64'),
          }),
        ),
      // A refusal can come as a reset (see takenAfterAll): a taken key is not sent again.
      (err) => takenAfterAll(s3, bucket, key, err),
    );
    return sent !== undefined;
  } catch (err) {
    if (isPreconditionFailed(err)) return false;
    if (await takenAfterAll(s3, bucket, key, err)) return false;
    throw err;
  }
}

/**
 * After a write failed without an answer (a reset connection, a timeout) or with a 5xx: is the
 * key taken? A refusal can arrive as a reset (versitygw answers a conditional PutObject of a
 * large body with 412 and closes the connection before reading it, even after the SDK's
 * retries), and a write can succeed with its answer lost; either way the stored object is then
 * compared like any other. A free key (or a failing HeadObject) leaves the error as it was.
 */
async function takenAfterAll(s3: S3Client, bucket: string, key: string, err: unknown): Promise<boolean> {
  const status = statusOf(err);
  if (status !== undefined && status < 500) return false;
  return exists(s3, bucket, key).catch(() => false);
}

/** HeadObject: true if the key holds an object, false if none (404). */
async function exists(s3: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (err) {
    if (statusOf(err) === 404 || (err as Error).name === 'NotFound') return false;
    throw err;
  }
}

/**
 * A multipart upload that completes only if the key is still free. A key already taken is
 * noticed by a HeadObject first (a retry costs one request, not a re-upload); a writer that
 * took it meanwhile makes the conditional CompleteMultipartUpload fail with 412. Whatever
 * fails, the upload is aborted (its parts never become an object).
 */
async function putMultipartIfAbsent(
  s3: S3Client,
  bucket: string,
  key: string,
  bytes: ObjectBytes,
  meta: Record<string, string>,
  contentType: string,
  partSize: number,
): Promise<boolean> {
  if (await exists(s3, bucket, key)) return false;
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, Metadata: meta, ContentType: contentType, ChecksumAlgorithm: 'SHA256' }));
  try {
    const count = Math.ceil(bytes.length / partSize);
    const parts: CompletedPart[] = new Array(count);
    let next = 0;
    let failed = false;
    const uploader = async () => {
      while (!failed && next < count) {
        const i = next++;
        const start = i * partSize;
        const chunk = sliceParts(bytes.parts, start, Math.min(bytes.length, start + partSize));
        const sum = digestOf(chunk, 'sha256').toString('base64');
        const ContentLength = Math.min(bytes.length, start + partSize) - start;
        try {
          const r = (await sendParts(chunk, (Body) =>
            s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: i + 1, Body, ContentLength, ChecksumAlgorithm: 'SHA256', ChecksumSHA256: sum })),
          ))!;
          parts[i] = { PartNumber: i + 1, ETag: r.ETag, ChecksumSHA256: r.ChecksumSHA256 ?? sum };
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    };
    // Every uploader settles before the abort below, so no part lands after it.
    const settled = await Promise.allSettled(Array.from({ length: Math.min(PART_CONCURRENCY, count) }, uploader));
    const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (rejected) throw rejected.reason;
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts }, IfNoneMatch: '*' }));
    return true;
  } catch (err) {
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId })).catch(() => undefined);
    if (isPreconditionFailed(err)) return false;
    if (await takenAfterAll(s3, bucket, key, err)) return false;
    throw err;
  }
}

/** Each client's probe per bucket; keyed by the client, so an entry lives as long as its client. */
const probes = new WeakMap<S3Client, Map<string, Promise<boolean>>>();

/**
 * Whether the server refuses a CompleteMultipartUpload with If-None-Match: * on a taken key
 * (AWS S3 does; some S3-compatible servers ignore the header, which would let a multipart
 * upload replace an object). Known for AWS's own endpoint; otherwise probed once per client
 * and bucket: an object under PROBE_PREFIX, a one-part upload to the same key completed with
 * the condition (must answer 412), then both removed. A probe refused for permissions (403)
 * counts as "no" (single PutObject is always safe); other failures are thrown (retryable).
 */
export function conditionalCompleteHonoured(s3: S3Client, bucket: string): Promise<boolean> {
  // AWS S3 itself (no custom endpoint) has honoured the condition since August 2024.
  if (!s3.config.isCustomEndpoint) return Promise.resolve(true);
  let byBucket = probes.get(s3);
  if (!byBucket) probes.set(s3, (byBucket = new Map()));
  let probe = byBucket.get(bucket);
  if (!probe) {
    const cache = byBucket;
    probe = probeConditionalComplete(s3, bucket);
    cache.set(bucket, probe);
    probe.catch(() => cache.delete(bucket));
  }
  return probe;
}

async function probeConditionalComplete(s3: S3Client, bucket: string): Promise<boolean> {
  const key = `${PROBE_PREFIX}${randomUUID()}`;
  try {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'pinflow: a conditional CompleteMultipartUpload must not replace this object\n' }));
  } catch (err) {
    if (statusOf(err) === 403) return false;
    throw err;
  }
  let uploadId: string | undefined;
  try {
    uploadId = (await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))).UploadId;
    const part = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: 1, Body: 'replaced\n' }));
    try {
      await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] }, IfNoneMatch: '*' }));
      uploadId = undefined;
      return false; // the condition was ignored: the probe object was replaced
    } catch (err) {
      if (isPreconditionFailed(err)) return true;
      const status = statusOf(err);
      if (status === 400 || status === 403 || status === 501) return false; // the header (or the request) is refused
      throw err;
    }
  } catch (err) {
    if (statusOf(err) === 403) return false;
    throw err;
  } finally {
    if (uploadId) await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })).catch(() => undefined);
  }
}

export interface StoredComparison {
  verdict: 'identical' | 'different' | 'unknown';
  /** What decided it, for the conflict message. */
  basis: string;
}

/**
 * Does the stored object (a HeadObject answer, asked with ChecksumMode ENABLED) hold `bytes`?
 * In this order:
 * 1. a different size: different;
 * 2. a SHA-256 stored with the object, pinflow's `pinflow-sha256` metadata and/or S3's own
 *    full-object ChecksumSHA256: each one present must equal ours (S3's composite multipart
 *    checksums, `...-N`, are checksums of part checksums and are not used);
 * 3. no SHA-256 stored (an object written before pinflow stored one): the ETag as an MD5, only
 *    for a single-part ETag (32 hex digits, no `-N` suffix) of an object not encrypted with
 *    SSE-KMS, DSSE-KMS or SSE-C, whose ETags are not MD5s;
 * 4. otherwise unknown: the caller reads the stored bytes back (`compareBytes`).
 * CRC checksums (the SDK's default CRC32, S3's CRC64NVME) are never used: too short to decide identity.
 */
export function compareStored(
  head: Pick<HeadObjectCommandOutput, 'ContentLength' | 'Metadata' | 'ChecksumSHA256' | 'ChecksumType' | 'ETag' | 'ServerSideEncryption' | 'SSECustomerAlgorithm'>,
  body: Buffer | ObjectBytes,
): StoredComparison {
  const bytes = bytesOf(body);
  if (head.ContentLength !== undefined && head.ContentLength !== bytes.length) {
    return { verdict: 'different', basis: `${head.ContentLength} bytes stored, ${bytes.length} to write` };
  }
  const sha256 = sha256Of(bytes);
  const checks: Array<[string, boolean]> = [];
  const fromMetadata = head.Metadata?.[SHA256_METADATA];
  if (fromMetadata) checks.push([`metadata ${SHA256_METADATA}`, fromMetadata.toLowerCase() === sha256.toString('hex')]);
  const s3Sum = head.ChecksumSHA256;
  if (s3Sum && head.ChecksumType !== 'COMPOSITE' && !/-\d+$/.test(s3Sum)) checks.push(['S3 checksum SHA-256', s3Sum === sha256.toString('base64')]);
  if (checks.length) {
    const mismatch = checks.find(([, same]) => !same);
    return mismatch ? { verdict: 'different', basis: `${mismatch[0]} differs` } : { verdict: 'identical', basis: checks.map(([what]) => what).join(' and ') };
  }
  const etag = (head.ETag ?? '').replace(/"/g, '');
  const etagNotMd5 = head.ServerSideEncryption === 'aws:kms' || head.ServerSideEncryption === 'aws:kms:dsse' || head.SSECustomerAlgorithm !== undefined;
  if (/^[0-9a-f]{32}$/i.test(etag) && !etagNotMd5) {
    const same = etag.toLowerCase() === digestOf(bytes.parts, 'md5').toString('hex');
    return { verdict: same ? 'identical' : 'different', basis: same ? 'single-part ETag (MD5)' : 'single-part ETag (MD5) differs' };
  }
  return { verdict: 'unknown', basis: 'no SHA-256 stored and the ETag is not an MD5' };
}

/** Last resort of the comparison: the stored bytes' SHA-256, read back as a stream. */
async function compareBytes(s3: S3Client, bucket: string, key: string, sha256: Buffer): Promise<StoredComparison> {
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const hash = createHash('sha256');
  for await (const chunk of got.Body as Readable) hash.update(chunk as Buffer);
  const same = hash.digest().equals(sha256);
  return { verdict: same ? 'identical' : 'different', basis: same ? 'stored bytes read back' : 'stored bytes read back differ' };
}
