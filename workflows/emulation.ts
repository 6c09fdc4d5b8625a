/**
 * emulationWorkflow: posts rows of the source database as user events, durably.
 *
 * The workflow decides every batch (keys, order, post numbers); one activity per batch reads
 * those rows from MySQL and sends them in one Kafka transaction together with a progress
 * marker, so a retried or crashed batch is never sent twice. Pacing, the random generator's
 * state and the counters live in workflow state and survive continue-as-new.
 */
import {
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  patched,
  proxyActivities,
  setHandler,
  setCurrentDetails,
  upsertSearchAttributes,
  workflowInfo,
  allHandlersFinished,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  batchSizeFor,
  DEFAULT_BATCHES_PER_RUN,
  DEFAULT_CONCURRENCY,
  pacingDelayMs,
  planNextBatch,
  planNextDraw,
  planSize,
  LANE_RUN_BATCHES,
  validateEmulationInput,
  type BatchPlan,
  type BatchResult,
  type LaneRunInput,
  type EmulationInput,
  type EmulationProgress,
  type EmulationState,
  EMULATION_STATE,
  upgradeEmulationInput,
  upgradeEmulationState,
} from '../common/emulation';
import { emulationSearchAttributes } from '../common/search-attributes';
import { EMULATION_BATCH, EMULATION_SETUP, rejectInvalidInput } from './policies';

const setup = proxyActivities<Activities>(EMULATION_SETUP);
const batches = proxyActivities<Activities>(EMULATION_BATCH);

export const progressQuery = defineQuery<EmulationProgress>('progress');
export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');
export const setRateUpdate = defineUpdate<number | 'max', [number | 'max']>('setRate');

function initialState(startedAtMs: number, rate: number | 'max'): EmulationState {
  return {
    version: EMULATION_STATE.current,
    progress: {
      sent: 0,
      skipped: 0,
      failed: 0,
      planned: 0,
      batches: 0,
      currentKey: null,
      rate,
      achievedRate: 0,
      paused: false,
      done: false,
      startedAt: new Date(startedAtMs).toISOString(),
      totalPlanned: null,
      timings: { readMs: 0, buildMs: 0, sendMs: 0 },
    },
    rng: 0,
    cursor: -2_147_483_648,
    batchSeq: 0,
    plannedPosts: 0,
    laneSeqs: [],
    windowStartMs: startedAtMs,
    windowPosts: 0,
    keyRange: null,
  };
}

export async function emulationWorkflow(given: EmulationInput, carriedState?: EmulationState): Promise<EmulationProgress> {
  // Carried state and input of any older version, brought up to today's (common/versioned.ts).
  const input = upgradeEmulationInput(given);
  const carried = carriedState === undefined ? undefined : upgradeEmulationState(carriedState);
  rejectInvalidInput('emulation', validateEmulationInput(input));

  const state = carried ?? initialState(Date.now(), input.rate);
  const progress = state.progress;
  // Markers and transactional ids belong to this execution chain, not to the reusable workflow
  // id. Runs started before this rule (no patch marker in their history) keep their old keys.
  if (state.runKey === undefined) {
    const info = workflowInfo();
    state.runKey = !carried && patched('emulation-run-key') ? `${info.workflowId}.${info.firstExecutionRunId}` : info.workflowId;
  }
  const runKey = state.runKey;
  // Runs keyed by the execution chain use an activity name older workers lack (see emitKeyedBatch).
  const emit = runKey === workflowInfo().workflowId ? batches.emitBatch : batches.emitKeyedBatch;
  const startedAtMs = Date.parse(progress.startedAt);

  upsertSearchAttributes(emulationSearchAttributes(input.prefix, input.sink));

  let rateChanged = false;
  setHandler(progressQuery, () => ({
    ...progress,
    achievedRate: Math.round(progress.planned / Math.max(0.001, (Date.now() - startedAtMs) / 1000)),
  }));
  setHandler(pauseSignal, () => void (progress.paused = true));
  setHandler(resumeSignal, () => void (progress.paused = false));
  setHandler(
    setRateUpdate,
    (rate) => {
      const previous = input.rate;
      input.rate = rate;
      progress.rate = rate;
      state.windowStartMs = Date.now();
      state.windowPosts = 0;
      rateChanged = true;
      return previous;
    },
    {
      validator: (rate) => {
        if (rate !== 'max' && !(typeof rate === 'number' && Number.isFinite(rate) && rate > 0)) {
          throw new Error(`rate ${JSON.stringify(rate)} must be a number of posts per second > 0, or "max"`);
        }
      },
    },
  );

  if (!carried) {
    const source = await setup.describeSource();
    await setup.ensureEmulationTopics(input.prefix, input.sink);
    if (input.selection.mode === 'random') {
      state.rng = input.selection.seed >>> 0;
      state.keyRange = source.minKey === null || source.maxKey === null ? null : { min: source.minKey, max: source.maxKey };
      progress.totalPlanned = input.stop?.posts ?? null;
    } else {
      progress.totalPlanned = input.stop?.posts !== undefined ? Math.min(input.stop.posts, source.counts.pinterest_data) : source.counts.pinterest_data;
    }
  }

  const batchesPerRun = input.batchesPerRun ?? DEFAULT_BATCHES_PER_RUN;
  const durationMs = input.stop?.durationMs;
  const lanes = input.selection.mode === 'random' ? (input.concurrency ?? DEFAULT_CONCURRENCY) : 1;
  while (state.laneSeqs.length < lanes) state.laneSeqs.push(0);
  let batchesThisRun = 0;
  let stopping = false;
  let continueAfter = false;

  // Random selection into Kafka: a lane sends up to LANE_RUN_BATCHES consecutive batches in one
  // activity at --rate max (draw plans, read ahead while sending); runs whose history has no
  // marker keep one activity per batch.
  const laneRuns = input.sink === 'kafka' && input.selection.mode === 'random' && patched('emulation-lane-runs');
  // Paced runs wait on a timer before every batch (see the lane); older runs only when ahead.
  const timerPacing = patched('emulation-timer-pacing');

  /** Adds a completed batch to the progress; false when the selection is exhausted (range plans). */
  const record = (plan: BatchPlan, result: BatchResult): boolean => {
    const planned = plan.kind === 'range' ? result.sent + result.skipped : planSize(plan);
    progress.planned += planned;
    progress.sent += result.sent;
    progress.skipped += result.skipped;
    progress.failed += result.failedAttempts;
    progress.batches += 1;
    progress.timings.readMs += result.timings.readMs;
    progress.timings.buildMs += result.timings.buildMs;
    progress.timings.sendMs += result.timings.sendMs;
    progress.currentKey = result.lastKey;
    if (plan.kind === 'range') {
      state.plannedPosts += planned;
      if (result.lastKey !== null) state.cursor = result.lastKey;
      if (result.exhausted || planned === 0) return false;
    }
    return true;
  };

  // Each lane plans its next batch (synchronously, so plans never overlap), runs it, and
  // loops; lanes only overlap the I/O of their batches. Pacing counts posts when planned.
  const lane = async (id: number): Promise<void> => {
    while (!stopping) {
      if (durationMs !== undefined && Date.now() - startedAtMs >= durationMs) break;
      if (progress.paused) {
        setCurrentDetails(`paused after ${progress.sent} posts`);
        await condition(() => !progress.paused || stopping);
        continue;
      }
      const delay = pacingDelayMs(input.rate, state.windowStartMs, state.windowPosts, Date.now());
      if (timerPacing && input.rate !== 'max') {
        // One timer before every paced batch, as long as the clock says (at least 1 ms), so the
        // commands do not depend on the workflow clock: after a timed-out workflow task a new
        // worker's clock can read differently than its replay later does.
        rateChanged = false;
        if (await condition(() => rateChanged || progress.paused || stopping, Math.max(1, delay))) continue;
      } else if (delay > 0) {
        rateChanged = false;
        // Wake early when the rate changes or a pause arrives.
        await condition(() => rateChanged || progress.paused || stopping, delay);
        continue;
      }
      if (batchesThisRun >= batchesPerRun || workflowInfo().continueAsNewSuggested) {
        continueAfter = true;
        break;
      }
      if (laneRuns) {
        const run: LaneRunInput['batches'] = [];
        const most = input.rate === 'max' ? LANE_RUN_BATCHES : 1;
        while (run.length < most && (run.length === 0 || (batchesThisRun < batchesPerRun && !workflowInfo().continueAsNewSuggested))) {
          const plan = planNextDraw(input, state, batchSizeFor(input));
          if (!plan) break;
          batchesThisRun += 1;
          run.push({ seq: state.batchSeq++, laneSeq: state.laneSeqs[id]!, plan });
          state.laneSeqs[id] = state.laneSeqs[id]! + 1;
          state.windowPosts += plan.count;
        }
        if (run.length === 0) break;
        setCurrentDetails(`batches ${run[0]!.seq}-${run[run.length - 1]!.seq}: ${progress.sent} posts sent, ${progress.skipped} skipped`);
        const results = await batches.emitLaneRun({ runId: workflowInfo().workflowId, runKey, prefix: input.prefix, lane: id, batches: run });
        run.forEach((b, i) => record(b.plan, results[i]!));
        continue;
      }
      const plan = planNextBatch(input, state, batchSizeFor(input));
      if (!plan) break;
      batchesThisRun += 1;
      const seq = state.batchSeq++;
      const laneSeq = state.laneSeqs[id]!;
      state.laneSeqs[id] = laneSeq + 1;
      state.windowPosts += planSize(plan);

      setCurrentDetails(`batch ${seq}: ${progress.sent} posts sent, ${progress.skipped} skipped`);
      const result = await emit({ runId: workflowInfo().workflowId, runKey, prefix: input.prefix, sink: input.sink, seq, lane: id, laneSeq, plan });
      if (!record(plan, result)) break;
    }
    stopping = true;
  };
  await Promise.all(Array.from({ length: lanes }, (_, i) => lane(i)));

  if (continueAfter) {
    await condition(allHandlersFinished);
    await continueAsNew<typeof emulationWorkflow>(input, state);
  }

  progress.done = true;
  progress.achievedRate = Math.round(progress.planned / Math.max(0.001, (Date.now() - startedAtMs) / 1000));
  setCurrentDetails(`done: ${progress.sent} posts sent, ${progress.skipped} skipped`);
  await condition(allHandlersFinished);
  return progress;
}
