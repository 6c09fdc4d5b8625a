/**
 * npm run doctor: checks MySQL, Kafka and S3 through the doctorWorkflow (one activity each)
 * and prints each system's status and latency. Starts a worker in-process when none polls
 * the task queue. Exits 1 naming every failing system, 2 on bad configuration.
 */
import type { Config } from '../config';
import { doctorWorkflowId } from '../common/ids';
import type { DoctorReport } from '../common/types';
import { connectClient, uiLink } from '../workers/client';
import { withWorker } from '../workers/worker';
import type { doctorWorkflow } from '../workflows';
import { defineCommand } from '../cli/args';
import { runCli } from '../cli/command';

export const COMMAND = defineCommand({
  script: 'doctor',
  options: {},
  about:
    'Checks MySQL, Kafka and S3 through the doctorWorkflow (one activity each) and prints each system\'s status and latency. ' +
    'Starts a worker in-process when none polls the task queue. Exit 1 naming every failing system.',
});

export async function runDoctor(config: Config, log: (line: string) => void = console.log): Promise<DoctorReport> {
  const client = await connectClient(config);
  try {
    const taskQueue = config.temporal.taskQueue;
    const workflowId = doctorWorkflowId(config.prefix, new Date());
    const handle = await client.workflow.start<typeof doctorWorkflow>('doctorWorkflow', { taskQueue, workflowId, workflowExecutionTimeout: '2 minutes' });
    const report: DoctorReport = await withWorker(config, client, handle, () => handle.result(), log);
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
  runCli(COMMAND, async (config) => {
    const report = await runDoctor(config);
    const down = report.systems.filter((s) => !s.ok);
    if (down.length) {
      console.error(`doctor: ${down.length} system(s) down: ${down.map((s) => s.detail).join(' | ')}`);
      return 1;
    }
    console.log('doctor: all systems healthy');
  });
}
