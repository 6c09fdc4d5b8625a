/**
 * Zombie-worker helpers: pause and resume a spawned worker process (SIGSTOP/SIGCONT), cut its
 * Temporal connections (a proxy), its identity, JSON log and HTTP trace, the activity attempts
 * a workflow history records, a read_uncommitted view of a topic, and byte-exact snapshots of
 * S3 objects.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { WorkflowHandle } from '@temporalio/client';
import type { Admin, Kafka } from 'kafkajs';
import type { spawnWorker } from './data';
import { uniqueName } from './env';
import { workflowBundle } from '../../workers/worker';
import { buildIdOf, workerIdentity as identityOf } from '../../workers/version';

export type SpawnedWorker = ReturnType<typeof spawnWorker>;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The identity Temporal records for a pinflow worker process (workers/version.ts). */
export async function workerIdentity(w: SpawnedWorker): Promise<string> {
  return identityOf(buildIdOf(await workflowBundle()), os.hostname(), w.child.pid!);
}

/** Freezes the process (it keeps its sockets, timers and in-flight work); returns when. */
export function pause(w: SpawnedWorker): number {
  w.child.kill('SIGSTOP');
  return Date.now();
}

/** Lets a paused process run again; returns when. */
export function resume(w: SpawnedWorker): number {
  w.child.kill('SIGCONT');
  return Date.now();
}

/**
 * A TCP pass-through in front of the Temporal server for one worker, so a test can cut that
 * worker's connections while it is paused. A paused process keeps its sockets open, and the
 * server keeps handing tasks to the long polls it had open (each task then waits out its
 * timeout) until those polls expire about a minute later; cutting them makes the server
 * offer the retry to the other worker at once. The paused worker reconnects when resumed.
 */
export interface TcpProxy {
  /** host:port to give the worker as TEMPORAL_ADDRESS. */
  address: string;
  /** Closes every connection through the proxy (new ones are accepted); returns how many. */
  cut(): number;
  close(): Promise<void>;
}

export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const i = target.lastIndexOf(':');
  const host = target.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(target.slice(i + 1));
  const pairs = new Set<[net.Socket, net.Socket]>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, host);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const sock of pair) {
      sock.on('error', end);
      sock.on('close', end);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const cut = () => {
    const all = [...pairs];
    pairs.clear();
    for (const [c, u] of all) {
      c.destroy();
      u.destroy();
    }
    return all.length;
  };
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    cut,
    close() {
      cut();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** With ZOMBIE_LOG_DIR set, writes the worker's output there (for looking into a run). */
export function saveOutput(w: SpawnedWorker | undefined, name: string): void {
  const dir = process.env.ZOMBIE_LOG_DIR;
  if (!dir || !w) return;
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${name}.log`), w.output());
}

/** Stops a worker process (resumed first if paused): SIGTERM, SIGKILL after `graceMs`. */
export async function stopWorker(w: SpawnedWorker | undefined, graceMs = 10_000): Promise<void> {
  if (!w || w.child.exitCode !== null || w.child.signalCode !== null) return;
  const exited = new Promise((r) => w.child.once('exit', r));
  w.child.kill('SIGCONT');
  w.child.kill('SIGTERM');
  const t = setTimeout(() => w.child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** One activity log line of a worker started with LOG_FORMAT=json (workers/runtime.ts). */
export interface ActivityLogLine {
  time: number;
  level: string;
  message: string;
  activityId: string;
  activityType: string;
  attempt: number;
  workflowId: string;
  error?: string;
}

/**
 * Environment for a spawned worker that writes one JSON line to stderr for every HTTP request
 * it starts and every response it receives (Node's http diagnostics channels, installed with
 * a data: URL import, so the worker's code is untouched): the worker's S3 calls, with times.
 */
export function httpTraceEnv(): Record<string, string> {
  const code = [
    "import dc from 'node:diagnostics_channel';",
    "const line = (o) => process.stderr.write(JSON.stringify({ pinflowTrace: 'http', time: new Date().toISOString(), ...o }) + '\\n');",
    "dc.subscribe('http.client.request.start', ({ request }) => line({ phase: 'start', method: request.method, path: request.path }));",
    "dc.subscribe('http.client.response.finish', ({ request, response }) => line({ phase: 'end', method: request.method, path: request.path, status: response.statusCode }));",
  ].join(' ');
  return { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=data:text/javascript,${encodeURIComponent(code)}`.trim() };
}

export interface HttpTraceLine {
  time: number;
  phase: 'start' | 'end';
  method: string;
  /** The request path without its query, decoded: `/<bucket>/<key>` for S3 path-style. */
  path: string;
  status?: number;
}

/** The HTTP trace lines of a worker started with httpTraceEnv(). */
export function httpTrace(output: string): HttpTraceLine[] {
  const out: HttpTraceLine[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{"pinflowTrace":"http"')) continue;
    try {
      const j = JSON.parse(line) as { time: string; phase: 'start' | 'end'; method: string; path: string; status?: number };
      out.push({ time: Date.parse(j.time), phase: j.phase, method: j.method, path: decodeURIComponent(j.path.split('?')[0]!), ...(j.status !== undefined && { status: j.status }) });
    } catch {
      /* a line cut by another stream's write */
    }
  }
  return out;
}

/** The SDK's lines that end an activity execution (LOG_LEVEL=DEBUG for the successful ones). */
export const ACTIVITY_END = ['Activity completed', 'Activity failed', 'Activity completed as cancelled'];

/** The worker's activity log lines (JSON lines carrying activityId and attempt), in order. */
export function activityLines(output: string): ActivityLogLine[] {
  const out: ActivityLogLine[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (typeof j.activityId !== 'string' || typeof j.attempt !== 'number' || typeof j.time !== 'string') continue;
    const err = j.error as { message?: string } | undefined;
    out.push({
      time: Date.parse(j.time),
      level: String(j.level),
      message: String(j.message),
      activityId: j.activityId,
      activityType: String(j.activityType),
      attempt: j.attempt,
      workflowId: String(j.workflowId),
      ...(err?.message !== undefined && { error: err.message }),
    });
  }
  return out;
}

/** One activity of a workflow history: the attempt that closed it, which worker, how. */
export interface ActivityRun {
  scheduledEventId: number;
  activityId: string;
  activityType: string;
  /** Attempt and worker of the started event (for a retried activity: the last attempt). */
  attempt?: number;
  startedBy?: string;
  closedBy?: string;
  outcome: 'open' | 'completed' | 'failed' | 'timedOut' | 'cancelled';
  closedAt?: number;
}

const num = (v: unknown) => Number(String(v ?? 0));
const at = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => (t ? num(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : undefined);

/** Every activity the history scheduled, with the attempt and worker that closed it. */
export async function activityRuns(handle: WorkflowHandle): Promise<ActivityRun[]> {
  const history = await handle.fetchHistory();
  const runs = new Map<number, ActivityRun>();
  for (const e of history.events ?? []) {
    const id = num(e.eventId);
    const s = e.activityTaskScheduledEventAttributes;
    if (s) runs.set(id, { scheduledEventId: id, activityId: s.activityId ?? '', activityType: s.activityType?.name ?? '', outcome: 'open' });
    const st = e.activityTaskStartedEventAttributes;
    if (st) {
      const r = runs.get(num(st.scheduledEventId));
      if (r) Object.assign(r, { attempt: st.attempt ?? undefined, startedBy: st.identity ?? undefined });
    }
    const closes: Array<[ActivityRun['outcome'], { scheduledEventId?: unknown; identity?: string | null } | null | undefined]> = [
      ['completed', e.activityTaskCompletedEventAttributes],
      ['failed', e.activityTaskFailedEventAttributes],
      ['timedOut', e.activityTaskTimedOutEventAttributes],
      ['cancelled', e.activityTaskCanceledEventAttributes],
    ];
    for (const [outcome, attrs] of closes) {
      if (!attrs) continue;
      const r = runs.get(num(attrs.scheduledEventId));
      if (r) Object.assign(r, { outcome, closedBy: attrs.identity ?? undefined, closedAt: at(e.eventTime) });
    }
  }
  return [...runs.values()];
}

/** The workflow's pending activities (describe), as plain values. */
export async function pendingActivities(handle: WorkflowHandle): Promise<Array<{ activityId: string; activityType: string; attempt: number; state: string; worker: string }>> {
  const d = await handle.describe();
  return (d.raw.pendingActivities ?? []).map((p) => ({
    activityId: p.activityId ?? '',
    activityType: p.activityType?.name ?? '',
    attempt: p.attempt ?? 0,
    // 1 = SCHEDULED, 2 = STARTED, 3 = CANCEL_REQUESTED, 4 = PAUSED, 5 = PAUSE_REQUESTED
    state: ['UNSPECIFIED', 'SCHEDULED', 'STARTED', 'CANCEL_REQUESTED', 'PAUSED', 'PAUSE_REQUESTED'][Number(p.state ?? 0)] ?? String(p.state),
    worker: p.lastWorkerIdentity ?? '',
  }));
}

/**
 * Reads a topic read_uncommitted from the beginning for as long as it runs: aborted records
 * (a fenced transaction's) are seen too. Collects the `pinflow-post` header of each record.
 */
export async function watchUncommitted(kafka: Kafka, topic: string): Promise<{ posts: number[]; maxPost: () => number; idleFor: () => number; stop: () => Promise<void> }> {
  const consumer = kafka.consumer({ groupId: uniqueName('test-uncommitted'), readUncommitted: true, maxWaitTimeInMs: 100 });
  const posts: number[] = [];
  let max = -1;
  let last = Date.now();
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachBatchAutoResolve: true,
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        const p = Number(m.headers?.['pinflow-post']?.toString());
        posts.push(p);
        if (p > max) max = p;
      }
      if (batch.messages.length) last = Date.now();
    },
  });
  return { posts, maxPost: () => max, idleFor: () => Date.now() - last, stop: () => consumer.disconnect() };
}

/** Committed offset of a consumer group on partition 0 of `topic` (0 when none). */
export async function committedOffset(admin: Admin, groupId: string, topic: string): Promise<number> {
  const [o] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return Math.max(0, Number(o?.partitions.find((p) => p.partition === 0)?.offset ?? '-1'));
}

export interface ObjectState {
  etag: string;
  size: number;
  lastModified: number;
  /** MD5 of the bytes read back. */
  md5: string;
}

async function listWithState(s3: S3Client, bucket: string, prefix: string): Promise<Map<string, Omit<ObjectState, 'md5'>>> {
  const out = new Map<string, Omit<ObjectState, 'md5'>>();
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      if (o.Key) out.set(o.Key, { etag: (o.ETag ?? '').replace(/"/g, ''), size: o.Size ?? 0, lastModified: o.LastModified?.getTime() ?? 0 });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/** Every object under the prefixes with its ETag, size, last-modified and the MD5 of its bytes. */
export async function snapshotObjects(s3: S3Client, bucket: string, prefixes: string[]): Promise<Map<string, ObjectState>> {
  const listed: Array<[string, Omit<ObjectState, 'md5'>]> = [];
  for (const p of prefixes) listed.push(...(await listWithState(s3, bucket, p)));
  const out = new Map<string, ObjectState>();
  for (let i = 0; i < listed.length; i += 16) {
    await Promise.all(
      listed.slice(i, i + 16).map(async ([key, st]) => {
        const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        const bytes = await got.Body!.transformToByteArray();
        out.set(key, { ...st, md5: createHash('md5').update(bytes).digest('hex') });
      }),
    );
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** A cheap fingerprint of what is under the prefixes: keys, ETags and last-modified times. */
export async function listingFingerprint(s3: S3Client, bucket: string, prefixes: string[]): Promise<{ count: number; hash: string; newest: number }> {
  const h = createHash('sha256');
  let count = 0;
  let newest = 0;
  for (const p of prefixes) {
    for (const [k, st] of await listWithState(s3, bucket, p)) {
      h.update(`${k} ${st.etag} ${st.lastModified}\n`);
      count++;
      newest = Math.max(newest, st.lastModified);
    }
  }
  return { count, hash: h.digest('hex'), newest };
}

/** Waits until the listing under the prefixes has not changed for `quietMs`. */
export async function waitForQuietBucket(s3: S3Client, bucket: string, prefixes: string[], quietMs: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let prev = await listingFingerprint(s3, bucket, prefixes);
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    if (Date.now() > deadline) throw new Error(`objects under ${prefixes.join(', ')} still changing after ${timeoutMs} ms`);
    await sleep(500);
    const cur = await listingFingerprint(s3, bucket, prefixes);
    if (cur.hash !== prev.hash) {
      prev = cur;
      since = Date.now();
    }
  }
}
