/**
 * putObjectOnce with a body built by BodyBuilder (adapters/s3-put-once.ts), against versitygw:
 * - a body of several buffers is stored byte for byte, accepted again with the same bytes and
 *   refused with different ones;
 * - a streamed PutObject whose connection is reset is sent again (a fresh stream) and stored once;
 * - a multipart upload that fails midway (a part refused) leaves no object and no open upload,
 *   and the retry writes the object once, byte for byte;
 * - the buffers of a released body are reused by the next builder without changing a written object.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '../../adapters/s3';
import { BODY_CHUNK_SIZE, BodyBuilder, putObjectOnce, SHA256_METADATA } from '../../adapters/s3-put-once';
import { ensureStack, testConfig, uniqueName } from '../helpers/env';

const MiB = 1024 * 1024;
const SMALL = { multipartThreshold: 5 * MiB, partSize: 5 * MiB };
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** NDJSON lines of about `bytes` bytes in all. */
function lines(bytes: number, seed: string): Buffer[] {
  const out: Buffer[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const l = Buffer.from(JSON.stringify({ index: i, seed, description: `post ${i} of ${seed} `.repeat(5) }) + '\n');
    out.push(l);
    size += l.length;
  }
  return out;
}

function build(ls: Buffer[], chunkSize?: number) {
  const b = new BodyBuilder(chunkSize);
  for (const l of ls) b.append(l);
  return b.finish();
}

async function stored(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  return Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToByteArray());
}

async function openUploads(s3: S3Client, bucket: string, key: string): Promise<number> {
  return ((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }))).Uploads ?? []).filter((u) => u.Key === key).length;
}

/** A client whose `command` requests fail `times` times (the `n`th and later ones, counted per command) before reaching S3. */
function failing(command: string, fromNth: number, times: number, error: () => Error): { client: S3Client; seen: () => number } {
  const client = createS3Client(testConfig());
  let seen = 0;
  let failed = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === command) {
        seen += 1;
        if (seen >= fromNth && failed < times) {
          failed += 1;
          throw error();
        }
      }
      return next(args);
    },
    { step: 'finalizeRequest', name: 'testFailing' },
  );
  return { client, seen: () => seen };
}

const reset = () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
const refused = () => Object.assign(new Error('refused by the test'), { name: 'InvalidPart', $metadata: { httpStatusCode: 400 } });

describe('putObjectOnce with bodies of several buffers', () => {
  const config = testConfig();
  const bucket = config.s3.bucket;
  let s3: S3Client;

  before(async () => {
    await ensureStack();
    s3 = createS3Client(config);
  });
  after(() => s3?.destroy());

  it('stores the bytes in order, accepts them again, refuses different ones', async () => {
    const key = `put-once-bodies/${uniqueName('parts')}.json`;
    const ls = lines(3 * MiB, key);
    const whole = Buffer.concat(ls);
    const body = build(ls, 256 * 1024);
    assert.ok(body.parts.length > 10, 'several buffers');
    assert.equal(body.length, whole.length);
    assert.equal(body.sha256!.toString('hex'), sha256(whole), 'hashed as built');
    assert.equal(await putObjectOnce(s3, bucket, key, body, { 'pinflow-records': String(ls.length) }), 'written');
    assert.ok((await stored(s3, bucket, key)).equals(whole));
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    assert.equal(head.Metadata?.[SHA256_METADATA], sha256(whole));
    assert.equal(await putObjectOnce(s3, bucket, key, build(ls, 256 * 1024), {}), 'identical');
    const other = lines(3 * MiB, `${key}-other`);
    await assert.rejects(putObjectOnce(s3, bucket, key, build(other, 256 * 1024), {}), /already exists with different content/);
    assert.ok((await stored(s3, bucket, key)).equals(whole), 'the object is unchanged');
  });

  it('sends a streamed PutObject again after a reset connection, and the object is stored once', async () => {
    const key = `put-once-bodies/${uniqueName('reset')}.json`;
    const ls = lines(2 * MiB, key);
    const { client, seen } = failing('PutObjectCommand', 1, 1, reset);
    try {
      assert.equal(await putObjectOnce(client, bucket, key, build(ls, 256 * 1024), {}), 'written');
      assert.equal(seen(), 2, 'sent twice: the reset attempt, then a fresh stream');
      assert.ok((await stored(s3, bucket, key)).equals(Buffer.concat(ls)));
    } finally {
      client.destroy();
    }
  });

  it('a multipart upload refused midway leaves no object and no open upload; the retry writes it once', async () => {
    const key = `put-once-bodies/${uniqueName('multipart')}.json`;
    const ls = lines(12 * MiB, key);
    const whole = Buffer.concat(ls);
    const { client, seen } = failing('UploadPartCommand', 2, 1, refused);
    try {
      await assert.rejects(putObjectOnce(client, bucket, key, build(ls), {}, SMALL), /refused by the test/);
      assert.ok(seen() >= 2, 'the second part was refused');
      await assert.rejects(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })), { name: 'NotFound' });
      assert.equal(await openUploads(s3, bucket, key), 0, 'the upload was aborted');
      // The retry (a new attempt of the activity builds the same bytes again).
      assert.equal(await putObjectOnce(client, bucket, key, build(ls), {}, SMALL), 'written');
      assert.ok((await stored(s3, bucket, key)).equals(whole));
      assert.equal(await openUploads(s3, bucket, key), 0);
      assert.equal(await putObjectOnce(s3, bucket, key, build(ls), {}, SMALL), 'identical');
    } finally {
      client.destroy();
    }
  });

  it('reuses the buffers of a released body without changing what was written', async () => {
    const key = `put-once-bodies/${uniqueName('pool')}.json`;
    const ls = lines(3 * MiB, key);
    const first = build(ls);
    assert.equal(first.parts[0]!.length, BODY_CHUNK_SIZE);
    const firstBuffers = new Set(first.parts.map((p) => p.buffer));
    assert.equal(await putObjectOnce(s3, bucket, key, first, {}), 'written');
    first.release();
    assert.equal(first.parts.length, 0, 'a released body holds nothing');
    const next = new BodyBuilder();
    next.append(Buffer.alloc(BODY_CHUNK_SIZE, 0x61));
    const reused = next.finish();
    assert.ok(firstBuffers.has(reused.parts[0]!.buffer), 'a released buffer is taken again');
    assert.ok((await stored(s3, bucket, key)).equals(Buffer.concat(ls)), 'the written object is unchanged');
  });
});
