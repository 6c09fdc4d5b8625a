/**
 * npm run bench:streaming -- [--rate 500] [--duration 60] [--ramp 1000,1500,2000,2500,3000,4000] [--step 15] [--poll-ms 250]
 *
 * Freshness of the near-real-time path: the time from a record's PutRecords call to its row
 * being queryable in the DuckDB stream table, at --rate posts/s (3 records a post, one per
 * stream, 2 shards each) for --duration s: p50 and p95. Then a ramp of rates (--step s each)
 * for the highest rate whose p95 stays under 5 s with every record arriving.
 *
 * Beside it, the same measurements of a baseline in the same run and process: a bare GetRecords
 * loop per shard (same poll interval, no cleaning, no warehouse, no Temporal), whose freshness is
 * the time from PutRecords to the record being returned to it.
 *
 * "Queryable" is observed, not inferred: the streaming workflows run on a worker in this process,
 * and another DuckDB connection polls the stream tables every 50 ms for new rows (rowid order).
 * The `_arrival` column (set when the row is written, just before commit) gives a second figure.
 * Records are synthetic posts (scripts/db-seed's generator), keys unique per run. Figures also
 * in bench/results/streaming.json (bench/results.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeleteStreamCommand } from '@aws-sdk/client-kinesis';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { Connection, Client } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { createKinesisClient, ensureStreams, getRecords, listAllShards, putRecordsBatched, shardIterator } from '../adapters/kinesis';
import { loadConfig, readEnv } from '../config';
import { SOURCE_TABLES } from '../common/source-tables';
import { DEFAULT_POLL_INTERVAL_MS, STREAM_TOPICS, streamName, streamTable, type StreamingInput, type StreamingStatus, type StreamTopic } from '../common/streaming';
import { syntheticPost } from '../scripts/db-seed';
import { stackUp } from '../stack';
import { toMessage } from '../test/helpers/landed-fixture';
import { createWorker } from '../workers/worker';
import { stopSignal } from '../workflows/streaming';
import { defineCommand, parseCommandLine } from '../cli/args';
import { runCommand } from '../cli/command';
import { wholeListOption, wholeOption } from './options';
import { writeResults } from './results';

export const COMMAND = defineCommand({
  script: 'bench:streaming',
  options: {
    rate: { value: 'N', help: 'posts/s of the steady phase (3 records a post), 1-100000 (default 500)' },
    duration: { value: 'S', help: 'seconds of the steady phase, 1-3600 (default 60)' },
    ramp: { value: 'R1,R2,...', help: 'the rates of the ramp, posts/s (default 1000,1500,2000,2500,3000,4000)' },
    step: { value: 'S', help: 'seconds of each ramp step, 1-3600 (default 15)' },
    'poll-ms': { value: 'MS', help: `GetRecords poll interval of the workflows and the baseline, 10-60000 (default ${DEFAULT_POLL_INTERVAL_MS})` },
  },
  about:
    'Freshness of the near-real-time path (PutRecords call -> row queryable in the DuckDB stream table, p50 and p95) at --rate posts/s for --duration s, ' +
    'then the highest rate of the ramp whose p95 stays under 5 s; beside a bare GetRecords loop per shard in the same run. Writes the figures to bench/results/streaming.json.',
});

interface StreamingBenchOptions {
  rate: number;
  durationS: number;
  ramp: number[];
  stepS: number;
  pollMs: number;
}

function parseOptions(argv: string[]): StreamingBenchOptions {
  const v = parseCommandLine(COMMAND, argv).values;
  return {
    rate: wholeOption(v, 'rate', 500, 1, 100_000),
    durationS: wholeOption(v, 'duration', 60, 1, 3_600),
    ramp: wholeListOption(v, 'ramp', [1000, 1500, 2000, 2500, 3000, 4000], 1, 100_000),
    stepS: wholeOption(v, 'step', 15, 1, 3_600),
    pollMs: wholeOption(v, 'poll-ms', DEFAULT_POLL_INTERVAL_MS, 10, 60_000),
  };
}
const SEED = 7;
const GRACE_MS = 10_000;
const fmt = (n: number) => Math.round(n).toLocaleString('en');

/** key -> Date.now() when its PutRecords call started (same for the post's three records). */
const putAt = new Map<number, number>();
/** `${topic}:${key}` -> Date.now() when the consumer under test first saw it. */
let seenAt = new Map<string, number>();

let nextKey = 0;

async function produce(client: ReturnType<typeof createKinesisClient>, prefix: string, rate: number, seconds: number): Promise<{ from: number; to: number; achieved: number }> {
  const from = nextKey;
  const started = Date.now();
  const inflight = new Set<Promise<void>>();
  let sent = 0;
  const send = async (keys: number[]) => {
    const t = Date.now();
    for (const k of keys) putAt.set(k, t);
    const rows = keys.map((k) => syntheticPost(SEED, k));
    await Promise.all(
      SOURCE_TABLES.map((table) =>
        putRecordsBatched(
          client,
          streamName(prefix, table.topic),
          rows.map((r, i) => ({ partitionKey: String(keys[i]), data: JSON.stringify(toMessage(table, r[table.topic])) })),
        ),
      ),
    );
  };
  while (Date.now() - started < seconds * 1000) {
    const due = Math.floor((rate * (Date.now() - started)) / 1000) - sent;
    if (due > 0) {
      const keys = Array.from({ length: due }, (_, i) => nextKey + i);
      nextKey += due;
      sent += due;
      const p = send(keys).finally(() => inflight.delete(p));
      inflight.add(p);
      if (inflight.size >= 16) await Promise.race(inflight);
    }
    await sleep(100);
  }
  await Promise.all(inflight);
  return { from, to: nextKey, achieved: sent / ((Date.now() - started) / 1000) };
}

interface Stats {
  p50: number;
  p95: number;
  max: number;
  records: number;
  missed: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function stats(from: number, to: number, seen: Map<string, number> = seenAt): Stats {
  const lat: number[] = [];
  let missed = 0;
  for (let k = from; k < to; k++) {
    for (const t of STREAM_TOPICS) {
      const at = seen.get(`${t}:${k}`);
      if (at === undefined) missed++;
      else lat.push(at - putAt.get(k)!);
    }
  }
  lat.sort((a, b) => a - b);
  return { p50: percentile(lat, 50), p95: percentile(lat, 95), max: lat.at(-1) ?? NaN, records: lat.length, missed };
}

async function waitAllSeen(from: number, to: number): Promise<void> {
  const deadline = Date.now() + GRACE_MS;
  while (Date.now() < deadline) {
    if (stats(from, to).missed === 0) return;
    await sleep(100);
  }
}

/** Baseline: one bare GetRecords loop per shard, records handed to JavaScript and nothing else. */
function bareConsumer(client: ReturnType<typeof createKinesisClient>, prefix: string, pollMs: number): { stop: () => Promise<void> } {
  let stopped = false;
  const loops: Promise<void>[] = [];
  for (const topic of STREAM_TOPICS) {
    const stream = streamName(prefix, topic);
    loops.push(
      (async () => {
        const shards = await listAllShards(client, stream);
        await Promise.all(
          shards.map(async (sh) => {
            let it: string | undefined = await shardIterator(client, stream, sh.ShardId!, null);
            while (!stopped && it) {
              const res = await getRecords(client, it, 10_000);
              const now = Date.now();
              for (const r of res.Records ?? []) {
                const id = `${topic}:${r.PartitionKey}`;
                if (!seenAt.has(id)) seenAt.set(id, now);
              }
              it = res.NextShardIterator;
              if ((res.Records ?? []).length === 0 || (res.MillisBehindLatest ?? 0) === 0) await sleep(pollMs);
            }
          }),
        );
      })(),
    );
  }
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

/** Watches the stream tables from a separate DuckDB connection: a row is seen when a query returns it. */
function tablePoller(db: DuckDBConnection): { stop: () => Promise<void> } {
  let stopped = false;
  const last: Record<string, bigint> = { pin: -1n, geo: -1n, user: -1n };
  const loop = (async () => {
    while (!stopped) {
      for (const topic of STREAM_TOPICS) {
        try {
          const rows = (await db.runAndReadAll(`SELECT rowid AS r, ind FROM ${streamTable(topic)} WHERE rowid > ${last[topic]} ORDER BY rowid`)).getRows();
          const now = Date.now();
          for (const [r, ind] of rows) {
            last[topic] = r as bigint;
            const id = `${topic}:${ind}`;
            if (!seenAt.has(id)) seenAt.set(id, now);
          }
        } catch {
          /* the table appears with the first span */
        }
      }
      await sleep(50);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

async function ramp(label: string, client: ReturnType<typeof createKinesisClient>, prefix: string, o: StreamingBenchOptions): Promise<{ best: number; steps: string[] }> {
  let best = 0;
  const steps: string[] = [];
  for (const rate of o.ramp) {
    const p = await produce(client, prefix, rate, o.stepS);
    await waitAllSeen(p.from, p.to);
    const s = stats(p.from, p.to);
    const ok = s.p95 < 5_000 && s.missed === 0 && p.achieved >= rate * 0.95;
    steps.push(`${rate}: produced ${fmt(p.achieved)}/s, p95 ${fmt(s.p95)} ms${s.missed ? `, ${fmt(s.missed)} records not seen within ${GRACE_MS / 1000} s` : ''} ${ok ? 'ok' : 'FAIL'}`);
    console.log(`  [${label}] ${steps.at(-1)}`);
    if (!ok) break;
    best = rate;
  }
  return { best, steps };
}

async function main(argv: string[]): Promise<void> {
  const o = parseOptions(argv);
  const { rate: RATE, durationS: DURATION_S, ramp: RAMP, stepS: STEP_S, pollMs: POLL_MS } = o;
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const stamp = Date.now().toString(36);
  const prefix = `bench-stream-${stamp}`;
  const basePrefix = `bench-bare-${stamp}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-bench-stream-'));
  const config = loadConfig({ ...readEnv(), PIPELINE_PREFIX: prefix, TEMPORAL_TASK_QUEUE: `bench-streaming-${stamp}`, DUCKDB_PATH: path.join(dir, 'warehouse.duckdb') });
  await stackUp(config);
  const kinesis = createKinesisClient(config);
  const names = [...STREAM_TOPICS.map((t) => streamName(prefix, t)), ...STREAM_TOPICS.map((t) => streamName(basePrefix, t))];
  await ensureStreams(kinesis, names, 2);
  console.log(`streams: ${names.join(', ')} (2 shards each); poll interval ${POLL_MS} ms; table poll 50 ms`);

  // Baseline: steady rate, then the ramp.
  console.log(`\nbaseline (bare GetRecords loop): ${RATE} posts/s for ${DURATION_S} s ...`);
  let bare = bareConsumer(kinesis, basePrefix, POLL_MS);
  const bareSteady = await produce(kinesis, basePrefix, RATE, DURATION_S);
  await waitAllSeen(bareSteady.from, bareSteady.to);
  const bareStats = stats(bareSteady.from, bareSteady.to);
  console.log(`  p50 ${fmt(bareStats.p50)} ms, p95 ${fmt(bareStats.p95)} ms (produced ${fmt(bareSteady.achieved)} posts/s)`);
  console.log(`baseline ramp (${STEP_S} s steps):`);
  const bareRamp = await ramp('bare', kinesis, basePrefix, o);
  await bare.stop();
  bare = { stop: async () => {} };

  // The streaming workflows on an in-process worker; a second connection polls their tables.
  seenAt = new Map();
  const w = await createWorker(config);
  const running = w.worker.run();
  const client = new Client({ connection: await Connection.connect({ address: config.temporal.address }), namespace: config.temporal.namespace });
  const handles = await Promise.all(
    STREAM_TOPICS.map((topic: StreamTopic) =>
      client.workflow.start('streamingWorkflow', { taskQueue: config.temporal.taskQueue, workflowId: streamName(prefix, topic), args: [{ prefix, topic, pollIntervalMs: POLL_MS } satisfies StreamingInput] }),
    ),
  );
  const instance = await DuckDBInstance.fromCache(config.warehouse.duckdbPath);
  const db = await instance.connect();
  await db.run(`CREATE SCHEMA IF NOT EXISTS "${prefix}"`);
  await db.run(`SET schema = '${prefix}'`);
  const poller = tablePoller(db);

  console.log(`\nstreamingWorkflow (DuckDB): ${RATE} posts/s for ${DURATION_S} s ...`);
  const steady = await produce(kinesis, prefix, RATE, DURATION_S);
  await waitAllSeen(steady.from, steady.to);
  const wfStats = stats(steady.from, steady.to);
  console.log(`  p50 ${fmt(wfStats.p50)} ms, p95 ${fmt(wfStats.p95)} ms (produced ${fmt(steady.achieved)} posts/s)`);
  // The same records by `_arrival` (written just before commit).
  const arrivals = new Map<string, number>();
  for (const topic of STREAM_TOPICS) {
    const rows = (await db.runAndReadAll(`SELECT ind, epoch_ms(_arrival) AS at FROM ${streamTable(topic)} WHERE ind >= ${steady.from} AND ind < ${steady.to}`)).getRows();
    for (const [ind, at] of rows) arrivals.set(`${topic}:${ind}`, Number(at));
  }
  const arrivalStats = stats(steady.from, steady.to, arrivals);
  console.log(`  by _arrival: p50 ${fmt(arrivalStats.p50)} ms, p95 ${fmt(arrivalStats.p95)} ms`);
  console.log(`streamingWorkflow ramp (${STEP_S} s steps):`);
  const wfRamp = await ramp('workflow', kinesis, prefix, o);

  const finals: StreamingStatus[] = [];
  for (const h of handles) await h.signal(stopSignal);
  for (const h of handles) finals.push((await h.result()) as StreamingStatus);
  const events = await Promise.all(handles.map(async (h) => (await h.describe()).historyLength));
  await poller.stop();
  db.closeSync();
  w.worker.shutdown();
  await running;
  await w.close();
  await client.connection.close();
  await bare.stop();

  const total = finals.reduce((n, f) => n + f.totals.rows, 0);
  const dupCheck = await (async () => {
    const c = await instance.connect();
    try {
      await c.run(`SET schema = '${prefix}'`);
      let dups = 0;
      for (const topic of STREAM_TOPICS) dups += Number((await c.runAndReadAll(`SELECT count(*) - count(DISTINCT ind) AS d FROM ${streamTable(topic)}`)).getRows()[0]![0]);
      return dups;
    } finally {
      c.closeSync();
    }
  })();

  const line = (name: string, s: Stats) => `  ${name.padEnd(34)} ${fmt(s.p50).padStart(7)} ${fmt(s.p95).padStart(7)} ${fmt(s.max).padStart(7)} ${fmt(s.records).padStart(9)} ${fmt(s.missed).padStart(7)}`;
  console.log(`\n=== freshness at ${RATE} posts/s for ${DURATION_S} s (${fmt(RATE * 3)} records/s into 3 streams x 2 shards), PutRecords call -> row queryable, ms`);
  console.log(`  ${''.padEnd(34)} ${'p50'.padStart(7)} ${'p95'.padStart(7)} ${'max'.padStart(7)} ${'records'.padStart(9)} ${'missed'.padStart(7)}`);
  console.log(line('bare GetRecords loop (baseline)', bareStats));
  console.log(line('streamingWorkflow -> DuckDB (polled)', wfStats));
  console.log(line('streamingWorkflow (by _arrival)', arrivalStats));
  console.log(`  goal p95 < 2 s at ${RATE} posts/s: ${wfStats.p95 < 2_000 ? 'met' : 'NOT met'}`);
  console.log(`=== max sustained posts/s with p95 < 5 s (ramp ${RAMP.join(', ')}; ${STEP_S} s steps)`);
  console.log(`  bare GetRecords loop (baseline): ${bareRamp.best ? fmt(bareRamp.best) : `below ${RAMP[0]}`} posts/s`);
  console.log(`  streamingWorkflow -> DuckDB:     ${wfRamp.best ? fmt(wfRamp.best) : `below ${RAMP[0]}`} posts/s`);
  console.log(`  (a failed step can be the producer or kinesalite, not the consumer: see "produced" in the step lines)`);
  console.log(`=== ${fmt(total)} rows written, ${dupCheck} duplicate keys; history events per workflow ${events.join(', ')}; spans ${finals.map((f) => f.spans).join(', ')}; runs ${finals.map((f) => f.runs).join(', ')}`);

  writeResults('streaming', {
    params: { rate: RATE, duration_s: DURATION_S, ramp: RAMP, step_s: STEP_S, poll_ms: POLL_MS },
    figures: {
      workflow_p50_ms: wfStats.p50,
      workflow_p95_ms: wfStats.p95,
      workflow_max_ms: wfStats.max,
      workflow_missed: wfStats.missed,
      arrival_p50_ms: arrivalStats.p50,
      arrival_p95_ms: arrivalStats.p95,
      bare_p50_ms: bareStats.p50,
      bare_p95_ms: bareStats.p95,
      workflow_max_rate: wfRamp.best || null,
      bare_max_rate: bareRamp.best || null,
      rows_written: total,
      duplicate_keys: dupCheck,
    },
    baseline: { steady: { p50_ms: bareStats.p50, p95_ms: bareStats.p95, max_ms: bareStats.max, missed: bareStats.missed, produced_posts_s: bareSteady.achieved }, ramp: bareRamp.steps },
  });

  await Promise.allSettled(names.map((StreamName) => kinesis.send(new DeleteStreamCommand({ StreamName }))));
  kinesis.destroy();
  fs.rmSync(dir, { recursive: true, force: true });
}

if (require.main === module) runCommand(COMMAND, main);
