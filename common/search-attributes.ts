/**
 * Custom search attributes pinflow sets on its workflows so the Temporal UI and
 * `temporal workflow list --query` can filter runs. `npm run stack -- up` registers them.
 *
 * One builder per workflow kind gives the attributes of its runs: the clients pass them as
 * start options (`typedSearchAttributes`), the workflows upsert the same ones when they start,
 * so a run carries the same attributes however it was started. Pure (workflows import it).
 */
import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from '@temporalio/common';
import type { DailyStage } from './daily';
import type { Sink } from './emulation';
import type { LandingInput } from './landing';

export const PipelinePrefix = defineSearchAttributeKey('PipelinePrefix', SearchAttributeType.KEYWORD);
export const PipelineSink = defineSearchAttributeKey('PipelineSink', SearchAttributeType.KEYWORD);
export const PipelineStage = defineSearchAttributeKey('PipelineStage', SearchAttributeType.KEYWORD);
export const PipelineDate = defineSearchAttributeKey('PipelineDate', SearchAttributeType.KEYWORD);
export const PipelineMode = defineSearchAttributeKey('PipelineMode', SearchAttributeType.KEYWORD);
/** `true` on a daily run whose deadline passed before it was done (a keyword, as every pinflow attribute). */
export const PipelineLate = defineSearchAttributeKey('PipelineLate', SearchAttributeType.KEYWORD);

export const ALL_SEARCH_ATTRIBUTES = [PipelinePrefix, PipelineSink, PipelineStage, PipelineDate, PipelineMode, PipelineLate];

/** landingWorkflow: PipelinePrefix, PipelineMode (follow | untilNow). */
export const landingSearchAttributes = (prefix: string, mode: LandingInput['mode']): SearchAttributePair[] => [
  { key: PipelinePrefix, value: prefix },
  { key: PipelineMode, value: mode },
];

/** emulationWorkflow: PipelinePrefix, PipelineSink. */
export const emulationSearchAttributes = (prefix: string, sink: Sink): SearchAttributePair[] => [
  { key: PipelinePrefix, value: prefix },
  { key: PipelineSink, value: sink },
];

/** batchCleaningWorkflow: PipelinePrefix, PipelineStage `cleaning`. */
export const cleaningSearchAttributes = (prefix: string): SearchAttributePair[] => [
  { key: PipelinePrefix, value: prefix },
  { key: PipelineStage, value: 'cleaning' },
];

/** streamingWorkflow: PipelinePrefix, PipelineStage `streaming`. */
export const streamingSearchAttributes = (prefix: string): SearchAttributePair[] => [
  { key: PipelinePrefix, value: prefix },
  { key: PipelineStage, value: 'streaming' },
];

/**
 * dailyPipelineWorkflow: PipelinePrefix, PipelineDate, PipelineStage (`starting` when started,
 * then the stage it is in; `delegated` for a scheduled run that hands the date to the canonical run).
 */
export const dailySearchAttributes = (prefix: string, date: string, stage: DailyStage | 'delegated'): SearchAttributePair[] => [
  { key: PipelinePrefix, value: prefix },
  { key: PipelineDate, value: date },
  { key: PipelineStage, value: stage },
];

/** A daily run past its deadline: PipelineLate `true` (upserted beside the others; `PipelineLate='true'` finds late runs). */
export const lateSearchAttributes = (): SearchAttributePair[] => [{ key: PipelineLate, value: 'true' }];
