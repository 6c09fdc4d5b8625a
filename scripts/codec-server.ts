/**
 * npm run codec-server -- [--port 8888] [--host 127.0.0.1]
 *
 * A Temporal codec server (the HTTP protocol the Web UI and the CLI speak): POST .../decode
 * and POST .../encode take `{"payloads": [{"metadata": {k: base64}, "data": base64}]}` and
 * answer the same shape, run through pinflow's AES-256-GCM codec (workers/codec.ts) with the
 * configured keys. Only the final path segment counts, so `/decode`, `/default/decode` and
 * `/decode?preserveStorageRefs=true` are all the decode endpoint.
 *
 * Access: every encode/decode needs the token CODEC_SERVER_TOKEN, either as
 * `Authorization: Bearer <token>` (the CLI: `--codec-auth "Bearer <token>"`; scripts), or
 * as the session cookie the server's own page (GET /) sets after the token is entered there
 * (the Web UI, whose requests carry cookies when "Include cross-origin credentials" is on in
 * its Codec Server settings). Anything else: 401. A request naming another namespace in
 * X-Namespace: 403.
 *
 * CORS: only the Web UI's origin (the origin of TEMPORAL_UI_URL) gets CORS headers (and
 * credentials); a preflight or request from any other origin is refused (403) without them.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload } from '@temporalio/common';
import { ConfigError, type Config } from '../config';
import { AesGcmCodec, keyringOf, PayloadDecryptionError } from '../workers/codec';
import { defineCommand, parseCommandLine, UsageError } from '../cli/args';
import { runCli } from '../cli/command';

const MAX_BODY_BYTES = 16 * 1024 * 1024;
const SESSION_COOKIE = 'pinflow_codec_session';
const SESSION_SECONDS = 12 * 3600;
const ALLOWED_HEADERS = 'Authorization, Content-Type, X-Namespace';

export interface CodecServerOptions {
  port?: number;
  host?: string;
  /** One line per request (never payload contents). Default: none. */
  log?: (line: string) => void;
}

export interface RunningCodecServer {
  server: http.Server;
  url: string;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** What the codec server needs from the configuration, or a ConfigError naming what is missing. */
function requireSettings(config: Config): { codec: AesGcmCodec; token: string } {
  const problems: string[] = [];
  const keyring = keyringOf(config);
  if (!keyring) problems.push('TEMPORAL_ENCRYPTION_KEY (or TEMPORAL_ENCRYPTION_KEY_FILE) is required by the codec server: there is nothing to decode without a key (not set)');
  if (!config.codecServer.token) problems.push('CODEC_SERVER_TOKEN is required by the codec server: it answers only requests carrying it (not set)');
  if (problems.length) throw new ConfigError(problems);
  return { codec: new AesGcmCodec(keyring!), token: config.codecServer.token! };
}

const digest = (s: string) => createHash('sha256').update(s).digest();
const sameSecret = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));
const sessionValue = (token: string) => createHmac('sha256', token).update('pinflow codec server session v1').digest('hex');

function cookie(req: http.IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

function authorized(req: http.IncomingMessage, token: string): boolean {
  const auth = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
  if (auth) return sameSecret(auth[1]!.trim(), token);
  const session = cookie(req, SESSION_COOKIE);
  return session !== undefined && sameSecret(session, sessionValue(token));
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, `request body over ${MAX_BODY_BYTES} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;
function bytes(v: unknown, what: string): Uint8Array {
  if (v === undefined || v === null) return new Uint8Array();
  if (typeof v !== 'string' || !BASE64.test(v)) throw new HttpError(400, `${what} must be a base64 string`);
  return new Uint8Array(Buffer.from(v, 'base64'));
}

/** Payloads from the protocol's JSON (proto3 JSON of temporal.api.common.v1.Payloads). */
export function payloadsFromJson(body: unknown): Payload[] {
  const list = (body as { payloads?: unknown } | null)?.payloads;
  if (!Array.isArray(list)) throw new HttpError(400, 'body must be {"payloads": [...]}');
  return list.map((p, i) => {
    if (typeof p !== 'object' || p === null) throw new HttpError(400, `payloads[${i}] must be an object`);
    const { metadata, data } = p as { metadata?: unknown; data?: unknown };
    if (metadata !== undefined && (typeof metadata !== 'object' || metadata === null)) throw new HttpError(400, `payloads[${i}].metadata must be an object`);
    const meta: Record<string, Uint8Array> = {};
    for (const [k, v] of Object.entries((metadata ?? {}) as Record<string, unknown>)) meta[k] = bytes(v, `payloads[${i}].metadata.${k}`);
    return { metadata: meta, data: bytes(data, `payloads[${i}].data`) };
  });
}

export function payloadsToJson(payloads: Payload[]): { payloads: Array<{ metadata: Record<string, string>; data: string }> } {
  const b64 = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('base64');
  return {
    payloads: payloads.map((p) => ({
      metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, b64(v)])),
      data: b64(p.data),
    })),
  };
}

const loginPage = (message: string, signedIn: boolean) => `<!doctype html>
<html><head><meta charset="utf-8"><title>pinflow codec server</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto">
<h1>pinflow codec server</h1>
<p>${message}</p>
${
  signedIn
    ? '<p>In the Temporal Web UI, open the Codec Server settings, keep this endpoint and turn on <b>Include cross-origin credentials</b>: the UI then decrypts payloads through this server.</p>'
    : `<form method="post" action="/session"><label>CODEC_SERVER_TOKEN <input type="password" name="token" autocomplete="off" size="40"></label> <button type="submit">Sign in this browser</button></form>`
}
</body></html>
`;

/** Starts the codec server; resolves once it listens. */
export async function startCodecServer(config: Config, opts: CodecServerOptions = {}): Promise<RunningCodecServer> {
  const { codec, token } = requireSettings(config);
  const uiOrigin = new URL(config.temporal.uiUrl).origin;
  const namespace = config.temporal.namespace;
  const log = opts.log ?? (() => {});

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<{ status: number; note?: string }> {
    const url = new URL(req.url ?? '/', 'http://codec.invalid');
    const origin = req.headers.origin;
    const fromUi = origin !== undefined && origin === uiOrigin;
    if (fromUi) {
      res.setHeader('Access-Control-Allow-Origin', uiOrigin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
    }
    res.setHeader('Vary', 'Origin');
    const send = (status: number, body: unknown, type = 'application/json') => {
      const text = type === 'application/json' ? JSON.stringify(body) : String(body);
      res.writeHead(status, { 'Content-Type': `${type}; charset=utf-8`, 'Cache-Control': 'no-store' }).end(text);
      return { status };
    };
    const fail = (status: number, message: string) => send(status, { error: message });

    if (req.method === 'OPTIONS') {
      // A CORS preflight: answered for the UI's origin only.
      if (!fromUi) return fail(403, `origin ${origin ?? '(none)'} is not allowed: only ${uiOrigin} (TEMPORAL_UI_URL)`);
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', ALLOWED_HEADERS);
      res.setHeader('Access-Control-Max-Age', '600');
      if (req.headers['access-control-request-private-network'] === 'true') res.setHeader('Access-Control-Allow-Private-Network', 'true');
      res.writeHead(204).end();
      return { status: 204 };
    }
    if (origin !== undefined && !fromUi && url.pathname !== '/session') {
      return fail(403, `origin ${origin} is not allowed: only ${uiOrigin} (TEMPORAL_UI_URL)`);
    }

    // This server's own page: sign a browser in (sets the session cookie the UI's requests carry).
    if (url.pathname === '/' && req.method === 'GET') {
      const signedIn = authorized(req, token);
      return send(200, loginPage(signedIn ? 'This browser is signed in.' : 'Sign this browser in to let the Temporal Web UI decrypt payloads through this server.', signedIn), 'text/html');
    }
    if (url.pathname === '/session' && req.method === 'POST') {
      const form = new URLSearchParams((await readBody(req)).toString('utf8'));
      if (!sameSecret(form.get('token') ?? '', token)) return send(401, loginPage('Wrong token.', false), 'text/html');
      res.setHeader('Set-Cookie', `${SESSION_COOKIE}=${sessionValue(token)}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_SECONDS}`);
      return send(200, loginPage('This browser is signed in.', true), 'text/html');
    }

    const op = url.pathname.split('/').filter(Boolean).pop();
    if (op !== 'encode' && op !== 'decode') return fail(404, 'not found: POST /encode or /decode');
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST, OPTIONS');
      return fail(405, `${req.method} not allowed: POST /${op}`);
    }
    if (!authorized(req, token)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="pinflow codec server"');
      return fail(401, 'missing or wrong token: send Authorization: Bearer <CODEC_SERVER_TOKEN>');
    }
    const ns = req.headers['x-namespace'];
    if (typeof ns === 'string' && ns !== '' && ns !== namespace) return fail(403, `this codec server serves namespace "${namespace}", not "${ns}"`);

    let body: unknown;
    try {
      body = JSON.parse((await readBody(req)).toString('utf8'));
    } catch (err) {
      if (err instanceof HttpError) throw err;
      return fail(400, 'body must be JSON: {"payloads": [...]}');
    }
    const payloads = payloadsFromJson(body);
    try {
      const out = op === 'encode' ? await codec.encode(payloads) : await codec.decode(payloads);
      send(200, payloadsToJson(out));
      return { status: 200, note: `${payloads.length} payloads` };
    } catch (err) {
      if (err instanceof PayloadDecryptionError) return fail(400, err.message);
      throw err;
    }
  }

  const server = http.createServer((req, res) => {
    const t0 = performance.now();
    handle(req, res)
      .catch((err: unknown) => {
        const status = err instanceof HttpError ? err.status : 500;
        if (!res.headersSent) res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' }).end(JSON.stringify({ error: (err as Error).message }));
        return { status, note: undefined };
      })
      .then(({ status, note }) => {
        log(`${req.method} ${(req.url ?? '/').split('?')[0]} ${status}${note ? ` ${note}` : ''} ${Math.round(performance.now() - t0)} ms`);
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? config.codecServer.port, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    server,
    url: `http://${host}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export const COMMAND = defineCommand({
  script: 'codec-server',
  options: {
    port: { value: 'PORT', help: 'the TCP port (default CODEC_SERVER_PORT, 8888)' },
    host: { value: 'HOST', help: 'the address to listen on (default 127.0.0.1)' },
  },
  about:
    "A Temporal codec server for the Web UI and the CLI: POST /encode and /decode through pinflow's AES-256-GCM codec with the configured keys. " +
    "Every request needs CODEC_SERVER_TOKEN (Authorization: Bearer, or the session cookie the server's own page sets); CORS only for the Web UI's origin.",
});

/** The options -> where to listen; UsageError for a port that is not one. */
export function parseCodecServerArgs(argv: string[]): { port?: number; host?: string } {
  const opts = parseCommandLine(COMMAND, argv).values;
  const port = opts.port !== undefined ? Number(opts.port) : undefined;
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) throw new UsageError(`--port ${opts.port}: must be a TCP port`);
  return { port, host: opts.host };
}

if (require.main === module) {
  runCli(COMMAND, async (config, argv) => {
    const running = await startCodecServer(config, { ...parseCodecServerArgs(argv), log: (l) => console.log(l) });
    console.log(`codec server on ${running.url} for namespace "${config.temporal.namespace}" (encrypting with key ${config.encryption!.keyId}); CORS for ${new URL(config.temporal.uiUrl).origin} only`);
    console.log(
      `Web UI: sign the browser in at ${running.url}/, then in the UI's Codec Server settings enter ${running.url}, turn on "Include cross-origin credentials" and "Use my browser setting"`,
    );
    console.log(`CLI:    temporal workflow show -w <id> --codec-endpoint ${running.url} --codec-auth "Bearer $CODEC_SERVER_TOKEN"`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await running.close();
  });
}
