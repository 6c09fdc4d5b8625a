/**
 * `npm run pipeline -- --wait` on a prefix with no new data, and which worker runs it
 * (workers/worker.ts withWorker, workers/pollers.ts). Temporal lists a worker's poller for
 * about a minute after the worker is gone; the command must not wait on such a listing.
 *
 * 1. A worker killed (SIGKILL) right before the command: Temporal still lists its poller, and
 *    the command starts its own worker at once. Checked from the run's history: its first
 *    workflow task starts within 4 s of the run (a command that waited on the dead poller for
 *    a fixed 5 s, as withWorker once did, fails this), by a worker that is not the dead one,
 *    and the run lands and cleans once (one landing child, one cleaning child).
 * 2. A live worker polling: it runs the workflow, the command does not start one.
 * 3. A listed poller that never takes the run and is not known dead (another host's identity,
 *    a poll that ended): the command gives it PICKUP_MS, then runs the worker itself.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { todayUtc } from '../../common/daily';
import { dailyWorkflowId } from '../../common/ids';
import { workflowPollers } from '../../workers/pollers';
import { PICKUP_MS } from '../../workers/worker';
import { spawnWorker } from '../helpers/data';
import { runScriptAsync, stackTestContext, testConfig, uniqueName, until } from '../helpers/env';
import { stopWorker, workerIdentity } from '../helpers/zombie';

interface FirstTask {
  /** From the run's start to its first workflow task's start. */
  pickupMs: number;
  /** The worker that started it. */
  identity: string;
  /** Child workflows the run started, by type. */
  children: string[];
  completed: boolean;
}

describe('npm run pipeline: latency with stale, live and silent pollers', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-latency-'));
  const prefix = uniqueName('lat');
  const taskQueue = uniqueName('tq-lat');
  const vars = { PIPELINE_PREFIX: prefix, TEMPORAL_TASK_QUEUE: taskQueue, DUCKDB_PATH: path.join(tmp, 'warehouse.duckdb') };
  const ctx = stackTestContext(testConfig(vars));
  const workflowId = dailyWorkflowId(prefix, todayUtc(Date.now()));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  async function pipeline(): Promise<{ code: number | null; out: string; ms: number }> {
    const t0 = Date.now();
    const r = await runScriptAsync('pipeline', ['--wait', '--output-root', `${prefix}/`], vars, 120_000);
    return { code: r.code, out: r.stdout + r.stderr, ms: Date.now() - t0 };
  }

  /** The latest run of today's workflow id, from its history. */
  async function firstTask(): Promise<FirstTask> {
    const history = await ctx.env.client.workflow.getHandle(workflowId).fetchHistory();
    const events = history.events ?? [];
    const ms = (e: (typeof events)[number]) => Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
    const started = events.find((e) => e.workflowTaskStartedEventAttributes);
    assert.ok(started, 'a workflow task started');
    return {
      pickupMs: ms(started) - ms(events[0]!),
      identity: started.workflowTaskStartedEventAttributes!.identity ?? '',
      children: events.flatMap((e) => e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowType?.name ?? []),
      completed: events.some((e) => e.workflowExecutionCompletedEventAttributes),
    };
  }

  function assertDoneOnce(r: { code: number | null; out: string }, t: FirstTask): void {
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`done ${workflowId}: landed 0 records in 0 objects`));
    assert.ok(t.completed, 'the run completed');
    assert.deepEqual(t.children, ['landingWorkflow', 'batchCleaningWorkflow'], 'landed and cleaned once');
  }

  it('a first run on the fresh prefix: nothing polls, the command runs its worker', async () => {
    const r = await pipeline();
    assert.match(r.out, new RegExp(`no worker polls "${taskQueue}": starting one in this process`));
    assertDoneOnce(r, await firstTask());
  });

  it('a worker killed right before the command: its listed poller is not waited on', async () => {
    const w = spawnWorker(vars);
    try {
      await w.ready;
      const identity = await workerIdentity(w);
      await until('the worker listed as a poller', async () => ((await workflowPollers(ctx.env.client, taskQueue)).some((p) => p.identity === identity) ? true : undefined), 30_000);
      const exited = new Promise((r) => w.child.once('exit', r));
      w.child.kill('SIGKILL');
      await exited;
      assert.ok(
        (await workflowPollers(ctx.env.client, taskQueue)).some((p) => p.identity === identity),
        'Temporal still lists the dead worker (else this test proves nothing)',
      );
      const r = await pipeline();
      const t = await firstTask();
      assertDoneOnce(r, t);
      assert.match(r.out, new RegExp(`no worker polls "${taskQueue}": starting one in this process`));
      assert.ok(t.pickupMs < 4_000, `the first workflow task started ${t.pickupMs} ms after the run: the command waited`);
      assert.notEqual(t.identity, identity);
      assert.match(t.identity, /^pinflow@[0-9a-f]{12} \d+@/);
    } finally {
      await stopWorker(w);
    }
  });

  it('a live worker runs the workflow; the command starts none', async () => {
    const w = spawnWorker(vars);
    try {
      await w.ready;
      const r = await pipeline();
      const t = await firstTask();
      assertDoneOnce(r, t);
      assert.match(r.out, new RegExp(`using the worker polling "${taskQueue}"`));
      assert.doesNotMatch(r.out, /starting one in this process/);
      assert.equal(t.identity, await workerIdentity(w));
    } finally {
      await stopWorker(w);
    }
  });

  it('a listed poller of another host that never takes the run: the command runs its worker after PICKUP_MS', async () => {
    const identity = 'pinflow@000000000000 1@elsewhere.invalid';
    // One poll, given up unanswered: Temporal lists its identity for a minute, like a worker that died there.
    const client = ctx.env.client;
    const giveUp = new AbortController();
    const timer = setTimeout(() => giveUp.abort(), 500);
    await client
      .withAbortSignal(giveUp.signal, () =>
        client.withDeadline(Date.now() + 30_000, () =>
          client.workflowService.pollWorkflowTaskQueue({ namespace: ctx.config.temporal.namespace, taskQueue: { name: taskQueue, kind: 1 }, identity }),
        ),
      )
      .catch(() => undefined)
      .finally(() => clearTimeout(timer));
    assert.ok((await workflowPollers(ctx.env.client, taskQueue)).some((p) => p.identity === identity), 'listed');
    const r = await pipeline();
    const t = await firstTask();
    assertDoneOnce(r, t);
    assert.match(r.out, new RegExp(`no worker polling "${taskQueue}" took the run up within ${PICKUP_MS / 1000} s: starting one in this process`));
    assert.ok(t.pickupMs >= PICKUP_MS, `picked up after ${t.pickupMs} ms`);
    assert.ok(t.pickupMs < PICKUP_MS + 4_000, `picked up after ${t.pickupMs} ms`);
    assert.notEqual(t.identity, identity);
  });
});
