/**
 * The table "tctl and Airflow -> temporal CLI" of docs/operations.md: every `temporal` command in it runs
 * against the dev server with this project's ids and does what the table says. The commands
 * are read from that file itself (the lines of the block between the markers), so the
 * documentation cannot drift from what works.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createS3Client } from '../../adapters/s3';
import { PROJECT_ROOT } from '../../config';
import { logicalDateOf } from '../../common/daily';
import { temporalCliPath } from '../../stack/temporal-server';
import { backgroundWorker, ensureStack, quietRuntime, runScriptAsync, testConfig, uniqueName, workflowTestEnv } from '../helpers/env';

/** The `temporal ...` lines of docs/operations.md's mapping block, with their tctl/Airflow comment. */
function mappingCommands(): Array<{ command: string; was: string }> {
  const doc = fs.readFileSync(path.join(PROJECT_ROOT, 'docs', 'operations.md'), 'utf8');
  const block = /<!-- cli-mapping:start -->([\s\S]*?)<!-- cli-mapping:end -->/.exec(doc)?.[1];
  assert.ok(block, 'docs/operations.md has the cli-mapping block');
  return block
    .split('\n')
    .filter((l) => l.startsWith('temporal '))
    .map((l) => {
      const [command, was] = l.split(/\s+#\s+/);
      return { command: command!.trim(), was: (was ?? '').trim() };
    });
}

describe('tctl / Airflow actions -> temporal CLI (docs/operations.md mapping, run for real)', () => {
  let env: TestWorkflowEnvironment;
  let worker: { stop: () => Promise<void> } | undefined;
  const prefix = uniqueName('cli');
  const taskQueue = uniqueName('tq-cli');
  // A bucket of its own: the mapping's commands write outputs at the bucket root.
  const bucket = `pinflow-${uniqueName('cli')}`.slice(0, 63);
  const vars = { PIPELINE_PREFIX: prefix, TEMPORAL_TASK_QUEUE: taskQueue, S3_BUCKET: bucket };
  const config = testConfig(vars);
  const date = logicalDateOf(new Date(Date.now() - 3 * 86_400_000));

  before(async () => {
    quietRuntime();
    await ensureStack();
    env = await workflowTestEnv(config);
    const s3 = createS3Client(config);
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    s3.destroy();
    worker = await backgroundWorker(env, config);
  });
  after(async () => {
    await runScriptAsync('schedule', ['delete'], vars);
    await worker?.stop();
    await env?.teardown();
  });

  it('every command of the table runs and does what it says', async () => {
    assert.equal((await runScriptAsync('schedule', ['create', '--paused'], vars)).code, 0);
    const cli = temporalCliPath(config);
    assert.ok(cli, 'the temporal CLI is installed by the stack');
    const commands = mappingCommands();
    assert.ok(commands.length >= 12, `${commands.length} commands in the mapping table`);
    const outputs = new Map<string, string>();
    for (const { command, was } of commands) {
      const substituted = command
        .replaceAll('<prefix>', prefix)
        .replaceAll('<date>', date)
        .replaceAll('<task-queue>', taskQueue)
        .replaceAll('<from>', logicalDateOf(new Date(Date.now() - 6 * 86_400_000)))
        .replaceAll('<to>', logicalDateOf(new Date(Date.now() - 5 * 86_400_000)))
        .replaceAll('<from+1>T00:00:00Z', `${logicalDateOf(new Date(Date.now() - 5 * 86_400_000))}T00:00:00Z`)
        .replaceAll('<to+1>T23:59:59Z', `${logicalDateOf(new Date(Date.now() - 4 * 86_400_000))}T23:59:59Z`);
      // Run like a shell would: the mapping quotes arguments with single quotes.
      const args = [...substituted.slice('temporal '.length).matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
      // Commands that wait for a workflow need the worker in this process: never block it.
      const res = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(cli, args, { env: { ...process.env, TEMPORAL_ADDRESS: config.temporal.address } });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d));
        child.stderr.on('data', (d: Buffer) => (stderr += d));
        child.on('close', (status) => resolve({ status, stdout, stderr }));
      });
      assert.equal(res.status, 0, `${substituted} (${was}) failed: ${String(res.stderr)}${String(res.stdout)}`);
      outputs.set(command, String(res.stdout));
    }
    // What the commands did, checked through the client.
    const canonical = `daily-pipeline-${prefix}-${date}`;
    const result = await env.client.workflow.getHandle(canonical).result();
    assert.equal(result.date, date, 'the manual start (Airflow trigger) ran its date');
    const desc = await env.client.schedule.getHandle(`daily-pipeline-${prefix}`).describe();
    assert.ok(desc.info.numActionsTaken >= 1, 'trigger / backfill started runs');
    const listed = [...outputs.entries()].find(([c]) => c.startsWith('temporal workflow list'))![1];
    assert.ok(listed.includes(canonical), 'workflow list --query finds the run by its search attributes');
  });
});
