/**
 * No secrets and no raw rows in Temporal history: the whole pipeline (emulation, then the
 * daily pipeline: landing, cleaning, analytics) runs with recognisable fake credentials in its
 * configuration (a MySQL user and password of its own, a Databricks token, a REST proxy URL
 * with credentials), then every event of every workflow of the run is read back through the
 * client and searched, payload bytes decoded, for those secrets and for the sample's rows
 * (every unique_id and every long title). Payloads carry keys, offsets and counts only.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { MYSQL_SOCKET } from '../scripts/stack/services';
import { testDatabase } from './helpers/data';
import { ensureStack, quietRuntime, runScriptAsync, testConfig, uniqueName, workflowTestEnv } from './helpers/env';
import { sampleMessages } from './helpers/landed-fixture';

/** Every string in an event, with byte arrays (payload data) decoded as UTF-8. */
function* strings(value: unknown): Generator<string> {
  if (typeof value === 'string') yield value;
  else if (value instanceof Uint8Array) yield Buffer.from(value).toString('utf8');
  else if (Array.isArray(value)) for (const v of value) yield* strings(v);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) yield* strings(v);
}

describe('history holds no secrets and no raw rows', () => {
  let env: TestWorkflowEnvironment;
  const marker = randomBytes(6).toString('hex');
  const secrets = {
    mysqlPassword: `Hist-Mysql-Secret-${marker}`,
    databricksToken: `dapi-hist-secret-${marker}`,
    restProxyPassword: `rest-proxy-secret-${marker}`,
  };

  before(async () => {
    quietRuntime();
    await ensureStack();
    env = await workflowTestEnv(testConfig());
  });
  after(async () => env?.teardown());

  it('runs the pipeline with fake credentials and finds none of them, nor any sample row, in any event', async () => {
    const { db } = await testDatabase({ sample: true });
    const user = `hist_${marker}`;
    const root = await mysql.createConnection({ socketPath: MYSQL_SOCKET, user: 'root' });
    try {
      for (const host of ['localhost', '127.0.0.1']) {
        await root.query('CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?', [user, host, secrets.mysqlPassword]);
        await root.query(`GRANT ALL PRIVILEGES ON \`${db}\`.* TO ?@?`, [user, host]);
      }
    } finally {
      await root.end();
    }
    const prefix = uniqueName('hist');
    const vars = {
      MYSQL_URL: `mysql://${user}:${secrets.mysqlPassword}@127.0.0.1:3306/${db}`,
      DATABRICKS_TOKEN: secrets.databricksToken,
      REST_PROXY_URL: `http://svc:${secrets.restProxyPassword}@127.0.0.1:9/`,
      PIPELINE_PREFIX: prefix,
      TEMPORAL_TASK_QUEUE: uniqueName('tq-hist'),
    };
    const emulated = await runScriptAsync('emulate', ['--all', '--wait'], vars);
    assert.equal(emulated.code, 0, emulated.stderr);
    const piped = await runScriptAsync('pipeline', ['--wait', '--output-root', `${prefix}/`], vars, 300_000);
    assert.equal(piped.code, 0, piped.stderr);
    assert.match(piped.stdout, /pin_clean: 2,019 rows/);

    const msgs = await sampleMessages();
    const rowMarkers = [
      ...msgs.pin.map((p) => String(p.unique_id)),
      ...msgs.pin.map((p) => String(p.title ?? '')).filter((t) => t.length >= 25),
    ];
    const needles = [...Object.values(secrets), ...rowMarkers];
    let workflows = 0;
    let events = 0;
    const found: string[] = [];
    for await (const w of env.client.workflow.list({ query: `PipelinePrefix = '${prefix}'` })) {
      workflows++;
      const history = await env.client.workflow.getHandle(w.workflowId, w.runId).fetchHistory();
      for (const event of history.events ?? []) {
        events++;
        for (const s of strings(event)) {
          for (const n of needles) if (s.includes(n)) found.push(`${w.workflowId} event ${event.eventId}: ${n.slice(0, 40)}`);
        }
      }
    }
    assert.ok(workflows >= 4, `emulation, daily, landing and cleaning workflows scanned (${workflows})`);
    assert.ok(events > 50, `${events} events scanned`);
    assert.deepEqual(found.slice(0, 10), [], `${found.length} secret or row occurrences in history`);
    // The scan can find things: the prefix itself is in the history.
    let sawPrefix = false;
    for await (const w of env.client.workflow.list({ query: `PipelinePrefix = '${prefix}'` })) {
      const history = await env.client.workflow.getHandle(w.workflowId, w.runId).fetchHistory();
      if ([...strings(history)].some((s) => s.includes(prefix))) sawPrefix = true;
    }
    assert.ok(sawPrefix, 'the scan sees payload contents');
  });
});
