/**
 * Workflow identity (common/ids.ts): the ids the commands, the workflows and the schedule agree
 * on, and the prefix rule every input and option is checked against.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  cleaningWorkflowId,
  dailyScheduleId,
  dailyWorkflowId,
  doctorWorkflowId,
  emulationWorkflowId,
  landingWorkflowId,
  PREFIX_PATTERN,
  prefixProblem,
  streamingWorkflowId,
} from '../../common/ids';
import { streamName } from '../../common/streaming';

describe('workflow ids', () => {
  it('spells every workflow id as documented', () => {
    const at = new Date('2024-01-11T09:08:07.654Z');
    assert.equal(landingWorkflowId('p1'), 'landing-p1');
    assert.equal(cleaningWorkflowId('p1'), 'cleaning-p1');
    assert.equal(streamingWorkflowId('p1', 'geo'), 'streaming-p1-geo');
    assert.equal(streamName('p1', 'geo'), 'streaming-p1-geo', 'the stream is named as the workflow reading it');
    assert.equal(dailyWorkflowId('p1', '2024-01-10'), 'daily-pipeline-p1-2024-01-10');
    assert.equal(dailyScheduleId('p1'), 'daily-pipeline-p1');
    assert.equal(emulationWorkflowId('p1', at, 'a1b2c3'), 'emulation-p1-20240111T090807654Z-a1b2c3');
    assert.equal(doctorWorkflowId('p1', at), 'doctor-p1-2024-01-11T09-08-07-654Z');
  });
});

describe('prefixProblem', () => {
  it('accepts 1-48 of [a-z0-9_-] starting with a letter or digit', () => {
    for (const ok of ['p', '0', 'pinflow', 'a_b-c', 'x'.repeat(48)]) assert.equal(prefixProblem(ok), undefined, ok);
  });

  it('names the value and what it is not, for every other value', () => {
    for (const bad of ['', '-p', '_p', 'P', 'a b', 'a.b', 'x'.repeat(49)]) {
      assert.equal(prefixProblem(bad), `prefix ${JSON.stringify(bad)} is not a pipeline prefix`);
      assert.equal(PREFIX_PATTERN.test(bad), false, bad);
    }
    assert.equal(prefixProblem(undefined), 'prefix undefined is not a pipeline prefix');
    assert.equal(prefixProblem(12), 'prefix 12 is not a pipeline prefix');
    assert.equal(prefixProblem('Bad!', '--prefix'), '--prefix "Bad!" is not a pipeline prefix');
    assert.equal(prefixProblem('Bad!', 'prefix', 'a valid topic prefix'), 'prefix "Bad!" is not a valid topic prefix');
  });
});
