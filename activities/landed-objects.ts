/**
 * What the bucket holds of a partition, read from the landed objects' names and metadata:
 * where landing resumes (after the last object) and which objects a range of offsets wrote.
 * Shared by the landing activities and the interval resolver (activities/intervals.ts).
 */
import { objectKey, parseObjectKey, partitionPrefix } from '../common/landing';
import { getText, headMetadata, listKeys, type s3Adapter } from '../adapters/s3';

type S3 = Pick<ReturnType<typeof s3Adapter>, 'client' | 'bucket'>;

/**
 * Where landing resumes in a partition (after the bucket's last object for it) and which topic
 * incarnation wrote it; null when nothing is landed. `onPage`: called after each listing page.
 */
export async function resumePoint(s3: S3, topicsDir: string, topic: string, partition: number, onPage?: () => void): Promise<{ next: number; topicId: string | null } | null> {
  const keys = (await listKeys(s3.client(), s3.bucket, partitionPrefix(topicsDir, topic, partition), undefined, onPage))
    .map((k) => ({ k, parsed: parseObjectKey(k) }))
    .filter((x) => x.parsed && x.parsed.topic === topic && x.parsed.partition === partition);
  if (keys.length === 0) return null;
  const last = keys.reduce((a, b) => (b.parsed!.startOffset > a.parsed!.startOffset ? b : a));
  const meta = await headMetadata(s3.client(), s3.bucket, last.k);
  const topicId = meta['pinflow-topic-id'] || null;
  if (meta['pinflow-next-offset']) return { next: Number(meta['pinflow-next-offset']), topicId };
  // Written by the Confluent sink: consecutive offsets, one record a line.
  const lines = (await getText(s3.client(), s3.bucket, last.k)).split('\n').filter((l) => l.trim() !== '').length;
  return { next: last.parsed!.startOffset + Math.max(1, lines), topicId };
}

/** Keys under `dir` of objects of `topic`/`partition` whose first offset is in [from, next), in offset order. */
export async function objectsInRange(s3: S3, dir: string, topic: string, partition: number, from: number, next: number): Promise<string[]> {
  const keys = await listKeys(s3.client(), s3.bucket, partitionPrefix(dir, topic, partition), objectKey(dir, topic, partition, from).replace(/\.json$/, ''));
  const out: string[] = [];
  for (const k of keys) {
    const p = parseObjectKey(k);
    if (!p || p.topic !== topic || p.partition !== partition) continue;
    if (p.startOffset >= next) break;
    if (p.startOffset >= from) out.push(k);
  }
  return out;
}
