/**
 * npm run bench:emulation -- [--posts 100000] [--rows 1000000] [--batch-size 2000] [--concurrency 2]
 *
 * Posts/s sustained into Kafka by emulationWorkflow at --rate max (random selection over a
 * 1M-row table, exactly-once transactional batches), beside a bare kafkajs producer sending
 * the same serialized messages from this process without Temporal, measured in the same run
 * (bare, workflow, bare again; the ratio uses the mean of the two bare runs).
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { chunksBySize, createKafka, ensureTopics, javaCompatiblePartitioner, MAX_REQUEST_BYTES } from '../adapters/kafka';
import { createMysqlPool, readKeys, tableCounts } from '../adapters/mysql';
import { loadConfig, readEnv } from '../config';
import { type EmulationInput, type EmulationProgress } from '../common/emulation';
import { nextInt } from '../common/prng';
import { SOURCE_TABLES } from '../common/source-tables';
import { seed } from '../scripts/db-seed';
import { stackUp } from '../stack';
import { connectClient } from '../workers/client';
import { createWorker } from '../workers/worker';
import type { Message } from 'kafkajs';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};

async function main() {
  const POSTS = arg('--posts', 100_000);
  const ROWS = arg('--rows', 1_000_000);
  const BATCH = arg('--batch-size', 2_000);
  const CONCURRENCY = arg('--concurrency', 2);
  const base = loadConfig();
  const url = new URL(base.mysql.url);
  url.pathname = `/pinterest_test_bench_${ROWS}`;
  const stamp = Date.now().toString(36);
  const config = loadConfig({ ...readEnv(), MYSQL_URL: url.toString(), TEMPORAL_TASK_QUEUE: `bench-emulation-${stamp}` });
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  await stackUp(config);

  const pool = createMysqlPool(config);
  const counts = await tableCounts(pool).catch(() => ({ pinterest_data: 0 }));
  if (counts.pinterest_data !== ROWS) {
    console.log(`seeding ${ROWS.toLocaleString('en')} rows into ${url.pathname.slice(1)} (once; reused by later runs) ...`);
    await seed(config, { rows: ROWS, seed: 100, replace: true, log: (l) => console.log(l) });
  }

  // The same draws the workflow makes: seed 7 over the table's key range.
  let state = 7;
  const keys: number[] = [];
  for (let i = 0; i < POSTS; i++) {
    const [k, s] = nextInt(state, 0, ROWS - 1);
    keys.push(k);
    state = s;
  }
  console.log(`reading and serializing ${POSTS.toLocaleString('en')} posts for the bare producer (not timed) ...`);
  const serialized: Array<{ topic: string; messages: Message[] }[]> = [];
  for (let i = 0; i < keys.length; i += BATCH) {
    const chunk = keys.slice(i, i + BATCH);
    const rows = await readKeys(pool, chunk);
    serialized.push(
      SOURCE_TABLES.map((t) => ({
        topic: `bench-bare-${stamp}.${t.topic}`,
        // The same messages the workflow sends, headers included.
        messages: chunk.map((k, j) => ({
          key: String(k),
          value: JSON.stringify(rows[t.topic].get(k)),
          headers: { 'pinflow-run': `bench-emulation-${stamp}`, 'pinflow-post': String(i + j) },
        })),
      })),
    );
  }
  await pool.end();

  const kafka = createKafka(config);
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, [...SOURCE_TABLES.map((t) => ({ topic: `bench-bare-${stamp}.${t.topic}`, numPartitions: 3 }))]);
  await admin.disconnect();

  async function bare(): Promise<number> {
    const producer = kafka.producer({ createPartitioner: javaCompatiblePartitioner });
    await producer.connect();
    const t0 = performance.now();
    for (const batch of serialized) for (const topicMessages of chunksBySize(batch, MAX_REQUEST_BYTES)) await producer.sendBatch({ topicMessages, acks: -1 });
    const s = (performance.now() - t0) / 1000;
    await producer.disconnect();
    return POSTS / s;
  }

  async function workflow(): Promise<{ rate: number; result: EmulationProgress }> {
    const client = await connectClient(config);
    const w = await createWorker(config);
    try {
      const input: EmulationInput = { prefix: `bench-emu-${stamp}`, sink: 'kafka', rate: 'max', selection: { mode: 'random', seed: 7 }, stop: { posts: POSTS }, batchSize: BATCH, concurrency: CONCURRENCY };
      const t0 = performance.now();
      const handle = await client.workflow.start('emulationWorkflow', { taskQueue: config.temporal.taskQueue, workflowId: `bench-emulation-${stamp}`, args: [input] });
      const result = (await w.worker.runUntil(handle.result())) as EmulationProgress;
      const s = (performance.now() - t0) / 1000;
      return { rate: result.sent / s, result };
    } finally {
      await w.close();
      await client.connection.close();
    }
  }

  console.log('bare kafkajs producer (run 1) ...');
  const bare1 = await bare();
  console.log('emulationWorkflow ...');
  const wf = await workflow();
  console.log('bare kafkajs producer (run 2) ...');
  const bare2 = await bare();
  const bareMean = (bare1 + bare2) / 2;
  const t = wf.result.timings;
  const total = t.readMs + t.buildMs + t.sendMs;
  const fmt = (n: number) => Math.round(n).toLocaleString('en');
  console.log('\nemulation benchmark (%s posts of a %s-row table, batch %s, %s lanes, 3 messages per post)', fmt(POSTS), fmt(ROWS), fmt(BATCH), CONCURRENCY);
  console.log(`  bare kafkajs producer   ${fmt(bare1)} and ${fmt(bare2)} posts/s (mean ${fmt(bareMean)} posts/s, ${fmt(bareMean * 3)} msgs/s)`);
  console.log(`  emulationWorkflow       ${fmt(wf.rate)} posts/s (${fmt(wf.rate * 3)} msgs/s), ${wf.result.batches} batches, ${wf.result.failed} retried`);
  console.log(`  ratio workflow / bare   ${(wf.rate / bareMean).toFixed(2)}`);
  console.log(`  batch time: MySQL read ${((t.readMs / total) * 100).toFixed(0)}%, build ${((t.buildMs / total) * 100).toFixed(0)}%, Kafka transaction ${((t.sendMs / total) * 100).toFixed(0)}% of ${fmt(total)} ms in activities`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
