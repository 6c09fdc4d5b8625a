/** Temporal client helpers shared by the command-line scripts and tests. */
import { Client, Connection } from '@temporalio/client';
import type { Config } from '../config';
import { dataConverterOf } from './codec';
import { temporalConnectionOptions } from './connection';

/** A client on the configured Temporal (TLS / API key when set), encrypting payloads when a key is set. */
export async function connectClient(config: Config): Promise<Client> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...temporalConnectionOptions(config), connectTimeout: 5_000 });
  } catch (err) {
    throw new Error(`Temporal at ${config.temporal.address} is unreachable (${(err as Error).message}); start it with: npm run stack -- up`, { cause: err });
  }
  return new Client({ connection, namespace: config.temporal.namespace, dataConverter: dataConverterOf(config) });
}

/** Where a workflow run is shown in the Temporal Web UI. */
export function uiLink(config: Config, workflowId: string, runId?: string): string {
  const base = `${config.temporal.uiUrl}/namespaces/${encodeURIComponent(config.temporal.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return runId ? `${base}/${runId}/history` : base;
}
