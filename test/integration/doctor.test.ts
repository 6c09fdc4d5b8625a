import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { DoctorReport } from '../../common/types';
import { createWorker } from '../../workers/worker';
import { ensureStack, quietRuntime, runScript, testConfig, uniqueName, workflowTestEnv } from '../helpers/env';
import { recordHistories } from '../helpers/histories';

const DOWN = {
  mysql: { MYSQL_URL: 'mysql://pinflow:pinflow@127.0.0.1:3/pinterest', name: /MySQL at 127\.0\.0\.1:3\b/ },
  kafka: { KAFKA_BROKERS: '127.0.0.1:1', name: /Kafka at 127\.0\.0\.1:1\b/ },
  s3: { S3_ENDPOINT: 'http://127.0.0.1:2', name: /S3 at http:\/\/127\.0\.0\.1:2\// },
} as const;

describe('doctor', () => {
  let env: TestWorkflowEnvironment;

  before(async () => {
    quietRuntime();
    await ensureStack();
    const c = testConfig();
    env = await workflowTestEnv(c);
  });
  after(async () => env?.teardown());

  async function doctorWith(overrides: Record<string, string>, record?: string): Promise<DoctorReport> {
    const taskQueue = uniqueName('doctor-test');
    const config = testConfig({ ...overrides, TEMPORAL_TASK_QUEUE: taskQueue });
    const w = await createWorker(config, { connection: env.nativeConnection });
    try {
      const handle = await env.client.workflow.start('doctorWorkflow', { taskQueue, workflowId: uniqueName('doctor') });
      const report = await w.worker.runUntil(handle.result());
      if (record) await recordHistories(env.client, handle.workflowId, handle.firstExecutionRunId, record);
      return report;
    } finally {
      await w.close();
    }
  }

  it('reports every system healthy on the local stack, with real round trips', async () => {
    const report = await doctorWith({}, 'doctor-healthy');
    assert.equal(report.ok, true, JSON.stringify(report));
    assert.deepEqual(report.systems.map((s) => s.system), ['mysql', 'kafka', 's3']);
    for (const s of report.systems) {
      assert.equal(s.ok, true);
      assert.ok(typeof s.latencyMs === 'number' && s.latencyMs >= 0);
      assert.ok(s.address && !s.address.includes('pinflow:pinflow'), 'address carries no credentials');
    }
    assert.match(report.systems[0]!.detail, /MariaDB|MySQL|\d+\.\d+/);
  });

  for (const [system, down] of Object.entries(DOWN)) {
    it(`names ${system} and its address when ${system} is down, and still checks the others`, async () => {
      const { name, ...overrides } = down;
      const report = await doctorWith(overrides as Record<string, string>);
      assert.equal(report.ok, false);
      const entry = report.systems.find((s) => s.system === system)!;
      assert.equal(entry.ok, false);
      assert.match(entry.detail, name);
      assert.match(entry.detail, /ECONNREFUSED/);
      for (const other of report.systems.filter((s) => s.system !== system)) assert.equal(other.ok, true, `${other.system} still checked`);
    });
  }

  it('`npm run doctor` prints each system and exits 0 when healthy', () => {
    const res = runScript('doctor', [], { TEMPORAL_TASK_QUEUE: uniqueName('doctor-cli') });
    assert.equal(res.code, 0, res.stderr);
    for (const s of ['temporal', 'mysql', 'kafka', 's3']) assert.match(res.stdout, new RegExp(`^${s}\\s+ok\\s`, 'm'));
    assert.match(res.stdout, /\d+ ms/);
  });

  it('`npm run doctor` twice in a row does not wait for the first run\'s exited worker', () => {
    const taskQueue = uniqueName('doctor-twice');
    for (let i = 0; i < 2; i++) {
      const started = Date.now();
      const res = runScript('doctor', [], { TEMPORAL_TASK_QUEUE: taskQueue });
      assert.equal(res.code, 0, res.stderr);
      assert.ok(Date.now() - started < 60_000, `run ${i} took ${Date.now() - started} ms`);
    }
  });

  it('`npm run doctor` exits 1 naming the failing system and its address', () => {
    const res = runScript('doctor', [], { TEMPORAL_TASK_QUEUE: uniqueName('doctor-cli'), KAFKA_BROKERS: '127.0.0.1:1' });
    assert.equal(res.code, 1);
    assert.match(res.stdout, /^kafka\s+DOWN\s+Kafka at 127\.0\.0\.1:1/m);
    assert.match(res.stderr, /1 system\(s\) down: Kafka at 127\.0\.0\.1:1/);
  });

  it('`npm run doctor` names Temporal when it is unreachable', () => {
    const res = runScript('doctor', [], { TEMPORAL_ADDRESS: '127.0.0.1:4' });
    assert.equal(res.code, 1);
    assert.match(res.stderr, /Temporal at 127\.0\.0\.1:4 is unreachable/);
  });

  it('the Temporal UI answers and lists the doctor runs', async () => {
    const c = testConfig();
    const page = await fetch(c.temporal.uiUrl);
    assert.equal(page.status, 200);
    const api = await fetch(`${c.temporal.uiUrl}/api/v1/namespaces/${c.temporal.namespace}/workflows?query=${encodeURIComponent('WorkflowType="doctorWorkflow"')}`);
    const body = (await api.json()) as { executions?: Array<{ status: string }> };
    assert.ok((body.executions ?? []).some((e) => e.status === 'WORKFLOW_EXECUTION_STATUS_COMPLETED'));
  });
});
