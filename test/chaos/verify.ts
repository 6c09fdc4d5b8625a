/**
 * What the chaos run checks its runs against, read from the systems themselves:
 * - the emulation's plan replayed here (random mode draws keys with repeats: post number ->
 *   key), and which of those keys MySQL holds in all three tables (the posts it can send);
 * - every committed record of the topics (read_committed), by post number (`pinflow-post`);
 * - every line of every landed object in the bucket, per topic and partition.
 * Record values are compared as SHA-1 digests, so 200,000 posts fit in memory.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type mysql from 'mysql2/promise';
import { createMysqlPool, describeSource } from '../../adapters/mysql';
import { createS3Client, getText, listKeys } from '../../adapters/s3';
import type { Config } from '../../config';
import { batchSizeFor, planNextBatch, type EmulationInput, type EmulationState } from '../../common/emulation';
import { DEAD_LETTER_DIR, DEFAULT_TOPICS_DIR, parseObjectKey } from '../../common/landing';
import { SOURCE_TABLES, topicName } from '../../common/source-tables';

export const TOPICS = SOURCE_TABLES.map((t) => t.topic);
export type Topic = (typeof TOPICS)[number];

export interface PlannedPosts {
  planned: number;
  /** Key of each post number. */
  keyOf: number[];
  /** Post numbers MySQL can send (key present in all three tables), ascending. */
  sendable: number[];
  /** Distinct keys among the sendable posts: the rows each cleaned table must have. */
  distinctKeys: number;
}

/** Replays the emulation's plan (common/emulation.ts, the workflow's own planner) on the same source. */
export async function plannedPosts(config: Config, input: EmulationInput): Promise<PlannedPosts> {
  const pool = createMysqlPool(config, 2);
  try {
    const database = decodeURIComponent(new URL(config.mysql.url).pathname.slice(1));
    const source = await describeSource(pool, database);
    if (source.minKey === null || source.maxKey === null) throw new Error(`${database} holds no rows`);
    if (input.selection.mode !== 'random') throw new Error('the chaos run plans random selections only');
    const state: EmulationState = {
      version: 1,
      progress: { sent: 0, skipped: 0, failed: 0, planned: 0, batches: 0, currentKey: null, rate: input.rate, achievedRate: 0, paused: false, done: false, startedAt: '', totalPlanned: null, timings: { readMs: 0, buildMs: 0, sendMs: 0 } },
      rng: input.selection.seed >>> 0,
      cursor: 0,
      batchSeq: 0,
      plannedPosts: 0,
      laneSeqs: [],
      windowStartMs: 0,
      windowPosts: 0,
      keyRange: { min: source.minKey, max: source.maxKey },
    };
    const keyOf: number[] = [];
    for (let plan = planNextBatch(input, state, batchSizeFor(input)); plan; plan = planNextBatch(input, state, batchSizeFor(input))) {
      if (plan.kind !== 'keys') throw new Error('unexpected range plan');
      plan.keys.forEach((k, i) => (keyOf[plan.firstSeq + i] = k));
    }
    const complete = await completeKeys(pool);
    const sendable = keyOf.flatMap((k, seq) => (complete.has(k) ? [seq] : []));
    return { planned: keyOf.length, keyOf, sendable, distinctKeys: new Set(sendable.map((s) => keyOf[s]!)).size };
  } finally {
    await pool.end();
  }
}

async function completeKeys(pool: mysql.Pool): Promise<Set<number>> {
  const [rows] = await pool.query<mysql.RowDataPacket[]>(
    'SELECT p.`index` AS k FROM pinterest_data p JOIN geolocation_data g ON g.ind = p.`index` JOIN user_data u ON u.ind = p.`index`',
  );
  return new Set(rows.map((r) => Number(r.k)));
}

export const digest = (b: Buffer | string) => createHash('sha1').update(b).digest('base64').slice(0, 16);

/** One topic of one run, by post number, as committed in Kafka. */
export interface TopicRecords {
  /** Post number -> how many committed records carry it. */
  count: Map<number, number>;
  /** Post number -> the key (first seen) and value digest. */
  key: Map<number, string>;
  value: Map<number, string>;
  /** Records without a usable `pinflow-post` header, or from another emulation run. */
  foreign: number;
  /** Value digest -> records (the multiset landing must reproduce). */
  values: Map<string, number>;
  /** Partition -> committed records. */
  perPartition: Map<number, number>;
  total: number;
}

const emptyTopic = (): TopicRecords => ({ count: new Map(), key: new Map(), value: new Map(), foreign: 0, values: new Map(), perPartition: new Map(), total: 0 });

/**
 * Every committed record of `<prefix>.pin|geo|user` from the beginning (read_committed): waits
 * until at least `expected` per topic arrived, then until nothing new comes for `idleMs`.
 */
export async function readCommitted(kafka: Kafka, prefix: string, runId: string, expected: number, opts: { timeoutMs?: number; idleMs?: number } = {}): Promise<Record<Topic, TopicRecords>> {
  const out = Object.fromEntries(TOPICS.map((t) => [t, emptyTopic()])) as Record<Topic, TopicRecords>;
  const byName = new Map(TOPICS.map((t) => [topicName(prefix, t), out[t]]));
  const consumer = kafka.consumer({ groupId: `pinflow-chaos-check-${randomBytes(6).toString('hex')}`, readUncommitted: false, maxWaitTimeInMs: 200, maxBytes: 50 * 1024 * 1024 });
  let last = Date.now();
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [...byName.keys()], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: true,
      eachBatch: async ({ batch }) => {
        const t = byName.get(batch.topic)!;
        for (const m of batch.messages) {
          t.total += 1;
          t.perPartition.set(batch.partition, (t.perPartition.get(batch.partition) ?? 0) + 1);
          const h = digest(m.value ?? Buffer.alloc(0));
          t.values.set(h, (t.values.get(h) ?? 0) + 1);
          const seqText = m.headers?.['pinflow-post']?.toString();
          const run = m.headers?.['pinflow-run']?.toString();
          if (seqText === undefined || !/^\d+$/.test(seqText) || run !== runId) {
            t.foreign += 1;
            continue;
          }
          const seq = Number(seqText);
          t.count.set(seq, (t.count.get(seq) ?? 0) + 1);
          if (!t.key.has(seq)) {
            t.key.set(seq, m.key?.toString() ?? '');
            t.value.set(seq, h);
          }
        }
        if (batch.messages.length) last = Date.now();
      },
    });
    const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
    const idle = opts.idleMs ?? 3_000;
    const short = () => TOPICS.some((t) => out[t].total < expected);
    while (Date.now() < deadline && (short() || Date.now() - last < idle)) await new Promise((r) => setTimeout(r, 100));
  } finally {
    await consumer.disconnect();
  }
  return out;
}

/**
 * Exactly once, by post number: each sendable post exactly once, with its planned key, its
 * value as in the reference run (when given), and nothing else. Empty when all is well.
 */
export function exactlyOnceProblems(t: TopicRecords, posts: PlannedPosts, reference?: TopicRecords): string[] {
  const problems: string[] = [];
  const twice = [...t.count].filter(([, n]) => n > 1);
  if (twice.length) problems.push(`${twice.length} posts more than once (e.g. ${twice.slice(0, 3).map(([s, n]) => `#${s} x${n}`).join(', ')})`);
  const missing = posts.sendable.filter((s) => !t.count.has(s));
  if (missing.length) problems.push(`${missing.length} posts missing (e.g. #${missing.slice(0, 5).join(', #')})`);
  const sendable = new Set(posts.sendable);
  const unplanned = [...t.count.keys()].filter((s) => !sendable.has(s));
  if (unplanned.length) problems.push(`${unplanned.length} unplanned post numbers (e.g. #${unplanned.slice(0, 5).join(', #')})`);
  if (t.foreign) problems.push(`${t.foreign} records without this run's pinflow-run / pinflow-post headers`);
  const wrongKey = posts.sendable.filter((s) => t.key.has(s) && t.key.get(s) !== String(posts.keyOf[s]));
  if (wrongKey.length) problems.push(`${wrongKey.length} posts with another key than planned (e.g. #${wrongKey[0]}: ${t.key.get(wrongKey[0]!)} instead of ${posts.keyOf[wrongKey[0]!]})`);
  if (reference) {
    const differs = posts.sendable.filter((s) => t.value.has(s) && reference.value.has(s) && t.value.get(s) !== reference.value.get(s));
    if (differs.length) problems.push(`${differs.length} posts whose value differs from the fault-free run's (e.g. #${differs[0]})`);
  }
  if (t.total !== posts.sendable.length) problems.push(`${t.total} records for ${posts.sendable.length} posts`);
  return problems;
}

export interface LandedTopic {
  objects: number;
  lines: number;
  values: Map<string, number>;
  perPartition: Map<number, number>;
  deadLetterObjects: number;
  badKeys: string[];
}

/** Every line of every object landed for `<prefix>.<topic>` in the bucket, and the dead-letter objects. */
export async function readLanded(config: Config, prefix: string): Promise<Record<Topic, LandedTopic>> {
  const s3 = createS3Client(config);
  try {
    const out = {} as Record<Topic, LandedTopic>;
    for (const t of TOPICS) {
      const topic = topicName(prefix, t);
      const landed: LandedTopic = { objects: 0, lines: 0, values: new Map(), perPartition: new Map(), deadLetterObjects: 0, badKeys: [] };
      for (const key of await listKeys(s3, config.s3.bucket, `${DEFAULT_TOPICS_DIR}/${topic}/`)) {
        const parsed = parseObjectKey(key);
        if (!parsed || parsed.topic !== topic) {
          landed.badKeys.push(key);
          continue;
        }
        landed.objects += 1;
        for (const line of (await getText(s3, config.s3.bucket, key)).split('\n')) {
          if (line === '') continue;
          landed.lines += 1;
          landed.perPartition.set(parsed.partition, (landed.perPartition.get(parsed.partition) ?? 0) + 1);
          const h = digest(Buffer.from(line, 'utf8'));
          landed.values.set(h, (landed.values.get(h) ?? 0) + 1);
        }
      }
      landed.deadLetterObjects = (await listKeys(s3, config.s3.bucket, `${DEAD_LETTER_DIR}/${topic}/`)).length;
      out[t] = landed;
    }
    return out;
  } finally {
    s3.destroy();
  }
}

/** Landed lines = committed records: the same values the same number of times, per partition the same count. */
export function landedProblems(landed: LandedTopic, committed: TopicRecords): string[] {
  const problems: string[] = [];
  if (landed.badKeys.length) problems.push(`${landed.badKeys.length} objects outside the sink layout (e.g. ${landed.badKeys[0]})`);
  if (landed.deadLetterObjects) problems.push(`${landed.deadLetterObjects} dead-letter objects`);
  let extra = 0;
  let missing = 0;
  for (const [h, n] of committed.values) {
    const l = landed.values.get(h) ?? 0;
    if (l > n) extra += l - n;
    if (l < n) missing += n - l;
  }
  for (const [h, l] of landed.values) if (!committed.values.has(h)) extra += l;
  if (missing) problems.push(`${missing} committed records not landed`);
  if (extra) problems.push(`${extra} landed lines too many (twice, or never committed)`);
  const parts = new Set([...landed.perPartition.keys(), ...committed.perPartition.keys()]);
  for (const p of [...parts].sort()) {
    const a = landed.perPartition.get(p) ?? 0;
    const b = committed.perPartition.get(p) ?? 0;
    if (a !== b) problems.push(`partition ${p}: ${a} landed, ${b} committed`);
  }
  if (landed.lines !== committed.total) problems.push(`${landed.lines} lines landed for ${committed.total} committed records`);
  return problems;
}
