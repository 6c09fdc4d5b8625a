/**
 * A small, fast, seedable PRNG (mulberry32) whose whole state is one uint32, so workflows can
 * carry it across continue-as-new and replay draws the same keys. Pure and deterministic.
 */

export function nextUint32(state: number): [value: number, state: number] {
  const s = (state + 0x6d2b79f5) >>> 0;
  let t = s;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return [(t ^ (t >>> 14)) >>> 0, s];
}

/** The state after `n` draws from `state` (each draw adds the same constant, modulo 2^32). */
export function skipDraws(state: number, n: number): number {
  return (state + Math.imul(n, 0x6d2b79f5)) >>> 0;
}

/** A uniform integer in [lo, hi] (inclusive) and the next state. */
export function nextInt(state: number, lo: number, hi: number): [value: number, state: number] {
  const [v, s] = nextUint32(state);
  return [lo + Math.floor((v / 0x1_0000_0000) * (hi - lo + 1)), s];
}

/** Mixes a seed and a number into a well-spread uint32 (for per-key generators). */
export function mix(seed: number, n: number): number {
  let h = (seed ^ Math.imul(n, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A stateful convenience wrapper for non-workflow code (data generators). */
export class Rng {
  constructor(private state: number) {}
  uint32(): number {
    const [v, s] = nextUint32(this.state);
    this.state = s;
    return v;
  }
  float(): number {
    return this.uint32() / 0x1_0000_0000;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.float() * items.length)]!;
  }
  chance(p: number): boolean {
    return this.float() < p;
  }
}
