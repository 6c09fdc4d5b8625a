/** The workflow sandbox rule: no Node built-ins or I/O in workflows/, activities by type only. */
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
});
