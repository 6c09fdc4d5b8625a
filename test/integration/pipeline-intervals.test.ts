/**
 * The daily pipeline over data intervals, end to end: records produced to Kafka with
 * timestamps on three dates (the values of test/helpers/interval-fixture.ts: keys updated on
 * later dates, an array line, lines that are no JSON object), then dailyPipelineWorkflow for
 * D3, D1, D2 and D1 again, each resolving its interval, landing up to its end and cleaning it
 * incrementally. Each date's nine outputs (analytics/<name>/date=D/) equal an independent
 * computation (test/helpers/cleaning-oracle.ts) over the records up to its end, the current
 * state is every record's, and D1's two runs are identical to the byte.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { parquetToJson } from '../../adapters/duckdb/cleaning';
import { ensureTopics } from '../../adapters/kafka';
import { ANALYTICS_NAMES, CLEANED_NAMES } from '../../common/cleaning';
import { todayUtc, type DailyPipelineInput, type DailyPipelineResult } from '../../common/daily';
import { dailyWorkflowId } from '../../common/ids';
import { addDays } from '../../common/interval';
import { SOURCE_TABLES } from '../../common/source-tables';
import { analytics, cleanTables } from '../helpers/cleaning-oracle';
import { backgroundWorker, stackTestContext, testConfig, uniqueName } from '../helpers/env';
import { DATES, intervalFixture, valuesUpTo } from '../helpers/interval-fixture';
import { sampleMessages } from '../helpers/landed-fixture';

type Row = Record<string, unknown>;

describe('daily pipeline over data intervals, end to end', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-e2e-iv-'));
  const prefix = uniqueName('e2e-iv');
  const vars = { PIPELINE_PREFIX: prefix, TEMPORAL_TASK_QUEUE: uniqueName('tq-e2e-iv'), DUCKDB_PATH: path.join(tmp, 'warehouse.duckdb') };
  const ctx = stackTestContext(testConfig(vars));
  const { config } = ctx;
  // Recent dates: the broker's retention keeps them. Fixture date i is dates[i].
  const today = todayUtc(Date.now());
  const dates = [addDays(today, -9), addDays(today, -8), addDays(today, -6)];
  let worker: { stop: () => Promise<void> } | undefined;

  before(async () => {
    worker = await backgroundWorker(ctx.env, config);
  });
  after(async () => {
    await worker?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  async function parquetRows(key: string, orderBy?: string): Promise<{ rows: Row[]; bytes: Buffer }> {
    const got = await ctx.s3.send(new GetObjectCommand({ Bucket: config.s3.bucket, Key: key }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    const file = path.join(tmp, `${uniqueName('p')}.parquet`);
    fs.writeFileSync(file, bytes);
    await parquetToJson([file], `${file}.json`, orderBy);
    return { rows: JSON.parse(fs.readFileSync(`${file}.json`, 'utf8')) as Row[], bytes };
  }

  it('D3, D1, D2, D1 again: every date\'s outputs are those of the records up to its end; the reruns are identical', async () => {
    const f = intervalFixture(prefix, await sampleMessages());
    const admin = ctx.kafka.admin();
    await admin.connect();
    await ensureTopics(admin, SOURCE_TABLES.map((t) => ({ topic: `${prefix}.${t.topic}`, numPartitions: 2 })));
    await admin.disconnect();
    // Each fixture line as one record of its date (10:00 UTC onwards, a millisecond apart), in order.
    const producer = ctx.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      for (const [d, perTopic] of f.lines.entries()) {
        const t0 = Date.parse(`${dates[d]}T10:00:00Z`);
        for (const t of SOURCE_TABLES) {
          const lines = perTopic[t.topic];
          for (let i = 0; i < lines.length; i += 500) {
            const messages = lines.slice(i, i + 500).map((l, j) => ({ value: l.line, partition: l.partition, timestamp: String(t0 + i + j) }));
            await producer.send({ topic: `${prefix}.${t.topic}`, acks: -1, messages });
          }
        }
      }
    } finally {
      await producer.disconnect();
    }

    const run = (d: number) => {
      const input: DailyPipelineInput = { prefix, date: dates[d]!, outputRoot: `${prefix}/` };
      return ctx.env.client.workflow.execute('dailyPipelineWorkflow', { taskQueue: config.temporal.taskQueue, workflowId: dailyWorkflowId(prefix, dates[d]!), args: [input] }) as Promise<DailyPipelineResult>;
    };
    const current = cleanTables(valuesUpTo(f, [0, 1, 2]));
    const outputs: Array<Record<string, Buffer>> = [];
    for (const [step, d] of [2, 0, 1, 0].entries()) {
      const date = dates[d]!;
      const label = `run ${step + 1} (${date}, fixture ${DATES[d]})`;
      const result = await run(d);
      assert.equal(result.interval?.partial, false, label);
      const expected = analytics(cleanTables(valuesUpTo(f, Array.from({ length: d + 1 }, (_, i) => i))));
      const bytes: Record<string, Buffer> = {};
      for (const name of ANALYTICS_NAMES) {
        const got = await parquetRows(`${prefix}/analytics/${name}/date=${date}/part-00000.parquet`);
        assert.deepEqual(got.rows, expected[name], `${label}: ${name}`);
        bytes[name] = got.bytes;
      }
      outputs.push(bytes);
      for (const name of CLEANED_NAMES) {
        assert.deepEqual((await parquetRows(`${prefix}/cleaned/${name}/part-00000.parquet`, 'ind')).rows, current[name], `${label}: cleaned/${name}/ holds every record's latest`);
      }
    }
    for (const name of ANALYTICS_NAMES) assert.ok(outputs[1]![name]!.equals(outputs[3]![name]!), `${name}: D1's rerun wrote the same bytes`);
  });
});
