/**
 * All activities, built from one Config. Each external system has its own adapter module;
 * this file only assembles them. Workflows import the `Activities` type, never this code.
 */
import type { Config } from '../config';
import { alertActivities } from './alerts';
import { cleaningActivities } from './cleaning';
import { databricksActivities } from '../adapters/databricks/jobs';
import { emulationActivities } from './emulation';
import { kafkaAdapter, type KafkaDeps } from '../adapters/kafka';
import { kinesisAdapter } from '../adapters/kinesis';
import { intervalActivities } from './intervals';
import { landingActivities } from './landing';
import { mwaaAdapter } from '../mwaa/adapter';
import { mwaaActivities } from '../mwaa/activities';
import { mysqlAdapter } from '../adapters/mysql';
import { s3Adapter } from '../adapters/s3';
import { streamingActivities } from './streaming';
import { createWarehouse, type Warehouse } from '../adapters/warehouse';

/** Replacements for the adapters' clients (tests inject faults through them); none in production. */
export type ActivityDeps = KafkaDeps & {
  /** The warehouse to clean and stream into, instead of the one WAREHOUSE configures (left open by `close`). */
  warehouse?: Warehouse;
};

export function createActivities(config: Config, deps: ActivityDeps = {}) {
  const mysql = mysqlAdapter(config);
  const kafka = kafkaAdapter(config, deps);
  const s3 = s3Adapter(config);
  const kinesis = kinesisAdapter(config);
  const warehouse = deps.warehouse ?? createWarehouse(config, { s3 });
  // The legacy DAG (dailyPipelineWorkflow's optional stage); the MWAA client is made on first use.
  const mwaa = mwaaAdapter(config);
  return {
    activities: { ...mysql.activities, ...kafka.activities, ...s3.activities, ...emulationActivities(config, mysql, kafka, kinesis), ...landingActivities(config, kafka, s3), ...intervalActivities(kafka, s3), ...cleaningActivities(s3, warehouse), ...databricksActivities(config), ...streamingActivities(kinesis, warehouse), ...mwaaActivities(config, { adapter: mwaa }), ...alertActivities(config) },
    async close() {
      mwaa.close();
      await Promise.allSettled([mysql.close(), kafka.close(), s3.close(), kinesis.close(), deps.warehouse ? undefined : warehouse.close()]);
    },
  };
}

export type Activities = ReturnType<typeof createActivities>['activities'];
