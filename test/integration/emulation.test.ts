import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Kafka } from 'kafkajs';
import { createKafka } from '../../adapters/kafka';
import type { Config } from '../../config';
import type { EmulationInput, EmulationProgress } from '../../common/emulation';
import { nextInt } from '../../common/prng';
import { pauseSignal, progressQuery, resumeSignal, setRateUpdate } from '../../workflows/emulation';
import { assertExactlyOnce, consumeTopics, mysqlRows, query, rootMessage, testDatabase, TOPICS } from '../helpers/data';
import { ensureStack, quietRuntime, runScript, runWorkflow, testConfig, uniqueName, workflowTestEnv } from '../helpers/env';
import { recordHistories } from '../helpers/histories';

describe('emulation', () => {
  let env: TestWorkflowEnvironment;
  let kafka: Kafka;
  let sample: Config;

  before(async () => {
    quietRuntime();
    await ensureStack();
    const c = testConfig();
    env = await workflowTestEnv(c);
    kafka = createKafka(c);
    sample = (await testDatabase({ sample: true })).config;
  });
  after(async () => env?.teardown());

  const run = (config: Config, input: EmulationInput, during?: (h: WorkflowHandle) => Promise<void>) =>
    runWorkflow<EmulationProgress>(env, config, 'emulationWorkflow', [input], during);

  it('db:load + emulate --all --wait: exactly 2,019 records per topic, equal field by field to MySQL', async () => {
    const { url } = await testDatabase({ empty: true });
    const prefix = uniqueName('emu-all');
    const envVars = { MYSQL_URL: url, PIPELINE_PREFIX: prefix, TEMPORAL_TASK_QUEUE: uniqueName('emu-cli') };
    const load = runScript('db:load', ['--dir', 'data/pinterest-sample'], envVars);
    assert.equal(load.code, 0, load.stderr);
    assert.match(load.stdout, /pinterest_data: 2019 rows loaded/);
    const res = runScript('emulate', ['--all', '--wait'], envVars);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, new RegExp(`started emulation-${prefix}-\\d{8}T\\d{9}Z-[0-9a-f]{6}\\n`));
    assert.match(res.stdout, /http:\/\/127\.0\.0\.1:8233\/namespaces\/default\/workflows\/emulation-/);
    assert.match(res.stdout, /done: 2019 posts sent \(6057 records\), 0 skipped/);

    const config = testConfig(envVars);
    const records = await consumeTopics(kafka, TOPICS.map((t) => `${prefix}.${t}`), 3 * 2019);
    const rows = await mysqlRows(config);
    for (const t of TOPICS) {
      const mine = records.filter((r) => r.topic === `${prefix}.${t}`);
      assert.equal(mine.length, 2019, `${t} has exactly 2,019 records`);
      assert.equal(new Set(mine.map((r) => r.key)).size, 2019, `${t}: one record per key`);
      for (const r of mine) {
        const expected = rows[t].get(r.key);
        assert.ok(expected, `${t} key ${r.key} exists in MySQL`);
        assert.deepEqual(JSON.parse(r.value), expected, `${t} key ${r.key} equals MySQL`);
      }
    }
    // Column order is SELECT * order (spec section 2).
    const pin = records.find((r) => r.topic === `${prefix}.pin`)!;
    assert.deepEqual(Object.keys(JSON.parse(pin.value)), ['index', 'unique_id', 'title', 'description', 'poster_name', 'follower_count', 'tag_list', 'is_image_or_video', 'image_src', 'downloaded', 'save_location', 'category']);
    assert.match(JSON.parse(records.find((r) => r.topic === `${prefix}.geo`)!.value).timestamp, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/);
  });

  it('random selection draws keys uniformly with replacement, the same for the same seed', async () => {
    const prefix = uniqueName('emu-rnd');
    const { result } = await run(sample, { prefix, sink: 'kafka', rate: 'max', selection: { mode: 'random', seed: 100 }, stop: { posts: 3000 }, batchSize: 700 });
    assert.equal(result.planned, 3000);
    assert.equal(result.sent + result.skipped, 3000);
    const { lo, hi } = (await query<{ lo: number; hi: number }>(sample, 'SELECT MIN(k) lo, MAX(k) hi FROM (SELECT `index` k FROM pinterest_data UNION ALL SELECT ind FROM geolocation_data UNION ALL SELECT ind FROM user_data) x'))[0]!;
    // The same draws, recomputed here: post n has the n-th key of the seeded generator.
    let state = 100;
    const expectedKeys: number[] = [];
    for (let i = 0; i < 3000; i++) {
      const [k, s] = nextInt(state, lo!, hi!);
      expectedKeys.push(k);
      state = s;
    }
    const existing = new Set((await query<{ k: number }>(sample, 'SELECT `index` k FROM pinterest_data')).map((r) => r.k));
    const expectedSent = expectedKeys.filter((k) => existing.has(k)).length;
    assert.equal(result.sent, expectedSent);
    const records = await consumeTopics(kafka, [`${prefix}.pin`], expectedSent);
    const bySeq = new Map(records.map((r) => [Number(r.headers['pinflow-post']), Number(r.key)]));
    for (const [seq, key] of bySeq) assert.equal(key, expectedKeys[seq], `post ${seq}`);
    assert.ok(new Set(expectedKeys).size < expectedKeys.length, 'with replacement: some keys repeat');
  });

  it('a key missing from one table is skipped and counted; the run goes on', async () => {
    const { config } = await testDatabase({ sample: true });
    const { k } = (await query<{ k: number }>(config, 'SELECT MIN(ind) k FROM geolocation_data'))[0]!;
    await query(config, 'DELETE FROM geolocation_data WHERE ind = ?', [k]);
    await query(config, 'DELETE FROM user_data WHERE ind = (SELECT MAX(ind) FROM (SELECT ind FROM user_data) x)');
    const prefix = uniqueName('emu-skip');
    const { result } = await run(config, { prefix, sink: 'kafka', rate: 'max', selection: { mode: 'all' }, batchSize: 500 });
    assert.equal(result.sent, 2017);
    assert.equal(result.skipped, 2);
    const records = await consumeTopics(kafka, TOPICS.map((t) => `${prefix}.${t}`), 3 * 2017);
    for (const t of TOPICS) assert.equal(records.filter((r) => r.topic === `${prefix}.${t}`).length, 2017, t);
    assert.ok(!records.some((r) => r.key === String(k)), 'the incomplete post was not sent to any topic');
  });

  it('a missing table or column fails at once, non-retryable, naming it, and sends nothing', async () => {
    const { config } = await testDatabase({ sample: true });
    await query(config, 'ALTER TABLE user_data DROP COLUMN age');
    const prefix = uniqueName('emu-nocol');
    await assert.rejects(run(config, { prefix, sink: 'kafka', rate: 'max', selection: { mode: 'all' } }), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.match(rootMessage(err), /user_data has no column age/);
      return true;
    });
    await query(config, 'DROP TABLE geolocation_data');
    await assert.rejects(run(config, { prefix, sink: 'kafka', rate: 'max', selection: { mode: 'all' } }), (err: unknown) => {
      assert.match(rootMessage(err), /source table pinterest_test_\w+\.geolocation_data does not exist/);
      return true;
    });
    const admin = kafka.admin();
    await admin.connect();
    const topics = await admin.listTopics();
    await admin.disconnect();
    assert.ok(!topics.includes(`${prefix}.pin`), 'no topic was even created');
  });

  it('rejects bad input before starting: rate <= 0, unknown sink, bad duration', () => {
    const cases: Array<[string[], RegExp]> = [
      [['--rate', '0'], /rate 0 must be a number of posts per second > 0/],
      [['--rate', '-5'], /rate -5 must be/],
      [['--sink', 'carrier-pigeon'], /sink "carrier-pigeon" is unknown/],
      [['--duration', 'ten minutes'], /--duration "ten minutes" must look like/],
      [['--records', '10', '--duration', '1m'], /--records or --duration, not both/],
      [['--sink', 'rest-proxy'], /REST_PROXY_URL/],
    ];
    const tq = uniqueName('emu-reject');
    for (const [args, message] of cases) {
      const res = runScript('emulate', args, { TEMPORAL_TASK_QUEUE: tq, REST_PROXY_URL: '' });
      assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
      assert.match(res.stderr, message);
      assert.doesNotMatch(res.stdout, /started/);
    }
  });

  it('a workflow started directly with bad input fails at once without retrying', async () => {
    await assert.rejects(run(sample, { prefix: 'ok', sink: 'kafka', rate: 0, selection: { mode: 'all' } }), (err: unknown) => {
      assert.match(String((err as WorkflowFailedError).cause?.message), /invalid emulation input: rate 0/);
      return true;
    });
  });

  it('reports progress, pauses, resumes and changes rate while running', async () => {
    const prefix = uniqueName('emu-ctl');
    const { handle, result } = await run(
      sample,
      { prefix, sink: 'kafka', rate: 400, selection: { mode: 'random', seed: 1 }, stop: { posts: 2400 } },
      async (handle) => {
        await new Promise((r) => setTimeout(r, 2_500));
        const p1 = await handle.query(progressQuery);
        assert.ok(p1.planned > 0 && p1.planned < 2400, `some progress: ${p1.planned}`);
        assert.equal(p1.rate, 400);
        await handle.signal(pauseSignal);
        await new Promise((r) => setTimeout(r, 1_500));
        const p2 = await handle.query(progressQuery);
        assert.equal(p2.paused, true);
        await new Promise((r) => setTimeout(r, 2_000));
        const p3 = await handle.query(progressQuery);
        assert.equal(p3.planned, p2.planned, 'nothing sent while paused');
        await assert.rejects(handle.executeUpdate(setRateUpdate, { args: [0] }), (e: Error) => /rate 0 must be/.test(rootMessage(e)));
        assert.equal(await handle.executeUpdate(setRateUpdate, { args: ['max'] }), 400);
        await handle.signal(resumeSignal);
      },
    );
    assert.equal(result.planned, 2400);
    assert.equal(result.rate, 'max');
    assert.equal(result.paused, false);
    await recordHistories(env.client, handle.workflowId, handle.firstExecutionRunId, 'emulation-pause-resume-rate');
  });

  it('paces posts at the requested rate across continue-as-new', async () => {
    const prefix = uniqueName('emu-can');
    const started = Date.now();
    const { handle, result } = await run(sample, { prefix, sink: 'kafka', rate: 1000, selection: { mode: 'all' }, batchSize: 100, batchesPerRun: 4 });
    const seconds = (Date.now() - started) / 1000;
    assert.equal(result.sent, 2019);
    assert.ok(seconds >= 1.9, `2,019 posts at 1,000/s took ${seconds.toFixed(1)} s`);
    const desc = await handle.describe();
    assert.notEqual(desc.runId, handle.firstExecutionRunId, 'continued as new');
    const records = await consumeTopics(kafka, TOPICS.map((t) => `${prefix}.${t}`), 3 * 2019);
    assertExactlyOnce(records, prefix, Array.from({ length: 2019 }, (_, i) => i));
    await recordHistories(env.client, handle.workflowId, handle.firstExecutionRunId, 'emulation-continue-as-new');
  });
});

