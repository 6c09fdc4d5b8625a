/**
 * The chaos run in CI, at a size that fits the suite's time: `npm run chaos -- --posts 20000`
 * (the worker SIGKILLed, Kafka restarted, the S3 server stopped for 30 s, MySQL restarted,
 * each at a random moment) must end with every check passed: nothing lost, nothing twice,
 * outputs equal to the fault-free run's. `npm run chaos` alone runs 200,000 posts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ensureStack, runScriptAsync } from './helpers/env';

describe('chaos run', () => {
  it('20,000 posts under four faults: every check passes', async () => {
    await ensureStack();
    const res = await runScriptAsync('chaos', ['--posts', '20000', '--seed', String(Date.now() % 1000)], {}, 900_000);
    const faults = res.stdout.split('\n').filter((l) => /^fault \d\/4: /.test(l));
    assert.equal(faults.length, 4, `one line per fault:\n${res.stdout}\n${res.stderr}`);
    assert.ok(faults.every((l) => !l.includes('FAILED TO INJECT')), faults.join('\n'));
    assert.match(res.stdout, /^18 passed, 0 failed/m, `${res.stdout}\n${res.stderr}`);
    assert.equal(res.code, 0);
  });
});
