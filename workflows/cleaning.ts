/**
 * batchCleaningWorkflow: the landed objects of a prefix -> pin_clean, geo_clean, user_clean
 * and the nine analytics outputs, on the configured warehouse, published as Parquet.
 *
 * Two steps, visible in the UI: an inventory of what is landed (listing only), then one
 * heartbeating activity that cleans, analyses and publishes. The result carries row counts,
 * the records left out and why, and the output locations: never rows. A rerun replaces the
 * outputs (the activity is idempotent), so retrying or running a date again is safe.
 *
 * The cleaning activity gets the run's key, `<workflow id>.<run id>`: the workflow id is the
 * same for every cleaning of a prefix (common/ids.ts), the run id is not, and the activity's
 * retries share it (a Databricks notebook run's idempotency token is derived from it).
 */
import { defineQuery, proxyActivities, setCurrentDetails, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { validateCleaningInput, type CleaningInput, type CleaningResult, type TopicInventory } from '../common/cleaning';
import { cleaningSearchAttributes } from '../common/search-attributes';
import { CLEANING_INVENTORY, CLEANING_RUN, rejectInvalidInput } from './policies';

const quick = proxyActivities<Activities>(CLEANING_INVENTORY);
const heavy = proxyActivities<Activities>(CLEANING_RUN);

export interface CleaningStatus {
  step: 'inventory' | 'cleaning' | 'done';
  inventory: TopicInventory[];
  result?: CleaningResult;
}

export const cleaningStatusQuery = defineQuery<CleaningStatus>('status');

export async function batchCleaningWorkflow(input: CleaningInput): Promise<CleaningResult> {
  rejectInvalidInput('cleaning', validateCleaningInput(input));
  upsertSearchAttributes(cleaningSearchAttributes(input.prefix));
  const status: CleaningStatus = { step: 'inventory', inventory: [] };
  setHandler(cleaningStatusQuery, () => status);

  status.inventory = await quick.cleaningInventory(input);
  const objects = status.inventory.reduce((n, t) => n + t.objects, 0);
  const mb = status.inventory.reduce((n, t) => n + t.bytes, 0) / 1e6;
  setCurrentDetails(`cleaning ${objects} landed objects (${mb.toFixed(1)} MB): ${status.inventory.map((t) => `${t.topic} ${t.objects}`).join(', ')}`);

  status.step = 'cleaning';
  const { workflowId, runId } = workflowInfo();
  const result = await heavy.runCleaning({ ...input, runKey: `${workflowId}.${runId}` });
  status.result = result;
  status.step = 'done';
  const rows = Object.entries(result.tables).map(([name, t]) => `${name} ${t.rows}`).join(', ');
  setCurrentDetails(`done: ${rows}; ${Object.keys(result.analytics).length} analytics outputs`);
  return result;
}
