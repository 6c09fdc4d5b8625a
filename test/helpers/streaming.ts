/** Streaming test helpers: records into Kinesis, stream tables out of DuckDB, exactly-once checks. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DeleteStreamCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import { DuckDBInstance } from '@duckdb/node-api';
import type { WorkflowHandle } from '@temporalio/client';
import { putRecordsBatched, readStream, type PutEntry, type ReadRecord } from '../../adapters/kinesis';
import { PROJECT_ROOT, type Config } from '../../config';
import { streamTable, type StreamingStatus, type StreamTopic } from '../../common/streaming';
import { streamingStatusQuery } from '../../workflows/streaming';
import { testConfig, uniqueName } from './env';

const createdDirs: string[] = [];

/** Removes the temp folders `streamingConfig` created (call from a suite's `after`). */
export function removeStreamingDirs(): void {
  for (const d of createdDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

/** A config of its own: prefix, task queue and DuckDB file (under the OS temp folder). */
export function streamingConfig(stem: string, overrides: Record<string, string> = {}): { config: Config; prefix: string; vars: Record<string, string>; dir: string } {
  const prefix = uniqueName(stem);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-stream-'));
  createdDirs.push(dir);
  const vars = { PIPELINE_PREFIX: prefix, TEMPORAL_TASK_QUEUE: uniqueName(`tq-${stem}`), DUCKDB_PATH: path.join(dir, 'warehouse.duckdb'), ...overrides };
  return { config: testConfig(vars), prefix, vars, dir };
}

/** A user_data-like row (spec section 2) for key `k`. */
export const userRow = (k: number) => ({ ind: k, first_name: `First${k}`, last_name: `Last${k}`, age: 20 + (k % 40), date_joined: `2016-0${1 + (k % 9)}-1${k % 10}T0${k % 10}:00:00` });

export function userEntries(from: number, n: number): PutEntry[] {
  return Array.from({ length: n }, (_, i) => ({ partitionKey: String(from + i), data: JSON.stringify(userRow(from + i)) }));
}

/** Puts `total` user records (keys from `from`) at about `perSecond`, in requests of `batch`. */
export async function produceSteadily(client: KinesisClient, stream: string, from: number, total: number, perSecond: number, batch = 250): Promise<void> {
  const started = Date.now();
  for (let done = 0; done < total; done += batch) {
    await putRecordsBatched(client, stream, userEntries(from + done, Math.min(batch, total - done)));
    const due = started + ((done + batch) / perSecond) * 1000;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
  }
}

/** Rows of a DuckDB table (JSON-compatible values), read through this process's instance of the file. */
export async function duckRows(dbPath: string, schema: string, sql: string): Promise<Record<string, unknown>[]> {
  const c = await (await DuckDBInstance.fromCache(dbPath)).connect();
  try {
    await c.run(`SET schema = '${schema}'`);
    return (await c.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[];
  } finally {
    c.closeSync();
  }
}

export async function waitForStatus(handle: WorkflowHandle, done: (s: StreamingStatus) => boolean, what: string, timeoutMs = 120_000): Promise<StreamingStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: StreamingStatus | undefined;
  while (Date.now() < deadline) {
    last = await handle.query(streamingStatusQuery).catch(() => last);
    if (last && done(last)) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}; last status: ${JSON.stringify(last?.totals)}`);
}

/**
 * The stream table holds every record of the stream exactly once, compared by (shard, sequence
 * number): no duplicates, none missing (but the expected dead letters and keyless records), and
 * each row is its record's (same key). Returns the stream's records.
 */
export async function assertStreamExactlyOnce(
  client: KinesisClient,
  stream: string,
  dbPath: string,
  schema: string,
  topic: StreamTopic,
  opts: { keyOf?: (data: unknown) => unknown; skipped?: Set<string> } = {},
): Promise<{ records: ReadRecord[]; rows: Record<string, unknown>[] }> {
  const records = await readStream(client, stream);
  const rows = await duckRows(dbPath, schema, `SELECT ind, _shard, _sequence_number FROM ${streamTable(topic)}`);
  const id = (shard: unknown, seq: unknown) => `${shard}/${seq}`;
  const seen = new Map<string, number>();
  for (const r of rows) seen.set(id(r._shard, r._sequence_number), (seen.get(id(r._shard, r._sequence_number)) ?? 0) + 1);
  const dupes = [...seen].filter(([, n]) => n > 1);
  assert.equal(dupes.length, 0, `${dupes.length} records written more than once, e.g. ${dupes.slice(0, 3).map(([k]) => k)}`);
  const byId = new Map(records.map((r) => [id(r.shardId, r.sequenceNumber), r]));
  const expected = records.filter((r) => !opts.skipped?.has(r.sequenceNumber));
  const missing = expected.filter((r) => !seen.has(id(r.shardId, r.sequenceNumber)));
  assert.equal(missing.length, 0, `${missing.length} of ${expected.length} records missing, e.g. ${missing.slice(0, 3).map((r) => `${r.shardId}/${r.sequenceNumber} key ${r.partitionKey}`)}`);
  assert.equal(rows.length, expected.length, 'one row per record');
  const keyOf = opts.keyOf ?? ((d: unknown) => (d as { ind: unknown }).ind);
  for (const row of rows) {
    const rec = byId.get(id(row._shard, row._sequence_number));
    assert.ok(rec, `row ${id(row._shard, row._sequence_number)} is no record of ${stream}`);
    assert.equal(String(row.ind), String(keyOf(JSON.parse(rec.data.toString('utf8')))), `row ${id(row._shard, row._sequence_number)} holds its record's key`);
  }
  return { records, rows };
}

export async function deleteStreams(client: KinesisClient, names: string[]): Promise<void> {
  await Promise.allSettled(names.map((StreamName) => client.send(new DeleteStreamCommand({ StreamName }))));
}

/**
 * Runs a project script as a user does (`npm run X -- args`) without blocking this process, so
 * a worker running in the test process keeps serving the workflows the script starts.
 */
export function runScriptAsync(script: string, args: string[], env: Record<string, string> = {}, timeoutMs = 300_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', script, '--', ...args], { cwd: PROJECT_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr: stderr.replace(/^npm warn.*\n/gm, '') });
    });
  });
}
