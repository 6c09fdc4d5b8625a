/**
 * npm run bench:emulation -- [--posts 100000] [--rows 1000000] [--batch-size 2000] [--concurrency 2]
 *
 * Posts/s sustained into Kafka by emulationWorkflow at --rate max (random selection over a
 * --rows table, exactly-once transactional batches of --batch-size posts, --concurrency lanes),
 * beside two baselines in this process without Temporal, sending the same serialized messages
 * (read from MySQL and serialized before the clock starts) to the same topics:
 * - plain: a bare kafkajs producer (acks all, batches split by size as the workflow splits them);
 * - transactional: a bare kafkajs transactional producer (idempotent, one request in flight,
 *   the workflow's producer settings), one transaction per batch of --batch-size posts, no
 *   progress marker.
 * All in the same run, interleaved: plain, transactional, workflow, transactional, plain; each
 * baseline's figure is the mean of its two runs. Prints workflow/plain and workflow/transactional,
 * and the two prices they split into: exactly-once = plain/transactional, orchestration =
 * transactional/workflow. Figures also in bench/results/emulation.json (bench/results.ts).
 */
import type { Message } from 'kafkajs';
import { chunksBySize, createKafka, ensureTopics, javaCompatiblePartitioner, MAX_REQUEST_BYTES, transactionalProducerConfig, type TopicBatch } from '../adapters/kafka';
import { createMysqlPool, readKeys, tableCounts } from '../adapters/mysql';
import { defineCommand, parseCommandLine } from '../cli/args';
import { runCli } from '../cli/command';
import { loadConfig, readEnv, type Config } from '../config';
import { transactionalId, type EmulationInput, type EmulationProgress } from '../common/emulation';
import { nextInt } from '../common/prng';
import { SOURCE_TABLES } from '../common/source-tables';
import { seed } from '../scripts/db-seed';
import { stackUp } from '../stack';
import { connectClient } from '../workers/client';
import { createWorker } from '../workers/worker';
import { wholeOption } from './options';
import { writeResults } from './results';

export const COMMAND = defineCommand({
  script: 'bench:emulation',
  options: {
    posts: { value: 'N', help: 'posts to send in each run (default 100000)' },
    rows: { value: 'N', help: 'rows of the source table the posts are drawn from, seeded once per size (default 1000000)' },
    'batch-size': { value: 'N', help: "posts per batch: the workflow's batches and the transactional baseline's transactions, 1-20000 (default 2000)" },
    concurrency: { value: 'N', help: "the workflow's lanes, 1-8 (default 2)" },
  },
  about:
    'Posts/s sustained into Kafka by emulationWorkflow at --rate max, beside a bare kafkajs producer and a bare kafkajs transactional producer sending the same messages, ' +
    'interleaved in one run (plain, transactional, workflow, transactional, plain). Prints the ratios over each baseline, the price of exactly-once ' +
    '(plain/transactional) and of orchestration (transactional/workflow), and writes them to bench/results/emulation.json.',
});

interface Options {
  posts: number;
  rows: number;
  batch: number;
  concurrency: number;
}

function parseOptions(argv: string[]): Options {
  const v = parseCommandLine(COMMAND, argv).values;
  return {
    posts: wholeOption(v, 'posts', 100_000, 1, 10_000_000),
    rows: wholeOption(v, 'rows', 1_000_000, 1, 50_000_000),
    batch: wholeOption(v, 'batch-size', 2_000, 1, 20_000),
    concurrency: wholeOption(v, 'concurrency', 2, 1, 8),
  };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en');

/** The bench's database (one per table size, seeded once) and a task queue of its own. */
async function prepare(base: Config, o: Options, stamp: string): Promise<Config> {
  const url = new URL(base.mysql.url);
  url.pathname = `/pinterest_test_bench_${o.rows}`;
  const config = loadConfig({ ...readEnv(), MYSQL_URL: url.toString(), TEMPORAL_TASK_QUEUE: `bench-emulation-${stamp}` });
  await stackUp(config);
  const pool = createMysqlPool(config);
  try {
    const counts = await tableCounts(pool).catch(() => ({ pinterest_data: 0 }));
    if (counts.pinterest_data !== o.rows) {
      console.log(`seeding ${fmt(o.rows)} rows into ${url.pathname.slice(1)} (once; reused by later runs) ...`);
      await seed(config, { rows: o.rows, seed: 100, replace: true, log: (l) => console.log(l) });
    }
  } finally {
    await pool.end();
  }
  return config;
}

/** The messages the workflow sends (same draws: seed 7 over the key range; same headers), batch by batch. */
async function serializeBatches(config: Config, o: Options, stamp: string, topicPrefix: string): Promise<TopicBatch[][]> {
  let state = 7;
  const keys: number[] = [];
  for (let i = 0; i < o.posts; i++) {
    const [k, s] = nextInt(state, 0, o.rows - 1);
    keys.push(k);
    state = s;
  }
  console.log(`reading and serializing ${fmt(o.posts)} posts for the baselines (not timed) ...`);
  const pool = createMysqlPool(config);
  const batches: TopicBatch[][] = [];
  try {
    for (let i = 0; i < keys.length; i += o.batch) {
      const chunk = keys.slice(i, i + o.batch);
      const rows = await readKeys(pool, chunk);
      batches.push(
        SOURCE_TABLES.map((t) => ({
          topic: `${topicPrefix}.${t.topic}`,
          messages: chunk.map(
            (k, j): Message => ({
              key: String(k),
              value: JSON.stringify(rows[t.topic].get(k)),
              headers: { 'pinflow-run': `bench-emulation-${stamp}`, 'pinflow-post': String(i + j) },
            }),
          ),
        })),
      );
    }
  } finally {
    await pool.end();
  }
  return batches;
}

async function main(base: Config, argv: string[]): Promise<void> {
  const o = parseOptions(argv);
  const stamp = Date.now().toString(36);
  const config = await prepare(base, o, stamp);
  const topicPrefix = `bench-bare-${stamp}`;
  const batches = await serializeBatches(config, o, stamp, topicPrefix);

  const kafka = createKafka(config);
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, SOURCE_TABLES.map((t) => ({ topic: `${topicPrefix}.${t.topic}`, numPartitions: 3 })));
  await admin.disconnect();

  /** Plain: acks all, no transactions. */
  async function plain(): Promise<number> {
    const producer = kafka.producer({ createPartitioner: javaCompatiblePartitioner });
    await producer.connect();
    try {
      const t0 = performance.now();
      for (const batch of batches) for (const topicMessages of chunksBySize(batch, MAX_REQUEST_BYTES)) await producer.sendBatch({ topicMessages, acks: -1 });
      return o.posts / ((performance.now() - t0) / 1000);
    } finally {
      await producer.disconnect();
    }
  }

  /** Transactional: the workflow's producer settings, one transaction per batch (no progress marker). */
  let transactionalRuns = 0;
  async function transactional(): Promise<number> {
    const producer = kafka.producer(transactionalProducerConfig(transactionalId(`bench-${stamp}-${++transactionalRuns}`, 0)));
    await producer.connect();
    try {
      const t0 = performance.now();
      for (const batch of batches) {
        const txn = await producer.transaction();
        try {
          for (const topicMessages of chunksBySize(batch, MAX_REQUEST_BYTES)) await txn.sendBatch({ topicMessages, acks: -1 });
          await txn.commit();
        } catch (err) {
          await txn.abort().catch(() => undefined);
          throw err;
        }
      }
      return o.posts / ((performance.now() - t0) / 1000);
    } finally {
      await producer.disconnect();
    }
  }

  async function workflow(): Promise<{ rate: number; result: EmulationProgress }> {
    const client = await connectClient(config);
    const w = await createWorker(config);
    try {
      const input: EmulationInput = { prefix: `bench-emu-${stamp}`, sink: 'kafka', rate: 'max', selection: { mode: 'random', seed: 7 }, stop: { posts: o.posts }, batchSize: o.batch, concurrency: o.concurrency };
      const t0 = performance.now();
      const handle = await client.workflow.start('emulationWorkflow', { taskQueue: config.temporal.taskQueue, workflowId: `bench-emulation-${stamp}`, args: [input] });
      const result = (await w.worker.runUntil(handle.result())) as EmulationProgress;
      return { rate: result.sent / ((performance.now() - t0) / 1000), result };
    } finally {
      await w.close();
      await client.connection.close();
    }
  }

  console.log('bare kafkajs producer (run 1) ...');
  const plain1 = await plain();
  console.log('bare kafkajs transactional producer (run 1) ...');
  const txn1 = await transactional();
  console.log('emulationWorkflow ...');
  const wf = await workflow();
  console.log('bare kafkajs transactional producer (run 2) ...');
  const txn2 = await transactional();
  console.log('bare kafkajs producer (run 2) ...');
  const plain2 = await plain();

  const plainMean = (plain1 + plain2) / 2;
  const txnMean = (txn1 + txn2) / 2;
  const t = wf.result.timings;
  const total = t.readMs + t.buildMs + t.sendMs;
  const pct = (ms: number) => ((ms / total) * 100).toFixed(0);
  console.log(`\nemulation benchmark (${fmt(o.posts)} posts of a ${fmt(o.rows)}-row table, batch ${fmt(o.batch)}, workflow ${o.concurrency} lanes, baselines 1 producer each, 3 messages per post)`);
  console.log(`  bare kafkajs producer            ${fmt(plain1)} and ${fmt(plain2)} posts/s (mean ${fmt(plainMean)} posts/s, ${fmt(plainMean * 3)} msgs/s)`);
  console.log(`  bare transactional producer      ${fmt(txn1)} and ${fmt(txn2)} posts/s (mean ${fmt(txnMean)} posts/s, ${fmt(txnMean * 3)} msgs/s), 1 transaction per batch`);
  console.log(`  emulationWorkflow                ${fmt(wf.rate)} posts/s (${fmt(wf.rate * 3)} msgs/s), ${wf.result.batches} batches, ${wf.result.failed} retried`);
  console.log(`  ratio workflow / plain           ${(wf.rate / plainMean).toFixed(2)}`);
  console.log(`  ratio workflow / transactional   ${(wf.rate / txnMean).toFixed(2)}`);
  console.log(`  price of exactly-once            ${(plainMean / txnMean).toFixed(2)}x (plain / transactional)`);
  console.log(`  price of orchestration           ${(txnMean / wf.rate).toFixed(2)}x (transactional / workflow: Temporal, MySQL reads, progress markers, lanes)`);
  console.log(`  batch time: MySQL read ${pct(t.readMs)}% (read ahead, beside the previous send), build ${pct(t.buildMs)}%, Kafka transaction ${pct(t.sendMs)}% of ${fmt(total)} ms in activities`);
  writeResults('emulation', {
    params: { posts: o.posts, rows: o.rows, batch_size: o.batch, concurrency: o.concurrency },
    figures: {
      ratio_plain: wf.rate / plainMean,
      ratio_transactional: wf.rate / txnMean,
      price_exactly_once: plainMean / txnMean,
      price_orchestration: txnMean / wf.rate,
      workflow_posts_s: wf.rate,
      workflow_batches: wf.result.batches,
      workflow_retried: wf.result.failed,
      workflow_read_ms: t.readMs,
      workflow_build_ms: t.buildMs,
      workflow_send_ms: t.sendMs,
    },
    baseline: { plain_posts_s: [plain1, plain2], plain_mean_posts_s: plainMean, transactional_posts_s: [txn1, txn2], transactional_mean_posts_s: txnMean },
  });
}

if (require.main === module) runCli(COMMAND, main);
