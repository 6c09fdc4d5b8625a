/**
 * Zombie workers: a worker process is paused (SIGSTOP, not killed) past its activity's
 * heartbeat timeout, Temporal retries the activity on a second worker, and then the paused
 * worker is resumed (SIGCONT) and carries on with the attempt it was running. Both workers
 * poll the same task queue until the run ends; then both are stopped.
 *
 * The paused worker reaches Temporal through a TCP proxy whose connections the test cuts
 * right after the pause. A paused process keeps its sockets open, and the server keeps handing
 * tasks (the very retry, the next workflow task) to the long polls it had open, each of which
 * then waits out a timeout; that made B's takeover take 15-60 s at random. Kafka, MySQL and S3
 * connections are not touched: the zombie's data path is exactly that of a paused process.
 *
 * What these tests prove:
 *
 * 1. Emulation (kafka sink). Worker A is paused while a batch's Kafka transaction is open:
 *    the batch's records are already in the log (a read_uncommitted reader sees them) but its
 *    progress marker is not committed. Worker B takes the retry after the 10 s heartbeat
 *    timeout; its producer initialisation fences A and aborts A's open transaction; B commits
 *    the batch and runs more batches. A is resumed well inside the broker's 60 s transaction
 *    timeout, so only fencing can stop A's transaction from committing. Checked: every
 *    planned post exactly once on each topic read_committed (a zombie commit shows up as the
 *    paused batch twice), nothing lost, the workflow's counts and the progress marker agree;
 *    the history shows the paused batch completed by B on a later attempt; A's log shows the
 *    paused attempt ending after SIGCONT, refused by the broker (old epoch: fenced); the
 *    read_uncommitted view holds the paused batch's posts twice (A's aborted records and B's
 *    committed ones), i.e. A really had records in the log that fencing kept from readers.
 *
 * 2. Landing. Worker A is paused mid-object in three landTopic activities (objects already in
 *    S3, the topics far from done). Worker B takes the retries after the 30 s heartbeat
 *    timeout, resumes from A's last reported object (rewriting, identically, what A wrote
 *    after it) and finishes the run. Every object is then recorded (key, ETag, MD5 of its
 *    bytes); A is resumed, its uploads in flight complete, and its attempts run until they
 *    end; then the bucket must stay unchanged for 5 s. Checked: the same objects with the same
 *    bytes before and after the zombie ran (nothing overwritten with different bytes, nothing
 *    added or removed), every S3 write A made after SIGCONT aimed at one of those objects,
 *    every key in the expected layout and in the run's manifest, no dead letters, every record
 *    landed exactly once (assertLandedExactlyOnce). Both workers trace their HTTP requests
 *    (Node's diagnostics channels, loaded through NODE_OPTIONS), so the test reports what the
 *    zombie sent after SIGCONT and how S3 answered (412: B had written the key first).
 *
 * Both were checked to fail when the guarantee is broken: with a transactional id per worker
 * process (no fencing) the emulation test finds the paused batch's 3,000 posts twice; with
 * PUTs lacking If-None-Match and attempt-dependent bytes the landing test finds an object
 * whose bytes the zombie changed after the run had completed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Admin } from 'kafkajs';
import { listKeys } from '../../adapters/s3';
import { progressGroup, progressTopic, type EmulationInput, type EmulationProgress } from '../../common/emulation';
import { DEAD_LETTER_DIR, objectKey, parseObjectKey, type LandingInput, type LandingResult } from '../../common/landing';
import { assertExactlyOnce, consumeTopics, spawnWorker, testDatabase, TOPICS } from '../helpers/data';
import { stackTestContext, uniqueName } from '../helpers/env';
import { assertLandedExactlyOnce, produceRecords, readManifest } from '../helpers/landing';
import {
  ACTIVITY_END,
  activityLines,
  activityRuns,
  committedOffset,
  httpTrace,
  httpTraceEnv,
  pause,
  pendingActivities,
  resume,
  saveOutput,
  sleep,
  startTcpProxy,
  snapshotObjects,
  stopWorker,
  waitFor,
  waitForQuietBucket,
  watchUncommitted,
  workerIdentity,
  type HttpTraceLine,
  type SpawnedWorker,
} from '../helpers/zombie';

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
/** The activities that send emulation batches: a lane's run of batches, or one batch (runs without lane runs). */
const BATCH_ACTIVITIES = ['emitLaneRun', 'emitKeyedBatch'];

describe('zombie workers: paused past the heartbeat timeout, resumed while the retry runs elsewhere', () => {
  const ctx = stackTestContext();
  const { config } = ctx;
  let admin: Admin;

  before(async () => {
    admin = ctx.kafka.admin();
    await admin.connect();
  });
  after(async () => {
    await admin?.disconnect();
    ctx.s3?.destroy();
  });

  it('emulation: the zombie\'s open transaction is fenced and aborted; every planned post exactly once', { timeout: 300_000 }, async (t) => {
    const N = 36_000;
    const BS = 3_000;
    const db = await testDatabase({ seedRows: 10_000 });
    const prefix = uniqueName('emu-zombie');
    const taskQueue = uniqueName('emu-zombie');
    const workflowId = uniqueName('emulation-zombie');
    const vars = { MYSQL_URL: db.url, TEMPORAL_TASK_QUEUE: taskQueue, PIPELINE_PREFIX: prefix, LOG_FORMAT: 'json', LOG_LEVEL: 'DEBUG' };
    const proxy = await startTcpProxy(config.temporal.address);
    const t0 = Date.now();
    const since = (ms: number) => `${((ms - t0) / 1000).toFixed(1)} s`;
    let a: SpawnedWorker | undefined;
    let b: SpawnedWorker | undefined;
    let watcher: Awaited<ReturnType<typeof watchUncommitted>> | undefined;
    try {
      a = spawnWorker({ ...vars, TEMPORAL_ADDRESS: proxy.address });
      await a.ready;
      const handle = await ctx.env.client.workflow.start('emulationWorkflow', {
        taskQueue,
        workflowId,
        // One lane: batch k carries posts k*BS .. k*BS+BS-1 and the marker counts batches.
        args: [{ prefix, sink: 'kafka', rate: 'max', selection: { mode: 'random', seed: 17 }, stop: { posts: N }, batchSize: BS, concurrency: 1 } satisfies EmulationInput],
      });
      // The lane's progress marker group: keyed by the execution chain (workflow id and first
      // run id), or by the workflow id alone in runs keyed the older way.
      const candidates = [progressGroup(`${workflowId}.${handle.firstExecutionRunId}`, 0), progressGroup(workflowId, 0)];
      const group = await waitFor('the lane\'s progress marker group', async () => {
        const { groups } = await admin.listGroups();
        return candidates.find((c) => groups.some((g) => g.groupId === c));
      }, 90_000);
      const committed = () => committedOffset(admin, group, progressTopic(prefix));
      await waitFor('the first batch committed', async () => (await committed()) >= 1, 90_000);
      watcher = await watchUncommitted(ctx.kafka, `${prefix}.pin`);
      const w = watcher;

      // Pause A while a batch's transaction is open: records of batch `committed` (the next
      // one) in the log, its marker not there. Confirmed after the pause (nothing can commit
      // while A is stopped and B not started); otherwise resume and try the next batch.
      let paused: { batch: number; at: number } | undefined;
      for (let tries = 0; !paused && tries < 10; tries++) {
        const next = await waitFor('records of an uncommitted batch', async () => {
          const c = await committed();
          return c >= 2 && w.maxPost() >= c * BS ? c : undefined;
        }, 90_000, 10);
        assert.ok(next < N / BS - 4, `caught a batch early enough to leave work for B (batch ${next})`);
        const at = pause(a);
        await sleep(1_000);
        const c = await committed();
        if (w.maxPost() >= c * BS) paused = { batch: c, at };
        else resume(a);
      }
      assert.ok(paused, 'paused A inside an open transaction');
      const cut = proxy.cut();
      const idA = await workerIdentity(a);
      const pending = (await pendingActivities(handle)).filter((p) => BATCH_ACTIVITIES.includes(p.activityType));
      assert.equal(pending.length, 1, `one batch in flight: ${JSON.stringify(pending)}`);
      const zombie = pending[0]!;
      assert.equal(zombie.state, 'STARTED');
      assert.equal(zombie.worker, idA, 'the batch in flight is on A');
      t.diagnostic(`A paused at ${since(paused.at)} in batch ${paused.batch} (activity ${zombie.activityId}, attempt ${zombie.attempt}); uncommitted posts up to ${w.maxPost()}; ${cut} Temporal connections of A cut`);

      b = spawnWorker(vars);
      await b.ready;
      const idB = await workerIdentity(b);
      const retried = await waitFor(
        'the paused batch completed by the retry',
        async () => (await activityRuns(handle)).find((r) => r.activityId === zombie.activityId && r.outcome === 'completed'),
        120_000,
        500,
      );
      assert.equal(retried.startedBy, idB, 'the retry ran on B');
      assert.equal(retried.closedBy, idB, 'B completed it');
      assert.ok(retried.attempt! > zombie.attempt, `a later attempt (${retried.attempt}) completed it`);
      t.diagnostic(`B completed batch ${paused.batch} on attempt ${retried.attempt} at ${since(retried.closedAt!)}`);

      // Let B run a few more batches, but resume A well inside the 60 s transaction timeout: if
      // fencing did not stop A's transaction, A could still commit it then (duplicates below).
      await waitFor('B ahead by three batches, or 40 s paused', async () => (await committed()) >= paused.batch + 3 || Date.now() > paused.at + 40_000, 60_000, 250);
      const beforeResume = await committed();
      const resumedAt = resume(a);
      t.diagnostic(`A resumed at ${since(resumedAt)} (${((resumedAt - paused.at) / 1000).toFixed(1)} s paused), ${beforeResume} batches committed`);
      assert.ok(beforeResume >= paused.batch + 1, 'the retry committed the batch before A resumed');
      assert.ok(resumedAt - paused.at < 50_000, 'A resumed before the broker would time out its transaction on its own');

      const result = (await handle.result()) as EmulationProgress;
      t.diagnostic(`workflow done at ${since(Date.now())}: ${JSON.stringify({ planned: result.planned, sent: result.sent, batches: result.batches, failed: result.failed })}`);

      // A's paused attempt runs on after SIGCONT until it ends (its log line).
      const aw = a;
      const end = await waitFor(
        'the end of A\'s paused attempt in its log',
        async () => activityLines(aw.output()).find((l) => l.activityId === zombie.activityId && l.attempt === zombie.attempt && ACTIVITY_END.includes(l.message)),
        30_000,
      );
      t.diagnostic(`A's paused attempt ${zombie.activityId}#${zombie.attempt} ended at ${since(end.time)}: ${end.message}${end.error ? `: ${end.error}` : ''}`);
      const aLater = activityLines(a.output()).filter((l) => l.time >= resumedAt && BATCH_ACTIVITIES.includes(l.activityType) && ACTIVITY_END.includes(l.message));
      t.diagnostic(`after SIGCONT, A ended ${aLater.length} batch attempts: ${aLater.map((l) => `${l.activityId}#${l.attempt} ${l.message}`).join(', ')}`);
      const who = (id?: string) => (id === idA ? 'A' : id === idB ? 'B' : String(id));
      const batchRuns = (await activityRuns(handle)).filter((r) => BATCH_ACTIVITIES.includes(r.activityType));
      t.diagnostic(`batches (activity#attempt by worker): ${batchRuns.map((r) => `${r.activityId}#${r.attempt} ${who(r.closedBy)}`).join(', ')}`);

      // Exactly once, read_committed, on every topic; the counts agree.
      const records = await consumeTopics(ctx.kafka, TOPICS.map((x) => `${prefix}.${x}`), 3 * N, { timeoutMs: 120_000 });
      assertExactlyOnce(records, prefix, range(N));
      assert.equal(result.planned, N);
      assert.equal(result.sent, N, 'seeded keys cover the draw range: every planned post sent');
      assert.equal(result.skipped, 0);
      assert.equal(result.batches, N / BS);
      assert.ok(result.failed >= 1, 'the timed-out attempt is counted');
      assert.equal(await committed(), N / BS, 'the marker counts every batch once');

      // The zombie ran on after SIGCONT and the broker refused its transaction: B's producer
      // had fenced it.
      assert.ok(end.time >= resumedAt, 'the paused attempt ended after A was resumed');
      assert.equal(end.message, 'Activity failed', 'the zombie attempt did not complete');
      assert.match(end.error ?? '', /epoch|fenc/i, 'the broker refused the zombie\'s transaction: fenced by the retry\'s producer');

      // A's aborted records: the paused batch's posts are in the log twice, read_uncommitted.
      await waitFor('the read_uncommitted reader caught up', async () => w.posts.length >= N && w.idleFor() > 2_000, 60_000);
      const seen = new Map<number, number>();
      for (const p of w.posts) seen.set(p, (seen.get(p) ?? 0) + 1);
      const lo = paused.batch * BS;
      const twiceInPaused = range(BS).filter((i) => (seen.get(lo + i) ?? 0) >= 2).length;
      const aborted = w.posts.length - N;
      t.diagnostic(`read_uncommitted: ${w.posts.length} pin records for ${N} posts (${aborted} aborted); ${twiceInPaused} posts of the paused batch twice`);
      assert.ok(twiceInPaused > 0, 'A\'s open transaction had records in the log (aborted by the fence)');
    } finally {
      await watcher?.stop().catch(() => undefined);
      await Promise.all([stopWorker(a), stopWorker(b)]);
      await proxy.close();
      saveOutput(a, 'emulation-A');
      saveOutput(b, 'emulation-B');
    }
  });

  it('landing: the zombie lander rewrites only identical objects; every record exactly once', { timeout: 300_000 }, async (t) => {
    const N = 10_000;
    const FLUSH = 50;
    const prefix = uniqueName('land-zombie');
    const topics = TOPICS.map((x) => `${prefix}.${x}`);
    const taskQueue = uniqueName('land-zombie');
    // Both workers trace their HTTP (S3) requests: what each wrote, and when.
    const vars = { TEMPORAL_TASK_QUEUE: taskQueue, PIPELINE_PREFIX: prefix, LOG_FORMAT: 'json', LOG_LEVEL: 'DEBUG', ...httpTraceEnv() };
    const proxy = await startTcpProxy(config.temporal.address);
    const bucket = config.s3.bucket;
    const prefixes = [`topics/${prefix}.`, `${DEAD_LETTER_DIR}/${prefix}.`];
    const t0 = Date.now();
    const since = (ms: number) => `${((ms - t0) / 1000).toFixed(1)} s`;
    let a: SpawnedWorker | undefined;
    let b: SpawnedWorker | undefined;
    try {
      await produceRecords(ctx.kafka, topics, N, { partitions: 3, txnSize: 997, valueBytes: 300 });
      a = spawnWorker({ ...vars, TEMPORAL_ADDRESS: proxy.address });
      await a.ready;
      const handle = await ctx.env.client.workflow.start('landingWorkflow', {
        taskQueue,
        workflowId: uniqueName('landing-zombie'),
        args: [{ prefix, mode: 'untilNow', flushSize: FLUSH } satisfies LandingInput],
      });
      const objectCount = async () => (await listKeys(ctx.s3, bucket, prefixes[0]!)).length;
      await waitFor('some objects landed', async () => (await objectCount()) >= 40, 120_000, 50);
      const pausedAt = pause(a);
      const cut = proxy.cut();
      await sleep(1_000);
      const atPause = await objectCount();
      t.diagnostic(`A paused at ${since(pausedAt)} with ${atPause} objects in S3; ${cut} Temporal connections of A cut`);
      assert.ok(atPause < (3 * N) / FLUSH - 30, 'paused well before the topics were done');
      const idA = await workerIdentity(a);
      const zombies = (await pendingActivities(handle)).filter((p) => p.activityType === 'landTopic');
      assert.equal(zombies.length, 3, 'one landTopic attempt per topic in flight');
      for (const z of zombies) {
        assert.equal(z.state, 'STARTED');
        assert.equal(z.worker, idA, `${z.activityId} runs on A`);
      }
      const objectPut = (l: HttpTraceLine) => l.method === 'PUT' && l.path.startsWith(`/${bucket}/topics/${prefix}.`);
      const keyOf = (l: HttpTraceLine) => l.path.split('/').pop()!;
      const beforePause = httpTrace(a.output()).filter((l) => objectPut(l) && l.time < pausedAt);
      const answered = new Set(beforePause.filter((l) => l.phase === 'end').map(keyOf));
      const inFlight = beforePause.filter((l) => l.phase === 'start' && !answered.has(keyOf(l))).map(keyOf);
      t.diagnostic(`zombie attempts ${zombies.map((z) => `${z.activityId}#${z.attempt}`).join(', ')}; A had started ${beforePause.filter((l) => l.phase === 'start').length} object PUTs, ${inFlight.length} unanswered at the pause`);

      b = spawnWorker(vars);
      await b.ready;
      const idB = await workerIdentity(b);
      const result = (await handle.result()) as LandingResult;
      t.diagnostic(`workflow done at ${since(Date.now())}: ${result.records} records in ${result.objects} objects`);
      const runs = await activityRuns(handle);
      for (const z of zombies) {
        const r = runs.find((x) => x.activityId === z.activityId);
        assert.equal(r?.outcome, 'completed', `${z.activityId} completed`);
        assert.equal(r?.closedBy, idB, `${z.activityId} completed by B`);
        assert.ok(r!.attempt! > z.attempt, `${z.activityId} completed on a later attempt (${r!.attempt})`);
      }
      t.diagnostic(`B completed ${zombies.map((z) => runs.find((x) => x.activityId === z.activityId)!).map((r) => `${r.activityId}#${r.attempt} at ${since(r.closedAt!)}`).join(', ')}`);

      // The bucket as the run left it, byte for byte; then let the zombie run out.
      const done = await snapshotObjects(ctx.s3, bucket, prefixes);
      const resumedAt = resume(a);
      t.diagnostic(`A resumed at ${since(resumedAt)} (${((resumedAt - pausedAt) / 1000).toFixed(1)} s paused); ${done.size} objects recorded`);
      const aw = a;
      const ends = await waitFor(
        'the end of every zombie attempt in A\'s log',
        async () => {
          const lines = activityLines(aw.output());
          const found = zombies.map((z) => lines.find((l) => l.activityId === z.activityId && l.attempt === z.attempt && ACTIVITY_END.includes(l.message)));
          return found.every(Boolean) ? found.map((l) => l!) : undefined;
        },
        60_000,
      );
      for (const e of ends) t.diagnostic(`A's ${e.activityId}#${e.attempt} ended at ${since(e.time)}: ${e.message}${e.error ? `: ${e.error}` : ''}`);
      assert.ok(ends.every((e) => e.time >= resumedAt), 'the zombie attempts ended after A was resumed');
      await waitFor('A quiet for 3 s', async () => {
        const last = httpTrace(aw.output()).at(-1);
        return !last || Date.now() - last.time > 3_000;
      }, 60_000);
      await waitForQuietBucket(ctx.s3, bucket, prefixes, 5_000, 60_000);
      const later = await snapshotObjects(ctx.s3, bucket, prefixes);

      // What each worker sent to S3 (the trace): B's rewrites of A's objects, A's writes after SIGCONT.
      const statuses = (lines: HttpTraceLine[]) => JSON.stringify(lines.reduce<Record<string, number>>((m, l) => ({ ...m, [String(l.status)]: (m[String(l.status)] ?? 0) + 1 }), {}));
      const bPuts = httpTrace(b.output()).filter((l) => objectPut(l) && l.phase === 'end');
      t.diagnostic(`B's object PUTs by status: ${statuses(bPuts)} (412: an object A had written, checked identical)`);
      const aTrace = httpTrace(a.output()).filter((l) => l.time >= resumedAt && l.path.startsWith(`/${bucket}/`));
      const aAnswers = aTrace.filter((l) => objectPut(l) && l.phase === 'end');
      t.diagnostic(`A after SIGCONT: ${aTrace.filter((l) => objectPut(l) && l.phase === 'start').length} object PUTs sent, ${aAnswers.length} answered ${statuses(aAnswers)}, ${aTrace.filter((l) => l.method === 'HEAD' && l.phase === 'start').length} HEADs; first: ${aTrace.slice(0, 6).map((l) => `${l.phase === 'start' ? 'sent' : `answered ${l.status}`} ${l.method} ${keyOf(l)}`).join('; ') || 'none'}`);

      // The zombie's uploads in flight went on after SIGCONT, and only to the run's objects.
      if (inFlight.length) assert.ok(aAnswers.length > 0, 'A\'s uploads in flight at the pause were answered after SIGCONT');
      for (const l of aTrace.filter((x) => x.method === 'PUT')) assert.ok(done.has(l.path.slice(bucket.length + 2)), `A wrote ${l.path} after SIGCONT: not an object of the run`);

      // Nothing added, removed or changed by the zombie.
      assert.deepEqual([...later.keys()], [...done.keys()], 'the same objects after the zombie ran');
      for (const [key, st] of done) {
        const now = later.get(key)!;
        assert.equal(now.md5, st.md5, `${key}: same bytes`);
        assert.equal(now.etag, st.etag, `${key}: same ETag`);
        assert.equal(now.size, st.size, `${key}: same size`);
      }
      const touched = [...done].filter(([key, st]) => later.get(key)!.lastModified !== st.lastModified).length;
      t.diagnostic(`objects rewritten (same bytes) after A resumed: ${touched}`);

      // Every object in the expected layout and in the run's manifest; no dead letters.
      const manifest = await readManifest(ctx.s3, bucket, result.manifestKey);
      const listed = new Set([...manifest.objects, ...manifest.deadLetterObjects]);
      assert.equal(listed.size, manifest.objects.length + manifest.deadLetterObjects.length, 'the manifest lists each object once');
      assert.equal(manifest.deadLetterObjects.length, 0);
      assert.equal(manifest.objects.length, result.objects);
      for (const key of done.keys()) {
        const p = parseObjectKey(key);
        assert.ok(p && topics.includes(p.topic) && key === objectKey('topics', p.topic, p.partition, p.startOffset), `${key} is in the expected layout`);
        assert.ok(listed.has(key), `${key} is in the run's manifest`);
      }
      assert.equal(done.size, listed.size, 'every object the manifest lists is in the bucket');
      assert.equal(result.records, 3 * N);
      await assertLandedExactlyOnce(config.kafka.brokers, ctx.s3, bucket, topics, 3 * N);
    } finally {
      await Promise.all([stopWorker(a), stopWorker(b)]);
      await proxy.close();
      saveOutput(a, 'landing-A');
      saveOutput(b, 'landing-B');
    }
  });
});
