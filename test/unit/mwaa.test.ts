/**
 * The triggerMwaaDag activity on its own, without a Temporal server: run in a
 * MockActivityEnvironment against the protocol-level MWAA stand-in (test/helpers/mwaa-standin.ts:
 * the real @aws-sdk/client-mwaa client, SigV4-checked, Airflow's REST API on in-memory DAGs) on
 * a port of its own: a deterministic run id, heartbeats until success, adoption on a repeat,
 * failed and paused DAGs, cancellation. test/integration/mwaa.test.ts migrates schedules
 * against the stack's Temporal dev server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { mwaaActivities, mwaaDagRunId, type TriggerMwaaDagResult } from '../../mwaa/activities';
import { MWAA_DAG_RUN_FAILED } from '../../mwaa/failures';
import type { Config } from '../../config';
import { NonRetryable } from '../../common/errors';
import { testConfig, uniqueName } from '../helpers/env';
import { startMwaaStandin, type MwaaStandin } from '../helpers/mwaa-standin';
import { expectNonRetryable } from '../helpers/secured';

/** Activity failures are asserted, not logged. */
const mockEnv = () => new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
/** For assert.rejects: a non-retryable failure of `type` whose message matches. */
const expectFailure = (type: string, message: RegExp) => (err: unknown) => {
  expectNonRetryable(err, type, message);
  return true;
};

describe('MWAA migration', () => {
  let standin: MwaaStandin;
  let config: Config;

  before(async () => {
    standin = await startMwaaStandin();
    config = testConfig({ MWAA_ENDPOINT: standin.endpoint });
  });
  after(async () => standin?.close());

  /** An environment with a DAG of its own. */
  function scenario() {
    const environment = uniqueName('env');
    const dagId = `pin_dag_${uniqueName('d').slice(-6)}`;
    standin.addEnvironment(environment, '2.10.1');
    const dag = standin.addDag(environment, { dagId });
    return { environment, dagId, dag };
  }
  const callsTo = (environment: string, pattern: RegExp) => standin.calls.filter((c) => c.environment === environment && pattern.test(`${c.operation} ${c.detail}`));

  describe('triggerMwaaDag (MockActivityEnvironment)', () => {
    it('triggers with a deterministic run id, heartbeats the state until success, and adopts the run on a repeat', async () => {
      const s = scenario();
      const { triggerMwaaDag } = mwaaActivities(config);
      const env = mockEnv();
      const beats: unknown[] = [];
      env.on('heartbeat', (d: unknown) => beats.push(d));
      const input = { environment: s.environment, dagId: s.dagId, logicalDate: '2024-03-01', conf: { prefix: 'p' }, pollIntervalMs: 5 };
      const result: TriggerMwaaDagResult = await env.run(triggerMwaaDag, input);
      const runId = mwaaDagRunId('2024-03-01T00:00:00Z');
      assert.deepEqual({ ...result, startDate: undefined, endDate: undefined }, {
        environment: s.environment,
        dagId: s.dagId,
        dagRunId: runId,
        logicalDate: '2024-03-01T00:00:00.000Z',
        state: 'success',
        adopted: false,
        startDate: undefined,
        endDate: undefined,
      });
      assert.deepEqual(beats, [
        { dagRunId: runId, state: 'triggering' },
        { dagRunId: runId, state: 'queued' },
        { dagRunId: runId, state: 'running' },
        { dagRunId: runId, state: 'success' },
      ]);
      // A retry / second call for the same date: the run is adopted, no second run.
      const again: TriggerMwaaDagResult = await mockEnv().run(triggerMwaaDag, input);
      assert.equal(again.adopted, true);
      assert.equal(again.dagRunId, runId);
      assert.equal([...s.dag.runs.keys()].filter((k) => k === runId).length, 1);
      assert.equal(callsTo(s.environment, /POST \/dags\/.*\/dagRuns$/).length, 2);
      // Same id, different conf: a conflict, not silently adopted.
      await assert.rejects(mockEnv().run(triggerMwaaDag, { ...input, conf: { prefix: 'other' } }), expectFailure(NonRetryable.conflict, /exists with a different conf/));
    });

    it('a failed DAG run fails the activity non-retryably, naming the run and its state; a paused DAG fails before triggering', async () => {
      const s = scenario();
      s.dag.runScript = ['running', 'failed'];
      const { triggerMwaaDag } = mwaaActivities(config);
      await assert.rejects(
        mockEnv().run(triggerMwaaDag, { environment: s.environment, dagId: s.dagId, logicalDate: '2024-03-02T00:00:00Z', pollIntervalMs: 5 }),
        expectFailure(MWAA_DAG_RUN_FAILED, new RegExp(`MWAA environment ${s.environment}: DAG run ${s.dagId}/pinflow__20240302T000000Z \\(logical date 2024-03-02T00:00:00.000Z\\) ended in state failed`)),
      );
      s.dag.isPaused = true;
      await assert.rejects(
        mockEnv().run(triggerMwaaDag, { environment: s.environment, dagId: s.dagId, logicalDate: '2024-03-03T00:00:00Z', pollIntervalMs: 5 }),
        expectFailure(NonRetryable.badInput, /DAG .* is paused .*would stay queued/),
      );
      assert.equal(s.dag.runs.has('pinflow__20240303T000000Z'), false);
    });

    it('cancelling the activity marks the Airflow run failed', async () => {
      const s = scenario();
      s.dag.runScript = Array.from({ length: 10_000 }, () => 'running');
      const { triggerMwaaDag } = mwaaActivities(config);
      const env = mockEnv();
      env.on('heartbeat', (d: { state: string }) => {
        if (d.state === 'running') env.cancel();
      });
      await assert.rejects(env.run(triggerMwaaDag, { environment: s.environment, dagId: s.dagId, logicalDate: '2024-03-04T00:00:00Z', pollIntervalMs: 5 }), (err: unknown) => {
        assert.ok(err instanceof CancelledFailure, `got ${String(err)}`);
        return true;
      });
      assert.equal(s.dag.runs.get('pinflow__20240304T000000Z')?.state, 'failed');
    });
  });
});
