/**
 * The sandbox lint rules (eslint.config.mjs): no Node built-ins, I/O or Node-only project
 * modules in workflows/ and in common/ (which workflows import), activities by type only;
 * activities/ and adapters/ may use Node.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ESLint } from 'eslint';

const root = path.join(__dirname, '..', '..');
const eslint = new ESLint({ cwd: root });

async function lintAs(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
  return result!.messages.map((m) => `${m.ruleId}: ${m.message}`);
}

/** Asserts that every message list has a message matching `pattern`. */
function assertEach(lists: string[][], pattern: RegExp): void {
  for (const msgs of lists) assert.ok(msgs.some((m) => pattern.test(m)), `expected ${pattern} in:\n${msgs.join('\n') || '(no messages)'}`);
}

describe('lint rules for workflow code', () => {
  it('rejects Node built-ins in workflows/', async () => {
    const msgs = await lintAs('workflows/bad.ts', "import fs from 'node:fs';\nexport const x = fs;\n");
    assert.ok(msgs.some((m) => /no-restricted-imports.*no Node built-ins/.test(m)), msgs.join('\n'));
  });

  it('rejects I/O clients and activity implementations, but allows activity types', async () => {
    const io = await lintAs('workflows/bad.ts', "import { Kafka } from 'kafkajs';\nexport const k = Kafka;\n");
    assert.ok(io.some((m) => /may not do I\/O/.test(m)), io.join('\n'));
    const impl = await lintAs('workflows/bad.ts', "import { createActivities } from '../activities';\nexport const a = createActivities;\n");
    assert.ok(impl.some((m) => /by type only/.test(m)), impl.join('\n'));
    const typeOnly = await lintAs('workflows/good.ts', "import type { Activities } from '../activities';\nexport type A = Activities;\n");
    assert.deepEqual(typeOnly, []);
  });

  it('rejects process and the config module in workflows/, but allows them elsewhere', async () => {
    const wf = await lintAs('workflows/bad.ts', "import { loadConfig } from '../config';\nexport const c = loadConfig(process.env);\n");
    assert.ok(wf.some((m) => /Not workflow-safe/.test(m)), wf.join('\n'));
    assert.ok(wf.some((m) => /no-restricted-globals/.test(m)), wf.join('\n'));
    const act = await lintAs('activities/ok.ts', "import fs from 'node:fs';\nexport const x = fs.existsSync(process.cwd());\n");
    assert.deepEqual(act, []);
  });

  it('rejects the Node-only project modules in workflows/ (adapters, cli, mwaa but failures), allows common/', async () => {
    const bad = await Promise.all(
      ["import { createKafka } from '../adapters/kafka';\nexport const k = createKafka;\n", "import { runCli } from '../cli/command';\nexport const r = runCli;\n", "import { mwaaAdapter } from '../mwaa/adapter';\nexport const m = mwaaAdapter;\n", "import { MWAA_DAG_RUN_FAILED } from '../mwaa/activities';\nexport const m = MWAA_DAG_RUN_FAILED;\n", "import { PROJECT_ROOT } from '../config/project-root';\nexport const r = PROJECT_ROOT;\n"].map((code) =>
        lintAs('workflows/bad.ts', code),
      ),
    );
    assertEach(bad, /no-restricted-imports.*Not workflow-safe/);
    const good = await lintAs('workflows/good.ts', "import { MWAA_DAG_RUN_FAILED } from '../mwaa/failures';\nimport { redactText } from '../common/redact';\nexport const t = [MWAA_DAG_RUN_FAILED, redactText];\n");
    assert.deepEqual(good, []);
  });
});

describe('lint rules for common/ (imported by workflow code)', () => {
  it('rejects Node built-ins, with or without the node: prefix', async () => {
    const msgs = await Promise.all(["import fs from 'node:fs';\nexport const x = fs;\n", "import { createHash } from 'crypto';\nexport const h = createHash;\n"].map((code) => lintAs('common/bad.ts', code)));
    assertEach(msgs, /no-restricted-imports.*no Node built-ins/);
  });

  it('rejects I/O clients', async () => {
    const msgs = await Promise.all(
      ["import { Kafka } from 'kafkajs';\nexport const k = Kafka;\n", "import { S3Client } from '@aws-sdk/client-s3';\nexport const s = S3Client;\n", "import { Client } from '@temporalio/client';\nexport const c = Client;\n", "import mysql from 'mysql2/promise';\nexport const m = mysql;\n"].map((code) =>
        lintAs('common/bad.ts', code),
      ),
    );
    assertEach(msgs, /no-restricted-imports.*may not do I\/O/);
  });

  it('rejects the config module, adapters, workers and Node globals (process, Buffer)', async () => {
    const modules = await Promise.all(
      ["import { loadConfig } from '../config';\nexport const c = loadConfig;\n", "import { s3Adapter } from '../adapters/s3';\nexport const s = s3Adapter;\n", "import { createWorker } from '../workers/worker';\nexport const w = createWorker;\n", "import { stackUp } from '../stack';\nexport const s = stackUp;\n"].map((code) =>
        lintAs('common/bad.ts', code),
      ),
    );
    assertEach(modules, /no-restricted-imports.*Not workflow-safe/);
    const globals = await Promise.all(['export const e = process.env.X;\n', "export const b = Buffer.from('x');\n"].map((code) => lintAs('common/bad.ts', code)));
    assertEach(globals, /no-restricted-globals/);
  });

  it('rejects activity implementations, allows their types, @temporalio/common and sibling modules', async () => {
    const impl = await lintAs('common/bad.ts', "import { createActivities } from '../activities';\nexport const a = createActivities;\n");
    assert.ok(impl.some((m) => /by type only/.test(m)), impl.join('\n'));
    const good = await lintAs(
      'common/good.ts',
      "import type { Activities } from '../activities';\nimport { ApplicationFailure } from '@temporalio/common';\nimport { redactText } from './redact';\nexport type A = Activities;\nexport const x = [ApplicationFailure, redactText];\n",
    );
    assert.deepEqual(good, []);
  });

  it('leaves adapters/ free to use Node and I/O libraries', async () => {
    const msgs = await lintAs('adapters/ok.ts', "import fs from 'node:fs';\nimport { Kafka } from 'kafkajs';\nexport const x = [fs.existsSync(process.cwd()), Kafka, Buffer.from('x')];\n");
    assert.deepEqual(msgs, []);
  });
});
