/** Test data helpers: isolated MySQL databases and reading topics back from Kafka. */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Kafka } from 'kafkajs';
import assert from 'node:assert/strict';
import mysql from 'mysql2/promise';
import { mysqlConnectionOptions } from '../../adapters/mysql-connection';
import { PROJECT_ROOT, type Config } from '../../config';
import { loadDir } from '../../scripts/db-load';
import { seed } from '../../scripts/db-seed';
import { compiledWorker, WORKER_NODE_FLAGS } from '../../workers/build';
import { SAMPLE_DIR, testConfig, uniqueName } from './env';

/** A database of its own (`pinterest_test_*`), loaded with the real sample or seeded rows. */
export async function testDatabase(fill: { sample: true } | { seedRows: number; seed?: number } | { empty: true }, overrides: Record<string, string> = {}): Promise<{ config: Config; url: string; db: string }> {
  const db = `pinterest_test_${uniqueName('db').replace(/-/g, '_')}`;
  const base = new URL(testConfig().mysql.url);
  base.pathname = `/${db}`;
  const url = base.toString();
  const config = testConfig({ MYSQL_URL: url, ...overrides });
  if ('sample' in fill) await loadDir(config, SAMPLE_DIR, { replace: false });
  else if ('seedRows' in fill) await seed(config, { rows: fill.seedRows, seed: fill.seed ?? 7, replace: false });
  else {
    const { ensureDatabase } = await import('../../adapters/mysql');
    await ensureDatabase(config);
  }
  return { config, url, db };
}

export async function query<T = mysql.RowDataPacket>(config: Config, sql: string, params: unknown[] = []): Promise<T[]> {
  const conn = await mysql.createConnection(mysqlConnectionOptions(config, { dateStrings: true }));
  try {
    const [rows] = await conn.query(sql, params);
    return rows as T[];
  } finally {
    await conn.end();
  }
}

export interface ConsumedRecord {
  topic: string;
  partition: number;
  offset: string;
  key: string;
  value: string;
  headers: Record<string, string>;
}

/**
 * Reads every committed record of `topics` (read_committed) from the beginning: waits until
 * at least `expected` arrived, then until nothing new came for `idleMs`.
 */
export async function consumeTopics(kafka: Kafka, topics: string[], expected: number, opts: { timeoutMs?: number; idleMs?: number } = {}): Promise<ConsumedRecord[]> {
  const consumer = kafka.consumer({ groupId: uniqueName('test-reader'), readUncommitted: false, maxWaitTimeInMs: 200 });
  const out: ConsumedRecord[] = [];
  let last = Date.now();
  await consumer.connect();
  try {
    await consumer.subscribe({ topics, fromBeginning: true });
    await consumer.run({
      eachBatchAutoResolve: true,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(m.headers ?? {})) headers[k] = String(v);
          out.push({ topic: batch.topic, partition: batch.partition, offset: m.offset, key: m.key?.toString() ?? '', value: m.value?.toString() ?? '', headers });
        }
        if (batch.messages.length) last = Date.now();
      },
    });
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    const idle = opts.idleMs ?? 2_000;
    while (Date.now() < deadline && (out.length < expected || Date.now() - last < idle)) await new Promise((r) => setTimeout(r, 100));
  } finally {
    await consumer.disconnect();
  }
  return out;
}

/**
 * A pinflow worker in its own process (so tests can SIGKILL it), polling `taskQueue`: the
 * compiled worker of today's sources (workers/build.ts; compiled first when there is none).
 */
export function spawnWorker(env: Record<string, string>): { child: ChildProcess; ready: Promise<void>; output: () => string } {
  const child = spawn(process.execPath, [...WORKER_NODE_FLAGS, compiledWorker()], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const ready = new Promise<void>((resolve, reject) => {
    const t = setInterval(() => {
      if (out.includes('polling task queue')) {
        clearInterval(t);
        resolve();
      } else if (child.exitCode !== null) {
        clearInterval(t);
        reject(new Error(`worker exited ${child.exitCode}: ${out}`));
      }
    }, 100);
  });
  return { child, ready, output: () => out };
}

export const TOPICS = ['pin', 'geo', 'user'] as const;

/** The innermost cause's message (workflow failure -> activity failure -> application failure). */
export function rootMessage(err: unknown): string {
  let e = err as { cause?: unknown; message?: string };
  while (e.cause) e = e.cause as typeof e;
  return String(e.message);
}

/** The rows MySQL holds, serialised independently of the adapter (spec section 2). */
export async function mysqlRows(config: Config): Promise<Record<(typeof TOPICS)[number], Map<string, unknown>>> {
  const pin = await query(config, 'SELECT * FROM pinterest_data');
  const geo = await query(config, "SELECT ind, DATE_FORMAT(`timestamp`, '%Y-%m-%dT%H:%i:%s') AS `timestamp`, latitude, longitude, country FROM geolocation_data");
  const user = await query(config, "SELECT ind, first_name, last_name, age, DATE_FORMAT(date_joined, '%Y-%m-%dT%H:%i:%s') AS date_joined FROM user_data");
  const byKey = (rows: Record<string, unknown>[], key: string) => new Map(rows.map((r) => [String(r[key]), { ...r }]));
  return { pin: byKey(pin, 'index'), geo: byKey(geo, 'ind'), user: byKey(user, 'ind') };
}

/** Every expected post number exactly once on each topic, nothing else. */
export function assertExactlyOnce(records: ConsumedRecord[], prefix: string, expectedSeqs: number[]): void {
  for (const t of TOPICS) {
    const seqs = records.filter((r) => r.topic === `${prefix}.${t}`).map((r) => Number(r.headers['pinflow-post']));
    const counts = new Map<number, number>();
    for (const s of seqs) counts.set(s, (counts.get(s) ?? 0) + 1);
    const dupes = [...counts].filter(([, n]) => n > 1);
    assert.equal(dupes.length, 0, `${t}: ${dupes.length} posts more than once, e.g. ${JSON.stringify(dupes.slice(0, 3))}`);
    const missing = expectedSeqs.filter((s) => !counts.has(s));
    assert.equal(missing.length, 0, `${t}: ${missing.length} planned posts missing, e.g. ${missing.slice(0, 5)}`);
    assert.equal(seqs.length, expectedSeqs.length, `${t}: record count`);
  }
}

