/**
 * S3 adapter: the only module that talks to object storage.
 *
 * Every object write made through `createS3Client` carries the configured server-side
 * encryption (S3_SSE, S3_SSE_KMS_KEY_ID): `sseWriteParams` builds it, a client middleware adds
 * it to each PutObject, CreateMultipartUpload and CopyObject. Writing a key at most once
 * (`putObjectOnce`) is adapters/s3-put-once.ts's; the listing, download, upload and delete
 * helpers and the doctor's check are here.
 */
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type ServerSideEncryption,
} from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { addressOf, type Config } from '../config';
import { guarded } from '../common/errors';
import type { SystemCheck } from '../common/types';
import { awsRequestHandler } from './aws-http';

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

export function createS3Client(config: Config): S3Client {
  const client = new S3Client({
    region: config.s3.region,
    endpoint: config.s3.endpoint,
    forcePathStyle: config.s3.forcePathStyle,
    credentials: config.s3.credentials,
    maxAttempts: 3,
    requestHandler: awsRequestHandler(60_000),
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
  return client;
}

/**
 * Every key under `prefix` (after `startAfter`, when given), in key order (ListObjectsV2, page
 * by page); `onPage` is called after each page (an activity heartbeats there).
 */
export async function listKeys(s3: S3Client, bucket: string, prefix: string, startAfter?: string, onPage?: () => void): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token, StartAfter: token ? undefined : startAfter }));
    for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
    onPage?.();
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
