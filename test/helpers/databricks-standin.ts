/**
 * Protocol-level stand-ins for Databricks, for tests: the real clients (`@databricks/sql`'s
 * DBSQLClient, and `fetch` for the Jobs API) talk to them over loopback.
 *
 * - `startSqlWarehouse()`: a TCLIService endpoint the way a SQL warehouse serves it: Thrift
 *   binary protocol in HTTP POST bodies (`application/x-thrift`, one message per request) at
 *   the warehouse's HTTP path, over TLS (the driver always dials https). The generated
 *   TCLIService processor that ships inside `@databricks/sql` decodes the requests and encodes
 *   the answers, so the bytes on the wire are the ones the driver's own codec expects.
 * - `startJobsApi()`: the Jobs API 2.1 `runs/submit`, `runs/get`, `runs/cancel` over HTTP.
 *   A `runs/submit` with an idempotency token already seen launches nothing and answers the
 *   run that token launched, as Databricks does.
 *
 * Both check the bearer token, record what they received, and take injected faults
 * (429/503 with Retry-After for the next N requests); the Jobs API can also drop answers.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { thrift as dbThrift } from '@databricks/sql';
import { PROJECT_ROOT } from '../../config';

// ---------------------------------------------------------------------------------------------
// Thrift plumbing. `thrift` ships no type declarations; these are the few members used here.

interface ThriftTransport {
  readCursor: number;
  commitPosition(): void;
  rollbackPosition(): void;
}
interface ThriftProtocol {
  readMessageBegin(): { fname: string; mtype: number; rseqid: number };
}
interface ThriftLib {
  TBufferedTransport: {
    new (buffer: undefined, onFlush: (buf: Buffer) => void): ThriftTransport;
    receiver(cb: (transport: ThriftTransport, seqid?: number) => void, seqid?: number): (data: Buffer) => void;
  };
  TBinaryProtocol: new (transport: ThriftTransport) => ThriftProtocol;
}
const thriftLib = createRequire(__filename)('thrift') as ThriftLib;

/** node-int64 values as the Thrift codec reads them. */
interface I64 {
  toNumber(allowImprecise?: boolean): number;
}
const num = (v: unknown): number | undefined =>
  v === undefined || v === null ? undefined : typeof v === 'number' ? v : (v as I64).toNumber(true);

const T = dbThrift.TCLIService_types;

// ---------------------------------------------------------------------------------------------
// TLS: the driver always speaks https, so the warehouse stand-in needs a certificate.

export interface TlsMaterial {
  key: string;
  cert: string;
}
let tlsMaterial: TlsMaterial | undefined;

/** A throwaway self-signed certificate for 127.0.0.1 / localhost (made once per process with openssl). */
export function selfSignedCertificate(): TlsMaterial {
  if (tlsMaterial) return tlsMaterial;
  const tmpRoot = path.join(PROJECT_ROOT, '.cache', 'tmp');
  fs.mkdirSync(tmpRoot, { recursive: true });
  const dir = fs.mkdtempSync(path.join(tmpRoot, 'dbx-tls-'));
  try {
    const keyFile = path.join(dir, 'key.pem');
    const certFile = path.join(dir, 'cert.pem');
    const res = spawnSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
        '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyFile, '-out', certFile],
      { encoding: 'utf8' },
    );
    if (res.status !== 0) throw new Error(`openssl could not make a test certificate: ${res.error?.message ?? res.stderr}`);
    tlsMaterial = { key: fs.readFileSync(keyFile, 'utf8'), cert: fs.readFileSync(certFile, 'utf8') };
    return tlsMaterial;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Shared: fault injection and bearer-token checks.

export interface Fault {
  status: number;
  /** Retry-After header value in seconds (omitted when undefined). */
  retryAfter?: number;
  /** Only requests of this Thrift method (SQL) or path suffix (Jobs) consume the fault. */
  only?: string;
}

class Faults {
  private queue: Fault[] = [];
  add(n: number, fault: Fault) {
    for (let i = 0; i < n; i++) this.queue.push(fault);
  }
  /** The fault this request gets, if any (consumed). */
  take(key: string): Fault | undefined {
    const i = this.queue.findIndex((f) => f.only === undefined || key === f.only || key.endsWith(f.only));
    return i < 0 ? undefined : this.queue.splice(i, 1)[0];
  }
  get pending() {
    return this.queue.length;
  }
}

function bearer(req: http.IncomingMessage): string | undefined {
  const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
  return m?.[1];
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function listen(server: http.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

// ---------------------------------------------------------------------------------------------
// SQL warehouse (TCLIService over Thrift binary / HTTP).

export type ColumnType = 'string' | 'bigint' | 'int' | 'double' | 'boolean' | 'timestamp' | 'date' | 'decimal' | 'array' | 'map' | 'struct';
export interface ResultSet {
  columns: Array<{ name: string; type: ColumnType }>;
  /** One array per row, in column order. `null` is SQL NULL. Complex values may be given as JS values (sent as JSON text). */
  rows: unknown[][];
}
export interface SqlFailure {
  error: {
    message: string;
    sqlState?: string;
    /**
     * Where the server reports it: `execute` answers ExecuteStatement itself with ERROR_STATUS
     * (as Databricks does for parse errors); `status` lets the operation reach ERROR_STATE,
     * seen through GetOperationStatus or the direct results (analysis and runtime errors).
     */
    at?: 'execute' | 'status';
  };
}
/** Decides the outcome of each statement. `undefined` means a statement without a result set (DDL/DML). */
export type SqlHandler = (sql: string) => ResultSet | SqlFailure | undefined;

export interface SqlWarehouseOptions {
  token: string;
  handler?: SqlHandler;
  /** GetOperationStatus answers PENDING then RUNNING this many times before the final state. Default 0. */
  pollsBeforeFinish?: number;
  /** The most rows one FetchResults (or the direct results) carries. Default 1000. */
  batchSize?: number;
  /** Answer ExecuteStatement with direct results when the client asks (as Databricks does). Default true. */
  directResults?: boolean;
  /** HTTP path of the warehouse. Default `/sql/1.0/warehouses/<random id>`. */
  httpPath?: string;
  /** Status for a request with a wrong or missing token. Default 401. */
  wrongTokenStatus?: 401 | 403;
  /** serverProtocolVersion answered to OpenSession. Default SPARK_CLI_SERVICE_PROTOCOL_V8. */
  serverProtocolVersion?: number;
}

export interface HttpRequestRecord {
  /** Thrift method (SQL) or `METHOD path` (Jobs). */
  call: string;
  path: string;
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The request was handled but its answer never sent: the connection was closed instead (Jobs `dropResponses`). */
  dropped?: boolean;
}

export interface SessionRecord {
  id: string;
  clientProtocol?: number;
  initialCatalog?: string;
  initialSchema?: string;
  configuration: Record<string, string>;
  closed: boolean;
}

export interface OperationRecord {
  id: string;
  sessionId: string;
  sql: string;
  /** GetOperationStatus calls answered so far. */
  polls: number;
  /** FetchResults calls answered with data rows. */
  fetches: number;
  /** Batches of rows sent (direct results included). */
  batches: number[];
  closed: boolean;
  cancelled: boolean;
  /** The ExecuteStatement request as decoded (for assertions on what the client asked). */
  request: {
    runAsync?: boolean;
    directResultsMaxRows?: number;
    canReadArrowResult?: boolean;
    canDownloadResult?: boolean;
    canDecompressLZ4Result?: boolean;
  };
}

export interface SqlWarehouse {
  /** `127.0.0.1:<port>`, what DATABRICKS_HOST would hold. */
  host: string;
  url: string;
  httpPath: string;
  /** The PEM certificate the server presents (self-signed): pass it as the client's trusted CA. */
  ca: string;
  /** Every statement the server executed, in order, with the session and the token it came with. */
  statements: Array<{ sql: string; sessionId: string; token: string }>;
  sessions: SessionRecord[];
  operations: OperationRecord[];
  /** Every HTTP request, answered or refused. */
  requests: HttpRequestRecord[];
  tokensSeen: Set<string>;
  /** Answer the next `n` matching requests with `status` (and Retry-After when given), then serve normally. */
  failNext(n: number, status: number, opts?: { retryAfter?: number; only?: string }): void;
  pendingFaults(): number;
  setHandler(handler: SqlHandler): void;
  setPollsBeforeFinish(n: number): void;
  calls(method: string): number;
  close(): Promise<void>;
}

type TStatus = InstanceType<typeof T.TStatus>;
type TGetOperationStatusResp = InstanceType<typeof T.TGetOperationStatusResp>;
type TOperationHandle = InstanceType<typeof T.TOperationHandle>;
type TSessionHandle = InstanceType<typeof T.TSessionHandle>;
type TColumn = InstanceType<typeof T.TColumn>;
type Reqs = {
  TOpenSessionReq: InstanceType<typeof T.TOpenSessionReq>;
  TCloseSessionReq: InstanceType<typeof T.TCloseSessionReq>;
  TExecuteStatementReq: InstanceType<typeof T.TExecuteStatementReq>;
  TGetOperationStatusReq: InstanceType<typeof T.TGetOperationStatusReq>;
  TGetResultSetMetadataReq: InstanceType<typeof T.TGetResultSetMetadataReq>;
  TFetchResultsReq: InstanceType<typeof T.TFetchResultsReq>;
  TCloseOperationReq: InstanceType<typeof T.TCloseOperationReq>;
  TCancelOperationReq: InstanceType<typeof T.TCancelOperationReq>;
};
type Req<K extends keyof Reqs> = Reqs[K];
const ok = (): TStatus => new T.TStatus({ statusCode: T.TStatusCode.SUCCESS_STATUS });
const invalidHandle = (what: string): TStatus =>
  new T.TStatus({ statusCode: T.TStatusCode.INVALID_HANDLE_STATUS, errorMessage: `Invalid ${what}`, sqlState: 'HY000' });

const typeIds: Record<ColumnType, number> = {
  string: T.TTypeId.STRING_TYPE,
  bigint: T.TTypeId.BIGINT_TYPE,
  int: T.TTypeId.INT_TYPE,
  double: T.TTypeId.DOUBLE_TYPE,
  boolean: T.TTypeId.BOOLEAN_TYPE,
  timestamp: T.TTypeId.TIMESTAMP_TYPE,
  date: T.TTypeId.DATE_TYPE,
  decimal: T.TTypeId.DECIMAL_TYPE,
  array: T.TTypeId.ARRAY_TYPE,
  map: T.TTypeId.MAP_TYPE,
  struct: T.TTypeId.STRUCT_TYPE,
};

/** One column of a column-based TRowSet: values plus a null bitmap (bit i of byte i/8, LSB first). */
function encodeColumn(type: ColumnType, values: unknown[]): TColumn {
  const nulls = Buffer.alloc(Math.ceil(values.length / 8));
  values.forEach((v, i) => {
    if (v === null || v === undefined) nulls[i >> 3]! |= 1 << (i & 7);
  });
  const pick = <D>(dflt: D, conv: (v: unknown) => D) => values.map((v) => (v === null || v === undefined ? dflt : conv(v)));
  switch (type) {
    case 'bigint':
      // The codec writes plain numbers as i64 (node-int64 underneath).
      return new T.TColumn({ i64Val: new T.TI64Column({ values: pick(0, (v) => Number(v)) as never, nulls }) });
    case 'int':
      return new T.TColumn({ i32Val: new T.TI32Column({ values: pick(0, (v) => Number(v)), nulls }) });
    case 'double':
      return new T.TColumn({ doubleVal: new T.TDoubleColumn({ values: pick(0, (v) => Number(v)), nulls }) });
    case 'boolean':
      return new T.TColumn({ boolVal: new T.TBoolColumn({ values: pick(false, (v) => Boolean(v)), nulls }) });
    case 'array':
    case 'map':
    case 'struct':
      // Without Arrow, Databricks sends complex values as JSON text.
      return new T.TColumn({ stringVal: new T.TStringColumn({ values: pick('', (v) => (typeof v === 'string' ? v : JSON.stringify(v))), nulls }) });
    default:
      return new T.TColumn({ stringVal: new T.TStringColumn({ values: pick('', (v) => String(v)), nulls }) });
  }
}

const hex = (b: Buffer | undefined) => (b ? Buffer.from(b).toString('hex') : '');
/** Handles carry a UUID (the driver prints them as UUIDs and rejects other bytes) and a secret. */
const newHandleId = () => new T.THandleIdentifier({ guid: Buffer.from(randomUUID().replace(/-/g, ''), 'hex'), secret: randomBytes(16) });

interface OpState {
  record: OperationRecord;
  answer: ResultSet | SqlFailure | undefined;
  cursor: number;
  handle: TOperationHandle;
}

export async function startSqlWarehouse(options: SqlWarehouseOptions): Promise<SqlWarehouse> {
  const tls = selfSignedCertificate();
  const httpPath = options.httpPath ?? `/sql/1.0/warehouses/standin${randomBytes(4).toString('hex')}`;
  const batchSize = options.batchSize ?? 1000;
  const useDirectResults = options.directResults ?? true;
  const protocol = options.serverProtocolVersion ?? T.TProtocolVersion.SPARK_CLI_SERVICE_PROTOCOL_V8;
  let handler: SqlHandler = options.handler ?? (() => undefined);
  let pollsBeforeFinish = options.pollsBeforeFinish ?? 0;
  const faults = new Faults();
  const statements: SqlWarehouse['statements'] = [];
  const sessions = new Map<string, SessionRecord>();
  const ops = new Map<string, OpState>();
  const requests: HttpRequestRecord[] = [];
  const tokensSeen = new Set<string>();
  let currentToken = '';

  const isFailure = (a: OpState['answer']): a is SqlFailure => a !== undefined && 'error' in a;
  const hasResultSet = (a: OpState['answer']) => a !== undefined && !isFailure(a) && a.columns.length > 0;

  /** The operation's state as of this poll: PENDING, RUNNING..., then FINISHED / ERROR. */
  function statusOf(op: OpState, countPoll: boolean): TGetOperationStatusResp {
    const rec = op.record;
    if (countPoll) rec.polls++;
    let state: number;
    if (rec.cancelled) state = T.TOperationState.CANCELED_STATE;
    else if (rec.closed) state = T.TOperationState.CLOSED_STATE;
    else if (rec.polls <= pollsBeforeFinish) state = rec.polls <= 1 ? T.TOperationState.PENDING_STATE : T.TOperationState.RUNNING_STATE;
    else state = isFailure(op.answer) ? T.TOperationState.ERROR_STATE : T.TOperationState.FINISHED_STATE;
    const e = state === T.TOperationState.ERROR_STATE && isFailure(op.answer) ? op.answer.error : undefined;
    return new T.TGetOperationStatusResp({
      status: ok(),
      operationState: state,
      hasResultSet: hasResultSet(op.answer),
      ...(e ? { sqlState: e.sqlState, errorCode: 0, errorMessage: e.message, displayMessage: e.message } : {}),
    });
  }

  function metadataOf(op: OpState) {
    const rs = op.answer as ResultSet;
    const columns = rs.columns.map(
      (c, i) =>
        new T.TColumnDesc({
          columnName: c.name,
          position: i + 1,
          typeDesc: new T.TTypeDesc({ types: [new T.TTypeEntry({ primitiveEntry: new T.TPrimitiveTypeEntry({ type: typeIds[c.type] }) })] }),
        }),
    );
    return new T.TGetResultSetMetadataResp({
      status: ok(),
      schema: new T.TTableSchema({ columns }),
      resultFormat: T.TSparkRowSetType.COLUMN_BASED_SET,
      lz4Compressed: false,
      isStagingOperation: false,
    });
  }

  function nextBatch(op: OpState, maxRows: number) {
    const rs = op.answer as ResultSet;
    const n = Math.max(0, Math.min(maxRows, batchSize, rs.rows.length - op.cursor));
    const rows = rs.rows.slice(op.cursor, op.cursor + n);
    const start = op.cursor;
    op.cursor += n;
    if (n > 0) op.record.batches.push(n);
    const columns = rs.columns.map((c, ci) => encodeColumn(c.type, rows.map((r) => r[ci])));
    return new T.TFetchResultsResp({
      status: ok(),
      hasMoreRows: op.cursor < rs.rows.length,
      results: new T.TRowSet({ startRowOffset: start as never, rows: [], columns, columnCount: columns.length }),
    });
  }

  const findOp = (h: TOperationHandle | undefined) => ops.get(hex(h?.operationId?.guid));
  const sessionOf = (h: TSessionHandle | undefined) => hex(h?.sessionId?.guid);

  const service = {
    async OpenSession(req: Req<'TOpenSessionReq'>) {
      const id = newHandleId();
      const ns = req.initialNamespace;
      const rec: SessionRecord = {
        id: hex(id.guid as Buffer),
        clientProtocol: num(req.client_protocol_i64) ?? num(req.client_protocol),
        // Unset optional strings decode as null.
        initialCatalog: ns?.catalogName ?? undefined,
        initialSchema: ns?.schemaName ?? undefined,
        configuration: req.configuration ?? {},
        closed: false,
      };
      sessions.set(rec.id, rec);
      return new T.TOpenSessionResp({
        status: ok(),
        serverProtocolVersion: protocol,
        sessionHandle: new T.TSessionHandle({ sessionId: id }),
        canUseMultipleCatalogs: true,
        initialNamespace: req.initialNamespace,
      });
    },

    async CloseSession(req: Req<'TCloseSessionReq'>) {
      const s = sessions.get(sessionOf(req.sessionHandle));
      if (!s || s.closed) return new T.TCloseSessionResp({ status: invalidHandle('SessionHandle') });
      s.closed = true;
      for (const op of ops.values()) if (op.record.sessionId === s.id) op.record.closed = true;
      return new T.TCloseSessionResp({ status: ok() });
    },

    async ExecuteStatement(req: Req<'TExecuteStatementReq'>) {
      const sessionId = sessionOf(req.sessionHandle);
      const s = sessions.get(sessionId);
      if (!s || s.closed) return new T.TExecuteStatementResp({ status: invalidHandle('SessionHandle') });
      const sql = String(req.statement);
      statements.push({ sql, sessionId, token: currentToken });
      let answer: OpState['answer'];
      try {
        answer = handler(sql);
      } catch (err) {
        answer = { error: { message: `stand-in handler threw: ${(err as Error).message}`, sqlState: 'XX000', at: 'status' } };
      }
      if (isFailure(answer) && answer.error.at === 'execute') {
        const e = answer.error;
        return new T.TExecuteStatementResp({
          status: new T.TStatus({
            statusCode: T.TStatusCode.ERROR_STATUS,
            sqlState: e.sqlState,
            errorCode: 0,
            errorMessage: e.message,
            displayMessage: e.message,
            infoMessages: [`*org.apache.hive.service.cli.HiveSQLException:${e.message}:0:0`],
          }),
        });
      }
      const id = newHandleId();
      const handle = new T.TOperationHandle({ operationId: id, operationType: T.TOperationType.EXECUTE_STATEMENT, hasResultSet: hasResultSet(answer) });
      const gdr = req.getDirectResults;
      const op: OpState = {
        answer,
        cursor: 0,
        handle,
        record: {
          id: hex(id.guid as Buffer),
          sessionId,
          sql,
          polls: 0,
          fetches: 0,
          batches: [],
          closed: false,
          cancelled: false,
          request: {
            runAsync: req.runAsync,
            directResultsMaxRows: num(gdr?.maxRows),
            canReadArrowResult: req.canReadArrowResult,
            canDownloadResult: req.canDownloadResult,
            canDecompressLZ4Result: req.canDecompressLZ4Result,
          },
        },
      };
      ops.set(op.record.id, op);
      const resp = new T.TExecuteStatementResp({ status: ok(), operationHandle: handle });
      if (useDirectResults && gdr) {
        // Like the warehouse: the current status, and when already finished the metadata and
        // the first rows; the operation is closed server-side once everything was sent.
        const status = statusOf(op, false);
        const direct = new T.TSparkDirectResults({ operationStatus: status });
        if (status.operationState === T.TOperationState.FINISHED_STATE) {
          if (hasResultSet(answer)) {
            direct.resultSetMetadata = metadataOf(op);
            direct.resultSet = nextBatch(op, num(gdr.maxRows) ?? batchSize);
          }
          if (!hasResultSet(answer) || op.cursor >= (answer as ResultSet).rows.length) {
            op.record.closed = true;
            direct.closeOperation = new T.TCloseOperationResp({ status: ok() });
          }
        }
        resp.directResults = direct;
      }
      return resp;
    },

    async GetOperationStatus(req: Req<'TGetOperationStatusReq'>) {
      const op = findOp(req.operationHandle);
      if (!op) return new T.TGetOperationStatusResp({ status: invalidHandle('OperationHandle') });
      return statusOf(op, true);
    },

    async GetResultSetMetadata(req: Req<'TGetResultSetMetadataReq'>) {
      const op = findOp(req.operationHandle);
      if (!op || op.record.closed) return new T.TGetResultSetMetadataResp({ status: invalidHandle('OperationHandle') });
      if (!hasResultSet(op.answer)) {
        return new T.TGetResultSetMetadataResp({ status: ok(), schema: new T.TTableSchema({ columns: [] }), resultFormat: T.TSparkRowSetType.COLUMN_BASED_SET });
      }
      return metadataOf(op);
    },

    async FetchResults(req: Req<'TFetchResultsReq'>) {
      const op = findOp(req.operationHandle);
      if (!op || op.record.closed) return new T.TFetchResultsResp({ status: invalidHandle('OperationHandle') });
      if (num(req.fetchType) === 1) {
        return new T.TFetchResultsResp({ status: ok(), hasMoreRows: false, results: new T.TRowSet({ startRowOffset: 0 as never, rows: [], columns: [] }) });
      }
      if (!hasResultSet(op.answer) || op.record.polls <= pollsBeforeFinish) {
        return new T.TFetchResultsResp({
          status: new T.TStatus({ statusCode: T.TStatusCode.ERROR_STATUS, errorMessage: 'No result set (or the operation has not finished)', sqlState: 'HY010' }),
        });
      }
      if (num(req.orientation) === T.TFetchOrientation.FETCH_FIRST) op.cursor = 0;
      op.record.fetches++;
      return nextBatch(op, num(req.maxRows) ?? batchSize);
    },

    async CloseOperation(req: Req<'TCloseOperationReq'>) {
      const op = findOp(req.operationHandle);
      if (!op || op.record.closed) return new T.TCloseOperationResp({ status: invalidHandle('OperationHandle') });
      op.record.closed = true;
      return new T.TCloseOperationResp({ status: ok() });
    },

    async CancelOperation(req: Req<'TCancelOperationReq'>) {
      const op = findOp(req.operationHandle);
      if (!op || op.record.closed) return new T.TCancelOperationResp({ status: invalidHandle('OperationHandle') });
      op.record.cancelled = true;
      return new T.TCancelOperationResp({ status: ok() });
    },
  };

  // Methods the stand-in does not model answer with a Thrift application exception, as a
  // server without them would.
  const handlerObject = new Proxy(service as Record<string, unknown>, {
    get(target, prop: string) {
      return target[prop] ?? (async (_req: unknown) => Promise.reject(new Error(`${prop} is not implemented by the stand-in`)));
    },
  });
  const processor = new dbThrift.TCLIService.Processor(handlerObject);

  function thriftMethodOf(body: Buffer): string {
    let name = '(unparseable)';
    try {
      thriftLib.TBufferedTransport.receiver((t) => {
        name = new thriftLib.TBinaryProtocol(t).readMessageBegin().fname;
      })(body);
    } catch {
      /* recorded as unparseable */
    }
    return name;
  }

  const server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    void (async () => {
      const body = await readBody(req);
      const urlPath = (req.url ?? '').split('?')[0]!;
      const call = req.method === 'POST' ? thriftMethodOf(body) : `${req.method} ${urlPath}`;
      const record: HttpRequestRecord = { call, path: req.url ?? '', status: 0, headers: req.headers };
      requests.push(record);
      const answer = (status: number, headers: Record<string, string> = {}, text: string | Buffer = '') => {
        record.status = status;
        res.writeHead(status, headers).end(text);
      };
      if (urlPath !== httpPath) return answer(404, { 'Content-Type': 'text/plain' }, `no warehouse at ${urlPath}`);
      if (req.method !== 'POST') return answer(405);
      const fault = faults.take(call);
      if (fault) {
        const headers: Record<string, string> = { 'Content-Type': 'text/plain' };
        if (fault.retryAfter !== undefined) headers['Retry-After'] = String(fault.retryAfter);
        return answer(fault.status, headers, `injected ${fault.status}`);
      }
      const token = bearer(req);
      if (token) tokensSeen.add(token);
      if (token !== options.token) return answer(options.wrongTokenStatus ?? 401, { 'Content-Type': 'text/plain' }, 'Invalid access token.');
      if (req.headers['content-type'] !== 'application/x-thrift') return answer(415, {}, 'expected application/x-thrift');
      currentToken = token;
      thriftLib.TBufferedTransport.receiver((input) => {
        const output = new thriftLib.TBinaryProtocol(
          new thriftLib.TBufferedTransport(undefined, (buf) => answer(200, { 'Content-Type': 'application/x-thrift' }, buf)),
        );
        try {
          processor.process(new thriftLib.TBinaryProtocol(input), output);
        } catch (err) {
          answer(500, {}, `stand-in could not process ${call}: ${(err as Error).message}`);
        }
      })(body);
    })().catch((err) => {
      if (!res.headersSent) res.writeHead(500).end(String(err));
    });
  });
  const port = await listen(server);

  return {
    host: `127.0.0.1:${port}`,
    url: `https://127.0.0.1:${port}`,
    httpPath,
    ca: tls.cert,
    statements,
    get sessions() {
      return [...sessions.values()];
    },
    get operations() {
      return [...ops.values()].map((o) => o.record);
    },
    requests,
    tokensSeen,
    failNext(n, status, opts = {}) {
      faults.add(n, { status, retryAfter: opts.retryAfter, only: opts.only });
    },
    pendingFaults: () => faults.pending,
    setHandler(h) {
      handler = h;
    },
    setPollsBeforeFinish(n) {
      pollsBeforeFinish = n;
    },
    calls: (method) => requests.filter((r) => r.call === method && r.status === 200).length,
    close: () => closeServer(server),
  };
}

// ---------------------------------------------------------------------------------------------
// Jobs API 2.1 (runs/submit, runs/get, runs/cancel).

export interface RunStep {
  lifeCycleState: string;
  resultState?: string;
  stateMessage?: string;
  /** How many runs/get answers stay in this step (default 1). The last step stays for good. */
  polls?: number;
}

export interface RunRecord {
  runId: number;
  runName?: string;
  idempotencyToken?: string;
  submission: Record<string, unknown>;
  /** The life-cycle states answered by runs/get, in order. */
  answered: string[];
  cancelRequested: boolean;
}

export interface JobsApi {
  /** `http://127.0.0.1:<port>`: an explicit http scheme, which the Jobs client accepts for loopback only. */
  host: string;
  url: string;
  /** Every runs/submit request that reached the handler (including repeats of a token). */
  submissions: Array<{ body: Record<string, unknown>; runId: number; token: string }>;
  runs: Map<number, RunRecord>;
  /** Run ids runs/cancel was called for, in order. */
  cancels: number[];
  requests: HttpRequestRecord[];
  /** The scripted life cycle for the next submitted run (default: PENDING, RUNNING, TERMINATED/SUCCESS). */
  scriptNext(steps: RunStep[]): void;
  failNext(n: number, status: number, opts?: { retryAfter?: number; only?: string }): void;
  /**
   * Handle the next `n` matching requests (path suffix `only`) as usual, then close the
   * connection instead of answering: a response lost on the way back (a runs/submit so
   * dropped has launched its run).
   */
  dropResponses(n: number, opts?: { only?: string }): void;
  close(): Promise<void>;
}

const TERMINAL = new Set(['TERMINATED', 'SKIPPED', 'INTERNAL_ERROR']);
const DEFAULT_SCRIPT: RunStep[] = [{ lifeCycleState: 'PENDING' }, { lifeCycleState: 'RUNNING' }, { lifeCycleState: 'TERMINATED', resultState: 'SUCCESS', stateMessage: '' }];
const TASK_KINDS = ['notebook_task', 'spark_python_task', 'sql_task', 'python_wheel_task', 'spark_jar_task', 'spark_submit_task', 'run_job_task'];

export async function startJobsApi(options: { token: string; wrongTokenStatus?: 401 | 403 }): Promise<JobsApi> {
  const faults = new Faults();
  // Answers to drop (the status is unused).
  const drops = new Faults();
  const requests: HttpRequestRecord[] = [];
  const submissions: JobsApi['submissions'] = [];
  const runs = new Map<number, RunRecord & { steps: RunStep[]; step: number; pollsInStep: number }>();
  const byToken = new Map<string, number>();
  const cancels: number[] = [];
  const scripts: RunStep[][] = [];
  let nextRunId = 1000 + Math.floor(Math.random() * 1000);
  let baseUrl = '';

  const json = (res: http.ServerResponse, record: HttpRequestRecord, status: number, body: unknown, headers: Record<string, string> = {}) => {
    record.status = status;
    if (record.dropped) {
      res.socket?.destroy();
      return;
    }
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers }).end(JSON.stringify(body));
  };
  const apiError = (code: string, message: string) => ({ error_code: code, message });

  function validateSubmit(body: Record<string, unknown>): string | undefined {
    const token = body.idempotency_token;
    if (token !== undefined && (typeof token !== 'string' || token.length === 0 || token.length > 64)) return 'idempotency_token must be a string of at most 64 characters';
    const tasks = body.tasks;
    if (!Array.isArray(tasks) || tasks.length === 0) return 'tasks must be a non-empty array';
    for (const t of tasks as Array<Record<string, unknown>>) {
      if (typeof t.task_key !== 'string' || !/^[\w.-]{1,100}$/.test(t.task_key)) return 'task_key must match [\\w.-]{1,100}';
      const kinds = TASK_KINDS.filter((k) => t[k] !== undefined);
      if (kinds.length !== 1) return `exactly one task type must be set (got ${kinds.join(', ') || 'none'})`;
      const kind = kinds[0]!;
      if (kind === 'notebook_task') {
        const nb = t.notebook_task as Record<string, unknown>;
        if (typeof nb.notebook_path !== 'string' || nb.notebook_path === '') return 'notebook_task.notebook_path is required';
        if (nb.base_parameters !== undefined && Object.values(nb.base_parameters as object).some((v) => typeof v !== 'string')) return 'notebook_task.base_parameters values must be strings';
      }
      if (kind === 'sql_task') {
        const sq = t.sql_task as Record<string, unknown>;
        if (typeof sq.warehouse_id !== 'string' || sq.warehouse_id === '') return 'sql_task.warehouse_id is required';
      } else if (t.existing_cluster_id === undefined && t.new_cluster === undefined && t.job_cluster_key === undefined && t.environment_key === undefined) {
        return `task ${t.task_key}: a cluster (existing_cluster_id or new_cluster) is required`;
      }
    }
    return undefined;
  }

  function runView(run: RunRecord & { steps: RunStep[]; step: number }) {
    const step = run.steps[run.step]!;
    return {
      run_id: run.runId,
      run_name: run.runName,
      run_type: 'SUBMIT_RUN',
      run_page_url: `${baseUrl}/?o=0#job/0/run/${run.runId}`,
      state: {
        life_cycle_state: step.lifeCycleState,
        ...(step.resultState ? { result_state: step.resultState } : {}),
        state_message: step.stateMessage ?? '',
        user_cancelled_or_timedout: run.cancelRequested,
      },
      tasks: ((run.submission.tasks as Array<{ task_key: string }>) ?? []).map((t) => ({ task_key: t.task_key, run_id: run.runId + 1 })),
    };
  }

  const server = http.createServer((req, res) => {
    void (async () => {
      const raw = await readBody(req);
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const call = `${req.method} ${url.pathname}`;
      const record: HttpRequestRecord = { call, path: req.url ?? '', status: 0, headers: req.headers };
      requests.push(record);
      if (drops.take(call)) record.dropped = true;
      const fault = faults.take(call);
      if (fault) {
        const headers: Record<string, string> = fault.retryAfter !== undefined ? { 'Retry-After': String(fault.retryAfter) } : {};
        const code = fault.status === 429 ? 'REQUEST_LIMIT_EXCEEDED' : fault.status >= 500 ? 'TEMPORARILY_UNAVAILABLE' : 'INJECTED';
        return json(res, record, fault.status, apiError(code, `injected ${fault.status}`), headers);
      }
      const token = bearer(req);
      if (token !== options.token) {
        return json(res, record, options.wrongTokenStatus ?? 401, apiError(options.wrongTokenStatus === 403 ? 'PERMISSION_DENIED' : 'UNAUTHENTICATED', 'Invalid access token.'));
      }
      let body: Record<string, unknown> = {};
      if (req.method === 'POST') {
        if (!/^application\/json/.test(req.headers['content-type'] ?? '')) return json(res, record, 415, apiError('BAD_REQUEST', 'expected application/json'));
        try {
          body = JSON.parse(raw.toString('utf8') || '{}') as Record<string, unknown>;
        } catch {
          return json(res, record, 400, apiError('MALFORMED_REQUEST', 'Invalid JSON given in the body of the request'));
        }
      }
      switch (call) {
        case 'POST /api/2.1/jobs/runs/submit': {
          const problem = validateSubmit(body);
          if (problem) return json(res, record, 400, apiError('INVALID_PARAMETER_VALUE', problem));
          const idem = body.idempotency_token as string | undefined;
          let runId = idem !== undefined ? byToken.get(idem) : undefined;
          if (runId === undefined) {
            runId = nextRunId++;
            if (idem !== undefined) byToken.set(idem, runId);
            const steps = scripts.shift() ?? DEFAULT_SCRIPT;
            runs.set(runId, {
              runId,
              runName: body.run_name as string | undefined,
              idempotencyToken: idem,
              submission: body,
              answered: [],
              cancelRequested: false,
              steps: steps.map((s) => ({ ...s })),
              step: 0,
              pollsInStep: 0,
            });
          }
          submissions.push({ body, runId, token: token! });
          return json(res, record, 200, { run_id: runId });
        }
        case 'GET /api/2.1/jobs/runs/get': {
          const runId = Number(url.searchParams.get('run_id'));
          const run = runs.get(runId);
          if (!url.searchParams.has('run_id') || !Number.isInteger(runId)) return json(res, record, 400, apiError('INVALID_PARAMETER_VALUE', 'run_id is required'));
          if (!run) return json(res, record, 404, apiError('RESOURCE_DOES_NOT_EXIST', `Run ${runId} does not exist.`));
          const view = runView(run);
          run.answered.push(view.state.life_cycle_state);
          run.pollsInStep++;
          if (run.pollsInStep >= (run.steps[run.step]!.polls ?? 1) && run.step < run.steps.length - 1) {
            run.step++;
            run.pollsInStep = 0;
          }
          return json(res, record, 200, view);
        }
        case 'POST /api/2.1/jobs/runs/cancel': {
          const runId = Number(body.run_id);
          const run = runs.get(runId);
          if (!run) return json(res, record, 404, apiError('RESOURCE_DOES_NOT_EXIST', `Run ${body.run_id} does not exist.`));
          cancels.push(runId);
          if (!TERMINAL.has(run.steps[run.step]!.lifeCycleState) && !run.cancelRequested) {
            // Cancelling is asynchronous: the run goes through TERMINATING, then ends CANCELED.
            run.steps = [
              ...run.steps.slice(0, run.step),
              { lifeCycleState: 'TERMINATING', polls: 1 },
              { lifeCycleState: 'TERMINATED', resultState: 'CANCELED', stateMessage: 'Run cancelled.' },
            ];
            run.pollsInStep = 0;
          }
          run.cancelRequested = true;
          return json(res, record, 200, {});
        }
        default:
          return json(res, record, 404, apiError('ENDPOINT_NOT_FOUND', `No API found for '${call}'`));
      }
    })().catch((err) => {
      if (!res.headersSent) res.writeHead(500).end(String(err));
    });
  });
  const port = await listen(server);
  baseUrl = `http://127.0.0.1:${port}`;

  return {
    host: baseUrl,
    url: baseUrl,
    submissions,
    runs: runs as Map<number, RunRecord>,
    cancels,
    requests,
    scriptNext(steps) {
      scripts.push(steps);
    },
    failNext(n, status, opts = {}) {
      faults.add(n, { status, retryAfter: opts.retryAfter, only: opts.only });
    },
    dropResponses(n, opts = {}) {
      drops.add(n, { status: 0, only: opts.only });
    },
    close: () => closeServer(server),
  };
}
