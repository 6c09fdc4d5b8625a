/** S3 adapter: the only module that talks to object storage. */
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
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
import { addressOf, type Config } from '../common/config';
import { guarded, NonRetryable } from '../common/errors';
import type { SystemCheck } from '../common/types';

// The pinned SDK supports Node 20 (this machine's); its notice about future releases is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export function createS3Client(config: Config): S3Client {
  return new S3Client({
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
}

/**
 * Writes an object only if the key is free. An existing object with the same bytes (a retry
 * rewriting what an earlier attempt wrote) is fine; different bytes are never overwritten.
 */
export async function putObjectOnce(
  s3: S3Client,
  bucket: string,
  key: string,
  body: string | Buffer,
  metadata: Record<string, string>,
): Promise<'written' | 'identical'> {
  const md5 = createHash('md5').update(body).digest('hex');
  try {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: metadata, IfNoneMatch: '*', ContentType: 'application/x-ndjson' }));
    return 'written';
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status !== 412 && (err as Error).name !== 'PreconditionFailed') throw err;
  }
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  if (head.ETag?.replace(/"/g, '') === md5) return 'identical';
  throw ApplicationFailure.nonRetryable(
    `s3://${bucket}/${key} already exists with different content; refusing to overwrite it (was the topic recreated, or another lander writing the same prefix?)`,
    NonRetryable.conflict,
  );
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
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
        try {
          const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
          const text = await got.Body?.transformToString();
          if (text !== body) throw new Error(`read back ${JSON.stringify(text)} instead of what was written`);
        } finally {
          await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
        }
        const latencyMs = Math.round(performance.now() - started);
        return { system: 's3', address, latencyMs, detail: `put/get/delete in bucket ${bucket}` };
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
