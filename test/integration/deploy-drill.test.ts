/**
 * Deploy drill (docs/upgrading.md): long runs in flight survive a deploy of workflow code with
 * an incompatible change guarded by patched(). A follow-mode lander, a streaming workflow and a
 * long emulation start on worker v1 (today's code); worker v2 (the next release: an extra timer
 * in each loop and at the daily run's start, guarded, test/helpers/drill.ts) starts beside it;
 * v1 stops, as a rolling deploy stops the old pods. Each run goes on under v2 through its next
 * continue-as-new, and to completion where it completes; nothing is lost or written twice (the
 * same checks as the fault tests); the histories show v2's identity and its patch marker after
 * the switch; and the daily schedule's next run starts and finishes on v2. The same change
 * unguarded fails to replay a v1 history: the guard is what makes the deploy safe.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { EmulationInput, EmulationProgress } from '../../common/emulation';
import { logicalDateOf } from '../../common/daily';
import { dailyWorkflowId } from '../../common/ids';
import type { LandingInput } from '../../common/landing';
import { streamName, type StreamingInput, type StreamingStatus } from '../../common/streaming';
import { ensureStreams } from '../../adapters/kinesis';
import { createKinesisClient } from '../../adapters/kinesis';
import { landingStatusQuery } from '../../workflows/landing';
import { stopSignal } from '../../workflows/streaming';
import { workflowBundle, createWorker, type PinflowWorker } from '../../workers/worker';
import { buildIdOf } from '../../workers/version';
import { assertExactlyOnce, consumeTopics, testDatabase, TOPICS } from '../helpers/data';
import { DRILL_PATCH, nextReleaseBundle } from '../helpers/drill';
import { runScript, stackTestContext, uniqueName } from '../helpers/env';
import { assertLandedExactlyOnce, produceRecords } from '../helpers/landing';
import { assertStreamExactlyOnce, deleteStreams, produceSteadily, removeStreamingDirs, streamingConfig, waitForStatus } from '../helpers/streaming';
import { waitFor } from '../helpers/zombie';

interface RunChain {
  /** `first`: the identity that completed the run's first workflow task (the worker that started it). */
  runs: Array<{ runId: string; identities: Set<string>; first: string | undefined; patched: boolean }>;
}

/** Every run of the workflow's chain, with the identities that completed its workflow tasks. */
async function chain(client: Client, workflowId: string, firstRunId: string): Promise<RunChain> {
  const runs: RunChain['runs'] = [];
  let runId: string | undefined = firstRunId;
  while (runId) {
    const events: HistoryEvent[] = (await client.workflow.getHandle(workflowId, runId).fetchHistory()).events ?? [];
    const identities = new Set(events.map((e) => e.workflowTaskCompletedEventAttributes?.identity).filter((x): x is string => !!x));
    const patchIds = events
      .filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch')
      .flatMap((e) => e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads ?? [])
      .map((p) => (JSON.parse(Buffer.from(p.data ?? []).toString('utf8')) as { id: string }).id);
    const first = events.find((e) => e.workflowTaskCompletedEventAttributes?.identity)?.workflowTaskCompletedEventAttributes?.identity ?? undefined;
    runs.push({ runId, identities, first, patched: patchIds.includes(DRILL_PATCH) });
    const last: HistoryEvent | undefined = events[events.length - 1];
    runId = last?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
  }
  return { runs };
}

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

const ranOn = (c: RunChain, buildId: string) => c.runs.filter((r) => [...r.identities].some((i) => i.startsWith(`pinflow@${buildId} `)));

describe('deploy drill: a guarded incompatible change rolls out under long runs', () => {
  const ctx = stackTestContext();

  it('the same change unguarded cannot replay a v1 history; guarded, it can', { timeout: 240_000 }, async () => {
    const [guarded, unguarded] = [await nextReleaseBundle({ guarded: true }), await nextReleaseBundle({ guarded: false })];
    const topic = `${uniqueName('drill-replay')}.pin`;
    await produceRecords(ctx.kafka, [topic], 50, { partitions: 1 });
    const taskQueue = uniqueName('drill-replay');
    const w = await createWorker(ctx.config, { connection: ctx.env.nativeConnection, taskQueue });
    const handle = await ctx.env.client.workflow.start('landingWorkflow', {
      taskQueue,
      workflowId: uniqueName('drill-replay'),
      args: [{ prefix: topic.replace(/\.pin$/, ''), mode: 'follow', pollIntervalMs: 200, roundsPerRun: 3 } satisfies LandingInput],
    });
    await w.worker.runUntil(async () => {
      await waitFor('a continued-as-new run', async () => (await handle.describe()).runId !== handle.firstExecutionRunId, 60_000);
    });
    await w.close();
    const history = await ctx.env.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId).fetchHistory();
    await handle.terminate('drill done');
    await Worker.runReplayHistory({ workflowBundle: guarded }, history);
    await assert.rejects(Worker.runReplayHistory({ workflowBundle: unguarded }, history), /[Nn]ondeterminism|DeterminismViolation|TMPRL1100/);
  });

  it('follow landing, streaming and a long emulation started on v1 go on under v2; the next scheduled run starts on v2', { timeout: 600_000 }, async (t) => {
    const { url } = await testDatabase({ sample: true });
    const s = streamingConfig('drill', { MYSQL_URL: url });
    const config = s.config;
    const taskQueue = config.temporal.taskQueue;
    const kinesis = createKinesisClient(config);
    const stream = streamName(s.prefix, 'user');
    const landingTopic = `${s.prefix}-land.pin`;
    const workers: PinflowWorker[] = [];
    const start = async (bundle: WorkflowBundleWithSourceMap) => {
      const w = await createWorker(config, { connection: ctx.env.nativeConnection, taskQueue, bundle });
      workers.push(w);
      return { w, running: w.worker.run() };
    };
    try {
      const v1 = await start(await workflowBundle());
      const v2Bundle = await nextReleaseBundle({ guarded: true });
      assert.notEqual(buildIdOf(v2Bundle), v1.w.buildId, 'the next release has another build id');

      await ensureStreams(kinesis, [stream], 2);
      await produceRecords(ctx.kafka, [landingTopic], 300, { partitions: 2 });
      const client = ctx.env.client;
      const landing = await client.workflow.start('landingWorkflow', {
        taskQueue,
        workflowId: uniqueName('drill-landing'),
        args: [{ prefix: `${s.prefix}-land`, mode: 'follow', pollIntervalMs: 300, roundsPerRun: 6 } satisfies LandingInput],
      });
      const streaming = await client.workflow.start('streamingWorkflow', {
        taskQueue,
        workflowId: uniqueName('drill-stream'),
        args: [{ prefix: s.prefix, topic: 'user', spanMs: 1_000, pollIntervalMs: 100, recordsPerRead: 300, eventsBeforeContinue: 120 } satisfies StreamingInput],
      });
      const emulation = await client.workflow.start('emulationWorkflow', {
        taskQueue,
        workflowId: uniqueName('drill-emulation'),
        args: [{ prefix: `${s.prefix}-emu`, sink: 'kafka', rate: 120, selection: { mode: 'all' }, batchSize: 40, batchesPerRun: 10 } satisfies EmulationInput],
      });
      const streamed = produceSteadily(kinesis, stream, 0, 1_500, 300);

      // Progress on v1, and at least one continue-as-new of each long run before the deploy.
      await waitFor('landing on v1', async () => (await landing.query(landingStatusQuery)).records >= 300, 60_000);
      await waitFor('emulation on v1', async () => (await emulation.describe()).runId !== emulation.firstExecutionRunId, 60_000);
      await waitForStatus(streaming, (st) => st.totals.rows >= 300, 'streaming on v1');

      // The deploy: v2 starts, v1 stops (its in-flight activities finish first).
      const v2 = await start(v2Bundle);
      v1.w.worker.shutdown();
      await v1.running;
      const deployedAt = Date.now();

      await produceRecords(ctx.kafka, [landingTopic], 300, { partitions: 2 });
      await streamed;
      await produceSteadily(kinesis, stream, 1_500, 1_500, 500);

      const emulated = (await emulation.result()) as EmulationProgress;
      assert.equal(emulated.sent, 2019);
      await waitFor('landing all 600 on v2', async () => (await landing.query(landingStatusQuery)).records >= 600, 120_000);
      const landingRunAtDeploy = (await landing.describe()).runId;
      await waitFor('a landing continue-as-new on v2', async () => (await landing.describe()).runId !== landingRunAtDeploy, 120_000);
      await landing.cancel();
      await assert.rejects(landing.result(), /cancel/i);
      const before = await waitForStatus(streaming, (st) => st.totals.rows >= 3_000, 'all 3,000 rows on v2', 180_000);
      await waitForStatus(streaming, (st) => st.runs > before.runs, 'a streaming continue-as-new on v2', 120_000);
      await streaming.signal(stopSignal);
      const streamedStatus = (await streaming.result()) as StreamingStatus;
      assert.equal(streamedStatus.totals.rows, 3_000);

      // Nothing lost, nothing twice.
      await assertLandedExactlyOnce(config.kafka.brokers, ctx.s3, config.s3.bucket, [landingTopic], 600);
      assertExactlyOnce(await consumeTopics(ctx.kafka, TOPICS.map((t) => `${s.prefix}-emu.${t}`), 3 * 2019), `${s.prefix}-emu`, Array.from({ length: 2019 }, (_, i) => i));
      await assertStreamExactlyOnce(kinesis, stream, config.warehouse.duckdbPath, s.prefix, 'user');

      // Each chain: started on v1, went on under v2 (identity and patch marker), after the deploy.
      for (const [name, handle] of [['landing', landing], ['streaming', streaming], ['emulation', emulation]] as const) {
        const c = await chain(client, handle.workflowId, handle.firstExecutionRunId);
        assert.ok(ranOn(c, v1.w.buildId).length >= 1, `${name}: runs on v1`);
        const onV2 = ranOn(c, v2.w.buildId);
        assert.ok(onV2.length >= 2, `${name}: on v2 through a continue-as-new (${onV2.length} run(s) on v2 of ${c.runs.length})`);
        // A run v2 started takes the new path. A run v1 started and v2 took over takes it only if
        // v2 reached the changed step in it: not when the run was in its last loop iteration at the
        // deploy, so v2 only finished that iteration and continued as new.
        const startedOnV2 = onV2.filter((r) => r.first?.includes(v2.w.buildId));
        t.diagnostic(`${name}: ${c.runs.map((r) => `${r.runId.slice(0, 8)} first=${r.first?.includes(v2.w.buildId) ? 'v2' : 'v1'} v2=${onV2.includes(r)} patched=${r.patched}`).join('; ')}`);
        assert.ok(startedOnV2.length >= 1, `${name}: runs started on v2`);
        assert.ok(startedOnV2.every((r) => r.patched), `${name}: every run v2 started took the new, guarded path`);
        assert.ok(c.runs.filter((r) => !ranOn({ runs: [r] }, v2.w.buildId).length).every((r) => !r.patched), `${name}: runs only v1 worked on never took it`);
      }
      assert.ok(Date.now() >= deployedAt);

      // The daily schedule's next run starts on v2 (only v2 polls now) and finishes there.
      const vars = { ...s.vars, MYSQL_URL: url };
      try {
        assert.equal(runScript('schedule', ['create'], vars).code, 0);
        const trig = runScript('schedule', ['trigger'], vars);
        assert.equal(trig.code, 0, trig.stderr);
        const daily = client.workflow.getHandle(dailyWorkflowId(s.prefix, logicalDateOf(new Date())));
        await waitFor('the triggered daily run', async () => (await daily.describe().catch(() => undefined)) !== undefined, 60_000);
        await daily.result();
        const runs = await chain(client, daily.workflowId, (await daily.describe()).runId);
        assert.deepEqual(ranOn(runs, v1.w.buildId), [], 'no step of the scheduled run on v1');
        assert.equal(ranOn(runs, v2.w.buildId).length, 1, 'the scheduled run ran on v2');
        assert.ok(runs.runs[0]!.patched, 'and took the new path');
      } finally {
        runScript('schedule', ['delete'], vars);
      }
    } finally {
      for (const w of workers) {
        if (w.worker.getState() === 'RUNNING') w.worker.shutdown();
        await w.close().catch(() => {});
      }
      await deleteStreams(kinesis, [stream]).catch(() => {});
      kinesis.destroy();
      removeStreamingDirs();
    }
  });
});
