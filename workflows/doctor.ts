import { ActivityFailure, ApplicationFailure, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { DoctorReport, DoctorReportEntry, SystemCheck, SystemName } from '../common/types';

// A doctor must answer quickly: three tries over a few seconds, then report the system down.
const checks = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3, initialInterval: '500 milliseconds', backoffCoefficient: 2 },
});

function rootMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof ActivityFailure && e.cause) e = e.cause;
  if (e instanceof ApplicationFailure || e instanceof Error) return e.message;
  return String(e);
}

/** Checks every external system through one activity each, in parallel, and reports. */
export async function doctorWorkflow(): Promise<DoctorReport> {
  const probes: Array<[SystemName, () => Promise<SystemCheck>]> = [
    ['mysql', checks.checkMysql],
    ['kafka', checks.checkKafka],
    ['s3', checks.checkS3],
  ];
  const settled = await Promise.allSettled(probes.map(([, probe]) => probe()));
  const systems = settled.map((r, i): DoctorReportEntry => {
    const system = probes[i]![0];
    return r.status === 'fulfilled'
      ? { system, ok: true, address: r.value.address, latencyMs: r.value.latencyMs, detail: r.value.detail }
      : { system, ok: false, detail: rootMessage(r.reason) };
  });
  return { ok: systems.every((s) => s.ok), checkedAt: workflowInfo().startTime.toISOString(), systems };
}
