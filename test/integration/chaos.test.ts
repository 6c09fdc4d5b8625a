/**
 * The chaos run in CI, at a size that fits the suite's time: `npm run chaos -- --posts 20000
 * --seed 4242` (emulation on two lanes in random mode, then the daily pipeline, under two faults
 * per phase: the worker SIGKILLed, Kafka restarted, the S3 server stopped for 30 s, MySQL
 * restarted, as fits each phase) must end with every check passed: nothing lost, nothing
 * twice, outputs equal to the fault-free run's. Every planned fault must have hit a running
 * phase or be reported as missed, and faults must have hit emulation, landing and cleaning.
 * `npm run chaos` alone runs 200,000 posts with a random seed, printed for replay. The plan and
 * the verdicts alone: test/unit/chaos.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describePlanned, planFaults } from '../chaos/plan';
import { ensureStack, runScriptAsync } from '../helpers/env';

const SEED = 4242;
const CHECKS = 29;

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
