import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, readEnv, redactUrl } from '../../config';
import { settingsSchema } from '../../config/schema';
import { runScript } from '../helpers/env';

describe('config', () => {
  it('has working local defaults for every setting', () => {
    const c = loadConfig({});
    assert.equal(c.temporal.address, '127.0.0.1:7233');
    assert.equal(c.temporal.taskQueue, 'pinflow');
    assert.deepEqual(c.kafka.brokers, ['127.0.0.1:9092']);
    assert.equal(c.s3.endpoint, 'http://127.0.0.1:7070');
    assert.equal(c.s3.forcePathStyle, true);
    assert.ok(c.s3.credentials, 'loopback S3 gets the local stack credentials');
    assert.equal(c.warehouse.kind, 'duckdb');
    assert.equal(c.prefix, 'pinflow');
  });

  it('names every bad setting in one error and never prints a secret value', () => {
    const secretUrl = 'postgres://admin:TopSecret-42@db/x';
    let err: unknown;
    try {
      loadConfig({
        KAFKA_BROKERS: 'broker-without-port',
        MYSQL_URL: secretUrl,
        S3_ENDPOINT: 'ftp://files',
        AWS_REGION: 'mars',
        PIPELINE_PREFIX: 'Bad Prefix',
        WAREHOUSE: 'snowflake',
        TEMPORAL_ADDRESS: 'nohost',
        S3_ACCESS_KEY_ID: 'AKIAEXAMPLE',
      });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ConfigError);
    for (const key of ['KAFKA_BROKERS', 'MYSQL_URL', 'S3_ENDPOINT', 'AWS_REGION', 'PIPELINE_PREFIX', 'WAREHOUSE', 'TEMPORAL_ADDRESS', 'S3_SECRET_ACCESS_KEY']) {
      assert.match(err.message, new RegExp(`- ${key} `), `message names ${key}`);
    }
    assert.equal(err.problems.length, 8);
    assert.doesNotMatch(err.message, /TopSecret-42/);
    assert.match(err.message, /MYSQL_URL .*value hidden/);
  });

  it('requires the Databricks settings only when WAREHOUSE=databricks', () => {
    assert.throws(() => loadConfig({ WAREHOUSE: 'databricks', DATABRICKS_TOKEN: 'dapi-secret' }), (e: Error) => {
      assert.match(e.message, /DATABRICKS_HOST is required/);
      assert.match(e.message, /DATABRICKS_HTTP_PATH is required/);
      assert.doesNotMatch(e.message, /DATABRICKS_TOKEN/);
      return true;
    });
    const c = loadConfig({ WAREHOUSE: 'databricks', DATABRICKS_HOST: 'https://x.cloud.databricks.com', DATABRICKS_TOKEN: 't', DATABRICKS_HTTP_PATH: '/sql/1.0/warehouses/abc' });
    assert.equal(c.warehouse.kind, 'databricks');
  });

  it('uses AWS (no endpoint, default credential chain) when S3_ENDPOINT is empty or "aws"', () => {
    for (const v of ['', 'aws']) {
      const c = loadConfig({ S3_ENDPOINT: v });
      assert.equal(c.s3.endpoint, undefined);
      assert.equal(c.s3.credentials, undefined);
      assert.equal(c.s3.forcePathStyle, false);
    }
  });

  it('reads .env below the environment', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-env-'));
    const file = path.join(dir, '.env');
    fs.writeFileSync(file, 'PIPELINE_PREFIX=fromfile\nS3_BUCKET=file-bucket\n');
    const env = readEnv({ PIPELINE_PREFIX: 'fromenv' }, file);
    const c = loadConfig(env);
    assert.equal(c.prefix, 'fromenv');
    assert.equal(c.s3.bucket, 'file-bucket');
  });

  it('redacts passwords from URLs', () => {
    assert.equal(redactUrl('mysql://u:p4ss@h:3306/db'), 'mysql://u:***@h:3306/db');
  });

  it('.env.example documents every setting the schema reads', () => {
    const example = fs.readFileSync(path.join(__dirname, '..', '..', '.env.example'), 'utf8');
    const keys = Object.keys(settingsSchema.shape);
    assert.ok(keys.length >= 20, `found ${keys.length} settings`);
    for (const key of keys) assert.match(example, new RegExp(`^#? ?${key}=`, 'm'), `.env.example documents ${key}`);
  });

  it('the worker refuses to start on bad configuration, naming each setting (exit 2)', () => {
    const res = runScript('worker', [], { KAFKA_BROKERS: 'nope', WAREHOUSE: 'oracle', MYSQL_URL: 'mysql://root:Hunter2Secret@' });
    assert.equal(res.code, 2, res.stderr);
    assert.match(res.stderr, /KAFKA_BROKERS/);
    assert.match(res.stderr, /WAREHOUSE/);
    assert.match(res.stderr, /MYSQL_URL/);
    assert.doesNotMatch(res.stderr + res.stdout, /Hunter2Secret/);
  });
});
