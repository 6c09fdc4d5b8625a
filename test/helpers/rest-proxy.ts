/**
 * A local Kafka REST proxy (Confluent v2 produce API) for tests: checks each request the way
 * the real proxy does (content type, body shape) and forwards the records to the real broker.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Kafka, Producer } from 'kafkajs';
import { javaCompatiblePartitioner } from '../../activities/kafka';

export interface RestProxy {
  url: string;
  requests: Array<{ topic: string; records: number }>;
  rejected: string[];
  /** Makes the next `n` requests answer `status` (to test error handling). */
  failNext(n: number, status: number): void;
  close(): Promise<void>;
}

export async function startRestProxy(kafka: Kafka): Promise<RestProxy> {
  const producer: Producer = kafka.producer({ createPartitioner: javaCompatiblePartitioner });
  await producer.connect();
  const requests: RestProxy['requests'] = [];
  const rejected: string[] = [];
  let failures: { n: number; status: number } = { n: 0, status: 500 };
  const reject = (res: http.ServerResponse, status: number, code: number, message: string) => {
    rejected.push(message);
    res.writeHead(status, { 'Content-Type': 'application/vnd.kafka.v2+json' }).end(JSON.stringify({ error_code: code, message }));
  };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      void (async () => {
        const m = /^\/topics\/([^/]+)$/.exec(req.url ?? '');
        if (req.method !== 'POST' || !m) return reject(res, 404, 40401, `no route ${req.method} ${req.url}`);
        if (failures.n > 0) {
          failures.n--;
          return reject(res, failures.status, failures.status * 100, `injected failure ${failures.status}`);
        }
        if (req.headers['content-type'] !== 'application/vnd.kafka.json.v2+json') return reject(res, 415, 41501, `bad content type ${req.headers['content-type']}`);
        let parsed: { records?: Array<{ key?: unknown; value?: unknown }> };
        try {
          parsed = JSON.parse(body);
        } catch {
          return reject(res, 422, 42201, 'body is not JSON');
        }
        const records = parsed.records;
        if (!Array.isArray(records) || records.some((r) => typeof r.key !== 'string' || typeof r.value !== 'object' || r.value === null)) {
          return reject(res, 422, 42202, 'records must be [{key: string, value: object}]');
        }
        const topic = decodeURIComponent(m[1]!);
        const meta = await producer.send({ topic, acks: -1, messages: records.map((r) => ({ key: r.key as string, value: JSON.stringify(r.value) })) });
        requests.push({ topic, records: records.length });
        res.writeHead(200, { 'Content-Type': 'application/vnd.kafka.v2+json' }).end(
          JSON.stringify({ offsets: records.map(() => ({ partition: meta[0]?.partition ?? 0, offset: 0, error_code: null, error: null })) }),
        );
      })().catch((err) => reject(res, 500, 50001, String(err)));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    rejected,
    failNext: (n, status) => void (failures = { n, status }),
    async close() {
      await new Promise((r) => server.close(r));
      await producer.disconnect();
    },
  };
}
