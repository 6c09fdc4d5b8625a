/**
 * Versioned carried state (common/versioned.ts): every continue-as-new carry and input read by
 * today's code, from the oldest recorded (test/histories/, runs whose carries have no version)
 * to the current version; a version from a newer release fails the workflow task, not the
 * workflow; garbage is a non-retryable bad input.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { upgradeEmulationInput, upgradeEmulationState } from '../../common/emulation';
import { upgradeLandingCarry, upgradeLandingInput } from '../../common/landing';
import { upgradeStreamingCarry, upgradeStreamingInput } from '../../common/streaming';
import { upgradeVersioned, versionOf } from '../../common/versioned';
import { loadHistories } from '../helpers/histories';

const HISTORIES = path.join(__dirname, '..', 'histories');

/** [workflow type, decoded continue-as-new arguments] of every recorded continue-as-new. */
function recordedCarries(): Array<{ type: string; file: string; args: unknown[] }> {
  return loadHistories(HISTORIES).flatMap((r) =>
    (r.history.events ?? [])
      .map((e) => e.workflowExecutionContinuedAsNewEventAttributes)
      .filter((a): a is NonNullable<typeof a> => !!a)
      .map((a) => ({ type: r.type, file: r.file, args: (a.input?.payloads ?? []).map((p) => JSON.parse(Buffer.from(p.data ?? []).toString('utf8'))) })),
  );
}

const UPGRADES: Record<string, { input: (x: never) => { version?: number }; carry: (x: unknown) => { version: number } }> = {
  landingWorkflow: { input: upgradeLandingInput, carry: upgradeLandingCarry },
  emulationWorkflow: { input: upgradeEmulationInput, carry: upgradeEmulationState },
  streamingWorkflow: { input: upgradeStreamingInput, carry: upgradeStreamingCarry },
};

describe('versioned carried state', () => {
  const carries = recordedCarries();

  it('the recordings hold continue-as-new carries of every long-running workflow type, the oldest without a version', () => {
    assert.deepEqual([...new Set(carries.map((c) => c.type))].sort(), Object.keys(UPGRADES).sort());
    const oldest = Math.min(...carries.map((c) => versionOf(c.args[1])));
    assert.equal(oldest, 0, 'carries from before versions are recorded');
  });

  it('today\'s code reads every recorded carry and input, whatever its version, to the current version', () => {
    for (const c of carries) {
      const up = UPGRADES[c.type]!;
      const input = up.input(c.args[0] as never);
      const carry = up.carry(c.args[1]);
      assert.equal(input.version, 1, `${c.file}: input upgraded`);
      assert.equal(carry.version, 1, `${c.file}: carry upgraded`);
      // The state the code reads is all there after the upgrade.
      if (c.type === 'landingWorkflow') {
        const { status } = carry as ReturnType<typeof upgradeLandingCarry>;
        assert.equal(typeof status.deadLetterObjects, 'number', c.file);
        assert.ok(Array.isArray(status.gaps), c.file);
        assert.ok(status.records >= 0 && Array.isArray(status.partitions), c.file);
      }
      if (c.type === 'emulationWorkflow') {
        const state = carry as ReturnType<typeof upgradeEmulationState>;
        assert.ok(Number.isInteger(state.rng) && Array.isArray(state.laneSeqs) && state.progress.sent >= 0, c.file);
      }
      if (c.type === 'streamingWorkflow') assert.ok((carry as ReturnType<typeof upgradeStreamingCarry>).status.runs >= 1, c.file);
    }
  });

  it('a version-0 landing carry without the later status fields gets them', () => {
    const old = { status: { mode: 'follow', rounds: 3, records: 10, deadLetters: 0, objects: 2, partitions: [], done: false } };
    const carry = upgradeLandingCarry(old);
    assert.deepEqual(carry, { version: 1, status: { ...old.status, deadLetterObjects: 0, gaps: [] } });
    assert.deepEqual(upgradeLandingCarry(carry), carry, 'current state passes unchanged');
  });

  it('state from a newer release fails the workflow task (a plain Error, retried until a newer worker runs it)', () => {
    assert.throws(
      () => upgradeLandingCarry({ version: 2, status: {} }),
      (e: Error) => !(e instanceof ApplicationFailure) && /landing carry version 2 was written by a newer pinflow \(this worker reads up to 1\)/.test(e.message),
    );
  });

  it('a carry that is not an object with a whole-number version is a non-retryable bad input', () => {
    for (const bad of [null, 42, 'x', [], { version: -1 }, { version: 1.5 }, { version: '1' }]) {
      assert.throws(() => upgradeStreamingCarry(bad), (e: unknown) => e instanceof ApplicationFailure && e.nonRetryable && e.type === 'PinflowBadInput' && /streaming carry: not an object/.test(e.message), JSON.stringify(bad));
    }
  });

  it('upgrades run one version at a time, in order', () => {
    const seen: string[] = [];
    const kind = { what: 'test', current: 3, upgrades: [0, 1, 2].map((v) => (o: Record<string, unknown>) => (seen.push(`${v}->${v + 1}`), { ...o, [`step${v}`]: true })) };
    assert.deepEqual(upgradeVersioned(kind, { version: 1 }), { version: 3, step1: true, step2: true });
    assert.deepEqual(seen, ['1->2', '2->3']);
    assert.throws(() => upgradeVersioned({ what: 'x', current: 2, upgrades: [] }, {}), /0 upgrade functions for version 2/);
  });
});
