/**
 * All activities, built from one Config. Each external system has its own adapter module;
 * this file only assembles them. Workflows import the `Activities` type, never this code.
 */
import type { Config } from '../config';
import { cleaningActivities } from './cleaning';
import { databricksActivities } from '../adapters/databricks';
import { emulationActivities } from './emulation';
import { kafkaAdapter, type KafkaDeps } from '../adapters/kafka';
import { kinesisAdapter } from '../adapters/kinesis';
import { landingActivities } from './landing';
import { mwaaActivities, mwaaAdapter } from '../mwaa/adapter';
import { mysqlAdapter } from '../adapters/mysql';
import { s3Adapter } from '../adapters/s3';
import { streamingActivities } from './streaming';

/** Replacements for the adapters' clients (tests inject faults through them); none in production. */
export type ActivityDeps = KafkaDeps;

export function createActivities(config: Config, deps: ActivityDeps = {}) {
  const mysql = mysqlAdapter(config);
  const kafka = kafkaAdapter(config, deps);
  const s3 = s3Adapter(config);
  const kinesis = kinesisAdapter(config);
  // The legacy DAG (dailyPipelineWorkflow's optional stage); the MWAA client is made on first use.
  const mwaa = mwaaAdapter(config);
  return {
    activities: { ...mysql.activities, ...kafka.activities, ...s3.activities, ...emulationActivities(config, mysql, kafka, kinesis), ...landingActivities(config, kafka, s3), ...cleaningActivities(config, s3), ...databricksActivities(config), ...streamingActivities(config, kinesis, s3), ...mwaaActivities(config, { adapter: mwaa }) },
    async close() {
      mwaa.close();
      await Promise.allSettled([mysql.close(), kafka.close(), s3.close(), kinesis.close()]);
    },
  };
}

export type Activities = ReturnType<typeof createActivities>['activities'];
