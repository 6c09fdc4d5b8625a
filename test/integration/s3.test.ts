/** The local S3 server is a real one: SigV4, multipart upload, ListObjectsV2 pagination. */
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import { before, describe, it } from 'node:test';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { createS3Client, s3Adapter } from '../../adapters/s3';
import { NonRetryable } from '../../common/errors';
import { ensureStack, testConfig, uniqueName } from '../helpers/env';

describe('S3 server (versitygw)', () => {
  const config = testConfig();
  const bucket = config.s3.bucket;
  let s3: S3Client;

  before(async () => {
    await ensureStack();
    s3 = createS3Client(config);
  });

  it('completes a multipart upload and returns the same bytes', async () => {
    const key = `${uniqueName('test/multipart')}.bin`;
    const parts = [randomBytes(5 * 1024 * 1024), randomBytes(1024 * 1024 + 17)];
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    const etags = [];
    for (const [i, body] of parts.entries()) {
      const r = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: i + 1, Body: body }));
      etags.push({ ETag: r.ETag!, PartNumber: i + 1 });
    }
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: etags } }));
    const got = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToByteArray());
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    assert.equal(got.length, parts[0]!.length + parts[1]!.length);
    assert.equal(sha(got), sha(Buffer.concat(parts)));
  });

  it('lists with ListObjectsV2 under a prefix, page by page', async () => {
    const prefix = `${uniqueName('test/list')}/`;
    const keys = Array.from({ length: 7 }, (_, i) => `${prefix}topic+0+${String(i * 10).padStart(10, '0')}.json`);
    await Promise.all(keys.map((Key) => s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: Key }))));
    const listed: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: 3, ContinuationToken: token }));
      listed.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      pages++;
    } while (token);
    assert.equal(pages, 3);
    assert.deepEqual(listed, [...keys].sort());
  });

  it('a missing bucket is a non-retryable error naming the bucket', async () => {
    const missing = uniqueName('no-such-bucket');
    const adapter = s3Adapter(testConfig({ S3_BUCKET: missing }));
    await assert.rejects(adapter.activities.checkS3(), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure, `got ${String(err)}`);
      assert.equal(err.nonRetryable, true);
      assert.equal(err.type, NonRetryable.missingResource);
      assert.match(err.message, new RegExp(`S3 at http://127\\.0\\.0\\.1:7070/${missing}: `));
      return true;
    });
    await adapter.close();
  });

  it('wrong credentials are a non-retryable auth error', async () => {
    const adapter = s3Adapter(testConfig({ S3_ACCESS_KEY_ID: 'wrong', S3_SECRET_ACCESS_KEY: 'wrong-secret' }));
    await assert.rejects(adapter.activities.checkS3(), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.type, NonRetryable.auth);
      assert.doesNotMatch(err.message, /wrong-secret/);
      return true;
    });
    await adapter.close();
  });
});
