/**
 * The chaos run's plan and verdicts, without running it: the faults drawn from a seed (the same
 * seed, the same plan; two fitting faults of distinct kinds in every phase, every kind used),
 * when a fault counts as a hit, and the command's arguments. test/integration/chaos.test.ts runs
 * the chaos command itself against the stack.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../../cli/command';
import { judge } from '../chaos/faults';
import { FAULTS_FOR, FAULT_KINDS, parseChaosArgs, PHASES, planFaults, rerunCommand, EARLIEST, LATEST } from '../chaos/plan';

const SEED = 4242;

describe('chaos plan and verdicts', () => {
  it('is a function of the seed: the same seed, the same plan (selection seed, faults, moments)', () => {
    assert.deepEqual(planFaults(SEED), planFaults(SEED));
    assert.notDeepEqual(planFaults(SEED).faults, planFaults(SEED + 1).faults);
    assert.notEqual(planFaults(SEED).selectionSeed, planFaults(SEED + 1).selectionSeed);
  });

  it('puts two fitting faults in every phase, inside the phase, and uses every kind of fault', () => {
    for (let seed = 0; seed < 500; seed++) {
      const { faults, selectionSeed } = planFaults(seed);
      assert.ok(Number.isInteger(selectionSeed) && selectionSeed > 0);
      assert.deepEqual(faults.map((f) => f.n), [1, 2, 3, 4, 5, 6]);
      for (const p of PHASES) {
        const mine = faults.filter((f) => f.phase === p);
        assert.equal(mine.length, 2, `seed ${seed}: ${p}`);
        assert.equal(new Set(mine.map((f) => f.kind)).size, 2, `seed ${seed}: ${p} faults of distinct kinds`);
        assert.ok(mine.every((f) => FAULTS_FOR[p].includes(f.kind)), `seed ${seed}: ${p} gets only faults that fit it`);
      }
      assert.ok(faults.every((f) => f.at >= EARLIEST && f.at <= LATEST && LATEST < 1), `seed ${seed}: moments inside the phase`);
      assert.deepEqual(new Set(faults.map((f) => f.kind)), new Set(FAULT_KINDS), `seed ${seed}: every kind`);
    }
  });

  it('counts a fault as a hit only when its phase still ran when the fault took effect', () => {
    const at = 1_000_000;
    const running = judge('landing', { running: true, status: 'RUNNING', inFlight: ['3 x landTopic started, attempt 1'] }, at);
    assert.deepEqual(running, { hit: true, text: 'landing still RUNNING after the fault took effect (in flight: 3 x landTopic started, attempt 1) -> hit' });
    const endedAfter = judge('cleaning', { running: false, status: 'COMPLETED', closeMs: at + 1_500, inFlight: [] }, at);
    assert.equal(endedAfter.hit, true);
    assert.match(endedAfter.text, /cleaning ended \+1\.5 s after the fault took effect \(COMPLETED\) -> hit$/);
    const endedBefore = judge('emulation', { running: false, status: 'COMPLETED', closeMs: at - 2_000, inFlight: [] }, at);
    assert.deepEqual(endedBefore, { hit: false, text: 'emulation had already ended (COMPLETED) 2.0 s before the fault took effect -> MISSED, does not count' });
    assert.equal(judge('landing', { running: false, status: 'COMPLETED', closeMs: at, inFlight: [] }, at).hit, false);
    assert.equal(judge('landing', { running: false, status: 'unknown (gone)', inFlight: [] }, at).hit, false);
  });

  it('takes --seed, or draws one at random; rejects bad values', () => {
    assert.deepEqual(parseChaosArgs(['--posts', '20000', '--seed', '17'], () => 99), { posts: 20000, seed: 17, seedGiven: true });
    assert.deepEqual(parseChaosArgs([], () => 99), { posts: 200_000, seed: 99, seedGiven: false });
    for (const bad of [['--seed', 'x'], ['--seed', '-1'], ['--seed', '99999999999'], ['--posts', '0'], ['--posts', '1.5'], ['--nope']]) {
      assert.throws(() => parseChaosArgs(bad, () => 1), UsageError, bad.join(' '));
    }
    assert.equal(rerunCommand({ posts: 20000, seed: 17 }), 'npm run chaos -- --posts 20000 --seed 17');
  });
});
