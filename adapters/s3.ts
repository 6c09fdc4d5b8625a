/**
 * S3 adapter: the only module that talks to object storage.
 *
 * Every object write made through `createS3Client` carries the configured server-side
 * encryption (S3_SSE, S3_SSE_KMS_KEY_ID): `sseWriteParams` builds it, a client middleware adds
 * it to each PutObject, CreateMultipartUpload and CopyObject. `putObjectOnce` writes a key at
 * most once and decides "the same object again" by SHA-256 (see `compareStored`), never by
 * taking an ETag for an MD5 where it is not one (SSE-KMS, multipart).
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
  type HeadObjectCommandOutput,
  type ServerSideEncryption,
} from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { createHash, randomUUID } from 'node:crypto';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import https from 'node:https';
import { addressOf, type Config } from '../config';
import { guarded, NonRetryable } from '../common/errors';
import type { SystemCheck } from '../common/types';

// The pinned SDK supports Node 20 (this machine's); its notice about future releases is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** The server-side encryption parameters of every object write: the one place built from the config. */
export function sseWriteParams(config: Config): { ServerSideEncryption?: ServerSideEncryption; SSEKMSKeyId?: string } {
  const sse = config.s3.sse;
  if (!sse) return {};
  return { ServerSideEncryption: sse.algorithm, ...(sse.kmsKeyId && { SSEKMSKeyId: sse.kmsKeyId }) };
}

/**
 * The commands that create an object and so take the SSE headers. UploadPart takes none (the
 * upload's CreateMultipartUpload decides its encryption; only SSE-C repeats a key per part).
 */
export const OBJECT_WRITE_COMMANDS: ReadonlySet<string> = new Set(['PutObjectCommand', 'CreateMultipartUploadCommand', 'CopyObjectCommand']);

const isEncryptionRefusal = (e: Error) =>
  /^KMS\./.test(e.name ?? '') || e.name === 'InvalidEncryptionAlgorithmError' || (e.name === 'AccessDenied' && /\bkms:/i.test(e.message ?? ''));

/** What to check when S3 refuses a write or read for its encryption. */
function sseAdvice(config: Config): string {
  const sse = config.s3.sse;
  const kms = 'and that its key policy and the worker role allow kms:GenerateDataKey and kms:Decrypt';
  if (!sse) return `S3_SSE is unset, so the bucket's default encryption applies: check its KMS key exists in ${config.s3.region}, is enabled, ${kms}`;
  if (sse.algorithm === 'AES256') return 'S3_SSE=AES256: check the server supports SSE-S3, or unset S3_SSE';
  const key = sse.kmsKeyId ? `S3_SSE_KMS_KEY_ID=${sse.kmsKeyId}` : "S3_SSE_KMS_KEY_ID unset (the bucket's default key or aws/s3)";
  return `S3_SSE=aws:kms, ${key}: check the key exists in ${config.s3.region}, is enabled, ${kms}`;
}

/** Clients whose server is known to honour If-None-Match on CompleteMultipartUpload without probing (AWS S3 itself). */
const conditionalCompleteKnown = new WeakMap<S3Client, boolean>();

export function createS3Client(config: Config): S3Client {
  const client = new S3Client({
    region: config.s3.region,
    endpoint: config.s3.endpoint,
    forcePathStyle: config.s3.forcePathStyle,
    credentials: config.s3.credentials,
    maxAttempts: 3,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: 5_000,
      requestTimeout: 60_000,
      httpAgent: new http.Agent({ keepAlive: true, maxSockets: 64 }),
      httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 64 }),
    }),
  });
  const sse = sseWriteParams(config);
  if (sse.ServerSideEncryption) {
    // The configured encryption wins over anything a caller passed: every write is encrypted alike.
    client.middlewareStack.add(
      (next, context) => (args) =>
        next(OBJECT_WRITE_COMMANDS.has(context.commandName ?? '') ? { ...args, input: { ...args.input, ...sse } as typeof args.input } : args),
      { step: 'initialize', name: 'pinflowServerSideEncryption' },
    );
  }
  // Encryption refusals (a KMS key that is missing, disabled or not usable by this role; an
  // algorithm the server lacks) name the settings behind them; errors.ts classifies them.
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (err) {
        const e = err as Error;
        if (e && typeof e === 'object' && isEncryptionRefusal(e)) e.message = `${e.message} (${sseAdvice(config)})`;
        throw err;
      }
    },
    { step: 'initialize', name: 'pinflowSseErrors' },
  );
  // AWS S3 has honoured If-None-Match on CompleteMultipartUpload since August 2024.
  if (config.s3.endpoint === undefined) conditionalCompleteKnown.set(client, true);
  return client;
}

/** putObjectOnce writes bodies above this size by multipart upload, in parts of MULTIPART_PART_SIZE. */
export const MULTIPART_THRESHOLD = 16 * 1024 * 1024;
export const MULTIPART_PART_SIZE = 8 * 1024 * 1024;
/** Parts of one object in flight at once. */
const PART_CONCURRENCY = 4;
/** User metadata (x-amz-meta-pinflow-sha256): the hex SHA-256 of the object's bytes, written by putObjectOnce. */
export const SHA256_METADATA = 'pinflow-sha256';
/** Where the one-off capability probe writes (and deletes) its object. */
export const PROBE_PREFIX = '_pinflow-probe/';

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
  body: string | Buffer,
  metadata: Record<string, string>,
  opts: PutOnceOptions = {},
): Promise<'written' | 'identical'> {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const sha256 = createHash('sha256').update(bytes).digest();
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

async function putIfAbsent(s3: S3Client, bucket: string, key: string, bytes: Buffer, meta: Record<string, string>, contentType: string, sha256: Buffer): Promise<boolean> {
  try {
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: bytes,
        Metadata: meta,
        IfNoneMatch: '*',
        ContentType: contentType,
        ChecksumAlgorithm: 'SHA256',
        ChecksumSHA256: sha256.toString('base64'),
      }),
    );
    return true;
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
  bytes: Buffer,
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
        const chunk = bytes.subarray(i * partSize, Math.min(bytes.length, (i + 1) * partSize));
        const sum = createHash('sha256').update(chunk).digest('base64');
        try {
          const r = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: i + 1, Body: chunk, ChecksumAlgorithm: 'SHA256', ChecksumSHA256: sum }));
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
  if (conditionalCompleteKnown.get(s3)) return Promise.resolve(true);
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
  bytes: Buffer,
): StoredComparison {
  if (head.ContentLength !== undefined && head.ContentLength !== bytes.length) {
    return { verdict: 'different', basis: `${head.ContentLength} bytes stored, ${bytes.length} to write` };
  }
  const sha256 = createHash('sha256').update(bytes).digest();
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
    const same = etag.toLowerCase() === createHash('md5').update(bytes).digest('hex');
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

/** Every key under `prefix` (after `startAfter`, when given), in key order (ListObjectsV2, page by page). */
export async function listKeys(s3: S3Client, bucket: string, prefix: string, startAfter?: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token, StartAfter: token ? undefined : startAfter }));
    for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/** Every object under `prefix` with its size, in key order. */
export async function listObjects(s3: S3Client, bucket: string, prefix: string): Promise<Array<{ key: string; size: number }>> {
  const out: Array<{ key: string; size: number }> = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key) out.push({ key: o.Key, size: o.Size ?? 0 });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/** Streams an object to a local file (never the whole object in memory); returns its size. */
export async function downloadToFile(s3: S3Client, bucket: string, key: string, file: string): Promise<number> {
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const partial = `${file}.partial`;
  await pipeline(got.Body as Readable, fs.createWriteStream(partial));
  fs.renameSync(partial, file);
  return fs.statSync(file).size;
}

/** Replaces `key` with a local file's bytes (outputs are replaced on every run, unlike landed objects). */
export async function putFile(s3: S3Client, bucket: string, key: string, file: string, contentType: string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: await fs.promises.readFile(file), ContentType: contentType }));
}

/** Deletes every object under `prefix` except `keep` (a rerun's leftovers, e.g. more parts than now). */
export async function deleteOthers(s3: S3Client, bucket: string, prefix: string, keep: ReadonlySet<string>): Promise<number> {
  const stale = (await listKeys(s3, bucket, prefix)).filter((k) => !keep.has(k));
  for (let i = 0; i < stale.length; i += 1000) {
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: stale.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true } }));
  }
  return stale.length;
}

export async function getText(s3: S3Client, bucket: string, key: string): Promise<string> {
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return (await got.Body?.transformToString('utf8')) ?? '';
}

export async function headMetadata(s3: S3Client, bucket: string, key: string): Promise<Record<string, string>> {
  return (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).Metadata ?? {};
}

export function s3Adapter(config: Config) {
  const address = addressOf(config, 's3');
  const bucket = config.s3.bucket;
  let client: S3Client | undefined;
  const getClient = () => (client ??= createS3Client(config));

  const activities = {
    /** Doctor: put, read back and delete a small object under `_doctor/`. */
    async checkS3(): Promise<SystemCheck> {
      return guarded('S3', address, async () => {
        const s3 = getClient();
        const key = `_doctor/${randomUUID()}.txt`;
        const body = `pinflow doctor ${new Date().toISOString()}`;
        const started = performance.now();
        // Encrypted as configured (the client adds the SSE headers); reading it back needs kms:Decrypt under SSE-KMS.
        const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
        try {
          const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
          const text = await got.Body?.transformToString();
          if (text !== body) throw new Error(`read back ${JSON.stringify(text)} instead of what was written`);
        } finally {
          await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
        }
        const latencyMs = Math.round(performance.now() - started);
        const sse = config.s3.sse ? `; SSE ${config.s3.sse.algorithm} requested, the server reports ${put.ServerSideEncryption ?? 'none'}` : '';
        return { system: 's3', address, latencyMs, detail: `put/get/delete in bucket ${bucket}${sse}` };
      });
    },
  };

  return {
    activities,
    client: getClient,
    address,
    bucket,
    async close() {
      client?.destroy();
      client = undefined;
    },
  };
}
