/**
 * A protocol-level stand-in for an Amazon RDS MySQL endpoint with IAM database authentication
 * (RDS has no local implementation). It speaks the MySQL client/server protocol the real mysql2
 * client talks to: Handshake v10 offering TLS, the SSLRequest and the TLS upgrade (with the
 * certificate it is given), HandshakeResponse41, then, like an AWSAuthenticationPlugin user, an
 * AuthSwitchRequest to mysql_clear_password. The token it receives is checked independently of
 * the AWS SDK: `verifyRdsIamToken` recomputes the SigV4 query-string signature with node:crypto
 * for the fixed test credentials and checks host:port, DBUser, region, service rds-db and the
 * 15-minute lifetime against `Date.now()` (tests may mock Date). A good token gets OK, any other
 * ERR 1045 "Access denied" (RDS does not say why; `attempts` records the reason for the test).
 * After login it answers COM_PING, COM_QUIT and any COM_QUERY with one row: CURRENT_USER().
 * `tls: false` makes it offer no TLS at all (a server without TLS). Loopback only.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';

const CLIENT = {
  LONG_PASSWORD: 0x1,
  FOUND_ROWS: 0x2,
  LONG_FLAG: 0x4,
  CONNECT_WITH_DB: 0x8,
  PROTOCOL_41: 0x200,
  SSL: 0x800,
  TRANSACTIONS: 0x2000,
  SECURE_CONNECTION: 0x8000,
  MULTI_STATEMENTS: 0x10000,
  MULTI_RESULTS: 0x20000,
  PLUGIN_AUTH: 0x80000,
  CONNECT_ATTRS: 0x100000,
  PLUGIN_AUTH_LENENC_CLIENT_DATA: 0x200000,
};

export interface StandinCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** Why `token` would be refused for `user` at `endpoint` (host:port) in `region` now, or undefined when it is good. */
export function verifyRdsIamToken(token: string, expect: { endpoint: string; user: string; region: string; credentials: StandinCredentials; now?: number }): string | undefined {
  let u: URL;
  try {
    u = new URL(`https://${token}`);
  } catch {
    return 'not a host:port/?query token';
  }
  const q = u.searchParams;
  if (u.host !== expect.endpoint) return `signed for ${u.host}, not ${expect.endpoint}`;
  if (u.pathname !== '/') return `path ${u.pathname}`;
  if (q.get('Action') !== 'connect') return 'Action is not connect';
  if (q.get('DBUser') !== expect.user) return `DBUser ${q.get('DBUser')} is not the login user ${expect.user}`;
  if (q.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') return 'not AWS4-HMAC-SHA256';
  if (q.get('X-Amz-SignedHeaders') !== 'host') return 'signed headers are not just host';
  const [keyId, date, region, service, terminator] = (q.get('X-Amz-Credential') ?? '').split('/');
  if (keyId !== expect.credentials.accessKeyId) return 'unknown access key';
  if (region !== expect.region) return `signed for region ${region}, not ${expect.region}`;
  if (service !== 'rds-db' || terminator !== 'aws4_request') return `scope ${service}/${terminator}`;
  const amzDate = q.get('X-Amz-Date') ?? '';
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!m || `${m[1]}${m[2]}${m[3]}` !== date) return 'bad X-Amz-Date';
  const signedAt = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  const expires = Number(q.get('X-Amz-Expires'));
  if (!Number.isInteger(expires) || expires < 1 || expires > 900) return `X-Amz-Expires ${q.get('X-Amz-Expires')}`;
  const now = expect.now ?? Date.now();
  if (now > signedAt + expires * 1000) return `expired ${Math.round((now - signedAt) / 1000 - expires)} s ago`;
  if (signedAt > now + 5 * 60_000) return 'signed in the future';
  // SigV4, query-string form: canonical request, string to sign, derived key (AWS docs).
  const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const canonicalQuery = [...q]
    .filter(([k]) => k !== 'X-Amz-Signature')
    .map(([k, v]) => [enc(k), enc(v)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');
  const canonicalRequest = ['GET', '/', canonicalQuery, `host:${u.host}`, '', 'host', sha256('')].join('\n');
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, `${date}/${region}/${service}/aws4_request`, sha256(canonicalRequest)].join('\n');
  const hmac = (key: crypto.BinaryLike, data: string) => crypto.createHmac('sha256', key).update(data).digest();
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${expect.credentials.secretAccessKey}`, date!), region), service), 'aws4_request');
  const signature = crypto.createHmac('sha256', signingKey).update(stringToSign).digest('hex');
  if (signature !== q.get('X-Amz-Signature')) return 'signature does not match';
  return undefined;
}

export interface StandinAttempt {
  user: string;
  tls: boolean;
  token?: string;
  /** undefined: accepted. */
  refused?: string;
}

export interface RdsIamStandin {
  host: '127.0.0.1';
  port: number;
  attempts: StandinAttempt[];
  close(): Promise<void>;
}

function packet(seq: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUIntLE(payload.length, 0, 3);
  header[3] = seq & 0xff;
  return Buffer.concat([header, payload]);
}

const lenencStr = (s: string) => {
  const b = Buffer.from(s, 'utf8');
  if (b.length >= 251) throw new Error('stand-in: string too long');
  return Buffer.concat([Buffer.from([b.length]), b]);
};
const ok = () => Buffer.from([0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00]);
const eof = () => Buffer.from([0xfe, 0x00, 0x00, 0x02, 0x00]);
function err(code: number, state: string, message: string): Buffer {
  const head = Buffer.alloc(3);
  head[0] = 0xff;
  head.writeUInt16LE(code, 1);
  return Buffer.concat([head, Buffer.from(`#${state}${message}`, 'utf8')]);
}

function handshake(connectionId: number, scramble: Buffer, offerTls: boolean): Buffer {
  const caps =
    CLIENT.LONG_PASSWORD | CLIENT.FOUND_ROWS | CLIENT.LONG_FLAG | CLIENT.CONNECT_WITH_DB | CLIENT.PROTOCOL_41 | CLIENT.TRANSACTIONS | CLIENT.SECURE_CONNECTION |
    CLIENT.MULTI_STATEMENTS | CLIENT.MULTI_RESULTS | CLIENT.PLUGIN_AUTH | CLIENT.CONNECT_ATTRS | CLIENT.PLUGIN_AUTH_LENENC_CLIENT_DATA | (offerTls ? CLIENT.SSL : 0);
  const b = Buffer.alloc(64);
  let o = 0;
  b[o++] = 0x0a;
  o += b.write('8.0.36-pinflow-rds-standin\0', o, 'latin1');
  o = b.writeUInt32LE(connectionId, o);
  o += scramble.copy(b, o, 0, 8);
  b[o++] = 0;
  o = b.writeUInt16LE(caps & 0xffff, o);
  b[o++] = 45; // utf8mb4_general_ci
  o = b.writeUInt16LE(0x0002, o);
  o = b.writeUInt16LE(caps >>> 16, o);
  b[o++] = 21;
  o += 10;
  const rest = Buffer.concat([b.subarray(0, o), scramble.subarray(8, 20), Buffer.from([0]), Buffer.from('mysql_native_password\0', 'latin1')]);
  return rest;
}

/** The user name of a HandshakeResponse41 (the rest is not needed). */
function userOf(payload: Buffer): string {
  const end = payload.indexOf(0, 32);
  return payload.subarray(32, end).toString('utf8');
}

/** Splits a byte stream into MySQL packets. */
class PacketReader {
  private buf = Buffer.alloc(0);
  push(chunk: Buffer): Array<{ seq: number; payload: Buffer }> {
    this.buf = Buffer.concat([this.buf, chunk]);
    const out: Array<{ seq: number; payload: Buffer }> = [];
    while (this.buf.length >= 4) {
      const len = this.buf.readUIntLE(0, 3);
      if (this.buf.length < 4 + len) break;
      out.push({ seq: this.buf[3]!, payload: this.buf.subarray(4, 4 + len) });
      this.buf = this.buf.subarray(4 + len);
    }
    return out;
  }
  rest(): Buffer {
    const r = this.buf;
    this.buf = Buffer.alloc(0);
    return r;
  }
}

/**
 * Starts the stand-in on 127.0.0.1 (a free port), presenting `certFile`/`keyFile` (PEM) over TLS.
 * Tokens must be signed for `endpointHost`:port (default localhost, the name clients use with
 * verify-full).
 */
export async function startRdsIamStandin(opts: { region: string; credentials: StandinCredentials; certFile: string; keyFile: string; tls?: boolean; endpointHost?: string }): Promise<RdsIamStandin> {
  const secureContext = tls.createSecureContext({ cert: fs.readFileSync(opts.certFile), key: fs.readFileSync(opts.keyFile) });
  const offerTls = opts.tls !== false;
  const attempts: StandinAttempt[] = [];
  const sockets = new Set<net.Socket>();
  let nextId = 1;
  let port = 0;

  const server = net.createServer((raw) => {
    sockets.add(raw);
    raw.on('close', () => sockets.delete(raw));
    raw.on('error', () => undefined);
    const scramble = Buffer.from(crypto.randomBytes(20).map((x) => (x % 94) + 33));
    raw.write(packet(0, handshake(nextId++, scramble, offerTls)));

    let stream: net.Socket | tls.TLSSocket = raw;
    let reader = new PacketReader();
    let state: 'hello' | 'switch' | 'ready' = 'hello';
    let attempt: StandinAttempt | undefined;

    const send = (seq: number, payload: Buffer) => stream.write(packet(seq, payload));
    const onPackets = (packets: Array<{ seq: number; payload: Buffer }>) => {
      for (const { seq, payload } of packets) {
        if (state === 'hello') {
          attempt = { user: userOf(payload), tls: stream !== raw };
          attempts.push(attempt);
          if (!attempt.tls) {
            attempt.refused = 'not over TLS';
            send(seq + 1, err(1045, '28000', `Access denied for user '${attempt.user}'@'127.0.0.1' (using password: NO)`));
            stream.end();
            return;
          }
          state = 'switch';
          send(seq + 1, Buffer.concat([Buffer.from([0xfe]), Buffer.from('mysql_clear_password\0', 'latin1')]));
        } else if (state === 'switch') {
          const token = payload.subarray(0, payload.indexOf(0) < 0 ? payload.length : payload.indexOf(0)).toString('utf8');
          attempt!.token = token;
          attempt!.refused = verifyRdsIamToken(token, { endpoint: `${opts.endpointHost ?? 'localhost'}:${port}`, user: attempt!.user, region: opts.region, credentials: opts.credentials });
          if (attempt!.refused) {
            send(seq + 1, err(1045, '28000', `Access denied for user '${attempt!.user}'@'127.0.0.1' (using password: YES)`));
            stream.end();
            return;
          }
          state = 'ready';
          send(seq + 1, ok());
        } else {
          const command = payload[0];
          if (command === 0x01) {
            stream.end();
          } else if (command === 0x0e) {
            send(1, ok());
          } else if (command === 0x03) {
            const column = Buffer.concat([lenencStr('def'), lenencStr(''), lenencStr(''), lenencStr(''), lenencStr('CURRENT_USER()'), lenencStr(''), Buffer.from([0x0c, 45, 0, 0, 1, 0, 0, 0xfd, 0, 0, 0, 0, 0])]);
            send(1, Buffer.from([1]));
            send(2, column);
            send(3, eof());
            send(4, lenencStr(`${attempt!.user}@%`));
            send(5, eof());
          } else {
            send(1, err(1047, '08S01', 'Unknown command'));
          }
        }
      }
    };

    raw.on('data', (chunk) => {
      const packets = reader.push(chunk);
      // An SSLRequest (32 bytes, CLIENT_SSL) switches the connection to TLS; what follows it is the ClientHello.
      const first = packets[0];
      if (state === 'hello' && stream === raw && offerTls && first && first.payload.length === 32 && first.payload.readUInt32LE(0) & CLIENT.SSL) {
        const leftover = Buffer.concat([...packets.slice(1).map((p) => packet(p.seq, p.payload)), reader.rest()]);
        raw.removeAllListeners('data');
        // A JS duplex between the socket and TLS, so bytes already read (the ClientHello) are not lost.
        const bridge = new Duplex({
          read() {},
          write(chunk: Buffer, _enc, cb) {
            raw.write(chunk, cb);
          },
          final(cb) {
            raw.end();
            cb();
          },
        });
        if (leftover.length) bridge.push(leftover);
        raw.on('data', (d) => bridge.push(d));
        raw.on('end', () => bridge.push(null));
        const secure = new tls.TLSSocket(bridge, { isServer: true, secureContext });
        secure.on('error', () => raw.destroy());
        stream = secure;
        reader = new PacketReader();
        secure.on('data', (d: Buffer) => onPackets(reader.push(d)));
        return;
      }
      onPackets(packets);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  port = (server.address() as net.AddressInfo).port;
  return {
    host: '127.0.0.1',
    port,
    attempts,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
