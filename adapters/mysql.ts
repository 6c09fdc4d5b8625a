/**
 * MySQL adapter: the only module that talks to the source database. Every connection takes its
 * options from ./mysql-connection.ts (TLS, RDS IAM tokens), and errors are classified there with
 * advice naming the setting to change.
 */
import fs from 'node:fs';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { ApplicationFailure } from '@temporalio/common';
import { addressOf, PROJECT_ROOT, type Config } from '../config';
import { NonRetryable } from '../common/errors';
import { describeMysqlSecurity } from '../config/mysql-security';
import { SOURCE_TABLES, type SourceTable } from '../common/source-tables';
import type { SourceDescription, SystemCheck } from '../common/types';
import { guardedMysql, mysqlConnectionOptions, mysqlTlsStatus } from './mysql-connection';

export function createMysqlPool(config: Config, connectionLimit = 4): mysql.Pool {
  return mysql.createPool(
    mysqlConnectionOptions(config, { connectionLimit, dateStrings: true, supportBigNumbers: true, enableKeepAlive: true, multipleStatements: false }),
  );
}

const q = (id: string) => `\`${id.replace(/`/g, '``')}\``;

/** Creates the database named in MYSQL_URL if it does not exist (the user needs the right to). */
export async function ensureDatabase(config: Config): Promise<void> {
  const u = new URL(config.mysql.url);
  const db = decodeURIComponent(u.pathname.slice(1));
  u.pathname = '/';
  const conn = await mysql.createConnection(mysqlConnectionOptions({ ...config, mysql: { ...config.mysql, url: u.toString() } }));
  try {
    await conn.query(`CREATE DATABASE IF NOT EXISTS ${q(db)} CHARACTER SET utf8mb4`);
  } finally {
    await conn.end();
  }
}

/** Creates the three source tables if they do not exist (sql/schema.sql). */
export async function applySchema(pool: mysql.Pool): Promise<void> {
  const sql = fs.readFileSync(path.join(PROJECT_ROOT, 'sql', 'schema.sql'), 'utf8');
  const statements = sql
    .split(/;\s*$/m)
    .map((s) => s.replace(/^--.*$/gm, '').trim())
    .filter(Boolean);
  for (const s of statements) await pool.query(s);
}

export async function tableCounts(pool: mysql.Pool | mysql.Connection): Promise<Record<SourceTable['name'], number>> {
  // Concurrently: a pool counts the three tables on three connections.
  const counts = await Promise.all(
    SOURCE_TABLES.map(async (t) => {
      const [rows] = await pool.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${q(t.name)}`);
      return [t.name, Number(rows[0]!.n)] as const;
    }),
  );
  return Object.fromEntries(counts) as Record<SourceTable['name'], number>;
}

/** One multi-row INSERT; values in `columns` order. */
export async function insertRows(conn: mysql.Pool | mysql.PoolConnection | mysql.Connection, table: SourceTable, rows: unknown[][]): Promise<void> {
  if (rows.length === 0) return;
  const cols = table.columns.map((c) => q(c.name)).join(', ');
  await conn.query(`INSERT INTO ${q(table.name)} (${cols}) VALUES ?`, [rows]);
}

/** A source row as an object with the spec's column names, in `SELECT *` order. */
export type SourceRow = Record<string, string | number | null>;

/** Rows of one batch by key, per topic. */
export interface SourceBatch {
  pin: Map<number, SourceRow>;
  geo: Map<number, SourceRow>;
  user: Map<number, SourceRow>;
}

function selectList(t: SourceTable): string {
  return t.columns.map((c) => q(c.name)).join(', ');
}

/** DATETIME values become ISO-8601 without zone (spec section 2). */
function toRow(t: SourceTable, raw: mysql.RowDataPacket): SourceRow {
  const row: SourceRow = {};
  for (const c of t.columns) {
    const v = raw[c.name] as string | number | null;
    row[c.name] = c.type === 'datetime' && typeof v === 'string' ? v.replace(' ', 'T') : v;
  }
  return row;
}

async function selectByKeys(pool: mysql.Pool, t: SourceTable, keys: number[]): Promise<Map<number, SourceRow>> {
  const out = new Map<number, SourceRow>();
  if (keys.length === 0) return out;
  const [rows] = await pool.query<mysql.RowDataPacket[]>(`SELECT ${selectList(t)} FROM ${q(t.name)} WHERE ${q(t.key)} IN (?)`, [keys]);
  for (const r of rows) out.set(Number(r[t.key]), toRow(t, r));
  return out;
}

/** Rows of the given keys (duplicates allowed) from the three tables: one query per table. */
export async function readKeys(pool: mysql.Pool, keys: number[]): Promise<SourceBatch> {
  const unique = [...new Set(keys)];
  const [pin, geo, user] = await Promise.all(SOURCE_TABLES.map((t) => selectByKeys(pool, t, unique)));
  return { pin: pin!, geo: geo!, user: user! };
}

/**
 * The posts of `keys` (in order) whose key has a row in all three tables, each table's row as
 * its event's JSON value: `present` lists the indexes into `keys`, `values[topic][j]` belongs
 * to `keys[present[j]]`.
 */
export interface SerializedPosts {
  present: number[];
  values: Record<SourceTable['topic'], string[]>;
}

export function serializePosts(keys: number[], batch: SourceBatch): SerializedPosts {
  const out: SerializedPosts = { present: [], values: { pin: [], geo: [], user: [] } };
  keys.forEach((key, i) => {
    const pin = batch.pin.get(key);
    const geo = batch.geo.get(key);
    const user = batch.user.get(key);
    if (!pin || !geo || !user) return;
    out.present.push(i);
    out.values.pin.push(JSON.stringify(pin));
    out.values.geo.push(JSON.stringify(geo));
    out.values.user.push(JSON.stringify(user));
  });
  return out;
}

/**
 * Rows with keys in (afterKey, upper], where `upper` is the `limit`-th key of pinterest_data
 * after `afterKey` (or +infinity when fewer remain, so keys only in geo/user are seen too).
 */
export async function readRange(
  pool: mysql.Pool,
  afterKey: number,
  limit: number,
): Promise<{ batch: SourceBatch; keys: number[]; upperKey: number | null }> {
  const [pinT, geoT, userT] = SOURCE_TABLES as [SourceTable, SourceTable, SourceTable];
  const [pinRows] = await pool.query<mysql.RowDataPacket[]>(
    `SELECT ${selectList(pinT)} FROM ${q(pinT.name)} WHERE ${q(pinT.key)} > ? ORDER BY ${q(pinT.key)} LIMIT ?`,
    [afterKey, limit],
  );
  const upperKey = pinRows.length === limit ? Number(pinRows[pinRows.length - 1]![pinT.key]) : null;
  const range = async (t: SourceTable) => {
    const [rows] = await pool.query<mysql.RowDataPacket[]>(
      `SELECT ${selectList(t)} FROM ${q(t.name)} WHERE ${q(t.key)} > ?${upperKey === null ? '' : ` AND ${q(t.key)} <= ?`} ORDER BY ${q(t.key)}`,
      upperKey === null ? [afterKey] : [afterKey, upperKey],
    );
    return new Map(rows.map((r) => [Number(r[t.key]), toRow(t, r)] as const));
  };
  const [geo, user] = await Promise.all([range(geoT), range(userT)]);
  const pin = new Map(pinRows.map((r) => [Number(r[pinT.key]), toRow(pinT, r)] as const));
  const keys = [...new Set([...pin.keys(), ...geo.keys(), ...user.keys()])].sort((a, b) => a - b);
  return { batch: { pin, geo, user }, keys, upperKey };
}

/**
 * Checks that every table and column of the spec exists (non-retryable error naming the
 * first missing one) and returns row counts and the key range.
 */
export async function describeSource(pool: mysql.Pool, database: string): Promise<SourceDescription> {
  const [cols] = await pool.query<mysql.RowDataPacket[]>(
    'SELECT TABLE_NAME AS t, COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ?',
    [database],
  );
  const have = new Set(cols.map((r) => `${r.t}.${r.c}`));
  const tables = new Set(cols.map((r) => String(r.t)));
  for (const t of SOURCE_TABLES) {
    if (!tables.has(t.name)) {
      throw ApplicationFailure.nonRetryable(`source table ${database}.${t.name} does not exist (load it with npm run db:load or db:seed)`, NonRetryable.missingResource);
    }
    for (const c of t.columns) {
      if (!have.has(`${t.name}.${c.name}`)) {
        throw ApplicationFailure.nonRetryable(`source table ${database}.${t.name} has no column ${c.name}`, NonRetryable.missingResource);
      }
    }
  }
  const counts = await tableCounts(pool);
  // One MIN/MAX per table: each is answered from the key's index (a MIN over a union of the
  // three tables would materialise every key first: seconds at a million rows).
  const bounds = SOURCE_TABLES.map((t) => `SELECT MIN(${q(t.key)}) AS lo, MAX(${q(t.key)}) AS hi FROM ${q(t.name)}`).join(' UNION ALL ');
  const [range] = await pool.query<mysql.RowDataPacket[]>(`SELECT MIN(lo) AS lo, MAX(hi) AS hi FROM (${bounds}) bounds_`);
  return {
    counts,
    minKey: range[0]!.lo === null ? null : Number(range[0]!.lo),
    maxKey: range[0]!.hi === null ? null : Number(range[0]!.hi),
  };
}

export function mysqlAdapter(config: Config) {
  const address = addressOf(config, 'mysql');
  const database = decodeURIComponent(new URL(config.mysql.url).pathname.slice(1));
  let pool: mysql.Pool | undefined;
  const getPool = () => (pool ??= createMysqlPool(config));
  const guard = <T>(fn: () => Promise<T>) => guardedMysql(config, fn);

  const activities = {
    /** Doctor: one round trip to the database named in MYSQL_URL, and the session's TLS state. */
    async checkMysql(): Promise<SystemCheck> {
      return guard(async () => {
        const started = performance.now();
        const [rows] = await getPool().query<mysql.RowDataPacket[]>('SELECT VERSION() AS version, DATABASE() AS db');
        const latencyMs = Math.round(performance.now() - started);
        const transport = await mysqlTlsStatus(getPool());
        return { system: 'mysql', address, latencyMs, detail: `${rows[0]?.version} database ${rows[0]?.db}, ${transport} (${describeMysqlSecurity(config.mysql)})` };
      });
    },

    /** Validates the source tables and returns their sizes and key range. */
    async describeSource(): Promise<SourceDescription> {
      return guard(() => describeSource(getPool(), database));
    },
  };

  return {
    activities,
    pool: getPool,
    address,
    /** Runs `fn` against this database, classifying its errors with TLS/IAM advice. */
    guard,
    async close() {
      await pool?.end();
      pool = undefined;
    },
  };
}
