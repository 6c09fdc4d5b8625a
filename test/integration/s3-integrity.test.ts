/**
 * S3 write integrity and server-side encryption, against the local versitygw (v1.8.0).
 *
 * - putObjectOnce decides "the same object again" by SHA-256 (pinflow-sha256 metadata, S3's
 *   full-object checksum), never by taking a multipart ETag for an MD5: a landed object written
 *   by multipart upload is accepted when written again with the same bytes and refused, with
 *   the stored bytes unchanged, with different ones. Objects written before (no checksum) are
 *   still judged: single-part ETag as MD5, otherwise the stored bytes read back.
 * - A multipart write completes only if the key is still free (If-None-Match on
 *   CompleteMultipartUpload, which versitygw honours): shown by a loopback proxy that hides the
 *   object from the pre-check HeadObject. A server that refuses the condition makes large
 *   objects go by a single conditional PutObject.
 * - S3_SSE / S3_SSE_KMS_KEY_ID: versitygw accepts the SSE headers but neither encrypts nor
 *   reports them, so the tests capture every request through that proxy (the real client talks
 *   to it, it forwards to versitygw unchanged) and assert each object write carries them.
 * The settings' validation and compareStored alone: test/unit/s3-integrity.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createS3Client, putFile, s3Adapter } from '../../adapters/s3';
import { compareStored, conditionalCompleteHonoured, putObjectOnce, SHA256_METADATA } from '../../adapters/s3-put-once';
import { kafkaAdapter } from '../../adapters/kafka';
import { landingActivities } from '../../activities/landing';
import { guarded, NonRetryable } from '../../common/errors';
import { objectKey } from '../../common/landing';
import { ensureStack, testConfig, uniqueName } from '../helpers/env';

const MiB = 1024 * 1024;
/** S3's smallest part (all but the last); the tests' multipart threshold and part size. */
const SMALL = { multipartThreshold: 5 * MiB, partSize: 5 * MiB };
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

/** An NDJSON body of about `bytes` bytes, like a landed object. */
function ndjson(bytes: number, seed: string): Buffer {
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const line = JSON.stringify({ index: i, seed, description: `post ${i} of ${seed} `.repeat(6) }) + '\n';
    lines.push(line);
    size += line.length;
  }
  return Buffer.from(lines.join(''));
}

/** The same length, one byte different in the middle. */
function altered(b: Buffer): Buffer {
  const copy = Buffer.from(b);
  const i = Math.floor(copy.length / 2);
  copy[i] = copy[i] === 0x41 ? 0x42 : 0x41;
  return copy;
}

async function bytesOf(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  return Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToByteArray());
}

async function openUploads(s3: S3Client, bucket: string, key: string): Promise<number> {
  return ((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }))).Uploads ?? []).filter((u) => u.Key === key).length;
}

function expectConflict(bucket: string, key: string) {
  return (err: unknown) => {
    assert.ok(err instanceof ApplicationFailure, `got ${String(err)}`);
    assert.equal(err.nonRetryable, true);
    assert.equal(err.type, NonRetryable.conflict);
    assert.ok(err.message.includes(`s3://${bucket}/${key} already exists with different content`), err.message);
    return true;
  };
}

interface Captured {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** The answer passed back; 0: the connection was reset. */
  status: number;
}

/**
 * A loopback proxy in front of versitygw: forwards every request unchanged (the Host header
 * too, so SigV4 signatures hold) and records it. Faults on request: `hideOnce(key)` answers
 * the next HeadObject of `key` with 404; `refuseConditionalComplete` answers a
 * CompleteMultipartUpload carrying If-None-Match with 501 NotImplemented; `failPuts` answers
 * every PutObject with the given S3 error (as AWS answers for an unusable KMS key);
 * `resetConditionalPuts` resets the connection of every PutObject carrying If-None-Match.
 */
async function startCaptureProxy(target: string) {
  const upstream = new URL(target);
  const requests: Captured[] = [];
  const hidden = new Set<string>();
  const state: { refuseConditionalComplete: boolean; resetConditionalPuts: boolean; failPuts?: { status: number; code: string; message: string } } = {
    refuseConditionalComplete: false,
    resetConditionalPuts: false,
  };
  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const url = req.url ?? '/';
      const record = (status: number) => requests.push({ method: req.method ?? '', url, headers: req.headers, status });
      const objectPath = decodeURIComponent(url.split('?')[0]!);
      const hiddenKey = [...hidden].find((k) => objectPath.endsWith(`/${k}`));
      if (req.method === 'HEAD' && hiddenKey) {
        hidden.delete(hiddenKey);
        record(404);
        res.writeHead(404, { 'Content-Length': '0' }).end();
        return;
      }
      if (state.refuseConditionalComplete && req.method === 'POST' && /[?&]uploadId=/.test(url) && req.headers['if-none-match']) {
        const xml = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code><Message>If-None-Match is not implemented for this operation</Message></Error>';
        record(501);
        res.writeHead(501, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(xml) }).end(xml);
        return;
      }
      if (state.resetConditionalPuts && req.method === 'PUT' && req.headers['if-none-match']) {
        record(0);
        req.socket.destroy();
        return;
      }
      const fail = state.failPuts;
      if (fail && req.method === 'PUT' && !/[?&]partNumber=/.test(url)) {
        const xml = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${fail.code}</Code><Message>${fail.message}</Message></Error>`;
        record(fail.status);
        res.writeHead(fail.status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(xml) }).end(xml);
        return;
      }
      // Expect: 100-continue is passed on and honoured: the body goes upstream only after the
      // server's 100 Continue, so a refusal (412) arrives as an answer, not as a reset connection.
      const expectContinue = /100-continue/i.test(String(req.headers.expect ?? ''));
      let sent = false;
      const send = () => {
        if (sent) return;
        sent = true;
        up.end(body);
      };
      const up = http.request({ host: upstream.hostname, port: Number(upstream.port), method: req.method, path: url, headers: req.headers, agent }, (r) => {
        record(r.statusCode ?? 502);
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
        r.on('end', () => {
          if (!sent) up.destroy(); // answered without wanting the body
        });
      });
      // The server reset the connection (versitygw may answer a conditional PUT with 412 and
      // close before reading a large body): the client sees a reset too, as it would directly.
      up.on('error', () => {
        if (!sent && res.headersSent) return; // the destroy above
        record(0);
        res.destroy();
      });
      if (expectContinue) {
        up.on('continue', send);
        up.flushHeaders();
      } else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    state,
    hideOnce: (key: string) => hidden.add(key),
    /** The requests that create an object: PutObject (not UploadPart) and CreateMultipartUpload. */
    objectWrites: (since = 0) =>
      requests.slice(since).filter((r) => (r.method === 'PUT' && !/[?&]partNumber=/.test(r.url)) || (r.method === 'POST' && /[?&]uploads(=|&|$)/.test(r.url))),
    close: async () => {
      agent.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('putObjectOnce on versitygw', () => {
  const config = testConfig();
  const bucket = config.s3.bucket;
  let s3: S3Client;
  let proxy: Awaited<ReturnType<typeof startCaptureProxy>>;

  before(async () => {
    await ensureStack();
    s3 = createS3Client(config);
    proxy = await startCaptureProxy(config.s3.endpoint!);
  });
  after(async () => {
    s3?.destroy();
    await proxy?.close();
  });

  it('versitygw honours If-None-Match on CompleteMultipartUpload (probed once, then cached)', async () => {
    const client = createS3Client(testConfig({ S3_ENDPOINT: proxy.endpoint }));
    const since = proxy.requests.length;
    assert.equal(await conditionalCompleteHonoured(client, bucket), true);
    const probe = proxy.requests.slice(since);
    const complete = probe.find((r) => r.method === 'POST' && /uploadId=/.test(r.url));
    assert.equal(complete?.status, 412, 'the probe upload was refused');
    assert.equal(complete?.headers['if-none-match'], '*');
    assert.equal(await conditionalCompleteHonoured(client, bucket), true);
    assert.equal(proxy.requests.length, since + probe.length, 'asked once per client and bucket');
    const probeKey = decodeURIComponent(probe[0]!.url.split('?')[0]!).replace(`/${bucket}/`, '');
    await assert.rejects(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: probeKey })), { name: 'NotFound' });
    assert.equal(await openUploads(s3, bucket, probeKey), 0);
    client.destroy();
  });

  it('a landed object written by multipart upload is accepted again with the same bytes and refused with different ones', async () => {
    const topic = `${uniqueName('integrity')}.pin`;
    const key = objectKey('topics', topic, 0, 0);
    const body = ndjson(11 * MiB, topic);
    const meta = { 'pinflow-start-offset': '0', 'pinflow-next-offset': '1000' };
    assert.equal(await putObjectOnce(s3, bucket, key, body, meta, SMALL), 'written');

    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }));
    const etag = head.ETag!.replace(/"/g, '');
    assert.match(etag, /^[0-9a-f]{32}-3$/, 'three parts');
    assert.notEqual(etag.split('-')[0], md5(body), 'the ETag is not the MD5 of the bytes');
    assert.equal(head.Metadata?.[SHA256_METADATA], sha256(body));
    assert.equal(head.Metadata?.['pinflow-next-offset'], '1000', "the landing's metadata is kept");
    assert.match(head.ChecksumSHA256 ?? '', /-3$/, 'S3 verified each part by SHA-256 (composite checksum)');
    assert.equal(sha256(await bytesOf(s3, bucket, key)), sha256(body));

    // The retry of an attempt that wrote it: the same bytes are accepted.
    assert.equal(await putObjectOnce(s3, bucket, key, body, meta, SMALL), 'identical');
    // Different bytes of the same size: refused, non-retryable, naming the key.
    await assert.rejects(putObjectOnce(s3, bucket, key, altered(body), meta, SMALL), expectConflict(bucket, key));
    // Also through the single-PutObject path (a smaller threshold does not matter once the key is taken).
    await assert.rejects(putObjectOnce(s3, bucket, key, altered(body), meta), expectConflict(bucket, key));
    assert.equal(sha256(await bytesOf(s3, bucket, key)), sha256(body), 'the stored object is unchanged');
    assert.equal((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ETag, head.ETag);
    assert.equal(await openUploads(s3, bucket, key), 0, 'no upload left behind');
  });

  it('a writer that took the key after the pre-check loses to the conditional CompleteMultipartUpload', async () => {
    const client = createS3Client(testConfig({ S3_ENDPOINT: proxy.endpoint }));
    const topic = `${uniqueName('integrity-race')}.pin`;
    const key = objectKey('topics', topic, 0, 0);
    const theirs = ndjson(6 * MiB, `${topic}-theirs`);
    assert.equal(await putObjectOnce(s3, bucket, key, theirs, {}, SMALL), 'written');

    assert.equal(await conditionalCompleteHonoured(client, bucket), true); // probed before, not in the requests below
    proxy.hideOnce(key); // the pre-check HeadObject sees no object, as in a race
    const since = proxy.requests.length;
    await assert.rejects(putObjectOnce(client, bucket, key, ndjson(6 * MiB, `${topic}-ours`), {}, SMALL), expectConflict(bucket, key));
    const seen = proxy.requests.slice(since);
    assert.equal(seen[0]?.status, 404, 'the pre-check missed the object');
    const complete = seen.find((r) => r.method === 'POST' && /uploadId=/.test(r.url));
    assert.equal(complete?.headers['if-none-match'], '*');
    assert.equal(complete?.status, 412, 'the server refused to complete over the existing object');
    assert.ok(seen.some((r) => r.method === 'DELETE' && /uploadId=/.test(r.url)), 'the upload was aborted');
    assert.equal(sha256(await bytesOf(s3, bucket, key)), sha256(theirs), 'their object is unchanged');
    assert.equal(await openUploads(s3, bucket, key), 0);

    // Two writers of the same bytes racing the same way: both succeed, one object.
    const key2 = objectKey('topics', topic, 0, 100);
    const body = ndjson(6 * MiB, `${topic}-same`);
    assert.equal(await putObjectOnce(s3, bucket, key2, body, {}, SMALL), 'written');
    proxy.hideOnce(key2);
    assert.equal(await putObjectOnce(client, bucket, key2, body, {}, SMALL), 'identical');
    assert.equal(await openUploads(s3, bucket, key2), 0);
    client.destroy();
  });

  it('a server that refuses conditional completes gets large objects by a single conditional PutObject', async () => {
    const client = createS3Client(testConfig({ S3_ENDPOINT: proxy.endpoint }));
    proxy.state.refuseConditionalComplete = true;
    try {
      const since = proxy.requests.length;
      assert.equal(await conditionalCompleteHonoured(client, bucket), false);
      const key = objectKey('topics', `${uniqueName('integrity-single')}.pin`, 0, 0);
      const body = ndjson(6 * MiB, key);
      const mark = proxy.requests.length;
      assert.equal(await putObjectOnce(client, bucket, key, body, {}, SMALL), 'written');
      const writes = proxy.requests.slice(mark).filter((r) => r.method !== 'HEAD');
      assert.equal(writes.length, 1, writes.map((r) => `${r.method} ${r.url}`).join('\n'));
      assert.equal(writes[0]!.method, 'PUT');
      assert.equal(writes[0]!.headers['if-none-match'], '*');
      assert.equal(writes[0]!.headers['x-amz-checksum-sha256'], Buffer.from(sha256(body), 'hex').toString('base64'));
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      assert.equal(head.ETag!.replace(/"/g, ''), md5(body), 'one part');
      assert.equal(await putObjectOnce(client, bucket, key, body, {}, SMALL), 'identical');
      await assert.rejects(putObjectOnce(client, bucket, key, altered(body), {}, SMALL), expectConflict(bucket, key));
      const probeKeys = new Set(proxy.requests.slice(since, mark).map((r) => decodeURIComponent(r.url.split('?')[0]!).replace(`/${bucket}/`, '')));
      for (const k of probeKeys) assert.equal(await openUploads(s3, bucket, k), 0, `probe upload of ${k} aborted`);
    } finally {
      proxy.state.refuseConditionalComplete = false;
      client.destroy();
    }
  });

  it('a conditional PutObject answered by a reset connection: the stored object decides, a free key keeps the error', async () => {
    const client = createS3Client(testConfig({ S3_ENDPOINT: proxy.endpoint }));
    const key = objectKey('topics', `${uniqueName('integrity-reset')}.pin`, 0, 0);
    const body = ndjson(256 * 1024, key);
    assert.equal(await putObjectOnce(s3, bucket, key, body, {}), 'written');
    proxy.state.resetConditionalPuts = true;
    try {
      const since = proxy.requests.length;
      assert.equal(await putObjectOnce(client, bucket, key, body, {}), 'identical');
      assert.ok(proxy.requests.slice(since).some((r) => r.method === 'PUT' && r.status === 0), 'the PutObject was reset');
      await assert.rejects(putObjectOnce(client, bucket, key, altered(body), {}), expectConflict(bucket, key));
      // A free key: nothing to compare, the reset stays a retryable S3 error naming the address.
      const free = objectKey('topics', `${uniqueName('integrity-reset-free')}.pin`, 0, 0);
      const address = `${proxy.endpoint}/${bucket}`;
      await assert.rejects(guarded('S3', address, () => putObjectOnce(client, bucket, free, body, {})), (err: unknown) => {
        assert.ok(!(err instanceof ApplicationFailure), `retryable, got ${String(err)}`);
        assert.equal((err as Error).name, 'S3Error');
        assert.ok((err as Error).message.startsWith(`S3 at ${address}: `), (err as Error).message);
        return true;
      });
      await assert.rejects(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: free })), { name: 'NotFound' });
    } finally {
      proxy.state.resetConditionalPuts = false;
      client.destroy();
    }
    assert.equal(sha256(await bytesOf(s3, bucket, key)), sha256(body));
  });

  it('a single-part object stores S3 SHA-256 checksum and metadata; the same bytes again are accepted', async () => {
    const key = objectKey('topics', `${uniqueName('integrity-small')}.geo`, 1, 0);
    const body = ndjson(64 * 1024, key);
    assert.equal(await putObjectOnce(s3, bucket, key, body.toString('utf8'), { 'pinflow-records': '9' }), 'written');
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }));
    assert.equal(head.ChecksumSHA256, Buffer.from(sha256(body), 'hex').toString('base64'));
    assert.equal(head.Metadata?.[SHA256_METADATA], sha256(body));
    assert.equal(head.ContentType, 'application/x-ndjson');
    assert.equal(await putObjectOnce(s3, bucket, key, body, { 'pinflow-records': '9' }), 'identical');
    await assert.rejects(putObjectOnce(s3, bucket, key, altered(body), {}), expectConflict(bucket, key));
    assert.equal(sha256(await bytesOf(s3, bucket, key)), sha256(body));
  });

  it('objects written before this change (no stored SHA-256) are still judged by their bytes', async () => {
    // Single part, no metadata: the ETag is the MD5.
    const old = objectKey('topics', `${uniqueName('integrity-legacy')}.user`, 0, 0);
    const body = ndjson(32 * 1024, old);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: old, Body: body }));
    assert.equal(await putObjectOnce(s3, bucket, old, body, {}), 'identical');
    await assert.rejects(putObjectOnce(s3, bucket, old, altered(body), {}), expectConflict(bucket, old));

    // Multipart, no metadata, no SHA-256 (like the Confluent sink's large objects): read back.
    const mp = objectKey('topics', `${uniqueName('integrity-legacy-mp')}.user`, 0, 0);
    const big = ndjson(6 * MiB, mp);
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: mp }));
    const parts = [];
    for (const [i, chunk] of [big.subarray(0, 5 * MiB), big.subarray(5 * MiB)].entries()) {
      const r = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: mp, UploadId, PartNumber: i + 1, Body: chunk }));
      parts.push({ PartNumber: i + 1, ETag: r.ETag });
    }
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: mp, UploadId, MultipartUpload: { Parts: parts } }));
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: mp, ChecksumMode: 'ENABLED' }));
    assert.equal(compareStored(head, big).verdict, 'unknown', 'nothing stored decides it');
    assert.equal(await putObjectOnce(s3, bucket, mp, big, {}, SMALL), 'identical');
    await assert.rejects(putObjectOnce(s3, bucket, mp, altered(big), {}, SMALL), (err: unknown) => {
      expectConflict(bucket, mp)(err);
      assert.match((err as Error).message, /stored bytes read back differ/);
      return true;
    });
    assert.equal(sha256(await bytesOf(s3, bucket, mp)), sha256(big));
  });
});

describe('S3_SSE on every object write', () => {
  let proxy: Awaited<ReturnType<typeof startCaptureProxy>>;
  let work: string;

  before(async () => {
    await ensureStack();
    proxy = await startCaptureProxy(testConfig().s3.endpoint!);
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-sse-'));
  });
  after(async () => {
    await proxy?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  /** Every write path pinflow has, through one adapter: returns the keys it wrote. */
  async function writeEverything(env: Record<string, string>, label: string) {
    const config = testConfig({ S3_ENDPOINT: proxy.endpoint, ...env });
    const adapter = s3Adapter(config);
    const bucket = config.s3.bucket;
    const prefix = uniqueName(`sse-${label}`);
    try {
      const doctor = await adapter.activities.checkS3();
      const small = objectKey('topics', `${prefix}.pin`, 0, 0);
      const large = objectKey('topics', `${prefix}.pin`, 0, 10);
      const body = ndjson(6 * MiB, prefix);
      assert.equal(await putObjectOnce(adapter.client(), bucket, small, '{"index":1}\n', {}), 'written');
      assert.equal(await putObjectOnce(adapter.client(), bucket, large, body, {}, SMALL), 'written');
      const file = path.join(work, `${prefix}.parquet`);
      fs.writeFileSync(file, 'PAR1 not really parquet PAR1');
      const parquet = `analytics/${prefix}/part-00000.parquet`;
      await putFile(adapter.client(), bucket, parquet, file, 'application/vnd.apache.parquet');
      const manifest = await new MockActivityEnvironment().run(landingActivities(config, kafkaAdapter(config), adapter).writeLandingManifest, {
        prefix,
        workflowId: `${prefix}-wf`,
        runId: 'run-1',
        topicsDir: 'topics',
        partitions: [],
      });
      // Read back through the same encrypted path: the bytes are intact.
      assert.equal(sha256(await bytesOf(adapter.client(), bucket, large)), sha256(body));
      assert.equal((await bytesOf(adapter.client(), bucket, parquet)).toString(), 'PAR1 not really parquet PAR1');
      assert.equal(typeof manifest, 'string');
      return { doctor, keys: [small, large, parquet, manifest as string] };
    } finally {
      await adapter.close();
    }
  }

  const writtenKeys = (writes: Captured[]) => new Set(writes.map((r) => decodeURIComponent(r.url.split('?')[0]!).split('/').slice(2).join('/')));

  it('S3_SSE=AES256: every PutObject and CreateMultipartUpload carries it (versitygw accepts it and does not encrypt)', async (t) => {
    const since = proxy.requests.length;
    const { doctor, keys } = await writeEverything({ S3_SSE: 'AES256' }, 'aes');
    const writes = proxy.objectWrites(since);
    // The doctor's object, the probe's, two landed objects (one by multipart), the Parquet file, the manifest.
    assert.ok(writes.some((r) => r.method === 'POST'), 'a CreateMultipartUpload was made');
    assert.ok(writes.length >= 6, writes.map((r) => `${r.method} ${r.url}`).join('\n'));
    for (const w of writes) {
      assert.equal(w.headers['x-amz-server-side-encryption'], 'AES256', `${w.method} ${w.url}`);
      assert.equal(w.headers['x-amz-server-side-encryption-aws-kms-key-id'], undefined);
      assert.ok(String(w.headers.authorization).includes('x-amz-server-side-encryption'), 'the header is signed');
    }
    const written = writtenKeys(writes);
    for (const k of keys) assert.ok(written.has(k), `${k} was written with the header`);
    assert.ok([...written].some((k) => k.startsWith('_doctor/')), "the doctor's check object");
    // versitygw v1.8.0 answers without x-amz-server-side-encryption: it stores the bytes as they are.
    assert.match(doctor.detail, /SSE AES256 requested, the server reports (none|AES256)/);
    t.diagnostic(`doctor: ${doctor.detail}`);
  });

  it('S3_SSE=aws:kms with S3_SSE_KMS_KEY_ID: both headers on every object write', async () => {
    const keyId = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const since = proxy.requests.length;
    const { keys } = await writeEverything({ S3_SSE: 'aws:kms', S3_SSE_KMS_KEY_ID: keyId }, 'kms');
    const writes = proxy.objectWrites(since);
    assert.ok(writes.length >= 5);
    for (const w of writes) {
      assert.equal(w.headers['x-amz-server-side-encryption'], 'aws:kms', `${w.method} ${w.url}`);
      assert.equal(w.headers['x-amz-server-side-encryption-aws-kms-key-id'], keyId, `${w.method} ${w.url}`);
    }
    const written = writtenKeys(writes);
    for (const k of keys) assert.ok(written.has(k), `${k} was written with the headers`);
    // UploadPart carries no SSE-KMS header (S3 rejects one there): the upload's own applies.
    const parts = proxy.requests.slice(since).filter((r) => r.method === 'PUT' && /partNumber=/.test(r.url));
    assert.ok(parts.length >= 2);
    for (const p of parts) assert.equal(p.headers['x-amz-server-side-encryption'], undefined);
  });

  it('S3_SSE unset: no SSE header is sent', async () => {
    const since = proxy.requests.length;
    await writeEverything({}, 'none');
    const writes = proxy.objectWrites(since);
    assert.ok(writes.length >= 5);
    for (const w of writes) assert.equal(w.headers['x-amz-server-side-encryption'], undefined, `${w.method} ${w.url}`);
  });

  it('a KMS key S3 cannot use fails at once, non-retryable, naming S3, its address and the settings', async () => {
    const bucket = testConfig().s3.bucket;
    const cases: Array<{ env: Record<string, string>; fault: { status: number; code: string; message: string }; type: string; names: RegExp }> = [
      {
        env: { S3_SSE: 'aws:kms', S3_SSE_KMS_KEY_ID: 'alias/pinflow-missing' },
        fault: { status: 400, code: 'KMS.NotFoundException', message: "Invalid keyId 'alias/pinflow-missing'" },
        type: NonRetryable.config,
        names: /S3_SSE=aws:kms, S3_SSE_KMS_KEY_ID=alias\/pinflow-missing: check the key exists in us-east-1, is enabled, and that its key policy and the worker role allow kms:GenerateDataKey and kms:Decrypt/,
      },
      {
        env: { S3_SSE: 'aws:kms' },
        fault: { status: 400, code: 'KMS.DisabledException', message: 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab is disabled.' },
        type: NonRetryable.config,
        names: /S3_SSE_KMS_KEY_ID unset \(the bucket's default key or aws\/s3\)/,
      },
      {
        env: { S3_SSE: 'aws:kms', S3_SSE_KMS_KEY_ID: 'alias/pinflow' },
        fault: { status: 403, code: 'AccessDenied', message: 'User: arn:aws:sts::111122223333:assumed-role/pinflow-worker/x is not authorized to perform: kms:GenerateDataKey on this resource' },
        type: NonRetryable.auth,
        names: /S3_SSE_KMS_KEY_ID=alias\/pinflow: .*kms:GenerateDataKey and kms:Decrypt/,
      },
      {
        env: {},
        fault: { status: 403, code: 'AccessDenied', message: 'User: arn:aws:sts::111122223333:assumed-role/pinflow-worker/x is not authorized to perform: kms:Decrypt on this resource' },
        type: NonRetryable.auth,
        names: /S3_SSE is unset, so the bucket's default encryption applies: check its KMS key exists in us-east-1/,
      },
      {
        env: { S3_SSE: 'AES256' },
        fault: { status: 400, code: 'InvalidEncryptionAlgorithmError', message: 'The encryption request you specified is not valid.' },
        type: NonRetryable.config,
        names: /S3_SSE=AES256: check the server supports SSE-S3, or unset S3_SSE/,
      },
    ];
    for (const c of cases) {
      const config = testConfig({ S3_ENDPOINT: proxy.endpoint, ...c.env });
      const adapter = s3Adapter(config);
      proxy.state.failPuts = c.fault;
      try {
        const started = Date.now();
        // The doctor's check and a landing write: both classified the same way.
        for (const attempt of [
          () => adapter.activities.checkS3(),
          () => guarded('S3', adapter.address, () => putObjectOnce(adapter.client(), bucket, `topics/${uniqueName('kms')}.json`, '{"a":1}\n', {})),
        ]) {
          await assert.rejects(attempt(), (err: unknown) => {
            assert.ok(err instanceof ApplicationFailure, `${c.fault.code}: got ${String(err)}`);
            assert.equal(err.nonRetryable, true, c.fault.code);
            assert.equal(err.type, c.type, c.fault.code);
            assert.ok(err.message.startsWith(`S3 at ${proxy.endpoint}/${bucket}: ${c.fault.message}`), err.message);
            assert.match(err.message, c.names);
            return true;
          });
        }
        assert.ok(Date.now() - started < 5_000, 'not retried for long');
      } finally {
        proxy.state.failPuts = undefined;
        await adapter.close();
      }
    }
  });
});
