/**
 * Custom search attributes pinflow sets on its workflows so the Temporal UI and
 * `temporal workflow list --query` can filter runs. `npm run stack -- up` registers them.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const PipelinePrefix = defineSearchAttributeKey('PipelinePrefix', SearchAttributeType.KEYWORD);
export const PipelineSink = defineSearchAttributeKey('PipelineSink', SearchAttributeType.KEYWORD);
export const PipelineStage = defineSearchAttributeKey('PipelineStage', SearchAttributeType.KEYWORD);
export const PipelineDate = defineSearchAttributeKey('PipelineDate', SearchAttributeType.KEYWORD);
export const PipelineMode = defineSearchAttributeKey('PipelineMode', SearchAttributeType.KEYWORD);

export const ALL_SEARCH_ATTRIBUTES = [PipelinePrefix, PipelineSink, PipelineStage, PipelineDate, PipelineMode];
