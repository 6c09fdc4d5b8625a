/**
 * Kafka adapter (kafkajs): the only module that talks to the broker.
 *
 * `createKafka(config)` is the one factory of kafkajs clients in the project (activities,
 * commands, the stack's health check, benchmarks, tests): every client gets the configured
 * TLS (`KAFKA_SSL`, `KAFKA_SSL_CA`, mutual TLS with `KAFKA_SSL_CERT`/`KAFKA_SSL_KEY`) and SASL
 * (`KAFKA_SASL_MECHANISM`: PLAIN, SCRAM-SHA-256/512, or AWS MSK IAM as OAUTHBEARER).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel, Partitioners, type Admin, type KafkaConfig, type Message, type Producer, type ProducerConfig, type SASLOptions } from 'kafkajs';
import { addressOf, type Config } from '../config';
import { guarded } from '../common/errors';
import { describeKafkaSecurity } from '../config/kafka-security';
import type { SystemCheck } from '../common/types';
import { mskIamTokenProvider } from './kafka-msk-iam';

/**
 * Refuses to run with an unpatched kafkajs (an install with --ignore-scripts skips
 * patches/kafkajs+2.2.4.patch): read_committed consumers would then receive records of
 * transactions that two producers aborted in the reverse order of their starts. Checked on
 * every `createKafka` (microseconds: four records through kafkajs's own filter).
 */
export function assertKafkajsPatched(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const filter = require('kafkajs/src/consumer/filterAbortedMessages') as (a: { messages: unknown[]; abortedTransactions: unknown[] }) => unknown[];
  const data = (offset: number, producerId: string) => ({ offset: String(offset), key: Buffer.from('k'), isControlRecord: false, batchContext: { producerId, inTransaction: true } });
  const abort = (offset: number, producerId: string) => ({ offset: String(offset), key: Buffer.from([0, 0, 0, 0]), isControlRecord: true, batchContext: { producerId, inTransaction: true } });
  // A begins at 0, B at 1; B aborts first: the broker lists B before A.
  const kept = filter({ messages: [data(0, '1'), data(1, '2'), abort(2, '2'), abort(3, '1')], abortedTransactions: [{ producerId: '2', firstOffset: '1' }, { producerId: '1', firstOffset: '0' }] });
  if (kept.some((m) => !(m as { isControlRecord: boolean }).isControlRecord)) {
    throw new Error('kafkajs is not patched (patches/kafkajs+2.2.4.patch): run `npm ci` without --ignore-scripts, or `npx patch-package`; unpatched, read_committed consumers can receive aborted records');
  }
}

export function createKafka(config: Config, overrides: Partial<KafkaConfig> = {}): Kafka {
  assertKafkajsPatched();
  return new Kafka({
    clientId: config.kafka.clientId,
    brokers: config.kafka.brokers,
    connectionTimeout: 3_000,
    requestTimeout: 30_000,
    // kafkajs retries inside a call; Temporal retries the activity around it. Keep the inner
    // loop short so an outage surfaces as an activity retry visible in the UI. A failed SASL
    // authentication is not retried by kafkajs at all (non-retriable), a failed certificate
    // check only by this short loop; both then fail the activity non-retryably (errors.ts).
    retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 3_000 },
    logLevel: config.logLevel === 'DEBUG' ? logLevel.INFO : logLevel.NOTHING,
    ...kafkaSecurityOptions(config.kafka),
    ...overrides,
  });
}

/**
 * kafkajs's `ssl` and `sasl` options for the configured security (none: plaintext). AWS MSK
 * IAM: a token provider of its own per call, i.e. per client, whose connections share its
 * cached token.
 */
export function kafkaSecurityOptions(k: Config['kafka']): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  const read = (file: string | undefined) => (file === undefined ? undefined : fs.readFileSync(file, 'utf8'));
  const ssl = k.ssl && (k.ssl.caFile || k.ssl.certFile ? { ca: k.ssl.caFile ? [read(k.ssl.caFile)!] : undefined, cert: read(k.ssl.certFile), key: read(k.ssl.keyFile) } : true);
  let sasl: SASLOptions | undefined;
  const s = k.sasl;
  if (s?.mechanism === 'aws-msk-iam') {
    sasl = { mechanism: 'oauthbearer', oauthBearerProvider: mskIamTokenProvider({ region: s.region }) };
  } else if (s) {
    sasl = { mechanism: s.mechanism, username: s.username, password: s.password } as SASLOptions;
  }
  return { ...(ssl && { ssl }), ...(sasl && { sasl }) };
}

/** The Java client's murmur2 partitioner, so records of one key land where MSK put them. */
export const javaCompatiblePartitioner = Partitioners.DefaultPartitioner;

export interface TopicBatch {
  topic: string;
  messages: Message[];
}

/** Creates topics that do not exist yet (idempotent). */
export async function ensureTopics(admin: Admin, topics: Array<{ topic: string; numPartitions: number }>): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t.topic));
  if (missing.length === 0) return;
  await admin.createTopics({ topics: missing.map((t) => ({ ...t, replicationFactor: -1 })), waitForLeaders: true });
}

/** Under the broker's default message.max.bytes (1 MiB) per partition, with room for overhead. */
export const MAX_REQUEST_BYTES = 768 * 1024;

/**
 * Splits topic batches into sends of at most `maxBytes` of keys and values each, so no
 * partition's record batch can exceed the broker's message.max.bytes.
 */
export function chunksBySize(batches: TopicBatch[], maxBytes: number): TopicBatch[][] {
  const out: TopicBatch[][] = [];
  let current: TopicBatch[] = [];
  let size = 0;
  for (const b of batches) {
    let messages: Message[] = [];
    for (const m of b.messages) {
      const bytes = (m.value ? Buffer.byteLength(m.value as string) : 0) + (m.key ? Buffer.byteLength(m.key as string) : 0) + 64;
      if (size + bytes > maxBytes && size > 0) {
        if (messages.length) current.push({ topic: b.topic, messages });
        out.push(current);
        current = [];
        messages = [];
        size = 0;
      }
      messages.push(m);
      size += bytes;
    }
    if (messages.length) current.push({ topic: b.topic, messages });
  }
  if (current.length) out.push(current);
  return out;
}

/**
 * A transactional producer's settings (the emulation's lanes, and the benchmark's bare
 * transactional baseline): idempotent, one request in flight, the Java client's partitioner.
 */
export function transactionalProducerConfig(transactionalId: string): ProducerConfig {
  return { transactionalId, idempotent: true, maxInFlightRequests: 1, transactionTimeout: 60_000, createPartitioner: javaCompatiblePartitioner };
}

/**
 * Exactly-once batches across activity retries and worker crashes.
 *
 * Each batch is sent in one Kafka transaction that also commits a progress marker: the
 * offset `seq + 1` of the marker group on the progress topic (a TxnOffsetCommit, atomic with
 * the records). Before sending, `batchesCommitted` reads that offset: a batch whose marker is
 * already there was committed by an earlier attempt and is not sent again. A crashed attempt's
 * open transaction is aborted when the next attempt initialises the same transactional id
 * (fencing the zombie), so read_committed consumers never see its records.
 */
export class TransactionalSender {
  private producers = new Map<string, { producer: Producer; busy: boolean; committed?: number }>();
  constructor(
    private readonly kafka: () => Kafka,
    private readonly admin: () => Promise<Admin>,
  ) {}

  async batchesCommitted(groupId: string, topic: string): Promise<number> {
    const [offsets] = await (await this.admin()).fetchOffsets({ groupId, topics: [topic] });
    const o = offsets?.partitions.find((p) => p.partition === 0)?.offset ?? '-1';
    return Math.max(0, Number(o));
  }

  /**
   * Sends `batches` with the marker `seq + 1` in one transaction, unless the marker shows the
   * batch was already committed. The marker is read after the producer is initialised: a new
   * producer's InitProducerId completes (or aborts) any transaction an earlier attempt left
   * behind, so the offset read then is settled.
   */
  async sendOnce(transactionalId: string, groupId: string, markerTopic: string, seq: number, batches: TopicBatch[], onChunk: () => void = () => {}): Promise<'sent' | 'already-committed'> {
    const { producer, committedByUs } = await this.acquire(transactionalId);
    try {
      // A producer that committed batch seq-1 itself knows the marker without asking: any
      // other committer would have had to initialise this transactional id, fencing it, and
      // its commit below would then fail. Otherwise read the marker (settled, see above).
      let committed = committedByUs ?? (await this.batchesCommitted(groupId, markerTopic));
      for (let i = 0; committed < seq && i < 30; i++) {
        await sleep(100);
        committed = await this.batchesCommitted(groupId, markerTopic);
      }
      if (committed > seq) {
        this.release(transactionalId, producer, true);
        return 'already-committed';
      }
      if (committed < seq) {
        throw new Error(`progress marker ${groupId} says ${committed} batches committed but batch ${seq} is next; waiting for it to settle`);
      }
      const txn = await producer.transaction();
      try {
        for (const chunk of chunksBySize(batches, MAX_REQUEST_BYTES)) {
          await txn.sendBatch({ topicMessages: chunk, acks: -1 });
          onChunk();
        }
        await txn.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: markerTopic, partitions: [{ partition: 0, offset: String(seq + 1) }] }] });
        await txn.commit();
      } catch (err) {
        await txn.abort().catch(() => undefined);
        throw err;
      }
      this.release(transactionalId, producer, true, seq + 1);
      return 'sent';
    } catch (err) {
      this.release(transactionalId, producer, false);
      throw err;
    }
  }

  /** A connected producer for this transactional id; a new one (fencing the old) if it is busy. */
  private async acquire(transactionalId: string): Promise<{ producer: Producer; committedByUs?: number }> {
    const cached = this.producers.get(transactionalId);
    if (cached && !cached.busy) {
      cached.busy = true;
      return { producer: cached.producer, committedByUs: cached.committed };
    }
    const producer = this.kafka().producer(transactionalProducerConfig(transactionalId));
    await producer.connect();
    this.producers.set(transactionalId, { producer, busy: true });
    return { producer };
  }

  private release(transactionalId: string, producer: Producer, healthy: boolean, committed?: number): void {
    const cached = this.producers.get(transactionalId);
    if (healthy && cached?.producer === producer) {
      cached.busy = false;
      if (committed !== undefined) cached.committed = committed;
      return;
    }
    if (cached?.producer === producer) this.producers.delete(transactionalId);
    void producer.disconnect().catch(() => undefined);
  }

  async close(): Promise<void> {
    const all = [...this.producers.values()];
    this.producers.clear();
    await Promise.allSettled(all.map((p) => p.producer.disconnect()));
  }
}

export interface KafkaDeps {
  /** The kafkajs client to use instead of one built from the config (tests wrap it to inject faults). */
  createKafka?: (config: Config) => Kafka;
}

export function kafkaAdapter(config: Config, deps: KafkaDeps = {}) {
  const address = addressOf(config, 'kafka');
  let kafka: Kafka | undefined;
  const getKafka = () => (kafka ??= (deps.createKafka ?? createKafka)(config));
  let admin: Promise<Admin> | undefined;
  const getAdmin = () =>
    (admin ??= (async () => {
      const a = getKafka().admin();
      await a.connect();
      return a;
    })().catch((err) => {
      admin = undefined;
      throw err;
    }));
  const sender = new TransactionalSender(getKafka, getAdmin);

  const activities = {
    /** Doctor: produce a message to `<prefix>.doctor` and consume it back. */
    async checkKafka(): Promise<SystemCheck> {
      return guarded('Kafka', address, async () => {
        const k = getKafka();
        const topic = `${config.prefix}.doctor`;
        const nonce = randomUUID();
        const started = performance.now();
        const admin = k.admin();
        await admin.connect();
        try {
          await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
          const producer = k.producer({ createPartitioner: javaCompatiblePartitioner });
          await producer.connect();
          let offset: string;
          try {
            const [meta] = await producer.send({ topic, messages: [{ key: 'doctor', value: nonce }] });
            offset = meta!.baseOffset!;
          } finally {
            await producer.disconnect();
          }
          const groupId = `${config.kafka.clientId}-doctor-${nonce}`;
          const consumer = k.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 1_000 });
          await consumer.connect();
          try {
            let markSeen = () => {};
            const seen = new Promise<void>((resolve) => (markSeen = resolve));
            await consumer.subscribe({ topic, fromBeginning: false });
            await consumer.run({
              eachMessage: async ({ message }) => {
                if (message.value?.toString() === nonce) markSeen();
              },
            });
            consumer.seek({ topic, partition: 0, offset });
            await withTimeout(seen, 15_000, `message at offset ${offset} of ${topic} not consumed back`);
          } finally {
            await consumer.disconnect();
          }
          await admin.deleteGroups([groupId]).catch(() => undefined);
        } finally {
          await admin.disconnect();
        }
        const latencyMs = Math.round(performance.now() - started);
        return { system: 'kafka', address, latencyMs, detail: `produced and consumed on ${topic} over ${describeKafkaSecurity(config.kafka)}` };
      });
    },
  };

  return {
    activities,
    kafka: getKafka,
    admin: getAdmin,
    sender,
    address,
    /**
     * Runs a Kafka call with the errors classified; after an error the shared admin client is
     * dropped, so the next call (a retry) reconnects instead of reusing a broken connection.
     */
    async guard<T>(fn: () => Promise<T>): Promise<T> {
      try {
        return await guarded('Kafka', address, fn);
      } catch (err) {
        const a = admin;
        admin = undefined;
        void a?.then((x) => x.disconnect()).catch(() => undefined);
        throw err;
      }
    },
    async close() {
      await sender.close();
      const a = admin;
      admin = undefined;
      await a?.then((x) => x.disconnect()).catch(() => undefined);
      kafka = undefined;
    },
  };
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
