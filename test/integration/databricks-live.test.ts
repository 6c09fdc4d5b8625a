/**
 * The Databricks SQL client against a real warehouse. Runs only when DATABRICKS_HOST,
 * DATABRICKS_TOKEN and DATABRICKS_HTTP_PATH are set (environment or .env); skipped otherwise.
 * It only reads (SELECT 1, a missing table) and never submits job runs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { createDatabricksSql } from '../../adapters/databricks/sql';
import { loadConfig, readEnv } from '../../config';
import { NonRetryable } from '../../common/errors';

const env = readEnv();
const missing = ['DATABRICKS_HOST', 'DATABRICKS_TOKEN', 'DATABRICKS_HTTP_PATH'].filter((k) => !(env[k] ?? '').trim());
const skip = missing.length > 0 ? `needs a real SQL warehouse: set ${missing.join(', ')}` : false;

describe('Databricks SQL warehouse (live)', () => {
  // Catalog only: the pipeline's schema need not exist for these checks.
  const open = (overrides: Record<string, string> = {}) => {
    const config = loadConfig({ ...env, ...overrides });
    return createDatabricksSql(config.warehouse.databricks, { initialSchema: null });
  };

  it('opens a session and runs SELECT 1 AS one', { skip, timeout: 300_000 }, async () => {
    const sql = open();
    try {
      assert.deepEqual(await sql.query('SELECT 1 AS one'), [{ one: 1 }]);
    } finally {
      await sql.close();
    }
  });

  it('a missing table is non-retryable badInput with the server message', { skip, timeout: 300_000 }, async () => {
    const sql = open();
    try {
      await assert.rejects(sql.query('SELECT * FROM pinflow_no_such_table_4f2a'), (err: unknown) => {
        assert.ok(err instanceof ApplicationFailure, String(err));
        assert.equal(err.type, NonRetryable.badInput, err.message);
        assert.match(err.message, /TABLE_OR_VIEW_NOT_FOUND/);
        return true;
      });
    } finally {
      await sql.close();
    }
  });

  it('a wrong token is non-retryable auth that does not show the token', { skip, timeout: 120_000 }, async () => {
    const wrong = 'dapi00000000000000000000000000000000';
    const sql = open({ DATABRICKS_TOKEN: wrong });
    try {
      await assert.rejects(sql.query('SELECT 1'), (err: unknown) => {
        assert.ok(err instanceof ApplicationFailure, String(err));
        assert.equal(err.type, NonRetryable.auth, err.message);
        assert.ok(!err.message.includes(wrong));
        return true;
      });
    } finally {
      await sql.close();
    }
  });
});
