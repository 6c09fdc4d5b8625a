/**
 * A local Kafka REST proxy (Confluent v2 produce API) for tests: checks each request the way
 * the real proxy does (content type, body shape) and forwards the records to the real broker.
 *
 * Credentials, when configured: `basic` makes it check `Authorization: Basic` as the Confluent
 * proxy's basic authentication does (401 with WWW-Authenticate when missing or wrong);
 * `apiKey` makes it check a header as API Gateway checks `x-api-key` (403 {"message":
 * "Forbidden"} when missing or wrong). `echoCredentials` makes its error bodies repeat the
 * credentials it received (a leaky proxy, to prove pinflow redacts them). Injected failures
 * (`failNext`) may carry a Retry-After header. Every request is logged with its time and answer.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Kafka, Producer } from 'kafkajs';
import { javaCompatiblePartitioner } from '../../adapters/kafka';

export interface RestProxyOptions {
  basic?: { username: string; password: string };
  apiKey?: { header: string; value: string };
  echoCredentials?: boolean;
}

export interface ProxyRequestLog {
  at: number;
  topic?: string;
  status: number;
  records: number;
}

export interface RestProxy {
  url: string;
  requests: Array<{ topic: string; records: number }>;
  rejected: string[];
  /** Every request, accepted or not, in arrival order. */
  log: ProxyRequestLog[];
  /** Makes the next `n` requests answer `status` (to test error handling), optionally with Retry-After. */
  failNext(n: number, status: number, opts?: { retryAfter?: string }): void;
  /** Pending injected failures. */
  pendingFailures(): number;
  close(): Promise<void>;
}

export async function startRestProxy(kafka: Kafka, options: RestProxyOptions = {}): Promise<RestProxy> {
  const producer: Producer = kafka.producer({ createPartitioner: javaCompatiblePartitioner });
  await producer.connect();
  const requests: RestProxy['requests'] = [];
  const rejected: string[] = [];
  const log: ProxyRequestLog[] = [];
  let failures: { n: number; status: number; retryAfter?: string } = { n: 0, status: 500 };
  const server = http.createServer((req, res) => {
    let body = '';
    const at = Date.now();
    const m = /^\/topics\/([^/]+)$/.exec(req.url ?? '');
    const topic = m ? decodeURIComponent(m[1]!) : undefined;
    const received = [req.headers.authorization, options.apiKey ? req.headers[options.apiKey.header.toLowerCase()] : undefined].filter(Boolean).join(' ');
    const echo = options.echoCredentials ? ` (received: ${received || 'no credentials'})` : '';
    const reject = (status: number, code: number, message: string, headers: Record<string, string> = {}, payload?: unknown) => {
      rejected.push(message);
      log.push({ at, topic, status, records: 0 });
      res.writeHead(status, { 'Content-Type': 'application/vnd.kafka.v2+json', ...headers }).end(JSON.stringify(payload ?? { error_code: code, message: message + echo }));
    };
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      void (async () => {
        if (req.method !== 'POST' || !m) return reject(404, 40401, `no route ${req.method} ${req.url}`);
        if (options.basic) {
          const expected = `Basic ${Buffer.from(`${options.basic.username}:${options.basic.password}`).toString('base64')}`;
          if (req.headers.authorization !== expected) {
            return reject(401, 40101, 'Unauthorized: bad or missing basic credentials', { 'WWW-Authenticate': 'Basic realm="kafka-rest"' });
          }
        }
        if (options.apiKey && req.headers[options.apiKey.header.toLowerCase()] !== options.apiKey.value) {
          // API Gateway's answer to a missing or wrong API key.
          return reject(403, 40301, 'Forbidden', {}, { message: `Forbidden${echo}` });
        }
        if (failures.n > 0) {
          failures.n--;
          return reject(failures.status, failures.status * 100, `injected failure ${failures.status}`, failures.retryAfter !== undefined ? { 'Retry-After': failures.retryAfter } : {});
        }
        if (req.headers['content-type'] !== 'application/vnd.kafka.json.v2+json') return reject(415, 41501, `bad content type ${req.headers['content-type']}`);
        let parsed: { records?: Array<{ key?: unknown; value?: unknown }> };
        try {
          parsed = JSON.parse(body);
        } catch {
          return reject(422, 42201, 'body is not JSON');
        }
        const records = parsed.records;
        if (!Array.isArray(records) || records.some((r) => typeof r.key !== 'string' || typeof r.value !== 'object' || r.value === null)) {
          return reject(422, 42202, 'records must be [{key: string, value: object}]');
        }
        const meta = await producer.send({ topic: topic!, acks: -1, messages: records.map((r) => ({ key: r.key as string, value: JSON.stringify(r.value) })) });
        requests.push({ topic: topic!, records: records.length });
        log.push({ at, topic, status: 200, records: records.length });
        res.writeHead(200, { 'Content-Type': 'application/vnd.kafka.v2+json' }).end(
          JSON.stringify({ offsets: records.map(() => ({ partition: meta[0]?.partition ?? 0, offset: 0, error_code: null, error: null })) }),
        );
      })().catch((err) => reject(500, 50001, String(err)));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    rejected,
    log,
    failNext: (n, status, opts = {}) => void (failures = { n, status, retryAfter: opts.retryAfter }),
    pendingFailures: () => failures.n,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await producer.disconnect();
    },
  };
}
