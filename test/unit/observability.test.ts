/**
 * The worker's structured logs without a worker: the JSON logger writes one object per line
 * (level, message, metadata; bigint and errors made printable, bytes never printed) and nothing
 * below its level. test/integration/observability.test.ts reads the logs and metrics of a
 * running `npm run worker`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonLogLine, JsonLogger } from '../../workers/runtime';

describe('worker metrics and structured logs', () => {
  it('the JSON logger: levels, metadata fields, bigint and errors, and nothing below LOG_LEVEL', () => {
    const out: string[] = [];
    const log = new JsonLogger('INFO', (l) => out.push(l));
    log.debug('hidden');
    log.info('hello', { workflowId: 'w-1', activityId: '7', n: 12n });
    log.error('failed', { error: new Error('boom') });
    assert.equal(out.length, 2);
    assert.ok(out.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n')));
    const first = JSON.parse(out[0]!);
    assert.equal(first.level, 'INFO');
    assert.equal(first.message, 'hello');
    assert.equal(first.workflowId, 'w-1');
    assert.equal(first.activityId, '7');
    assert.equal(first.n, '12');
    assert.ok(!Number.isNaN(Date.parse(first.time)));
    assert.equal(JSON.parse(out[1]!).error.message, 'boom');
    assert.equal(JSON.parse(jsonLogLine('WARN', 'key', { key: Buffer.from('secret-bytes') })).key, '<12 bytes>', 'bytes are never printed');
  });
});
