/**
 * In-memory stand-ins for the two adapters the interval resolver (activities/intervals.ts)
 * reads, for unit tests without a server:
 *
 * - `FakeKafka`: topics of partitions, each a log of record timestamps by offset with a log
 *   start (offsets below it are gone, as after retention). Its admin answers `listTopics`,
 *   `fetchTopicOffsets` (low = log start, high = end of the log) and
 *   `fetchTopicOffsetsByTimestamp` as kafkajs does: the first retained offset whose timestamp
 *   is at or after the instant, else the high watermark.
 * - `FakeS3`: a bucket of text objects with user metadata. Its client answers ListObjectsV2
 *   (pages of `pageSize` keys), GetObject, HeadObject and PutObject (If-None-Match: * refused
 *   with 412 on a taken key).
 *
 * Both append what they are asked to a shared `trace` (`list <prefix>`, `kafka <call>`), so a
 * test can tell what happened between heartbeats.
 */
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Admin } from 'kafkajs';
import { guarded } from '../../common/errors';

export interface FakePartition {
  /** The first retained offset: the records below it are gone. */
  logStart: number;
  /** Each record's timestamp (ms), by offset; the log ends at `timestamps.length`. */
  timestamps: number[];
}

export class FakeKafka {
  readonly topics = new Map<string, FakePartition[]>();
  constructor(private readonly trace: string[] = []) {}

  private partitions(topic: string): FakePartition[] {
    const ps = this.topics.get(topic);
    if (!ps) throw Object.assign(new Error(`This server does not host this topic-partition: ${topic}`), { type: 'UNKNOWN_TOPIC_OR_PARTITION' });
    return ps;
  }

  readonly admin = {
    listTopics: async () => {
      this.trace.push('kafka listTopics');
      return [...this.topics.keys()];
    },
    fetchTopicOffsets: async (topic: string) => {
      this.trace.push(`kafka fetchTopicOffsets ${topic}`);
      return this.partitions(topic).map((p, partition) => {
        const high = String(p.timestamps.length);
        return { partition, offset: high, high, low: String(p.logStart) };
      });
    },
    fetchTopicOffsetsByTimestamp: async (topic: string, timestamp?: number) => {
      this.trace.push(`kafka fetchTopicOffsetsByTimestamp ${topic} ${new Date(timestamp ?? 0).toISOString()}`);
      return this.partitions(topic).map((p, partition) => {
        let offset = p.timestamps.length;
        for (let o = p.logStart; o < p.timestamps.length; o++) {
          if (p.timestamps[o]! >= (timestamp ?? 0)) {
            offset = o;
            break;
          }
        }
        return { partition, offset: String(offset) };
      });
    },
  };

  /** What activities/intervals.ts takes from the Kafka adapter. */
  adapter() {
    const admin = this.admin as unknown as Admin;
    return {
      admin: async () => admin,
      guard: <T>(fn: () => Promise<T>) => guarded('Kafka', 'fake-kafka:9092', fn),
    };
  }
}

interface Stored {
  body: string;
  metadata: Record<string, string>;
}

const s3Error = (name: string, status: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });

export class FakeS3 {
  readonly objects = new Map<string, Stored>();
  /** Keys per ListObjectsV2 page. */
  pageSize = 1000;
  readonly bucket = 'fake-bucket';
  constructor(private readonly trace: string[] = []) {}

  put(key: string, body: string, metadata: Record<string, string> = {}): void {
    this.objects.set(key, { body, metadata });
  }

  keys(prefix = ''): string[] {
    return [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  private async send(cmd: unknown): Promise<unknown> {
    if (cmd instanceof ListObjectsV2Command) {
      const { Prefix = '', ContinuationToken, StartAfter } = cmd.input;
      this.trace.push(`list ${Prefix}`);
      const after = ContinuationToken ?? StartAfter ?? '';
      const all = this.keys(Prefix).filter((k) => k > after);
      const page = all.slice(0, this.pageSize);
      const truncated = all.length > page.length;
      return { Contents: page.map((Key) => ({ Key })), IsTruncated: truncated, NextContinuationToken: truncated ? page.at(-1) : undefined };
    }
    if (cmd instanceof GetObjectCommand) {
      const o = this.objects.get(cmd.input.Key!);
      if (!o) throw s3Error('NoSuchKey', 404);
      return { Body: { transformToString: async () => o.body }, Metadata: o.metadata };
    }
    if (cmd instanceof HeadObjectCommand) {
      const o = this.objects.get(cmd.input.Key!);
      if (!o) throw s3Error('NotFound', 404);
      return { Metadata: o.metadata, ContentLength: Buffer.byteLength(o.body) };
    }
    if (cmd instanceof PutObjectCommand) {
      const key = cmd.input.Key!;
      if (cmd.input.IfNoneMatch === '*' && this.objects.has(key)) throw s3Error('PreconditionFailed', 412);
      const body = cmd.input.Body;
      this.objects.set(key, { body: Buffer.isBuffer(body) ? body.toString('utf8') : String(body), metadata: cmd.input.Metadata ?? {} });
      return {};
    }
    throw new Error(`FakeS3 does not answer ${(cmd as object).constructor.name}`);
  }

  /** What activities/intervals.ts takes from the S3 adapter. */
  adapter() {
    const client = { send: (cmd: unknown) => this.send(cmd), config: { isCustomEndpoint: true } } as unknown as S3Client;
    return { client: () => client, bucket: this.bucket, address: 'fake-s3:7070' };
  }
}
