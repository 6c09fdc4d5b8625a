/**
 * Retryable or not, decided on purpose: each rule fed the error its client really throws
 * (MySQL and Kafka on the stack). The rules for Temporal failures: test/unit/errors.test.ts.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import mysql from 'mysql2/promise';
import { createKafka } from '../../adapters/kafka';
import { classify, NonRetryable } from '../../common/errors';
import { testDatabase } from '../helpers/data';
import { ensureStack, testConfig, uniqueName } from '../helpers/env';

function expectNonRetryable(err: Error, type: string, message: RegExp) {
  assert.ok(err instanceof ApplicationFailure, `non-retryable expected, got ${err.constructor.name}: ${err.message}`);
  assert.equal(err.nonRetryable, true);
  assert.equal(err.type, type);
  assert.match(err.message, message);
}

describe('error classification', () => {
  const config = testConfig();
  before(() => ensureStack());

  async function mysqlError(sql: string, url = config.mysql.url): Promise<unknown> {
    const conn = await mysql.createConnection({ uri: url }).catch((e) => e as Error);
    if (conn instanceof Error) return conn;
    try {
      await conn.query(sql);
      return new Error('no error');
    } catch (e) {
      return e;
    } finally {
      await conn.end();
    }
  }

  it('MySQL: missing table or column and bad credentials are non-retryable; refused connections retry', async () => {
    const { url } = await testDatabase({ empty: true });
    expectNonRetryable(classify('MySQL', 'h:1', await mysqlError('SELECT * FROM no_such_table', url)), NonRetryable.missingResource, /MySQL at h:1: .*no_such_table/);
    await mysqlError('CREATE TABLE t (a INT)', url);
    expectNonRetryable(classify('MySQL', 'h:1', await mysqlError('SELECT no_such_column FROM t', url)), NonRetryable.missingResource, /no_such_column/);
    const badUrl = new URL(config.mysql.url);
    badUrl.password = 'wrong-password';
    const auth = classify('MySQL', 'h:1', await mysqlError('SELECT 1', badUrl.toString()));
    expectNonRetryable(auth, NonRetryable.auth, /Access denied/);
    assert.doesNotMatch(auth.message, /wrong-password/);
    const refused = classify('MySQL', '127.0.0.1:3', await mysqlError('SELECT 1', 'mysql://u:p@127.0.0.1:3/db'));
    assert.ok(!(refused instanceof ApplicationFailure));
    assert.match(refused.message, /MySQL at 127\.0\.0\.1:3: .*ECONNREFUSED/);
  });

  it('Kafka: a record batch over message.max.bytes is non-retryable', async () => {
    const kafka = createKafka(config);
    const admin = kafka.admin();
    await admin.connect();
    const topic = uniqueName('errors.big');
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    const err = await producer.send({ topic, messages: [{ value: 'x'.repeat(2 * 1024 * 1024) }] }).then(
      () => new Error('no error'),
      (e: Error) => e,
    );
    await producer.disconnect();
    expectNonRetryable(classify('Kafka', 'b:9092', err), NonRetryable.badInput, /Kafka at b:9092/);
  });
});
