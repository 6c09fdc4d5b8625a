/**
 * `npm run db:seed` refuses bad arguments (exit 2, naming the option) before it touches the
 * database. test/integration/db.test.ts loads and seeds databases on the stack's MariaDB.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runScript } from '../helpers/env';

describe('db:seed', () => {
  it('rejects bad arguments before touching the database', () => {
    const res = runScript('db:seed', ['--rows', '-3']);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /--rows must be a whole number/);
  });
});
