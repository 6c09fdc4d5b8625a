/**
 * Kafka topic ids (KIP-516): the broker's identity of a topic incarnation, which changes when a
 * topic is deleted and created again under the same name. kafkajs 2.2.4 speaks Metadata only
 * up to v6, before topic ids; this module sends one Metadata v10 request (brokers 2.8+) over a
 * connection of the project's own kafkajs client, so TLS and SASL settings apply unchanged.
 *
 * Contract: `fetchTopicIds(kafka, topics)` returns each topic's id as a 32-digit hex string, or
 * null for every topic when the broker predates topic ids (the caller then checks offsets only).
 * It relies on two kafkajs internals, pinned with kafkajs itself: the Kafka object's private
 * cluster factory and a broker's connection pool `send({ request, response })`.
 */
import type { Kafka } from 'kafkajs';

// kafkajs's protocol codec: same package, not part of its typed API.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Encoder = require('kafkajs/src/protocol/encoder') as new () => KEncoder;

interface KEncoder {
  writeInt8(v: number): KEncoder;
  writeBoolean(v: boolean): KEncoder;
  writeUVarInt(v: number): KEncoder;
  writeUVarIntString(v: string | null): KEncoder;
  writeBuffer(v: Buffer): KEncoder;
}
interface KDecoder {
  readInt16(): number;
  readInt32(): number;
  readBoolean(): boolean;
  readUVarInt(): number;
  readUVarIntString(): string | null;
  readBytes(n: number): Buffer;
  readTaggedFields(): unknown;
  readUVarIntArray<T>(reader: (d: KDecoder) => T): T[] | null;
}
interface KBroker {
  versions?: Record<number, { minVersion: number; maxVersion: number }>;
  connectionPool: { send(protocol: unknown): Promise<unknown> };
}
interface KCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  brokerPool: { seedBroker: KBroker };
}

const METADATA = 3;
const VERSION = 10;
const NO_ERROR = 0;
const UNKNOWN_TOPIC = 3;

export interface TopicIdentity {
  topic: string;
  /** 32 hex digits, or null where the broker has no topic ids or the topic does not exist. */
  topicId: string | null;
}

function metadataV10(topics: string[]) {
  return {
    request: {
      apiKey: METADATA,
      apiVersion: VERSION,
      apiName: 'Metadata',
      encode: async () => {
        const e = new Encoder();
        // Request header v2 is kafkajs's v1 header plus an empty tagged-field section.
        e.writeUVarInt(0);
        e.writeUVarInt(topics.length + 1);
        for (const t of topics) e.writeBuffer(Buffer.alloc(16)).writeUVarIntString(t).writeUVarInt(0);
        // allow_auto_topic_creation, include_cluster_authorized_operations, include_topic_authorized_operations
        e.writeBoolean(false).writeBoolean(false).writeBoolean(false).writeUVarInt(0);
        return e;
      },
    },
    response: {
      decode: async (raw: Buffer) => {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const Decoder = require('kafkajs/src/protocol/decoder') as new (b: Buffer) => KDecoder;
        const d = new Decoder(raw);
        d.readTaggedFields(); // response header v1
        d.readInt32(); // throttle_time_ms
        d.readUVarIntArray((b) => {
          b.readInt32();
          b.readUVarIntString();
          b.readInt32();
          b.readUVarIntString();
          b.readTaggedFields();
        });
        d.readUVarIntString(); // cluster_id
        d.readInt32(); // controller_id
        const out = d.readUVarIntArray((b) => {
          const errorCode = b.readInt16();
          const name = b.readUVarIntString();
          const id = b.readBytes(16);
          b.readBoolean();
          b.readUVarIntArray((p) => {
            p.readInt16();
            p.readInt32();
            p.readInt32();
            p.readInt32();
            p.readUVarIntArray((r) => r.readInt32());
            p.readUVarIntArray((r) => r.readInt32());
            p.readUVarIntArray((r) => r.readInt32());
            p.readTaggedFields();
          });
          b.readInt32();
          b.readTaggedFields();
          return { errorCode, name: name ?? '', id };
        });
        return out ?? [];
      },
      parse: async (data: unknown) => data,
    },
  };
}

/** The topic id of each topic (see the module comment). */
export async function fetchTopicIds(kafka: Kafka, topics: string[]): Promise<TopicIdentity[]> {
  if (topics.length === 0) return [];
  const factory = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:createCluster');
  if (!factory) throw new Error('kafkajs internals changed: no cluster factory (topic ids need kafkajs 2.2.x)');
  const cluster = (kafka as unknown as Record<symbol, (o: object) => KCluster>)[factory]!({ allowAutoTopicCreation: false, metadataMaxAge: 300_000 });
  try {
    await cluster.connect();
    const broker = cluster.brokerPool.seedBroker;
    const supported = broker.versions?.[METADATA];
    if (supported && supported.maxVersion < VERSION) return topics.map((topic) => ({ topic, topicId: null }));
    const rows = (await broker.connectionPool.send(metadataV10(topics))) as Array<{ errorCode: number; name: string; id: Buffer }>;
    return topics.map((topic) => {
      const row = rows.find((r) => r.name === topic);
      if (!row || row.errorCode === UNKNOWN_TOPIC) return { topic, topicId: null };
      if (row.errorCode !== NO_ERROR) throw new Error(`Metadata for topic ${topic} failed with Kafka error code ${row.errorCode}`);
      const hex = row.id.toString('hex');
      return { topic, topicId: /^0+$/.test(hex) ? null : hex };
    });
  } finally {
    await cluster.disconnect().catch(() => undefined);
  }
}
