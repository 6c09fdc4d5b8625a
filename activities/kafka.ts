/** Kafka adapter (kafkajs): the only module that talks to the broker. */
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, Partitioners, type KafkaConfig } from 'kafkajs';
import { addressOf, type Config } from '../common/config';
import { guarded } from '../common/errors';
import type { SystemCheck } from '../common/types';

export function createKafka(config: Config, overrides: Partial<KafkaConfig> = {}): Kafka {
  return new Kafka({
    clientId: config.kafka.clientId,
    brokers: config.kafka.brokers,
    connectionTimeout: 3_000,
    requestTimeout: 30_000,
    // kafkajs retries inside a call; Temporal retries the activity around it. Keep the inner
    // loop short so an outage surfaces as an activity retry visible in the UI.
    retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 3_000 },
    logLevel: config.logLevel === 'DEBUG' ? logLevel.INFO : logLevel.NOTHING,
    ...overrides,
  });
}

/** The Java client's murmur2 partitioner, so records of one key land where MSK put them. */
export const javaCompatiblePartitioner = Partitioners.DefaultPartitioner;

export function kafkaAdapter(config: Config) {
  const address = addressOf(config, 'kafka');
  let kafka: Kafka | undefined;
  const getKafka = () => (kafka ??= createKafka(config));

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
        return { system: 'kafka', address, latencyMs, detail: `produced and consumed on ${topic}` };
      });
    },
  };

  return {
    activities,
    kafka: getKafka,
    async close() {
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
