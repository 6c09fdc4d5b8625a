/**
 * doctorWorkflow: checks MySQL, Kafka and S3 through one activity each, in parallel, and
 * reports each system's status, address and latency (a failing system is reported, not thrown).
 */
import { ActivityFailure, ApplicationFailure, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { DoctorReport, DoctorReportEntry, SystemCheck, SystemName } from '../common/types';
import { DOCTOR_CHECK } from './policies';

const checks = proxyActivities<Activities>(DOCTOR_CHECK);

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
