/**
 * The chaos run in CI, at a size that fits the suite's time: `npm run chaos -- --posts 20000
 * --seed 4242` (emulation on two lanes in random mode, then the daily pipeline, under two faults
 * per phase: the worker SIGKILLed, Kafka restarted, the S3 server stopped for 30 s, MySQL
 * restarted, as fits each phase) must end with every check passed: nothing lost, nothing
 * twice, outputs equal to the fault-free run's. Every planned fault must have hit a running
 * phase or be reported as missed, and faults must have hit emulation, landing and cleaning.
 * `npm run chaos` alone runs 200,000 posts with a random seed, printed for replay.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../../cli/command';
import { judge } from '../chaos/faults';
import { describePlanned, FAULTS_FOR, FAULT_KINDS, parseChaosArgs, PHASES, planFaults, rerunCommand, EARLIEST, LATEST } from '../chaos/plan';
import { ensureStack, runScriptAsync } from '../helpers/env';

const SEED = 4242;
const CHECKS = 29;

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

describe('chaos run', () => {
  it(`20,000 posts, seed ${SEED}: faults hit emulation, landing and cleaning; every check passes`, async (t) => {
    await ensureStack();
    const res = await runScriptAsync('chaos', ['--posts', '20000', '--seed', String(SEED)], {}, 900_000);
    const all = `${res.stdout}\n${res.stderr}`;
    const lines = res.stdout.split('\n');
    const rerun = `npm run chaos -- --posts 20000 --seed ${SEED}`;

    // The seed first, and the command that replays the run.
    assert.match(lines[0] ?? '', new RegExp(`^chaos \\S+: seed ${SEED}, 20,000 posts; replay with: ${rerun}$`), all);

    // The seed's plan is the plan that ran.
    const plan = planFaults(SEED);
    assert.match(res.stdout, new RegExp(`selection seed ${plan.selectionSeed}, with repeats\\) on 2 lanes; 6 faults:`), all);
    for (const f of plan.faults) assert.ok(lines.includes(`  ${f.n}. ${describePlanned(f)}`), `plan line ${f.n}:\n${all}`);

    // One line per planned fault: it hit its phase while that phase ran, or says it missed.
    const faults = lines.filter((l) => /^fault \d+\/6: /.test(l));
    assert.equal(faults.length, 6, `one line per fault:\n${all}`);
    for (const f of plan.faults) {
      const line = faults.find((l) => l.startsWith(`fault ${f.n}/6: `));
      assert.ok(line, `no line for fault ${f.n}:\n${all}`);
      assert.ok(line.includes(` during ${f.phase} `), line);
      assert.ok(/ -> hit$/.test(line) || / -> MISSED/.test(line), `neither hit nor reported missed: ${line}`);
      assert.ok(!line.includes('FAILED TO INJECT'), line);
      if (/ -> hit$/.test(line)) assert.match(line, new RegExp(`${f.phase} (still RUNNING|ended \\+[\\d.]+ s after) `), line);
    }
    const hit = new Set(plan.faults.filter((f) => faults.some((l) => l.startsWith(`fault ${f.n}/6: `) && / -> hit$/.test(l))).map((f) => f.phase));
    assert.deepEqual([...hit].sort(), ['cleaning', 'emulation', 'landing'], `faults must hit every phase:\n${faults.join('\n')}`);

    // Every check passed, and the summary names the seed and the rerun command.
    assert.match(res.stdout, new RegExp(`^${CHECKS} passed, 0 failed; faults: \\d of 6 hit a running phase \\(.*\\); seed ${SEED}, rerun with: ${rerun}$`, 'm'), all);
    assert.equal(res.code, 0, all);
    t.diagnostic([...faults, lines.find((l) => /^\d+ passed, \d+ failed/.test(l)) ?? ''].join('\n'));
  });
});
