/**
 * A local HTTP endpoint that records webhook calls (the daily pipeline's alerts), for tests.
 *
 * Every POST is recorded (path with query, headers, raw and parsed JSON body) and answered 200
 * `{"ok":true}`, unless answers were scripted for the call's key: the `prefix` field of its JSON
 * body (`*` for a body without one). `script(key, ...answers)` queues answers for that key, one
 * per call, in order (then 200 again); an answer is a status with an optional body and headers,
 * or `hang` (never answered: the caller's timeout).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface WebhookCall {
  method: string;
  /** Path and query as received. */
  url: string;
  headers: http.IncomingHttpHeaders;
  raw: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  body: Record<string, unknown> | undefined;
}

export type WebhookAnswer = { status: number; body?: string; headers?: Record<string, string> } | 'hang';

export interface WebhookEndpoint {
  /** `http://127.0.0.1:<port>`. */
  origin: string;
  calls: WebhookCall[];
  /** The calls whose body's `prefix` is `prefix`. */
  callsFor(prefix: string): WebhookCall[];
  script(key: string, ...answers: WebhookAnswer[]): void;
  close(): Promise<void>;
}

export async function startWebhookEndpoint(): Promise<WebhookEndpoint> {
  const calls: WebhookCall[] = [];
  const scripts = new Map<string, WebhookAnswer[]>();
  const hanging = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (raw += d));
    req.on('end', () => {
      let body: Record<string, unknown> | undefined;
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        body = undefined;
      }
      calls.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, raw, body });
      const key = typeof body?.prefix === 'string' ? body.prefix : '*';
      const answer = scripts.get(key)?.shift() ?? { status: 200, body: '{"ok":true}', headers: { 'Content-Type': 'application/json' } };
      if (answer === 'hang') {
        hanging.add(res);
        return;
      }
      res.writeHead(answer.status, answer.headers ?? {});
      res.end(answer.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    calls,
    callsFor: (prefix) => calls.filter((c) => c.body?.prefix === prefix),
    script(key, ...answers) {
      scripts.set(key, [...(scripts.get(key) ?? []), ...answers]);
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
