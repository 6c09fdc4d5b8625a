/**
 * npm run bench:landing -- [--records 1000000] [--flush-size 10000]
 *
 * Records/s landed by landingWorkflow (untilNow, worker in its own process) from 3 topics
 * holding --records records in total (~1 KB each, emulation-like JSON), beside a bare loop in
 * this process that consumes the same topics with the same client (kafkajs) and writes the same
 * objects to the same S3 server without Temporal (bare, workflow, bare again; the ratio uses the
 * mean of the two bare runs). Also the worker's peak RSS and the Temporal history events per
 * million records. Figures also in bench/results/landing.json (bench/results.ts).
 */
import fs from 'node:fs';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createKafka, ensureTopics, javaCompatiblePartitioner } from '../adapters/kafka';
import { LANDING_FETCH } from '../activities/landing';
import { createS3Client } from '../adapters/s3';
import { defineCommand, parseCommandLine } from '../cli/args';
import { runCommand } from '../cli/command';
import { loadConfig, readEnv } from '../config';
import { landableLine } from '../activities/landable';
import { objectKey, type LandingInput, type LandingResult } from '../common/landing';
import { syntheticPost } from '../scripts/db-seed';
import { stackUp } from '../stack';
import { connectClient } from '../workers/client';
import { spawnWorker } from '../test/helpers/data';
import { wholeOption } from './options';
import { writeResults } from './results';

export const COMMAND = defineCommand({
  script: 'bench:landing',
  options: {
    records: { value: 'N', help: 'records in the 3 topics in total, produced once per size (default 1000000)' },
    'flush-size': { value: 'N', help: 'records per object at most (default 10000)' },
  },
  about:
    'Records/s landed by landingWorkflow (untilNow, worker in its own process) beside a bare kafkajs + S3 loop landing the same topics, in one run ' +
    "(bare, workflow, bare); also the worker's peak RSS and the history events per million records. Writes the figures to bench/results/landing.json.",
});

const fmt = (n: number) => Math.round(n).toLocaleString('en');

async function main(argv: string[]): Promise<void> {
  const opts = parseCommandLine(COMMAND, argv).values;
  const RECORDS = wholeOption(opts, 'records', 1_000_000, 3, 100_000_000);
  const FLUSH = wholeOption(opts, 'flush-size', 10_000, 1, 1_000_000);
  const perTopic = Math.ceil(RECORDS / 3);
  const stamp = Date.now().toString(36);
  const prefix = `bench-land-${RECORDS}`;
  const config = loadConfig({ ...readEnv(), PIPELINE_PREFIX: prefix, TEMPORAL_TASK_QUEUE: `bench-landing-${stamp}` });
  await stackUp(config);
  const kafka = createKafka(config);
  const topics = ['pin', 'geo', 'user'].map((t) => `${prefix}.${t}`);

  // The data set: produced once, reused by later runs (each run lands into its own topics dir).
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, topics.map((topic) => ({ topic, numPartitions: 3 })));
  const have = (await Promise.all(topics.map((t) => admin.fetchTopicOffsets(t)))).map((o) => o.reduce((n, p) => n + Number(p.high), 0));
  await admin.disconnect();
  if (have.some((n) => n < perTopic)) {
    console.log(`producing ${fmt(perTopic * 3)} records of ~1 KB into ${topics.join(', ')} (once) ...`);
    const producer = kafka.producer({ createPartitioner: javaCompatiblePartitioner });
    await producer.connect();
    for (let i = 0; i < perTopic; i += 2_000) {
      const n = Math.min(2_000, perTopic - i);
      await producer.sendBatch({
        acks: -1,
        topicMessages: topics.map((topic, t) => ({
          topic,
          messages: Array.from({ length: n }, (_, j) => {
            const row = syntheticPost(100, i + j)[(['pin', 'geo', 'user'] as const)[t]!];
            return { key: String(i + j), value: JSON.stringify({ row, pad: 'p'.repeat(Math.max(0, 1000 - JSON.stringify(row).length - 10)) }) };
          }),
        })),
      });
      if (i % 100_000 === 0) console.log(`  ${fmt(i * 3)} records`);
    }
    await producer.disconnect();
  }

  const s3 = createS3Client(config);
  async function bare(topicsDir: string): Promise<number> {
    const t0 = performance.now();
    await Promise.all(
      topics.map(async (topic) => {
        const offsets = await (async () => {
          const a = kafka.admin();
          await a.connect();
          try {
            return await a.fetchTopicOffsets(topic);
          } finally {
            await a.disconnect();
          }
        })();
        const end = new Map(offsets.map((o) => [o.partition, Number(o.high)]));
        const buf = new Map<number, { start: number; lines: Buffer[]; last: number }>();
        const done = new Set<number>();
        const consumer = kafka.consumer({ groupId: `bench-bare-${stamp}-${topic}-${topicsDir}`, ...LANDING_FETCH });
        await consumer.connect();
        await consumer.subscribe({ topic, fromBeginning: true });
        let finish = () => {};
        const finished = new Promise<void>((r) => (finish = r));
        const put = async (p: number, b: { start: number; lines: Buffer[] }) =>
          s3.send(new PutObjectCommand({ Bucket: config.s3.bucket, Key: objectKey(topicsDir, topic, p, b.start), Body: Buffer.concat(b.lines.flatMap((l) => [l, Buffer.from('\n')])) }));
        await consumer.run({
          autoCommit: false,
          partitionsConsumedConcurrently: 3,
          eachBatch: async ({ batch }) => {
            const p = batch.partition;
            for (const m of batch.messages) {
              const off = Number(m.offset);
              let b = buf.get(p);
              if (!b) buf.set(p, (b = { start: off, lines: [], last: off }));
              const l = landableLine(m.value);
              if ('line' in l) b.lines.push(l.line);
              b.last = off;
              if (b.lines.length >= FLUSH || off + 1 >= end.get(p)!) {
                await put(p, b);
                buf.delete(p);
              }
            }
            if (Number(batch.lastOffset()) + 1 >= end.get(p)!) done.add(p);
            if (done.size === end.size) finish();
          },
        });
        await finished;
        await consumer.disconnect();
      }),
    );
    return RECORDS / ((performance.now() - t0) / 1000);
  }

  async function workflow(topicsDir: string): Promise<{ rate: number; rssMb: number; events: number; result: LandingResult }> {
    const worker = spawnWorker({ PIPELINE_PREFIX: prefix, TEMPORAL_TASK_QUEUE: config.temporal.taskQueue });
    await worker.ready;
    let peak = 0;
    const sampler = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${worker.child.pid}/status`, 'utf8'));
        if (m) peak = Math.max(peak, Number(m[1]) / 1024);
      } catch {
        /* exited */
      }
    }, 200);
    const client = await connectClient(config);
    try {
      const input: LandingInput = { prefix, mode: 'untilNow', flushSize: FLUSH, topicsDir };
      const t0 = performance.now();
      const handle = await client.workflow.start('landingWorkflow', { taskQueue: config.temporal.taskQueue, workflowId: `bench-landing-${stamp}-${topicsDir.replace(/\//g, '-')}`, args: [input] });
      const result = (await handle.result()) as LandingResult;
      const s = (performance.now() - t0) / 1000;
      const events = (await handle.describe()).historyLength;
      return { rate: result.records / s, rssMb: peak, events, result };
    } finally {
      clearInterval(sampler);
      worker.child.kill('SIGTERM');
      await client.connection.close();
    }
  }

  console.log('bare loop (run 1) ...');
  const bare1 = await bare(`bench/${stamp}/bare1`);
  console.log('landingWorkflow ...');
  const wf = await workflow(`bench/${stamp}/workflow`);
  console.log('bare loop (run 2) ...');
  const bare2 = await bare(`bench/${stamp}/bare2`);
  const mean = (bare1 + bare2) / 2;
  console.log(`\nlanding benchmark (${fmt(wf.result.records)} records in 3 topics x 3 partitions, flushSize ${fmt(FLUSH)}, ${wf.result.objects} objects)`);
  console.log(`  bare kafkajs + S3 loop   ${fmt(bare1)} and ${fmt(bare2)} records/s (mean ${fmt(mean)})`);
  console.log(`  landingWorkflow          ${fmt(wf.rate)} records/s`);
  console.log(`  ratio workflow / bare    ${(wf.rate / mean).toFixed(2)}`);
  console.log(`  worker peak RSS          ${fmt(wf.rssMb)} MB`);
  console.log(`  history events           ${wf.events} for this run = ${fmt((wf.events / wf.result.records) * 1_000_000)} per million records`);
  writeResults('landing', {
    params: { records: RECORDS, flush_size: FLUSH },
    figures: {
      ratio: wf.rate / mean,
      worker_peak_rss_mb: wf.rssMb,
      workflow_records_s: wf.rate,
      records: wf.result.records,
      objects: wf.result.objects,
      history_events: wf.events,
      history_events_per_million: (wf.events / wf.result.records) * 1_000_000,
    },
    baseline: { bare_records_s: [bare1, bare2], bare_mean_records_s: mean },
  });
}

if (require.main === module) runCommand(COMMAND, main);
