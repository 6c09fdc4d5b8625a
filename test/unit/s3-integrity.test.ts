/**
 * S3 write integrity and server-side encryption without a server: the S3_SSE / S3_SSE_KMS_KEY_ID
 * settings (valid values into the write parameters, bad ones named in the error) and
 * compareStored, which decides "the same object again" from what S3 stores (a SHA-256 first,
 * an ETag as MD5 only where it is one). test/integration/s3-integrity.test.ts writes objects
 * to the stack's versitygw.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { sseWriteParams } from '../../adapters/s3';
import { compareStored, SHA256_METADATA } from '../../adapters/s3-put-once';
import { loadConfig } from '../../config';
import { configError } from '../helpers/secured';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

describe('S3 settings S3_SSE and S3_SSE_KMS_KEY_ID', () => {
  const problems = (env: Record<string, string>) => configError(env).problems;

  it('unset: no SSE parameters at all (the bucket default encryption applies)', () => {
    const c = loadConfig({});
    assert.equal(c.s3.sse, undefined);
    assert.deepEqual(sseWriteParams(c), {});
  });

  it('builds the write parameters from valid settings', () => {
    assert.deepEqual(sseWriteParams(loadConfig({ S3_SSE: 'AES256' })), { ServerSideEncryption: 'AES256' });
    assert.deepEqual(sseWriteParams(loadConfig({ S3_SSE: 'aws:kms' })), { ServerSideEncryption: 'aws:kms' });
    for (const key of [
      '1234abcd-12ab-34cd-56ef-1234567890ab',
      'mrk-1234abcd12ab34cd56ef1234567890ab',
      'alias/pinflow-landing',
      'alias/aws/s3',
      'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      'arn:aws:kms:eu-west-1:111122223333:alias/pinflow',
      'arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab',
    ]) {
      const c = loadConfig({ S3_SSE: 'aws:kms', S3_SSE_KMS_KEY_ID: key });
      assert.deepEqual(c.s3.sse, { algorithm: 'aws:kms', kmsKeyId: key });
      assert.deepEqual(sseWriteParams(c), { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: key });
    }
  });

  it('rejects a bad S3_SSE value, naming the setting and the value', () => {
    for (const bad of ['aes256', 'kms', 'aws:kms:dsse', 'SSE-C']) {
      const p = problems({ S3_SSE: bad });
      assert.equal(p.length, 1, p.join('\n'));
      assert.match(p[0]!, /^S3_SSE must be "AES256" or "aws:kms"/);
      assert.ok(p[0]!.includes(`(got ${JSON.stringify(bad)})`), p[0]);
    }
  });

  it('rejects a malformed KMS key id, naming the setting', () => {
    for (const bad of ['my key', 'arn:aws:kms:us-east-1:1234:key/x', 'alias/', 'arn:aws:s3:::bucket']) {
      const p = problems({ S3_SSE: 'aws:kms', S3_SSE_KMS_KEY_ID: bad });
      assert.equal(p.length, 1, p.join('\n'));
      assert.match(p[0]!, /^S3_SSE_KMS_KEY_ID must be a KMS key id, key ARN, alias\/NAME or alias ARN/);
    }
  });

  it('rejects S3_SSE_KMS_KEY_ID without S3_SSE=aws:kms', () => {
    const envs: Array<Record<string, string>> = [{ S3_SSE_KMS_KEY_ID: 'alias/pinflow' }, { S3_SSE: 'AES256', S3_SSE_KMS_KEY_ID: 'alias/pinflow' }];
    for (const env of envs) {
      const p = problems(env);
      assert.equal(p.length, 1, p.join('\n'));
      assert.match(p[0]!, /^S3_SSE_KMS_KEY_ID needs S3_SSE=aws:kms/);
    }
  });

  it('reports both settings at once when both are wrong', () => {
    const p = problems({ S3_SSE: 'kms', S3_SSE_KMS_KEY_ID: 'not a key' });
    assert.equal(p.length, 2, p.join('\n'));
    assert.ok(p.some((m) => m.startsWith('S3_SSE must be')));
    assert.ok(p.some((m) => m.startsWith('S3_SSE_KMS_KEY_ID ') && /must be a KMS key id/.test(m) && /needs S3_SSE=aws:kms/.test(m)));
  });
});

describe('compareStored: how "the same object again" is decided', () => {
  const body = Buffer.from('{"index":1}\n{"index":2}\n');
  const hex = sha256(body);
  const b64 = Buffer.from(hex, 'hex').toString('base64');
  const size = body.length;

  it('a stored SHA-256 decides, even where the ETag is not an MD5 (SSE-KMS, multipart)', () => {
    const kmsEtag = '"9b2cf535f27731c974343645a3985328"';
    assert.equal(compareStored({ ContentLength: size, ETag: kmsEtag, ServerSideEncryption: 'aws:kms', Metadata: { [SHA256_METADATA]: hex } }, body).verdict, 'identical');
    assert.equal(compareStored({ ContentLength: size, ETag: '"0123456789abcdef0123456789abcdef-3"', Metadata: { [SHA256_METADATA]: hex } }, body).verdict, 'identical');
    assert.equal(compareStored({ ContentLength: size, ETag: kmsEtag, ChecksumSHA256: b64, ChecksumType: 'FULL_OBJECT' }, body).verdict, 'identical');
    const other = sha256(Buffer.from('other'));
    const d = compareStored({ ContentLength: size, ETag: `"${md5(body)}"`, Metadata: { [SHA256_METADATA]: other } }, body);
    assert.deepEqual(d, { verdict: 'different', basis: `metadata ${SHA256_METADATA} differs` }, 'a stored SHA-256 outranks a matching MD5 ETag');
    assert.equal(compareStored({ ContentLength: size, ChecksumSHA256: b64, Metadata: { [SHA256_METADATA]: other } }, body).verdict, 'different', 'every stored SHA-256 must agree');
  });

  it('a different size is different without looking further', () => {
    assert.equal(compareStored({ ContentLength: size + 1, Metadata: { [SHA256_METADATA]: hex } }, body).verdict, 'different');
  });

  it('no SHA-256 stored: the ETag as MD5 only for a single-part, non-KMS object; otherwise unknown (read back)', () => {
    assert.equal(compareStored({ ContentLength: size, ETag: `"${md5(body)}"` }, body).verdict, 'identical');
    assert.equal(compareStored({ ContentLength: size, ETag: `"${md5(body)}"`, ServerSideEncryption: 'AES256' }, body).verdict, 'identical');
    assert.equal(compareStored({ ContentLength: size, ETag: `"${md5(Buffer.from('x'))}"` }, body).verdict, 'different');
    assert.equal(compareStored({ ContentLength: size, ETag: `"${md5(body)}"`, ServerSideEncryption: 'aws:kms' }, body).verdict, 'unknown');
    assert.equal(compareStored({ ContentLength: size, ETag: `"${md5(body)}"`, SSECustomerAlgorithm: 'AES256' }, body).verdict, 'unknown');
    assert.equal(compareStored({ ContentLength: size, ETag: `"${md5(body)}-2"` }, body).verdict, 'unknown', 'a multipart ETag is never an MD5 of the bytes');
    // S3's composite (multipart) SHA-256 is a checksum of part checksums: not compared.
    assert.equal(compareStored({ ContentLength: size, ETag: `"${md5(body)}-2"`, ChecksumSHA256: `${b64}-2`, ChecksumType: 'COMPOSITE' }, body).verdict, 'unknown');
  });
});
