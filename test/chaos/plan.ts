/**
 * The chaos run's fault plan: pure and deterministic, so `--seed N` replays a run.
 *
 * A seed fixes the emulation's random selection (which keys, as which post numbers) and, per
 * phase, which faults hit it and where: each fault's moment is a fraction of that phase's
 * duration in the fault-free run of the same data (measured at run time, so the moment in
 * seconds follows this machine's speed while the plan stays the same).
 */
import { Rng } from '../../common/prng';
import { defineCommand, parseCommandLine, UsageError } from '../../cli/args';

export const PHASES = ['emulation', 'landing', 'cleaning'] as const;
export type Phase = (typeof PHASES)[number];

export const FAULT_KINDS = ['worker', 'kafka', 's3', 'mysql'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** What each phase touches: emulation reads MySQL and writes Kafka, landing reads Kafka and writes S3, cleaning reads and writes S3. */
export const FAULTS_FOR: Record<Phase, readonly FaultKind[]> = {
  emulation: ['worker', 'kafka', 'mysql'],
  landing: ['worker', 'kafka', 's3'],
  cleaning: ['worker', 's3'],
};

export const FAULT_NAMES: Record<FaultKind, string> = {
  worker: 'SIGKILL the worker',
  kafka: 'restart Kafka',
  s3: 'stop the S3 server for 30 s',
  mysql: 'restart MySQL',
};

/** Faults per phase (distinct kinds). */
export const FAULTS_PER_PHASE = 2;
/**
 * A fault's moment as a fraction of the phase's fault-free duration. Early enough that the
 * phase (only ever slower under faults) still runs when the fault takes effect, even after
 * the 1-3 s a server takes to stop; late enough that the phase is under way.
 */
export const EARLIEST = 0.05;
export const LATEST = 0.5;

export interface PlannedFault {
  /** 1-based, in plan order (phase order, then moment). */
  n: number;
  phase: Phase;
  kind: FaultKind;
  /** Fraction of the phase's fault-free duration after its start. */
  at: number;
}

export interface ChaosPlan {
  seed: number;
  /** The emulation's `selection: { mode: 'random', seed }`, the same for both runs. */
  selectionSeed: number;
  faults: PlannedFault[];
}

export const MAX_SEED = 2 ** 31 - 1;

function shuffled<T>(rng: Rng, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** The plan of a seed: the same seed, the same plan. Every fault kind appears in some phase. */
export function planFaults(seed: number): ChaosPlan {
  const rng = new Rng(seed >>> 0);
  const selectionSeed = rng.int(1, MAX_SEED);
  // Redraw the kinds until the four kinds all appear (MySQL fits emulation only, so it must
  // be one of emulation's two); deterministic because the generator is.
  let kinds: Record<Phase, FaultKind[]>;
  do {
    kinds = { emulation: [], landing: [], cleaning: [] };
    for (const p of PHASES) kinds[p] = shuffled(rng, FAULTS_FOR[p]).slice(0, FAULTS_PER_PHASE);
  } while (!FAULT_KINDS.every((k) => PHASES.some((p) => kinds[p].includes(k))));
  const faults: PlannedFault[] = [];
  for (const p of PHASES) {
    const drawn = kinds[p].map((kind) => ({ phase: p, kind, at: Math.round((EARLIEST + rng.float() * (LATEST - EARLIEST)) * 1000) / 1000 }));
    drawn.sort((a, b) => a.at - b.at);
    faults.push(...drawn.map((f) => ({ ...f, n: 0 })));
  }
  faults.forEach((f, i) => (f.n = i + 1));
  return { seed, selectionSeed, faults };
}

export interface ChaosArgs {
  posts: number;
  seed: number;
  /** False when the seed was drawn at random (not given with --seed). */
  seedGiven: boolean;
}

/** `npm run chaos`'s command line (cli/args.ts). */
export const CHAOS_COMMAND = defineCommand({
  script: 'chaos',
  options: {
    posts: { value: 'N', help: 'synthetic posts to seed and emulate, 1-10000000 (default 200000)' },
    seed: { value: 'N', help: `the run's seed, 0-${MAX_SEED} (default: drawn at random, printed)` },
  },
  about:
    'The whole pipeline under faults (worker killed, Kafka and MySQL restarted, S3 stopped), checked against a fault-free run of the same data. ' +
    'The seed fixes the emulation\'s random plan and the fault plan, so --seed N replays a run. Exit 1 when a check fails.',
});

/** `--posts N` (default 200,000) and `--seed N` (default: drawn at random, printed). */
export function parseChaosArgs(argv: string[], randomSeed: () => number): ChaosArgs {
  const opts = parseCommandLine(CHAOS_COMMAND, argv).values;
  const posts = Number(opts.posts ?? 200_000);
  if (!Number.isInteger(posts) || posts < 1 || posts > 10_000_000) throw new UsageError(`--posts ${opts.posts} must be a whole number from 1 to 10000000`);
  const seedText = opts.seed;
  if (seedText !== undefined && !/^\d{1,10}$/.test(seedText)) throw new UsageError(`--seed ${seedText} must be a whole number from 0 to ${MAX_SEED}`);
  const seed = seedText === undefined ? randomSeed() : Number(seedText);
  if (seed > MAX_SEED) throw new UsageError(`--seed ${seedText} must be a whole number from 0 to ${MAX_SEED}`);
  return { posts, seed, seedGiven: seedText !== undefined };
}

export const rerunCommand = (args: { posts: number; seed: number }) => `npm run chaos -- --posts ${args.posts} --seed ${args.seed}`;

/** `restart Kafka during landing at 31% of its fault-free 4.2 s (+1.3 s)` */
export function describePlanned(f: PlannedFault, expectedMs?: number): string {
  const pct = `${Math.round(f.at * 100)}%`;
  if (expectedMs === undefined) return `${FAULT_NAMES[f.kind]} during ${f.phase} at ${pct} of its fault-free duration`;
  return `${FAULT_NAMES[f.kind]} during ${f.phase} at ${pct} of its fault-free ${(expectedMs / 1000).toFixed(1)} s (+${((f.at * expectedMs) / 1000).toFixed(1)} s after it starts)`;
}
