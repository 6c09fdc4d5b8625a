/**
 * The emulation's batch plans: a draw plan names exactly the keys and post numbers that the
 * keys plan of the same state lists, so lane runs send the same posts as single batches.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { drawKeys, planKeys, planNextBatch, planNextDraw, planSize, type EmulationInput, type EmulationState } from '../../common/emulation';
import { nextUint32, skipDraws } from '../../common/prng';

function state(rng: number): EmulationState {
  return {
    version: 1,
    progress: {} as EmulationState['progress'],
    rng,
    cursor: 0,
    batchSeq: 0,
    plannedPosts: 0,
    laneSeqs: [0],
    windowStartMs: 0,
    windowPosts: 0,
    keyRange: { min: 17, max: 1_000_016 },
  };
}

test('skipDraws(state, n) is the state after n draws', () => {
  for (const seed of [0, 7, 0xffffffff, 123456789]) {
    let s = seed;
    for (let n = 1; n <= 5000; n++) {
      s = nextUint32(s)[1];
      if (n % 997 === 0 || n === 5000) assert.equal(skipDraws(seed, n), s, `seed ${seed}, ${n} draws`);
    }
  }
});

test('draw plans name the same keys, post numbers and end state as keys plans', () => {
  const input: EmulationInput = { prefix: 'p', sink: 'kafka', rate: 'max', selection: { mode: 'random', seed: 7 }, stop: { posts: 5_500 } };
  const a = state(7);
  const b = state(7);
  const sizes: number[] = [];
  for (;;) {
    const keys = planNextBatch(input, a, 2_000);
    const draw = planNextDraw(input, b, 2_000);
    if (!keys || !draw) {
      assert.equal(keys, null);
      assert.equal(draw, null);
      break;
    }
    assert.equal(keys.kind, 'keys');
    assert.deepEqual(drawKeys(draw), keys.kind === 'keys' ? keys.keys : null);
    assert.deepEqual(planKeys(draw), planKeys(keys));
    assert.equal(draw.firstSeq, keys.firstSeq);
    assert.equal(planSize(draw), planSize(keys));
    sizes.push(draw.count);
    assert.equal(b.rng, a.rng);
    assert.equal(b.plannedPosts, a.plannedPosts);
  }
  assert.deepEqual(sizes, [2_000, 2_000, 1_500]);
  assert.ok(drawKeys({ kind: 'draw', rng: 7, count: 1_000, min: 17, max: 1_000_016, firstSeq: 0 }).every((k) => k >= 17 && k <= 1_000_016));
});

test('no draw plan without a key range (empty source)', () => {
  const s = { ...state(1), keyRange: null };
  assert.equal(planNextDraw({ prefix: 'p', sink: 'kafka', rate: 'max', selection: { mode: 'random', seed: 1 } }, s, 10), null);
  assert.equal(s.plannedPosts, 0);
});
