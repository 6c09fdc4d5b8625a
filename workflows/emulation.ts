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
  validateEmulationInput,
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
      if (delay > 0) {
        rateChanged = false;
        // Wake early when the rate changes or a pause arrives.
        await condition(() => rateChanged || progress.paused || stopping, delay);
        continue;
      }
      if (batchesThisRun >= batchesPerRun || workflowInfo().continueAsNewSuggested) {
        continueAfter = true;
        break;
      }
      const plan = planNextBatch(input, state, batchSizeFor(input));
      if (!plan) break;
      batchesThisRun += 1;
      const seq = state.batchSeq++;
      const laneSeq = state.laneSeqs[id]!;
      state.laneSeqs[id] = laneSeq + 1;
      state.windowPosts += plan.kind === 'keys' ? plan.keys.length : plan.limit;

      setCurrentDetails(`batch ${seq}: ${progress.sent} posts sent, ${progress.skipped} skipped`);
      const result = await emit({ runId: workflowInfo().workflowId, runKey, prefix: input.prefix, sink: input.sink, seq, lane: id, laneSeq, plan });

      const planned = plan.kind === 'keys' ? plan.keys.length : result.sent + result.skipped;
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
        if (result.exhausted || planned === 0) break;
      }
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
