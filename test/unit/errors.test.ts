/**
 * Retryable or not, decided on purpose: the rules of classify that need no client's error, for
 * errors that are already Temporal failures. test/integration/errors.test.ts feeds it the
 * errors MySQL and Kafka really throw.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { classify } from '../../common/errors';

describe('error classification', () => {
  it('an error that is already an ApplicationFailure passes through unchanged', () => {
    const f = ApplicationFailure.nonRetryable('x', 'T');
    assert.equal(classify('S3', 'a', f), f);
  });

  it("an activity's cancellation passes through as a cancellation, not as the system failing", () => {
    const c = new CancelledFailure('TIMED_OUT');
    assert.equal(classify('Kafka', '127.0.0.1:9092', c), c);
  });
});
