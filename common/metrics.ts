/**
 * pinflow's own metrics, next to the SDK's on the worker's Prometheus endpoint
 * (`METRICS_PORT`). Activities record through their context's meter and workflows through
 * the workflow meter (skipped on replay), so each series also carries the SDK's tags
 * (namespace, taskQueue, activityType or workflowType). Pure: workflows import it.
 *
 *   pinflow_records_emulated{sink}            records sent by the emulation (three per post)
 *   pinflow_posts_skipped{sink}               planned posts whose key is missing from a table
 *   pinflow_records_landed{topic}             records written to S3 by landing
 *   pinflow_records_dead_lettered{topic}      records written to the dead-letter objects
 *   pinflow_records_cleaned{table}            rows of pin_clean, geo_clean, user_clean
 *   pinflow_stage_duration{stage}             ms: activity steps (emulation_batch,
 *                                             landing_topic, cleaning) and the daily
 *                                             pipeline's stages (daily_landing, daily_cleaning)
 *   pinflow_pipeline_alerts{kind,prefix,date}  alerts the daily pipeline raised: kind `late`
 *                                             (its deadline passed) or `failed` (common/alerts.ts)
 */
import type { MetricMeter } from '@temporalio/common';

export const PIPELINE_METRICS = {
  emulated: 'pinflow_records_emulated',
  skipped: 'pinflow_posts_skipped',
  landed: 'pinflow_records_landed',
  deadLettered: 'pinflow_records_dead_lettered',
  cleaned: 'pinflow_records_cleaned',
  stageDuration: 'pinflow_stage_duration',
  alerts: 'pinflow_pipeline_alerts',
} as const;

export type Stage = 'emulation_batch' | 'landing_topic' | 'cleaning' | 'daily_landing' | 'daily_legacy_dag' | 'daily_cleaning';

/** The named pipeline counters on a meter (an activity's `Context.current().metricMeter`, or the workflow's `metricMeter`). */
export function pipelineMetrics(meter: MetricMeter) {
  const add = (name: string, description: string, value: number, tags: Record<string, string>) => {
    if (value > 0) meter.createCounter(name, 'records', description).add(value, tags);
  };
  return {
    emulated(sink: string, records: number, skippedPosts: number) {
      add(PIPELINE_METRICS.emulated, 'Records sent by the emulation (three per post)', records, { sink });
      if (skippedPosts > 0) meter.createCounter(PIPELINE_METRICS.skipped, 'posts', 'Planned posts skipped: key missing from a table').add(skippedPosts, { sink });
    },
    landed(topic: string, records: number, deadLetters: number) {
      add(PIPELINE_METRICS.landed, 'Records landed in S3', records, { topic });
      add(PIPELINE_METRICS.deadLettered, 'Records written to dead-letter objects', deadLetters, { topic });
    },
    cleaned(tables: Record<string, { rows: number }>) {
      for (const [table, t] of Object.entries(tables)) add(PIPELINE_METRICS.cleaned, 'Rows in the cleaned tables', t.rows, { table });
    },
    stageDuration(stage: Stage, ms: number) {
      meter.createHistogram(PIPELINE_METRICS.stageDuration, 'int', 'ms', 'Wall time of a pipeline step').record(Math.max(0, Math.round(ms)), { stage });
    },
    alert(kind: 'late' | 'failed', prefix: string, date: string) {
      meter.createCounter(PIPELINE_METRICS.alerts, 'alerts', 'Alerts the daily pipeline raised (late: deadline passed; failed)').add(1, { kind, prefix, date });
    },
  };
}
