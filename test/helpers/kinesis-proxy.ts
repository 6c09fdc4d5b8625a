/**
 * A fault-injecting proxy in front of the local kinesalite, for tests: it forwards every
 * request unchanged, except the ones a fault is queued for, which it answers the way Kinesis
 * does when throttling (HTTP 400, `ProvisionedThroughputExceededException`), when an iterator
 * is too old (`ExpiredIteratorException`), or, for PutRecords, by forwarding only some records
 * and reporting the others as failed (FailedRecordCount, per-record ErrorCode). Loopback only.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type KinesisOp = 'PutRecords' | 'GetRecords' | 'GetShardIterator' | 'ListShards' | string;

export interface ProxyRequest {
  op: KinesisOp;
  at: number;
  /** What the proxy did: forwarded, throttled, expired, or partial (some records refused). */
  outcome: 'forwarded' | 'throttled' | 'expired' | 'partial';
}

export interface KinesisProxy {
  endpoint: string;
  requests: ProxyRequest[];
  /** Answer the next `n` requests of `op` with 400 ProvisionedThroughputExceededException. */
  throttle(op: KinesisOp, n: number): void;
  /** Answer the next `n` GetRecords with 400 ExpiredIteratorException. */
  expireIterators(n: number): void;
  /** For the next `n` PutRecords, refuse every `every`-th record (index 0, every, 2*every, ...). */
  partialPutFailures(n: number, every: number): void;
  pending(): number;
  close(): Promise<void>;
}

const AMZ_JSON = 'application/x-amz-json-1.1';

export async function startKinesisProxy(target: string): Promise<KinesisProxy> {
  const upstream = new URL(target);
  const queues = { throttle: new Map<string, number>(), expire: 0, partial: { n: 0, every: 2 } };
  const requests: ProxyRequest[] = [];
  const agent = new http.Agent({ keepAlive: true });

  const answer = (res: http.ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': AMZ_JSON, 'Content-Length': Buffer.byteLength(text), 'x-amzn-RequestId': 'proxy' });
    res.end(text);
  };

  const forward = (req: http.IncomingMessage, body: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const headers = { ...req.headers, host: upstream.host, 'content-length': String(body.length) };
      const up = http.request({ host: upstream.hostname, port: Number(upstream.port), method: req.method, path: req.url, headers, agent }, (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => resolve({ status: r.statusCode ?? 502, headers: r.headers, body: Buffer.concat(chunks) }));
        r.on('error', reject);
      });
      up.on('error', reject);
      up.end(body);
    });

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const op = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
      const left = queues.throttle.get(op) ?? 0;
      if (left > 0) {
        queues.throttle.set(op, left - 1);
        requests.push({ op, at: Date.now(), outcome: 'throttled' });
        return answer(res, 400, { __type: 'ProvisionedThroughputExceededException', message: 'Rate exceeded for shard (pinflow test proxy).' });
      }
      if (op === 'GetRecords' && queues.expire > 0) {
        queues.expire--;
        requests.push({ op, at: Date.now(), outcome: 'expired' });
        return answer(res, 400, { __type: 'ExpiredIteratorException', message: 'Iterator expired (pinflow test proxy).' });
      }
      try {
        if (op === 'PutRecords' && queues.partial.n > 0) {
          queues.partial.n--;
          const every = queues.partial.every;
          const parsed = JSON.parse(body.toString('utf8')) as { StreamName: string; Records: unknown[] };
          const keep = parsed.Records.map((_, i) => i % every !== 0);
          const kept = parsed.Records.filter((_, i) => keep[i]);
          let results: unknown[] = [];
          if (kept.length) {
            const up = await forward(req, Buffer.from(JSON.stringify({ ...parsed, Records: kept })));
            if (up.status !== 200) {
              res.writeHead(up.status, up.headers);
              return res.end(up.body);
            }
            results = (JSON.parse(up.body.toString('utf8')) as { Records: unknown[] }).Records;
          }
          let j = 0;
          const merged = keep.map((k) => (k ? results[j++] : { ErrorCode: 'ProvisionedThroughputExceededException', ErrorMessage: 'Rate exceeded for shard (pinflow test proxy).' }));
          requests.push({ op, at: Date.now(), outcome: 'partial' });
          return answer(res, 200, { FailedRecordCount: keep.filter((k) => !k).length, Records: merged });
        }
        const up = await forward(req, body);
        requests.push({ op, at: Date.now(), outcome: 'forwarded' });
        res.writeHead(up.status, up.headers);
        res.end(up.body);
      } catch (err) {
        res.writeHead(502, { 'Content-Type': 'text/plain' });
        res.end(`proxy: ${(err as Error).message}`);
      }
    });
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    throttle: (op, n) => void queues.throttle.set(op, (queues.throttle.get(op) ?? 0) + n),
    expireIterators: (n) => void (queues.expire += n),
    partialPutFailures: (n, every) => void (queues.partial = { n: queues.partial.n + n, every }),
    pending: () => [...queues.throttle.values()].reduce((a, b) => a + b, 0) + queues.expire + queues.partial.n,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        agent.destroy();
        server.close(() => resolve());
      }),
  };
}
