/**
 * sendAlert: one alert of the daily pipeline (common/alerts.ts) to the webhook ALERT_WEBHOOK_URL
 * names (adapters/webhook.ts). The URL comes from the worker's config, never from the input, so
 * it is in no history; the run's ids come from the activity's own context. Unset URL: nothing
 * is sent ({delivered: false}). The endpoint gets an `Idempotency-Key` header,
 * `<workflowId>/<runId>/<kind>`, the same for every attempt, to drop duplicates of a retried call.
 */
import { Context } from '@temporalio/activity';
import type { Config } from '../config';
import type { AlertBody, AlertDelivery, AlertInput } from '../common/alerts';
import { postWebhook, webhookAddress } from '../adapters/webhook';
import { uiLink } from '../workers/client';

export function alertActivities(config: Config) {
  return {
    async sendAlert(input: AlertInput): Promise<AlertDelivery> {
      const url = config.alerts.webhookUrl;
      if (!url) return { delivered: false };
      const ctx = Context.current();
      const { workflowId, runId } = ctx.info.workflowExecution ?? { workflowId: '', runId: '' };
      const body: AlertBody = {
        kind: input.kind,
        prefix: input.prefix,
        date: input.date,
        workflowId,
        runId,
        deadline: input.deadline ?? null,
        uiUrl: uiLink(config, workflowId, runId),
        message: input.message,
      };
      const { status } = await postWebhook(url, body, { signal: ctx.cancellationSignal, headers: { 'Idempotency-Key': `${workflowId}/${runId}/${input.kind}` } });
      ctx.log.info(`${input.kind} alert of ${workflowId} delivered to the webhook at ${webhookAddress(url)} (HTTP ${status})`);
      return { delivered: true, status };
    },
  };
}
