/**
 * batchCleaningWorkflow: the landed objects of a prefix -> pin_clean, geo_clean, user_clean
 * and the nine analytics outputs, on the configured warehouse, published as Parquet.
 *
 * Two steps, visible in the UI: an inventory of what is landed (listing only), then one
 * heartbeating activity that cleans, analyses and publishes. The result carries row counts,
 * the records left out and why, and the output locations: never rows. A rerun replaces the
 * outputs (the activity is idempotent), so retrying or running a date again is safe.
 */
import { ApplicationFailure, defineQuery, proxyActivities, setCurrentDetails, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { validateCleaningInput, type CleaningInput, type CleaningResult, type TopicInventory } from '../common/cleaning';
import { NonRetryable } from '../common/errors';
import { PipelinePrefix, PipelineStage } from '../common/search-attributes';

const FATAL = [NonRetryable.badInput, NonRetryable.missingResource, NonRetryable.auth, NonRetryable.config];

// Listing only: quick, retried through short outages (a prefix with very many objects can
// take minutes to list, so the start-to-close timeout stays generous).
const quick = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10, nonRetryableErrorTypes: FATAL },
});

// The cleaning run heartbeats at least every 5 s (a timer, besides download progress and each
// statement); a worker that dies is noticed within the 30 s heartbeat timeout and the run
// starts again from the objects.
const heavy = proxyActivities<Activities>({
  startToCloseTimeout: '3 hours',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 10, nonRetryableErrorTypes: FATAL },
});

export interface CleaningStatus {
  step: 'inventory' | 'cleaning' | 'done';
  inventory: TopicInventory[];
  result?: CleaningResult;
}

export const cleaningStatusQuery = defineQuery<CleaningStatus>('status');

export async function batchCleaningWorkflow(input: CleaningInput): Promise<CleaningResult> {
  const problems = validateCleaningInput(input);
  if (problems.length) throw ApplicationFailure.nonRetryable(`invalid cleaning input: ${problems.join('; ')}`, NonRetryable.badInput);
  upsertSearchAttributes([
    { key: PipelinePrefix, value: input.prefix },
    { key: PipelineStage, value: 'cleaning' },
  ]);
  const status: CleaningStatus = { step: 'inventory', inventory: [] };
  setHandler(cleaningStatusQuery, () => status);

  status.inventory = await quick.cleaningInventory(input);
  const objects = status.inventory.reduce((n, t) => n + t.objects, 0);
  const mb = status.inventory.reduce((n, t) => n + t.bytes, 0) / 1e6;
  setCurrentDetails(`cleaning ${objects} landed objects (${mb.toFixed(1)} MB): ${status.inventory.map((t) => `${t.topic} ${t.objects}`).join(', ')}`);

  status.step = 'cleaning';
  const result = await heavy.runCleaning({ ...input, runKey: workflowInfo().workflowId });
  status.result = result;
  status.step = 'done';
  const rows = Object.entries(result.tables).map(([name, t]) => `${name} ${t.rows}`).join(', ');
  setCurrentDetails(`done: ${rows}; ${Object.keys(result.analytics).length} analytics outputs`);
  return result;
}
