/**
 * npm run doctor: checks MySQL, Kafka and S3 through the doctorWorkflow (one activity each)
 * and prints each system's status and latency. Starts a worker in-process when none polls
 * the task queue. Exits 1 naming every failing system, 2 on bad configuration.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { WorkflowHandle } from '@temporalio/client';
import { ConfigError, loadConfig, type Config } from '../common/config';
import type { DoctorReport } from '../common/types';
import { connectClient, hasWorkflowPollers, uiLink } from '../workers/client';
import { createWorker } from '../workers/worker';
import type { doctorWorkflow } from '../workflows';

/** True once a worker has started the workflow's first task. */
async function pickedUp(handle: WorkflowHandle, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await handle.describe()).historyLength > 2) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

export async function runDoctor(config: Config, log: (line: string) => void = console.log): Promise<DoctorReport> {
  const client = await connectClient(config);
  try {
    const taskQueue = config.temporal.taskQueue;
    const workflowId = `doctor-${config.prefix}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    const handle = await client.workflow.start<typeof doctorWorkflow>('doctorWorkflow', { taskQueue, workflowId, workflowExecutionTimeout: '2 minutes' });
    let report: DoctorReport;
    // A poller seen in the last minute may have exited since: trust it only if it picks the
    // workflow up within a few seconds, otherwise run a worker in this process.
    if ((await hasWorkflowPollers(client, taskQueue)) && (await pickedUp(handle, 5_000))) {
      log(`using the worker polling "${taskQueue}"`);
      report = await handle.result();
    } else {
      log(`no worker polls "${taskQueue}": starting one in this process`);
      const w = await createWorker(config);
      try {
        report = await w.worker.runUntil(handle.result());
      } finally {
        await w.close();
      }
    }
    log(`temporal  ok    ${config.temporal.address}  (workflow ${uiLink(config, workflowId)})`);
    for (const s of report.systems) {
      log(s.ok ? `${s.system.padEnd(8)}  ok    ${s.address}  ${s.latencyMs} ms  ${s.detail}` : `${s.system.padEnd(8)}  DOWN  ${s.detail}`);
    }
    return report;
  } finally {
    await client.connection.close();
  }
}

if (require.main === module) {
  (async () => {
    const config = loadConfig();
    Runtime.install({ logger: new DefaultLogger('ERROR') });
    const report = await runDoctor(config);
    const down = report.systems.filter((s) => !s.ok);
    if (down.length) {
      console.error(`doctor: ${down.length} system(s) down: ${down.map((s) => s.detail).join(' | ')}`);
      process.exit(1);
    }
    console.log('doctor: all systems healthy');
    process.exit(0);
  })().catch((err) => {
    console.error(err instanceof ConfigError ? err.message : `doctor: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  });
}
