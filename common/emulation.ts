/**
 * The emulation's input, state and batch plan. Pure and deterministic: the workflow decides
 * every batch (which keys, in which order) so a retried activity re-sends exactly the same
 * rows; the CLI validates the same input before starting anything.
 */
import { prefixProblem } from './ids';
import { nextInt, skipDraws } from './prng';
import { upgradeVersioned, type VersionedKind } from './versioned';

/** kafka: exactly once (transactions); rest-proxy and kinesis: at least once (see activities/emulation.ts). */
export type Sink = 'kafka' | 'rest-proxy' | 'kinesis';
export const SINKS: readonly Sink[] = ['kafka', 'rest-proxy', 'kinesis'];

export interface EmulationInput {
  /** Set when the input is carried through continue-as-new (EMULATION_INPUT); absent from callers. */
  version?: number;
  prefix: string;
  sink: Sink;
  /** Posts per second, or 'max' for as fast as the sink takes them. */
  rate: number | 'max';
  /** `all`: every row once in key order. `random`: keys drawn uniformly with replacement. */
  selection: { mode: 'all' } | { mode: 'random'; seed: number };
  /** Stop after this many posts (planned), and/or after this long. Neither: until the end (all) or cancelled (random). */
  stop?: { posts?: number; durationMs?: number };
  /** Posts per batch activity at --rate max (default 2,000). */
  batchSize?: number;
  /** Batches per workflow run before continue-as-new (default 200). */
  batchesPerRun?: number;
  /**
   * Random selection only: batches in flight at once (default 2), each lane with its own
   * transactional producer and progress marker. `all` runs one batch at a time (each range
   * starts after the previous one's last key).
   */
  concurrency?: number;
}

/** What a batch activity is asked to send: exactly these posts, as post number `firstSeq` onwards. */
export type BatchPlan =
  | { kind: 'range'; afterKey: number; limit: number; firstSeq: number }
  | { kind: 'keys'; keys: number[]; firstSeq: number }
  | DrawPlan;

/**
 * `count` keys drawn uniformly from [min, max] by the generator in state `rng`: the same keys a
 * `keys` plan would list (drawKeys), carried as five numbers instead of the keys themselves.
 */
export interface DrawPlan {
  kind: 'draw';
  rng: number;
  count: number;
  min: number;
  max: number;
  firstSeq: number;
}

/** The keys of a draw plan, in order. */
export function drawKeys(plan: DrawPlan): number[] {
  const keys = new Array<number>(plan.count);
  let rng = plan.rng;
  for (let i = 0; i < plan.count; i++) {
    const [k, next] = nextInt(rng, plan.min, plan.max);
    keys[i] = k;
    rng = next;
  }
  return keys;
}

/** Keys a plan names (range plans name none: their rows are the next ones after `afterKey`). */
export function planKeys(plan: BatchPlan): number[] | null {
  if (plan.kind === 'keys') return plan.keys;
  if (plan.kind === 'draw') return drawKeys(plan);
  return null;
}

/** Posts a plan asks for (a range plan: at most `limit`). */
export const planSize = (plan: BatchPlan): number => (plan.kind === 'keys' ? plan.keys.length : plan.kind === 'draw' ? plan.count : plan.limit);

/**
 * Several consecutive batches of one lane, kafka sink only: each batch is its own transaction
 * with its own progress marker (as emitBatch sends it), the next batch's rows read from MySQL
 * while the current one is in flight.
 */
export interface LaneRunInput {
  runId: string;
  runKey: string;
  prefix: string;
  lane: number;
  batches: Array<{ seq: number; laneSeq: number; plan: DrawPlan }>;
}

export interface BatchResult {
  /** Posts sent (three records each). */
  sent: number;
  /** Keys not present in all three tables: skipped, counted. */
  skipped: number;
  /** Highest key of the batch (range plans continue after it). */
  lastKey: number | null;
  /** Range plan: no rows left after this batch. */
  exhausted: boolean;
  /** True when an earlier attempt had already committed this batch (nothing re-sent). */
  alreadyCommitted: boolean;
  /** Activity attempts that failed before this one succeeded. */
  failedAttempts: number;
  /** Where the batch's time went, in ms: MySQL read, message building, Kafka/HTTP send. */
  timings: StageTimings;
}

export interface StageTimings {
  readMs: number;
  buildMs: number;
  sendMs: number;
}

export interface EmulationProgress {
  sent: number;
  skipped: number;
  failed: number;
  planned: number;
  batches: number;
  currentKey: number | null;
  rate: number | 'max';
  /** Planned posts (sent + skipped) per second since the start. */
  achievedRate: number;
  paused: boolean;
  done: boolean;
  startedAt: string;
  totalPlanned: number | null;
  /** Sum of the batches' stage timings. */
  timings: StageTimings;
}

/** State carried across continue-as-new. */
export interface EmulationState {
  /** EMULATION_STATE's version (common/versioned.ts). */
  version: number;
  progress: EmulationProgress;
  /**
   * Names this execution chain's transactional ids and progress markers: the workflow id and
   * its first run id, so a later execution that reuses the workflow id never sees this one's
   * markers. Absent in state carried by runs that keyed them by the workflow id alone.
   */
  runKey?: string;
  /** PRNG state of the random selection. */
  rng: number;
  /** Last key sent by a range plan. */
  cursor: number;
  batchSeq: number;
  /** Posts planned so far (post numbers handed out). */
  plannedPosts: number;
  /** Batches planned per lane (the lane's progress-marker sequence). */
  laneSeqs: number[];
  /** Pacing window: posts planned since `windowStartMs` at the current rate. */
  windowStartMs: number;
  windowPosts: number;
  keyRange: { min: number; max: number } | null;
}

/**
 * Version 1 added `version`. Version 0 state may also lack `runKey` (runs keyed by the workflow
 * id alone); the workflow keeps those keys, so the upgrade leaves it absent.
 */
export const EMULATION_STATE: VersionedKind = { what: 'emulation state', current: 1, upgrades: [(old) => old] };
export const EMULATION_INPUT: VersionedKind = { what: 'emulation input', current: 1, upgrades: [(old) => old] };

export const upgradeEmulationState = (raw: unknown): EmulationState => upgradeVersioned<EmulationState>(EMULATION_STATE, raw);
export const upgradeEmulationInput = (raw: EmulationInput): EmulationInput => upgradeVersioned<EmulationInput>(EMULATION_INPUT, raw);

export const DEFAULT_BATCH_SIZE = 2_000;
export const DEFAULT_BATCHES_PER_RUN = 200;

/** Every problem with an input, as messages naming the field. Empty when valid. */
export function validateEmulationInput(input: EmulationInput): string[] {
  const problems: string[] = [];
  const prefixError = prefixProblem(input.prefix, 'prefix', 'a valid topic prefix');
  if (prefixError) problems.push(prefixError);
  if (!SINKS.includes(input.sink)) problems.push(`sink ${JSON.stringify(input.sink)} is unknown (one of: ${SINKS.join(', ')})`);
  if (input.rate !== 'max' && !(typeof input.rate === 'number' && Number.isFinite(input.rate) && input.rate > 0)) {
    problems.push(`rate ${JSON.stringify(input.rate)} must be a number of posts per second > 0, or "max"`);
  }
  const sel = input.selection;
  if (!sel || (sel.mode !== 'all' && sel.mode !== 'random')) problems.push('selection must be {mode:"all"} or {mode:"random", seed}');
  else if (sel.mode === 'random' && !Number.isInteger(sel.seed)) problems.push('selection.seed must be an integer');
  const posts = input.stop?.posts;
  if (posts !== undefined && !(Number.isInteger(posts) && posts > 0)) problems.push(`stop.posts ${posts} must be a whole number > 0`);
  const dur = input.stop?.durationMs;
  if (dur !== undefined && !(Number.isFinite(dur) && dur > 0)) problems.push(`stop.durationMs ${dur} must be > 0`);
  const bs = input.batchSize;
  if (bs !== undefined && !(Number.isInteger(bs) && bs >= 1 && bs <= 20_000)) problems.push(`batchSize ${bs} must be 1-20000`);
  const c = input.concurrency;
  if (c !== undefined && !(Number.isInteger(c) && c >= 1 && c <= 8)) problems.push(`concurrency ${c} must be 1-8`);
  return problems;
}

/** Posts per batch: at --rate max the configured size; at a set rate about one second's worth. */
export function batchSizeFor(input: EmulationInput): number {
  const max = input.batchSize ?? DEFAULT_BATCH_SIZE;
  if (input.rate === 'max') return max;
  return Math.max(1, Math.min(max, Math.floor(input.rate)));
}

/** The next batch, or null when the stop condition is reached. Advances `state` (rng, seq). */
export function planNextBatch(input: EmulationInput, state: EmulationState, size: number): BatchPlan | null {
  const remaining = input.stop?.posts !== undefined ? input.stop.posts - state.plannedPosts : Infinity;
  if (remaining <= 0) return null;
  const n = Math.min(size, remaining);
  if (input.selection.mode === 'all') {
    // Sequential: the workflow advances plannedPosts and cursor when the batch completes.
    return { kind: 'range', afterKey: state.cursor, limit: n, firstSeq: state.plannedPosts };
  }
  if (!state.keyRange) return null;
  const keys: number[] = [];
  let rng = state.rng;
  for (let i = 0; i < n; i++) {
    const [k, next] = nextInt(rng, state.keyRange.min, state.keyRange.max);
    keys.push(k);
    rng = next;
  }
  state.rng = rng;
  const firstSeq = state.plannedPosts;
  state.plannedPosts += n;
  return { kind: 'keys', keys, firstSeq };
}

/**
 * The next random batch as a draw plan, or null when the stop condition is reached or the
 * source is empty. Advances `state` exactly as planNextBatch does (same keys, same post numbers).
 */
export function planNextDraw(input: EmulationInput, state: EmulationState, size: number): DrawPlan | null {
  const remaining = input.stop?.posts !== undefined ? input.stop.posts - state.plannedPosts : Infinity;
  if (remaining <= 0 || !state.keyRange) return null;
  const count = Math.min(size, remaining);
  const plan: DrawPlan = { kind: 'draw', rng: state.rng, count, min: state.keyRange.min, max: state.keyRange.max, firstSeq: state.plannedPosts };
  state.rng = skipDraws(state.rng, count);
  state.plannedPosts += count;
  return plan;
}

/** Batches one lane sends in one activity at --rate max (each its own transaction and marker). */
export const LANE_RUN_BATCHES = 8;

/** How long to wait before the next batch so posts go out at `rate` on average. */
export function pacingDelayMs(rate: number | 'max', windowStartMs: number, windowPosts: number, nowMs: number): number {
  if (rate === 'max') return 0;
  const due = windowStartMs + (windowPosts / rate) * 1000;
  return Math.max(0, due - nowMs);
}

/** Topic of the transactional progress marker that makes retried batches idempotent. */
export const progressTopic = (prefix: string) => `${prefix}.emulation-progress`;
/** Consumer group whose committed offset on the progress topic = batches committed by a lane. */
export const progressGroup = (runKey: string, lane: number) => `pinflow-emulation-progress.${runKey}.lane${lane}`;
/** Transactional id of a lane: a new producer with it fences whatever an earlier attempt left open. */
export const transactionalId = (runKey: string, lane: number) => `pinflow-emulation.${runKey}.lane${lane}`;
export const DEFAULT_CONCURRENCY = 2;
