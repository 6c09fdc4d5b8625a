/**
 * The near-real-time path's pure rules: sequence-number order, shards readable across a
 * reshard, the workflow input's validation, how Kinesis errors are classified (and what
 * KINESIS_ENDPOINT means), PutRecords request limits. test/integration/streaming.test.ts
 * streams the real sample through kinesalite.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { putChunks } from '../../adapters/kinesis';
import { classify } from '../../common/errors';
import { compareSeq, laterSeq, newShardStatus, readableShards, validateStreamingInput } from '../../common/streaming';
import { testConfig } from '../helpers/env';

describe('streaming: pure rules', () => {
  it('orders sequence numbers numerically, whatever their length', () => {
    assert.equal(compareSeq('9', '10'), -1);
    assert.equal(compareSeq('49680509631860213313829073320372716157214636324071407618', '49680509631860213313829073320372716157214636324071407619'), -1);
    assert.equal(compareSeq('123', '123'), 0);
    assert.equal(laterSeq(null, '5'), '5');
    assert.equal(laterSeq('100', '99'), '100');
  });

  it('reads a child shard only once its parents are drained (or trimmed away)', () => {
    const parent = { ...newShardStatus('shardId-000000000000', null, null, true) };
    const a = newShardStatus('shardId-000000000001', 'shardId-000000000000', null, false);
    const b = newShardStatus('shardId-000000000002', 'shardId-000000000000', null, false);
    const other = newShardStatus('shardId-000000000003', null, null, false);
    const merged = newShardStatus('shardId-000000000004', 'shardId-000000000001', 'shardId-000000000003', false);
    const ids = (xs: Array<{ shardId: string }>) => xs.map((s) => s.shardId.slice(-1)).join(',');
    assert.equal(ids(readableShards([parent, a, b, other])), '0,3');
    parent.finished = true;
    assert.equal(ids(readableShards([parent, a, b, other])), '1,2,3');
    assert.equal(ids(readableShards([a, b, other])), '1,2,3', 'a trimmed parent does not block its children');
    assert.equal(ids(readableShards([a, other, merged])), '1,3', 'a merge waits for both parents');
    a.finished = true;
    other.finished = true;
    assert.equal(ids(readableShards([a, other, merged])), '4');
  });

  it('validates the workflow input, naming each bad field', () => {
    assert.deepEqual(validateStreamingInput({ prefix: 'ok', topic: 'pin' }), []);
    const problems = validateStreamingInput({ prefix: 'Bad Prefix', topic: 'posts' as never, pollIntervalMs: 0, recordsPerRead: 20_000 });
    assert.equal(problems.length, 4);
    assert.match(problems.join('\n'), /prefix .*topic .*pollIntervalMs 0 .*recordsPerRead 20000/s);
  });

  it('Kinesis errors: missing stream and bad credentials are non-retryable, throttling is retried; KINESIS_ENDPOINT empty or "aws" means AWS', () => {
    const kinds = ['ResourceNotFoundException', 'AccessDeniedException', 'UnrecognizedClientException', 'InvalidArgumentException', 'ProvisionedThroughputExceededException', 'LimitExceededException', 'ExpiredIteratorException'].map((name) => {
      const err = Object.assign(new Error(`${name} happened`), { name, $metadata: { httpStatusCode: 400 } });
      const c = classify('Kinesis', 'http://127.0.0.1:4567', err);
      return c instanceof ApplicationFailure ? c.type : 'retryable';
    });
    assert.deepEqual(kinds, ['PinflowMissingResource', 'PinflowAuthError', 'PinflowAuthError', 'PinflowBadInput', 'retryable', 'retryable', 'retryable']);
    assert.match(classify('Kinesis', 'http://127.0.0.1:4567', Object.assign(new Error('x'), { name: 'ResourceNotFoundException' })).message, /^Kinesis at http:\/\/127\.0\.0\.1:4567: x$/);
    assert.equal(testConfig().kinesis.endpoint, 'http://127.0.0.1:4567');
    for (const v of ['', 'aws']) {
      const c = testConfig({ KINESIS_ENDPOINT: v });
      assert.equal(c.kinesis.endpoint, undefined);
      assert.equal(c.kinesis.credentials, undefined, 'AWS: the default credential chain');
    }
    assert.throws(() => testConfig({ KINESIS_ENDPOINT: 'ftp://x' }), /KINESIS_ENDPOINT must be an http\(s\) URL/);
  });

  it('splits PutRecords requests at 500 records and 5 MiB, and refuses a record over 1 MiB', () => {
    const small = Array.from({ length: 1_201 }, (_, i) => ({ partitionKey: String(i), data: '{}' }));
    assert.deepEqual(putChunks(small).map((c) => c.end - c.start), [500, 500, 201]);
    const big = Array.from({ length: 12 }, (_, i) => ({ partitionKey: String(i), data: Buffer.alloc(1_000_000) }));
    assert.deepEqual(putChunks(big).map((c) => c.end - c.start), [5, 5, 2], '5 records of ~1 MB fit under 5 MiB, not 6');
    assert.throws(() => putChunks([{ partitionKey: 'k', data: Buffer.alloc(1024 * 1024) }]), /over Kinesis's 1 MiB limit/);
  });
});
