/** Landing test helpers: produce test records and check the bucket against the topics. */
import assert from 'node:assert/strict';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Kafka } from 'kafkajs';
import { ensureTopics, javaCompatiblePartitioner } from '../../adapters/kafka';
import { getText, headMetadata, listKeys } from '../../adapters/s3';
import { parseObjectKey, type LandingManifest } from '../../common/landing';
import { javaConsume, type JavaRecord } from './java-consumer';
import { uniqueName } from './env';

/** Produces `n` JSON records per topic in transactions of `txnSize` (so the log has markers). */
export async function produceRecords(kafka: Kafka, topics: string[], n: number, opts: { txnSize?: number; partitions?: number; valueBytes?: number } = {}): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, topics.map((topic) => ({ topic, numPartitions: opts.partitions ?? 3 })));
  await admin.disconnect();
  const producer = kafka.producer({ transactionalId: uniqueName('test-producer'), idempotent: true, maxInFlightRequests: 1, createPartitioner: javaCompatiblePartitioner });
  await producer.connect();
  const pad = 'x'.repeat(Math.max(0, (opts.valueBytes ?? 200) - 60));
  const txnSize = opts.txnSize ?? 1000;
  for (const topic of topics) {
    for (let i = 0; i < n; i += txnSize) {
      const txn = await producer.transaction();
      await txn.send({ topic, messages: Array.from({ length: Math.min(txnSize, n - i) }, (_, j) => ({ key: String(i + j), value: JSON.stringify({ ind: i + j, topic, pad }) })) });
      await txn.commit();
    }
  }
  await producer.disconnect();
}

export interface LandedObject {
  key: string;
  topic: string;
  partition: number;
  start: number;
  last: number;
  lines: string[];
}

export async function readLanded(s3: S3Client, bucket: string, topicsDir: string, topics: string[]): Promise<LandedObject[]> {
  const out: LandedObject[] = [];
  for (const topic of topics) {
    for (const key of await listKeys(s3, bucket, `${topicsDir}/${topic}/`)) {
      const parsed = parseObjectKey(key)!;
      const meta = await headMetadata(s3, bucket, key);
      const lines = (await getText(s3, bucket, key)).split('\n').filter((l) => l !== '');
      out.push({ key, topic, partition: parsed.partition, start: parsed.startOffset, last: Number(meta['pinflow-last-offset'] ?? parsed.startOffset + lines.length - 1), lines });
    }
  }
  return out;
}

/**
 * The bucket holds every committed record of `topics` exactly once: objects of a partition
 * do not overlap, and each object's lines are the values of the records in its offset range
 * (minus dead letters), in offset order. Compared by (topic, partition, offset) with what the
 * Java client reads read_committed (test/helpers/java-consumer.ts): an independent reader, so
 * a kafkajs bug shared by the landing and the check cannot hide.
 */
export async function assertLandedExactlyOnce(
  brokers: string[],
  s3: S3Client,
  bucket: string,
  topics: string[],
  expectedRecords: number,
  opts: { topicsDir?: string; deadOffsets?: Set<string> } = {},
): Promise<{ records: JavaRecord[]; objects: LandedObject[] }> {
  const records = await javaConsume(brokers, topics, { timeoutMs: 120_000 });
  assert.equal(records.length, expectedRecords, 'records on the topics (Java consumer, read_committed)');
  const objects = await readLanded(s3, bucket, opts.topicsDir ?? 'topics', topics);
  const byPartition = new Map<string, JavaRecord[]>();
  for (const r of records) byPartition.set(`${r.topic}/${r.partition}`, [...(byPartition.get(`${r.topic}/${r.partition}`) ?? []), r]);
  const landed = new Set<string>();
  for (const [tp, recs] of byPartition) {
    recs.sort((a, b) => a.offset - b.offset);
    const objs = objects.filter((o) => `${o.topic}/${o.partition}` === tp).sort((a, b) => a.start - b.start);
    for (let i = 1; i < objs.length; i++) assert.ok(objs[i]!.start > objs[i - 1]!.last, `${objs[i]!.key} overlaps ${objs[i - 1]!.key}`);
    for (const o of objs) {
      const inRange = recs.filter((r) => r.offset >= o.start && r.offset <= o.last && !opts.deadOffsets?.has(`${tp}/${r.offset}`));
      assert.deepEqual(o.lines.map((l) => JSON.parse(l)), inRange.map((r) => JSON.parse(r.value!.toString('utf8'))), `${o.key}: lines are the records ${o.start}..${o.last}`);
      for (const r of inRange) {
        const id = `${tp}/${r.offset}`;
        assert.ok(!landed.has(id), `${id} landed twice`);
        landed.add(id);
      }
    }
  }
  const missing = records.filter((r) => !landed.has(`${r.topic}/${r.partition}/${r.offset}`) && !opts.deadOffsets?.has(`${r.topic}/${r.partition}/${r.offset}`));
  assert.equal(missing.length, 0, `${missing.length} records not landed, e.g. ${missing.slice(0, 3).map((r) => `${r.topic}/${r.partition}/${r.offset}`)}`);
  return { records, objects };
}

/** A landing run's manifest (the objects it wrote), read back from the bucket. */
export async function readManifest(s3: S3Client, bucket: string, key: string | null): Promise<{ objects: string[]; deadLetterObjects: string[]; manifest: LandingManifest | null }> {
  if (key === null) return { objects: [], deadLetterObjects: [], manifest: null };
  const manifest = JSON.parse(await getText(s3, bucket, key)) as LandingManifest;
  return { manifest, objects: manifest.partitions.flatMap((p) => p.objects), deadLetterObjects: manifest.partitions.flatMap((p) => p.deadLetterObjects) };
}
