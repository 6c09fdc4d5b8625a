/**
 * batchCleaningWorkflow end to end on the embedded warehouse: the real sample emulated,
 * landed and cleaned through the CLI; an existing Confluent-sink bucket; reruns; bad input;
 * an S3 outage. Outcomes are read back from S3 and from the files `--out` wrote.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import { listKeys } from '../../adapters/s3';
import type { CleaningResult } from '../../common/cleaning';
import { objectKey } from '../../common/landing';
import { SOURCE_TABLES } from '../../common/source-tables';
import { createWorker } from '../../workers/worker';
import { testDatabase } from '../helpers/data';
import { runScript, runWorkflow, stackTestContext, testConfig, uniqueName } from '../helpers/env';
import { sampleMessages } from '../helpers/landed-fixture';

type Row = Record<string, unknown>;

/** follower_count of the sample's forms (`<n>k`, `<n>M`, digits, placeholder), as an oracle. */
function followers(raw: unknown): number | null {
  const m = /^(\d+(?:\.\d+)?)([kM]?)$/.exec(String(raw ?? '').trim());
  if (!m) return null;
  return Math.round(Number(m[1]) * (m[2] === 'k' ? 1e3 : m[2] === 'M' ? 1e6 : 1));
}

function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const mid = (v.length - 1) / 2;
  return (v[Math.floor(mid)]! + v[Math.ceil(mid)]!) / 2;
}

describe('batch cleaning workflow (DuckDB)', () => {
  const ctx = stackTestContext();
  const { config } = ctx;

  it('emulate --all, land, clean --out on the real sample: 2,019 rows per table and outputs that match an independent computation', async () => {
    const { url } = await testDatabase({ sample: true });
    const prefix = uniqueName('clean-sample');
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-clean-out-'));
    const vars = { MYSQL_URL: url, PIPELINE_PREFIX: prefix, TEMPORAL_TASK_QUEUE: uniqueName('clean-cli'), DUCKDB_PATH: path.join(out, 'w.duckdb') };
    assert.equal(runScript('emulate', ['--all', '--wait'], vars).code, 0);
    assert.equal(runScript('land', ['--until-now', '--wait'], vars).code, 0);
    const res = runScript('clean', ['--out', out, '--output-root', `${prefix}/`], vars);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /pin_clean: 2,019 rows from 2,019 records/);
    assert.match(res.stdout, new RegExp(`report: ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/report\\.html`));

    const read = (name: string): Row[] => JSON.parse(fs.readFileSync(path.join(out, `${name}.json`), 'utf8'));
    const msgs = await sampleMessages();
    for (const t of SOURCE_TABLES) {
      const rows = read(`${t.topic}_clean`);
      assert.equal(rows.length, 2019, `${t.topic}_clean rows`);
      assert.deepEqual(new Set(rows.map((r) => r.ind)), new Set(msgs[t.topic].map((m) => m[t.key])), `${t.topic}_clean keys are the sample's`);
    }
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    assert.equal(summary.tables.pin_clean.rows, 2019);
    assert.equal(summary.analytics.popular_category_by_year.rows, read('popular_category_by_year').length);
    assert.ok(fs.statSync(path.join(out, 'report.html')).size > 10_000);

    // An independent computation over the sample CSVs (plain JavaScript) for three outputs.
    const geo = new Map(msgs.geo.map((g) => [g.ind, g]));
    const user = new Map(msgs.user.map((u) => [u.ind, u]));
    const joined = msgs.pin
      .filter((p) => geo.has(p.index) && user.has(p.index))
      .map((p) => ({ category: p.category as string, followers: followers(p.follower_count), year: Number(String(geo.get(p.index)!.timestamp).slice(0, 4)), age: user.get(p.index)!.age as number }));
    const byYear = new Map<number, Map<string, number>>();
    for (const j of joined.filter((x) => x.year >= 2018 && x.year <= 2022 && x.category)) {
      const m = byYear.get(j.year) ?? new Map<string, number>();
      m.set(j.category, (m.get(j.category) ?? 0) + 1);
      byYear.set(j.year, m);
    }
    const expectedTop = [...byYear.keys()].sort().flatMap((year) => {
      const m = byYear.get(year)!;
      const best = Math.max(...m.values());
      return [...m].filter(([, n]) => n === best).map(([category]) => ({ post_year: year, category, category_count: best })).sort((a, b) => (a.category < b.category ? -1 : 1));
    });
    assert.deepEqual(read('popular_category_by_year'), expectedTop);
    const group = (age: number) => (age >= 18 && age <= 24 ? '18-24' : age <= 35 && age >= 25 ? '25-35' : age >= 36 && age <= 50 ? '36-50' : age > 50 ? '+50' : null);
    const expectedMedians = ['18-24', '25-35', '36-50', '+50']
      .map((g) => ({ age_group: g, values: joined.filter((j) => group(j.age) === g && j.followers !== null).map((j) => j.followers!) }))
      .filter((g) => g.values.length > 0)
      .map((g) => ({ age_group: g.age_group, median_follower_count: median(g.values) }));
    assert.deepEqual(read('median_followers_by_age_group'), expectedMedians);
    const names = new Map<number, Set<string>>();
    for (const u of msgs.user) {
      const y = Number(String(u.date_joined).slice(0, 4));
      if (y >= 2015 && y <= 2020) names.set(y, (names.get(y) ?? new Set()).add(`${u.first_name} ${u.last_name}`));
    }
    assert.deepEqual(
      read('users_joined_by_year'),
      [...names].sort(([a], [b]) => a - b).map(([y, s]) => ({ post_year: y, number_users_joined: s.size })),
    );
    // The published objects: one Parquet file per table under cleaned/ and analytics/.
    const keys = await listKeys(ctx.s3, config.s3.bucket, `${prefix}/`);
    assert.equal(keys.length, 12);
    assert.ok(keys.every((k) => /^[^/]+\/(cleaned|analytics)\/[a-z_]+\/part-00000\.parquet$/.test(k)), keys.join(', '));
  });

  it('cleans an existing Confluent-sink bucket (flush.size=1, `[row]` array values) and a rerun replaces, never appends', async () => {
    const prefix = uniqueName('clean-confluent');
    const topicsDir = `${uniqueName('legacy')}/topics`;
    const msgs = await sampleMessages();
    // Like MSK Connect: one object per record, named by its offset; values as posted: [row].
    const posts = 40;
    for (const t of SOURCE_TABLES) {
      const topic = `${prefix}.${t.topic}`;
      const values = msgs[t.topic].slice(0, posts).map((m) => JSON.stringify([m]));
      values.push(JSON.stringify([{ ...msgs[t.topic][0], ...(t.topic === 'pin' ? { category: 'replayed' } : {}) }])); // a later duplicate of key 0's post
      await Promise.all(values.map((v, offset) => ctx.s3.send(new PutObjectCommand({ Bucket: config.s3.bucket, Key: objectKey(topicsDir, topic, 0, offset), Body: v + '\n' }))));
    }
    const input = { prefix, source: { kind: 's3' as const, topicsDir }, outputRoot: `${prefix}/` };
    const first = (await runWorkflow<CleaningResult>(ctx.env, config, 'batchCleaningWorkflow', [input])).result;
    assert.equal(first.objectsRead, 3 * (posts + 1));
    for (const name of ['pin_clean', 'geo_clean', 'user_clean'] as const) {
      assert.equal(first.tables[name].rows, posts, name);
      assert.equal(first.tables[name].duplicates, 1, name);
      assert.equal(first.tables[name].read, posts + 1, name);
    }
    const second = (await runWorkflow<CleaningResult>(ctx.env, config, 'batchCleaningWorkflow', [input])).result;
    assert.deepEqual(second.tables, first.tables);
    assert.deepEqual(second.analytics, first.analytics);
    const keys = await listKeys(ctx.s3, config.s3.bucket, `${prefix}/`);
    assert.equal(keys.length, 12, 'one object per table after two runs');
  });

  it('nothing landed: empty outputs, not a failure', async () => {
    const prefix = uniqueName('clean-empty');
    const result = (await runWorkflow<CleaningResult>(ctx.env, config, 'batchCleaningWorkflow', [{ prefix, outputRoot: `${prefix}/` }])).result;
    assert.equal(result.objectsRead, 0);
    assert.deepEqual(Object.values(result.tables).map((t) => t.rows), [0, 0, 0]);
    assert.deepEqual(Object.values(result.analytics).map((a) => a.rows), Array(9).fill(0));
  });

  it('bad input fails at once with a clear, non-retryable error', async () => {
    await assert.rejects(runWorkflow(ctx.env, config, 'batchCleaningWorkflow', [{ prefix: 'Bad Prefix!' }]), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.match(String(err.cause?.message), /invalid cleaning input: prefix "Bad Prefix!" is not a pipeline prefix/);
      return true;
    });
    await assert.rejects(runWorkflow(ctx.env, config, 'batchCleaningWorkflow', [{ prefix: 'ok', source: { kind: 'local', dir: '/nonexistent/landed' } }]), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.match(String((err.cause?.cause as Error | undefined)?.message ?? err.cause?.message), /\/nonexistent\/landed does not exist on the worker/);
      return true;
    });
    const usage = runScript('clean', ['--input', './no/such/folder']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--input \.\/no\/such\/folder: no such folder/);
  });

  it('S3 unreachable: the run keeps retrying, naming S3, and nothing is published', async () => {
    const bad = testConfig({ S3_ENDPOINT: 'http://127.0.0.1:9', TEMPORAL_TASK_QUEUE: uniqueName('clean-s3down') });
    const w = await createWorker(bad, { connection: ctx.env.nativeConnection, taskQueue: bad.temporal.taskQueue });
    const prefix = uniqueName('clean-s3down');
    const handle = await ctx.env.client.workflow.start('batchCleaningWorkflow', { taskQueue: bad.temporal.taskQueue, workflowId: uniqueName('clean-s3down'), args: [{ prefix, outputRoot: `${prefix}/` }] });
    try {
      await w.worker.runUntil(async () => {
        for (let i = 0; i < 60; i++) {
          const pending = (await handle.describe()).raw.pendingActivities?.[0];
          if ((pending?.attempt ?? 0) >= 2) {
            assert.match(String(pending?.lastFailure?.message), /S3 at http:\/\/127\.0\.0\.1:9/);
            return;
          }
          await new Promise((r) => setTimeout(r, 500));
        }
        assert.fail('the inventory activity was not retried');
      });
      assert.equal((await handle.describe()).status.name, 'RUNNING');
    } finally {
      await handle.terminate('test done');
      await w.close();
    }
    assert.deepEqual(await listKeys(ctx.s3, config.s3.bucket, `${prefix}/`), []);
  });
});
