/**
 * The daily pipeline's alerts, for the canonical run of a date (dailyPipelineWorkflow calls
 * `dailyAlerts` when it starts, behind `patched('daily-alerts')`). Deterministic: workflow time
 * and a timer only. The rules and the alert's shape are common/alerts.ts's.
 *
 * - Late: with a deadline, a timer to the deadline instant runs beside the stages (a deadline
 *   already past when the run starts raises at once). When it fires before the run is done, the
 *   run shows `late` in its status, upserts PipelineLate=`true`, counts `pinflow_pipeline_alerts`
 *   {kind=late}, logs a warning and sends the alert; the stages go on.
 * - Failed: `failed(err)` (the run failed, not cancelled) counts {kind=failed}, logs an error
 *   and sends the alert; the caller then fails the run as it would have.
 * - Sending is the `sendAlert` activity (ALERT_SEND: bounded retries); an alert that cannot be
 *   delivered is logged and the run goes on. `done()` and `failed()` stop the timer and wait for
 *   alerts still being sent, so a run ends after its alerts did.
 */
import { CancellationScope, isCancellation, log, metricMeter, proxyActivities, sleep, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { deadlineInstant, type AlertInput, type AlertKind } from '../common/alerts';
import type { DailyStatus } from '../common/daily';
import { pipelineMetrics } from '../common/metrics';
import { lateSearchAttributes } from '../common/search-attributes';
import { ALERT_SEND } from './policies';

export interface DailyAlerts {
  /** The run is done: no late alert any more; waits for alerts still being sent. */
  done(): Promise<void>;
  /** The run failed with `err` in `stage`: the failed alert (none for a cancelled run); waits for sending. */
  failed(err: unknown, stage: string): Promise<void>;
}

/** Messages of a failure's cause chain, without the SDK's generic wrappers. */
function failureText(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as { message?: string; cause?: unknown } | undefined, n = 0; e && n < 6; e = e.cause as typeof e, n++) {
    const m = (e.message ?? '').trim();
    if (m && !/^(Child Workflow execution failed|Activity task failed|Workflow execution failed)$/i.test(m) && !parts.some((p) => p.includes(m))) parts.push(m);
  }
  return (parts.join(': ') || String(err)).slice(0, 1_000);
}

/** Starts watching `input.deadline` (if any) for the run whose status is `status`. */
export function dailyAlerts(input: { prefix: string; deadline?: string }, status: DailyStatus): DailyAlerts {
  const { prefix } = input;
  const { date } = status;
  const workflowId = workflowInfo().workflowId;
  const sender = proxyActivities<Activities>(ALERT_SEND);
  const sending: Array<Promise<void>> = [];
  const watch = new CancellationScope();
  let finished = false;

  function raise(kind: AlertKind, message: string): void {
    pipelineMetrics(metricMeter).alert(kind, prefix, date);
    if (kind === 'late') log.warn(message, { alert: kind, prefix, date });
    else log.error(message, { alert: kind, prefix, date });
    const alert: AlertInput = { kind, prefix, date, ...(status.deadline ? { deadline: status.deadline } : {}), message };
    sending.push(
      CancellationScope.nonCancellable(() => sender.sendAlert(alert)).then(
        (d) => {
          if (!d.delivered) log.info(`${kind} alert of ${workflowId}: no webhook configured (ALERT_WEBHOOK_URL), not sent`);
        },
        (err) => log.warn(`${kind} alert of ${workflowId} was not delivered: ${failureText(err)}; the run goes on`, { alert: kind, prefix, date }),
      ),
    );
  }

  if (input.deadline !== undefined) {
    const dueMs = deadlineInstant(date, input.deadline);
    status.deadline = new Date(dueMs).toISOString();
    watch
      .run(async () => {
        const left = dueMs - Date.now();
        if (left > 0) await sleep(left);
        if (finished) return;
        status.late = true;
        upsertSearchAttributes(lateSearchAttributes());
        raise('late', `daily pipeline ${prefix} ${date} is late: not done by ${status.deadline} (${input.deadline} after the end of its interval); still running, in stage ${status.stage}`);
      })
      .catch((err) => {
        if (!isCancellation(err)) throw err;
      });
  }

  const settle = async () => {
    finished = true;
    watch.cancel();
    await Promise.all(sending);
  };
  return {
    done: settle,
    async failed(err, stage) {
      finished = true;
      watch.cancel();
      if (isCancellation(err)) log.info(`${workflowId} was cancelled: no failed alert`);
      else raise('failed', `daily pipeline ${prefix} ${date} failed in stage ${stage}: ${failureText(err)}`);
      await settle();
    },
  };
}
